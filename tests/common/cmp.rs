//! A small CMP client made of `enrollgate_cmp`'s wire types, for the CMP integration tests and
//! the `cmp_load` bench: it builds requests that the `openssl cmp` client cannot be made to
//! send (wrong pvno, stale nonces, MACs with too many iterations, bodies out of sequence) and
//! reads the gateway's replies.
//!
//! Requests are protected the way RFC 9483 section 3.2 describes: PasswordBasedMac (SHA-256
//! one-way function, HMAC-SHA256) keyed by an enrollment token's secret with the token id as
//! senderKID, or an ECDSA P-256 signature with the signer's certificate first in extraCerts.
//! Replies are checked independently of the gateway's code: the signature with the key of the
//! first extraCert, the MAC with the secret.
//!
//! This file has no dependency on the integration-test harness, so that the bench can include
//! it with `#[path]` too.

#![allow(
    dead_code,
    reason = "the tests and the bench each use a different part of the kit"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use aws_lc_rs::{digest, hmac};
use der::asn1::{Any, BitString, GeneralizedTime, Null, ObjectIdentifier, OctetString};
use der::{Decode, Encode, Sequence};
use enrollgate_cmp::FailInfo;
use enrollgate_cmp::oid;
use enrollgate_cmp::types::{
    CertOrEncCert, CertReqMsg, CertRequest, CertStatus, CertTemplate, ErrorMsgContent,
    InfoTypeAndValue, PkiBody, PkiHeader, PkiMessage, PkiStatus, PkiStatusInfo, PollReqEntry,
    PopoSigningKey, ProofOfPossession, ProtectedPart,
};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::Certificate;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;

/// `PBMParameter` (RFC 9810 section 5.1.3.1), written here so that the kit does not rely on
/// the crate's private MAC code.
#[derive(Clone, Debug, Sequence)]
struct PbmParameter {
    salt: OctetString,
    owf: AlgorithmIdentifierOwned,
    iteration_count: u64,
    mac: AlgorithmIdentifierOwned,
}

/// A MAC credential: an enrollment token.
#[derive(Clone, Debug)]
pub struct Mac {
    /// The token id, sent as senderKID.
    pub kid: String,
    /// The token secret, the MAC key's source.
    pub secret: Vec<u8>,
    /// The PasswordBasedMac iteration count (the gateway caps it at 10 000).
    pub iterations: u64,
}

impl Mac {
    /// A token credential with 500 iterations, as `openssl cmp` uses by default.
    pub fn new(kid: &str, secret: &str) -> Self {
        Self {
            kid: kid.to_owned(),
            secret: secret.as_bytes().to_vec(),
            iterations: 500,
        }
    }
}

/// An ECDSA P-256 key made in memory.
pub struct ClientKey {
    pair: EcdsaKeyPair,
}

impl ClientKey {
    /// A fresh key.
    pub fn generate() -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("P-256 keygen");
        Self { pair }
    }

    /// A fresh key and a self-signed certificate for it (DER), made with rcgen: a signer that
    /// no route trusts.
    pub fn self_signed(cn: &str) -> (Self, Vec<u8>) {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("keygen");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let cert = params.self_signed(&pair).expect("self-signed certificate");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pair.serialize_der())
            .expect("P-256 PKCS#8");
        (Self { pair: key }, cert.der().to_vec())
    }

    /// The `SubjectPublicKeyInfo`.
    pub fn spki(&self) -> SubjectPublicKeyInfoOwned {
        SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: oid::EC_PUBLIC_KEY,
                parameters: Some(Any::encode_from(&oid::SECP256R1).expect("curve OID")),
            },
            subject_public_key: BitString::from_bytes(self.pair.public_key().as_ref())
                .expect("public key bits"),
        }
    }

    /// An ECDSA-SHA256 signature (DER) over `data`.
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        self.pair
            .sign(&SystemRandom::new(), data)
            .expect("ECDSA signing")
            .as_ref()
            .to_vec()
    }
}

/// The header fields a test varies.
#[derive(Clone, Debug)]
pub struct Head {
    /// `pvno`.
    pub pvno: u8,
    /// `transactionID` (`None` leaves it out).
    pub transaction_id: Option<Vec<u8>>,
    /// `senderNonce`.
    pub sender_nonce: Vec<u8>,
    /// `recipNonce`: the senderNonce of the reply this message answers.
    pub recip_nonce: Option<Vec<u8>>,
    /// Ask for implicit confirmation.
    pub implicit_confirm: bool,
    /// `sender`, as an RFC 4514 name.
    pub sender: String,
}

