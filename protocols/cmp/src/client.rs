//! The client side, for a gateway acting as an RA towards an upstream CMP server: building
//! protected `p10cr`, `pollReq` and `certConf` messages and reading the server's replies.
//!
//! Like the server side this is free of I/O: the caller hands in the time (unix seconds), a
//! random source for nonces, transaction ids and MAC salts, and sends the bytes itself.
//! Protection (RFC 9483 section 3.2) is either PasswordBasedMac with SHA-256/HMAC-SHA256
//! and a shared secret, whose reference goes in `senderKID`, or an ECDSA P-256 signature
//! with our own key, our certificate chain in `extraCerts`.
//!
//! Replies are checked as RFC 9810 section 5.1.1 asks: the same transactionID, our
//! senderNonce returned as recipNonce, and a protection we accept: a MAC with our secret,
//! or a signature by one of the server certificates the caller trusts.

use std::time::Duration;

use der::asn1::{Any, BitString, GeneralizedTime, Null, OctetString};
use der::{Decode, Encode};
use enrollgate_model::Secret;
use x509_cert::Certificate;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;

use crate::error::CmpError;
use crate::incoming::{self, Limits};
use crate::mac::MacParams;
use crate::oid;
use crate::signature::SigningKey;
use crate::types::{
    CertOrEncCert, CertRepMessage, CertStatus, InfoTypeAndValue, PkiBody, PkiHeader, PkiMessage,
    PkiStatus, PollReqEntry, ProtectedPart,
};

/// PBM iteration count we use (RFC 9810 section 5.1.3.1 asks for at least 1,000).
const MAC_ITERATIONS: u64 = 10_000;

/// How our requests are protected.
pub enum ClientProtection {
    /// PasswordBasedMac with a shared secret known to the server under `reference`.
    Mac {
        /// senderKID.
        reference: Vec<u8>,
        /// The shared secret.
        secret: Secret,
    },
    /// ECDSA P-256 with our key; `chain` (leaf first, DER) goes in extraCerts.
    Signature {
        /// PKCS#8 DER of the P-256 key.
        key_pkcs8: Secret,
        /// Our certificate chain.
        chain: Vec<Vec<u8>>,
    },
}

impl std::fmt::Debug for ClientProtection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Mac { .. } => f.write_str("ClientProtection::Mac(..)"),
            Self::Signature { .. } => f.write_str("ClientProtection::Signature(..)"),
        }
    }
}

/// One transaction's identity: what every message of it repeats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientTransaction {
    /// transactionID.
    pub transaction_id: Vec<u8>,
    /// The senderNonce of the last message from the server, to return as recipNonce.
    pub server_nonce: Option<Vec<u8>>,
}

/// A built request: its DER and the senderNonce the reply must return.
#[derive(Clone, Debug)]
pub struct ClientRequest {
    /// The message.
    pub der: Vec<u8>,
    /// Our senderNonce.
    pub nonce: Vec<u8>,
}

/// What the server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientReply {
    /// A certificate (ip/cp with accepted or grantedWithMods).
    Issued {
        /// The certificate, DER.
        certificate: Vec<u8>,
        /// The certReqId to confirm.
        cert_req_id: i64,
        /// caPubs and extraCerts, DER (may hold the issuing chain).
        other_certs: Vec<Vec<u8>>,
        /// Whether the server granted implicit confirmation (no certConf needed).
        implicit_confirm: bool,
    },
    /// The server holds the request (status waiting, or a pollRep).
    Waiting {
        /// Seconds to wait, when the server said.
        check_after: Option<u64>,
    },
    /// Refused (rejection in a response, or an error message), with the server's text.
    Rejected(String),
    /// The server confirmed our certConf (pkiconf).
    Confirmed,
}

/// Builds and reads CMP messages for one upstream server.
pub struct CmpClient {
    protection: ClientProtection,
    signer: Option<SigningKey>,
    sender: GeneralName,
    recipient: GeneralName,
    server_certs: Vec<Vec<u8>>,
    limits: Limits,
}

impl std::fmt::Debug for CmpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CmpClient")
            .field("protection", &self.protection)
            .finish_non_exhaustive()
    }
}

impl CmpClient {
    /// A client. `sender` is our name (the signer certificate's subject under signature
    /// protection); `server_certs` are the certificates whose signatures we accept on
    /// signature-protected replies.
    pub fn new(
        protection: ClientProtection,
        sender: Name,
        recipient: Name,
        server_certs: Vec<Vec<u8>>,
    ) -> Result<Self, CmpError> {
        let signer = match &protection {
            ClientProtection::Signature { key_pkcs8, .. } => {
                Some(SigningKey::from_pkcs8(key_pkcs8.expose())?)
            }
            ClientProtection::Mac { .. } => None,
        };
        Ok(Self {
            protection,
            signer,
            sender: GeneralName::DirectoryName(sender),
            recipient: GeneralName::DirectoryName(recipient),
            server_certs,
            limits: Limits::default(),
        })
    }