impl Head {
    /// A new transaction: pvno 2, random transactionID and senderNonce.
    pub fn new() -> Self {
        Self {
            pvno: 2,
            transaction_id: Some(random(16)),
            sender_nonce: random(16),
            recip_nonce: None,
            implicit_confirm: false,
            sender: "CN=cmp-test-client".to_owned(),
        }
    }

    /// The next message of the same transaction, answering `reply`.
    pub fn answering(&self, reply: &PkiMessage) -> Self {
        Self {
            sender_nonce: random(16),
            recip_nonce: reply
                .header
                .sender_nonce
                .as_ref()
                .map(|n| n.as_bytes().to_vec()),
            ..self.clone()
        }
    }

    fn header(&self, protection_alg: AlgorithmIdentifierOwned, kid: Option<&[u8]>) -> PkiHeader {
        let general_info = self.implicit_confirm.then(|| {
            vec![InfoTypeAndValue {
                info_type: oid::IT_IMPLICIT_CONFIRM,
                info_value: Some(Any::encode_from(&Null).expect("NULL")),
            }]
        });
        PkiHeader {
            pvno: self.pvno,
            sender: directory_name(&self.sender),
            recipient: directory_name(""),
            message_time: Some(now_time()),
            protection_alg: Some(protection_alg),
            sender_kid: kid.map(octets),
            recip_kid: None,
            transaction_id: self.transaction_id.as_deref().map(octets),
            sender_nonce: Some(octets(&self.sender_nonce)),
            recip_nonce: self.recip_nonce.as_deref().map(octets),
            free_text: None,
            general_info,
        }
    }
}

impl Default for Head {
    fn default() -> Self {
        Self::new()
    }
}

/// A `CertReqMsg` for `key` with `subject` (RFC 4514) and a signature proof of possession.
pub fn cert_req(key: &ClientKey, subject: &str) -> CertReqMsg {
    let cert_req = CertRequest {
        cert_req_id: 0,
        cert_template: CertTemplate {
            subject: Some(Any::from_der(&name_der(subject)).expect("Name as Any")),
            public_key: Some(key.spki()),
            ..Default::default()
        },
        controls: None,
    };
    let signed = cert_req.to_der().expect("CertRequest DER");
    let popo = PopoSigningKey {
        poposk_input: None,
        algorithm_identifier: ecdsa_sha256(),
        signature: BitString::from_bytes(&key.sign(&signed)).expect("POP bits"),
    };
    CertReqMsg {
        cert_req,
        popo: Some(ProofOfPossession::Signature(popo)),
        reg_info: None,
    }
}

/// An `ir` body for `key` and `subject`.
pub fn ir_body(key: &ClientKey, subject: &str) -> PkiBody {
    PkiBody::Ir(vec![cert_req(key, subject)])
}

/// A `certConf` accepting (or, with `accept = false`, rejecting) `cert_der` (SHA-256 hash:
/// our certificates are signed with ecdsa-with-SHA256).
pub fn cert_conf_body(cert_der: &[u8], cert_req_id: i64, accept: bool) -> PkiBody {
    let hash = digest::digest(&digest::SHA256, cert_der);
    let status_info = (!accept).then(|| PkiStatusInfo {
        status: PkiStatus::Rejection as u8,
        status_string: Some(vec!["certificate not acceptable".into()]),
        fail_info: Some(FailInfo::BadCertTemplate.to_bit_string()),
    });
    PkiBody::CertConf(vec![CertStatus {
        cert_hash: octets(hash.as_ref()),
        cert_req_id,
        status_info,
        hash_alg: None,
    }])
}

/// A `pollReq` for `cert_req_id`.
pub fn poll_req_body(cert_req_id: i64) -> PkiBody {
    PkiBody::PollReq(vec![PollReqEntry { cert_req_id }])
}

/// A `genm` asking for the CA certificates (RFC 9483 section 4.3.1).
pub fn genm_ca_certs_body() -> PkiBody {
    PkiBody::Genm(vec![InfoTypeAndValue {
        info_type: oid::IT_CA_CERTS,
        info_value: None,
    }])
}

/// An `error` body: the client gives up on the transaction (RFC 9483 section 4.6).
pub fn error_body() -> PkiBody {
    PkiBody::Error(ErrorMsgContent {
        pki_status_info: PkiStatusInfo {
            status: PkiStatus::Rejection as u8,
            status_string: Some(vec!["client gives up".into()]),
            fail_info: None,
        },
        error_code: None,
        error_details: None,
    })
}

/// The message protected with PasswordBasedMac, DER.
pub fn protect_mac(head: &Head, body: PkiBody, mac: &Mac) -> Vec<u8> {
    mac_message(head, body, mac)
        .to_der()
        .expect("PKIMessage DER")
}

/// The message protected with PasswordBasedMac, decoded (for tests that edit it further).
pub fn mac_message(head: &Head, body: PkiBody, mac: &Mac) -> PkiMessage {
    let params = PbmParameter {
        salt: octets(&random(16)),
        owf: AlgorithmIdentifierOwned {
            oid: oid::SHA256,
            parameters: None,
        },
        iteration_count: mac.iterations,
        mac: AlgorithmIdentifierOwned {
            oid: oid::HMAC_WITH_SHA256,
            parameters: Some(Any::null()),
        },
    };
    let alg = AlgorithmIdentifierOwned {
        oid: oid::PASSWORD_BASED_MAC,
        parameters: Some(Any::encode_from(&params).expect("PBMParameter")),
    };
    let header = head.header(alg, Some(mac.kid.as_bytes()));
    let mut msg = PkiMessage {
        header,
        body,
        protection: None,
        extra_certs: None,
    };
    let tag = pbm(
        &params,
        &mac.secret,
        &msg.protected_part_der().expect("DER"),
    );
    msg.protection = Some(BitString::from_bytes(&tag).expect("MAC bits"));
    msg
}

/// The message signed with `key`, whose certificate (and chain) go in extraCerts, DER.
pub fn protect_sig(head: &Head, body: PkiBody, key: &ClientKey, chain: &[Vec<u8>]) -> Vec<u8> {
    let header = head.header(ecdsa_sha256(), None);
    let part = ProtectedPart {
        header: header.clone(),
        body: body.clone(),
    }
    .to_der()
    .expect("ProtectedPart DER");
    let extra: Vec<Any> = chain
        .iter()
        .map(|c| Any::from_der(c).expect("certificate as Any"))
        .collect();
    PkiMessage {
        header,
        body,
        protection: Some(BitString::from_bytes(&key.sign(&part)).expect("signature bits")),
        extra_certs: (!extra.is_empty()).then_some(extra),
    }
    .to_der()
    .expect("PKIMessage DER")
}

/// Re-computes the MAC of an edited message with `mac`'s secret.
pub fn remac(msg: &mut PkiMessage, mac: &Mac) {
    let alg = msg.header.protection_alg.as_ref().expect("protectionAlg");
    let params: PbmParameter = alg
        .parameters
        .as_ref()
        .expect("PBM parameters")
        .decode_as()
        .expect("PBMParameter");
    let tag = pbm(
        &params,
        &mac.secret,
        &msg.protected_part_der().expect("DER"),
    );
    msg.protection = Some(BitString::from_bytes(&tag).expect("MAC bits"));
}

// ---------------------------------------------------------------------------------------------
// Reading replies
// ---------------------------------------------------------------------------------------------

/// Decodes a reply, panicking with a hex dump when it is not a `PKIMessage`.
pub fn decode(der: &[u8]) -> PkiMessage {
    PkiMessage::from_der(der).unwrap_or_else(|e| {
        panic!(
            "reply is not a PKIMessage ({e}): {}",
            hex::encode(&der[..der.len().min(200)])
        )
    })
}

/// The status of a reply: the error's, the single CertResponse's, the single rp status.
pub fn status(msg: &PkiMessage) -> Option<&PkiStatusInfo> {
    match &msg.body {
        PkiBody::Error(e) => Some(&e.pki_status_info),
        PkiBody::Ip(c) | PkiBody::Cp(c) | PkiBody::Kup(c) => c.response.first().map(|r| &r.status),
        PkiBody::Rp(r) => r.status.first(),
        _ => None,
    }
}

/// The `PKIFailureInfo` bits set in a reply's status, by bit number.
pub fn fail_bits(msg: &PkiMessage) -> Vec<usize> {
    let Some(bits) = status(msg).and_then(|s| s.fail_info.as_ref()) else {
        return Vec::new();
    };
    (0..32).filter(|&i| bits.get(i).unwrap_or(false)).collect()
}