    /// A `p10cr` forwarding `csr_der`, asking for implicit confirmation.
    pub fn p10cr(
        &self,
        tx: &ClientTransaction,
        csr_der: &[u8],
        now: u64,
        rng: &mut dyn FnMut(&mut [u8]),
    ) -> Result<ClientRequest, CmpError> {
        let body = PkiBody::P10cr(Any::from_der(csr_der)?);
        self.build(tx, body, true, now, rng)
    }

    /// A `pollReq` for `cert_req_id` (0 for p10cr, RFC 9483 section 4.4).
    pub fn poll_req(
        &self,
        tx: &ClientTransaction,
        cert_req_id: i64,
        now: u64,
        rng: &mut dyn FnMut(&mut [u8]),
    ) -> Result<ClientRequest, CmpError> {
        let body = PkiBody::PollReq(vec![PollReqEntry { cert_req_id }]);
        self.build(tx, body, false, now, rng)
    }

    /// A `certConf` accepting `certificate` (hash: SHA-256, RFC 9810 section 5.3.18).
    pub fn cert_conf(
        &self,
        tx: &ClientTransaction,
        certificate: &[u8],
        cert_req_id: i64,
        now: u64,
        rng: &mut dyn FnMut(&mut [u8]),
    ) -> Result<ClientRequest, CmpError> {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, certificate);
        let status = CertStatus {
            cert_hash: OctetString::new(digest.as_ref())?,
            cert_req_id,
            status_info: None,
            hash_alg: None,
        };
        self.build(tx, PkiBody::CertConf(vec![status]), false, now, rng)
    }

    /// Reads a reply to `request` in `tx`: checks transactionID, recipNonce and protection,
    /// then says what it means. Updates `tx.server_nonce` for the next request.
    pub fn read_reply(
        &self,
        tx: &mut ClientTransaction,
        request: &ClientRequest,
        der: &[u8],
    ) -> Result<ClientReply, CmpError> {
        let incoming = incoming::decode(der, &self.limits)?;
        let facts = incoming.facts().clone();
        if facts.transaction_id.as_deref() != Some(tx.transaction_id.as_slice()) {
            return Err(CmpError::BadRequest("reply for another transaction".into()));
        }
        if facts.recip_nonce.as_deref() != Some(request.nonce.as_slice()) {
            return Err(CmpError::BadRecipientNonce);
        }
        self.check_protection(&incoming)?;
        tx.server_nonce = facts.sender_nonce.clone();
        let msg = incoming.message();
        let implicit = facts.implicit_confirm_requested;
        match &msg.body {
            PkiBody::Ip(rep) | PkiBody::Cp(rep) => response(rep, msg, implicit),
            PkiBody::PollRep(entries) => Ok(ClientReply::Waiting {
                check_after: entries
                    .first()
                    .and_then(|e| u64::try_from(e.check_after).ok()),
            }),
            PkiBody::PkiConf => Ok(ClientReply::Confirmed),
            PkiBody::Error(e) => Ok(ClientReply::Rejected(status_text(
                &e.pki_status_info.status_string,
                "error message",
            ))),
            other => Err(CmpError::BadRequest(format!(
                "unexpected {} reply",
                other.kind().name()
            ))),
        }
    }

    fn check_protection(&self, incoming: &incoming::Incoming) -> Result<(), CmpError> {
        match &self.protection {
            ClientProtection::Mac { secret, .. }
                if incoming.facts().protection == incoming::ProtectionKind::Mac =>
            {
                incoming::verify_mac(incoming, secret, &self.limits).map(|_| ())
            }
            _ => {
                let verified = incoming::verify_signature(incoming)?;
                let signer = verified
                    .facts()
                    .extra_certs
                    .first()
                    .ok_or(CmpError::MissingSignerCertificate)?;
                if self.server_certs.iter().any(|c| c == signer) {
                    Ok(())
                } else {
                    Err(CmpError::NotAuthorized(
                        "reply signed by an untrusted certificate".into(),
                    ))
                }
            }
        }
    }

    fn build(
        &self,
        tx: &ClientTransaction,
        body: PkiBody,
        implicit_confirm: bool,
        now: u64,
        rng: &mut dyn FnMut(&mut [u8]),
    ) -> Result<ClientRequest, CmpError> {
        let mut nonce = vec![0u8; 16];
        rng(&mut nonce);
        let (alg, kid, mac) = match &self.protection {
            ClientProtection::Mac { reference, secret } => {
                let mut salt = vec![0u8; 16];
                rng(&mut salt);
                let params = pbm_sha256(&salt)?;
                (
                    params.algorithm_identifier()?,
                    Some(OctetString::new(reference.clone())?),
                    Some((params, secret)),
                )
            }
            ClientProtection::Signature { .. } => (signature_alg(), None, None),
        };
        let general_info = if implicit_confirm {
            Some(vec![InfoTypeAndValue {
                info_type: oid::IT_IMPLICIT_CONFIRM,
                info_value: Some(Any::encode_from(&Null)?),
            }])
        } else {
            None
        };
        let header = PkiHeader {
            pvno: 2,
            sender: self.sender.clone(),
            recipient: self.recipient.clone(),
            message_time: Some(GeneralizedTime::from_unix_duration(Duration::from_secs(
                now,
            ))?),
            protection_alg: Some(alg),
            sender_kid: kid,
            recip_kid: None,
            transaction_id: Some(OctetString::new(tx.transaction_id.clone())?),
            sender_nonce: Some(OctetString::new(nonce.clone())?),
            recip_nonce: tx.server_nonce.clone().map(OctetString::new).transpose()?,
            free_text: None,
            general_info,
        };
        let part = ProtectedPart {
            header: header.clone(),
            body: body.clone(),
        }
        .to_der()?;
        let (protection, extra) = match (&mac, &self.signer, &self.protection) {
            (Some((params, secret)), _, _) => (params.compute(secret.expose(), &part)?, None),
            (None, Some(signer), ClientProtection::Signature { chain, .. }) => {
                let certs = chain
                    .iter()
                    .map(|c| Any::from_der(c))
                    .collect::<Result<Vec<_>, _>>()?;
                (signer.sign(&part)?, Some(certs))
            }
            _ => return Err(CmpError::Internal("protection key missing".into())),
        };
        let msg = PkiMessage {
            header,
            body,
            protection: Some(BitString::from_bytes(&protection)?),
            extra_certs: extra,
        };
        Ok(ClientRequest {
            der: msg.to_der()?,
            nonce,
        })
    }
}