/// Asserts that `msg` is a rejection carrying exactly `fail` (and is of body `kind` name).
pub fn assert_failure(msg: &PkiMessage, kind: &str, fail: FailInfo, what: &str) {
    assert_eq!(
        msg.body.kind().name(),
        kind,
        "{what}: reply body {:?}",
        msg.body
    );
    let status = status(msg).unwrap_or_else(|| panic!("{what}: no status in {:?}", msg.body));
    assert_eq!(
        status.status,
        PkiStatus::Rejection as u8,
        "{what}: {status:?}"
    );
    assert_eq!(
        fail_bits(msg),
        vec![fail as usize],
        "{what}: expected {fail:?}, status {status:?}"
    );
}

/// The certificate in an ip/cp/kup, DER.
pub fn issued_cert(msg: &PkiMessage) -> Option<Vec<u8>> {
    let (PkiBody::Ip(c) | PkiBody::Cp(c) | PkiBody::Kup(c)) = &msg.body else {
        return None;
    };
    match &c
        .response
        .first()?
        .certified_key_pair
        .as_ref()?
        .cert_or_enc_cert
    {
        CertOrEncCert::Certificate(any) => any.to_der().ok(),
        CertOrEncCert::EncryptedCert(_) => None,
    }
}

/// The reply's senderNonce.
pub fn sender_nonce(msg: &PkiMessage) -> Vec<u8> {
    msg.header
        .sender_nonce
        .as_ref()
        .map(|n| n.as_bytes().to_vec())
        .unwrap_or_default()
}

/// Whether `generalInfo` of the reply grants implicit confirmation.
pub fn grants_implicit_confirm(msg: &PkiMessage) -> bool {
    msg.header
        .general_info
        .iter()
        .flatten()
        .any(|i| i.info_type == oid::IT_IMPLICIT_CONFIRM)
}

/// The DER certificates in extraCerts.
pub fn extra_certs(msg: &PkiMessage) -> Vec<Vec<u8>> {
    msg.extra_certs
        .iter()
        .flatten()
        .map(|c| c.to_der().expect("certificate DER"))
        .collect()
}

/// Checks that the reply is signed (ecdsa-with-SHA256) by the key of `signer_der`, which must
/// be the first extraCert.
pub fn assert_signed_by(msg: &PkiMessage, signer_der: &[u8], what: &str) {
    let alg = msg.header.protection_alg.as_ref();
    assert_eq!(
        alg.map(|a| a.oid),
        Some(oid::ECDSA_SHA256),
        "{what}: protectionAlg"
    );
    assert_eq!(
        extra_certs(msg).first().map(Vec::as_slice),
        Some(signer_der),
        "{what}: the first extraCert is not our CMP signer"
    );
    let cert = Certificate::from_der(signer_der).expect("signer certificate");
    let point = cert
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes()
        .to_vec();
    let sig = msg
        .protection
        .as_ref()
        .and_then(|b| b.as_bytes())
        .unwrap_or_else(|| panic!("{what}: reply without protection"));
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
        .verify(&msg.protected_part_der().expect("DER"), sig)
        .unwrap_or_else(|_| panic!("{what}: reply signature does not verify"));
}

/// Checks that the reply is PasswordBasedMac-protected with `mac`'s secret.
pub fn assert_mac_by(msg: &PkiMessage, mac: &Mac, what: &str) {
    let alg = msg
        .header
        .protection_alg
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: reply without protectionAlg"));
    assert_eq!(alg.oid, oid::PASSWORD_BASED_MAC, "{what}: protectionAlg");
    let params: PbmParameter = alg
        .parameters
        .as_ref()
        .expect("PBM parameters")
        .decode_as()
        .expect("PBMParameter");
    let expected = pbm(
        &params,
        &mac.secret,
        &msg.protected_part_der().expect("DER"),
    );
    let got = msg.protection.as_ref().and_then(|b| b.as_bytes());
    assert_eq!(got, Some(expected.as_slice()), "{what}: reply MAC");
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 with keep-alive (RFC 9811), small and blocking
// ---------------------------------------------------------------------------------------------

/// The largest reply head or body the client reads.
const MAX_REPLY: usize = 1 << 20;

/// One kept-alive HTTP/1.1 connection that POSTs CMP messages.
pub struct HttpConn {
    reader: BufReader<TcpStream>,
    host: String,
    /// Whether the server said it closes the connection after the last reply.
    pub closed: bool,
}

/// An HTTP reply.
#[derive(Debug)]
pub struct HttpReply {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header, when present.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpConn {
    /// Connects to `addr` (TCP_NODELAY on: `openssl cmp` and we write head and body apart).
    pub fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Self {
            reader: BufReader::new(stream),
            host: addr.to_string(),
            closed: false,
        })
    }

    /// POSTs `body` to `path` with `content_type` and reads the reply.
    pub fn post(
        &mut self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> std::io::Result<HttpReply> {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\nConnection: keep-alive\r\n\r\n",
            self.host,
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        self.reader.get_mut().write_all(&request)?;
        self.read_reply()
    }

    /// POSTs a CMP message to `path`.
    pub fn cmp(&mut self, path: &str, der: &[u8]) -> std::io::Result<HttpReply> {
        self.post(path, "application/pkixcmp", der)
    }

    fn read_reply(&mut self) -> std::io::Result<HttpReply> {
        let bad =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(&format!("status line {line:?}")))?;
        let http10 = line.starts_with("HTTP/1.0");
        let (mut len, mut content_type, mut close, mut keep) = (None, None, http10, false);
        let mut head_bytes = line.len();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            head_bytes += line.len();
            if head_bytes > MAX_REPLY || line.is_empty() {
                return Err(bad("reply head too long or cut"));
            }
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            let Some((name, value)) = trimmed.split_once(':') else {
                continue;
            };
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            match name.as_str() {
                "content-length" => len = value.parse::<usize>().ok(),
                "content-type" => content_type = Some(value.to_owned()),
                "connection" if value.eq_ignore_ascii_case("close") => close = true,
                "connection" if value.eq_ignore_ascii_case("keep-alive") => keep = true,
                _ => {}
            }
        }
        let body = match len {
            Some(n) if n <= MAX_REPLY => {
                let mut body = vec![0u8; n];
                self.reader.read_exact(&mut body)?;
                body
            }
            Some(_) => return Err(bad("reply body too long")),
            None => {
                close = true;
                let mut body = Vec::new();
                (&mut self.reader)
                    .take(MAX_REPLY as u64)
                    .read_to_end(&mut body)?;
                body
            }
        };
        self.closed = close && !keep;
        Ok(HttpReply {
            status,
            content_type,
            body,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Random bytes from the system RNG.
pub fn random(len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    aws_lc_rs::rand::fill(&mut buf).expect("system RNG");
    buf
}

/// The DER of an RFC 4514 name ("" is the empty name).
pub fn name_der(rfc4514: &str) -> Vec<u8> {
    directory(rfc4514).to_der().expect("Name DER")
}

fn directory(rfc4514: &str) -> Name {
    if rfc4514.is_empty() {
        Name::default()
    } else {
        Name::from_str(rfc4514).unwrap_or_else(|e| panic!("name {rfc4514:?}: {e}"))
    }
}

fn directory_name(rfc4514: &str) -> GeneralName {
    GeneralName::DirectoryName(directory(rfc4514))
}

fn octets(bytes: &[u8]) -> OctetString {
    OctetString::new(bytes).expect("OCTET STRING")
}

fn ecdsa_sha256() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: oid::ECDSA_SHA256,
        parameters: None,
    }
}

fn now_time() -> GeneralizedTime {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    GeneralizedTime::from_unix_duration(Duration::from_secs(now.as_secs())).expect("time")
}

/// PasswordBasedMac (RFC 9810 section 5.1.3.1) with a SHA-256 OWF and HMAC-SHA256: the key
/// is the OWF applied `iterationCount` times to secret || salt.
fn pbm(params: &PbmParameter, secret: &[u8], data: &[u8]) -> Vec<u8> {
    assert_eq!(params.owf.oid, oid::SHA256, "the kit only does SHA-256 PBM");
    let mut input = secret.to_vec();
    input.extend_from_slice(params.salt.as_bytes());
    let mut key = digest::digest(&digest::SHA256, &input);
    for _ in 1..params.iteration_count {
        key = digest::digest(&digest::SHA256, key.as_ref());
    }
    let mac_alg = match params.mac.oid {
        oid::HMAC_WITH_SHA256 => hmac::HMAC_SHA256,
        oid::HMAC_SHA1 | oid::HMAC_WITH_SHA1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        other => panic!("the kit does not do MAC {other}"),
    };
    hmac::sign(&hmac::Key::new(mac_alg, key.as_ref()), data)
        .as_ref()
        .to_vec()
}

/// An OID from its dotted form, for tests that send unknown ones.
pub fn oid_of(dotted: &str) -> ObjectIdentifier {
    ObjectIdentifier::new(dotted).expect("dotted OID")
}