/// `PBMParameter` (RFC 9810 section 5.1.3.1), as we send it.
#[derive(der::Sequence)]
struct PbmOut {
    salt: OctetString,
    owf: spki::AlgorithmIdentifierOwned,
    iteration_count: u64,
    mac: spki::AlgorithmIdentifierOwned,
}

/// PasswordBasedMac with SHA-256 as one-way function and HMAC-SHA256, parsed back through
/// the same code that checks incoming MACs.
fn pbm_sha256(salt: &[u8]) -> Result<MacParams, CmpError> {
    let params = PbmOut {
        salt: OctetString::new(salt)?,
        owf: spki::AlgorithmIdentifierOwned {
            oid: oid::SHA256,
            parameters: None,
        },
        iteration_count: MAC_ITERATIONS,
        mac: spki::AlgorithmIdentifierOwned {
            oid: oid::HMAC_WITH_SHA256,
            parameters: Some(Any::null()),
        },
    };
    let alg = spki::AlgorithmIdentifierOwned {
        oid: oid::PASSWORD_BASED_MAC,
        parameters: Some(Any::encode_from(&params)?),
    };
    MacParams::parse(&alg, MAC_ITERATIONS)
}

/// ecdsa-with-SHA256, the `protectionAlg` of our signatures.
fn signature_alg() -> spki::AlgorithmIdentifierOwned {
    spki::AlgorithmIdentifierOwned {
        oid: oid::ECDSA_SHA256,
        parameters: None,
    }
}

/// Reads an ip/cp.
fn response(
    rep: &CertRepMessage,
    msg: &PkiMessage,
    implicit: bool,
) -> Result<ClientReply, CmpError> {
    let first = rep
        .response
        .first()
        .ok_or_else(|| CmpError::BadRequest("response without CertResponse".into()))?;
    match first.status.status {
        s if s == PkiStatus::Waiting as u8 => {
            return Ok(ClientReply::Waiting { check_after: None });
        }
        s if s == PkiStatus::Rejection as u8 => {
            return Ok(ClientReply::Rejected(status_text(
                &first.status.status_string,
                "rejection",
            )));
        }
        _ if first.status.is_positive() => {}
        s => return Err(CmpError::BadRequest(format!("unexpected status {s}"))),
    }
    let Some(CertOrEncCert::Certificate(cert)) = first
        .certified_key_pair
        .as_ref()
        .map(|k| &k.cert_or_enc_cert)
    else {
        return Err(CmpError::BadRequest(
            "accepted without a plain certificate".into(),
        ));
    };
    let certificate = cert.to_der()?;
    Certificate::from_der(&certificate)?;
    let other_certs = rep
        .ca_pubs
        .iter()
        .flatten()
        .chain(msg.extra_certs.iter().flatten())
        .filter_map(|c| c.to_der().ok())
        .collect();
    Ok(ClientReply::Issued {
        certificate,
        cert_req_id: first.cert_req_id,
        other_certs,
        implicit_confirm: implicit,
    })
}

fn status_text(text: &Option<Vec<String>>, default: &str) -> String {
    match text {
        Some(parts) if !parts.is_empty() => parts.join("; "),
        _ => default.to_owned(),
    }
}
