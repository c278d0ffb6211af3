//! SCEP requesters made in this process, shared by the SCEP integration tests and the
//! `scep_load` bench: RSA-2048 keys and self-signed signer certificates (rcgen over aws-lc-rs),
//! PKCS#10 requests with a challengePassword, and pkiMessages built with
//! `enrollgate_scep::client` against the gateway's RA certificate.
//!
//! Nothing here talks to the network or reads files, so the bench can build its messages
//! before it starts the clock.

#![allow(
    dead_code,
    reason = "the tests and the bench each use a different part of these helpers"
)]

use der::{Decode, Encode};
use enrollgate_scep::client::{ClientIdentity, RequestSpec, build_pki_message};
use enrollgate_scep::{ContentCipher, IssuerAndSerialNumber, IssuerAndSubject, MessageType};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_RSA_SHA256};
use x509_cert::Certificate;

/// PKCS#9 challengePassword (RFC 2985), as rcgen wants an OID.
const CHALLENGE_PASSWORD: &[u64] = &[1, 2, 840, 113_549, 1, 9, 7];

/// A device: an RSA-2048 key and the self-signed certificate that signs its first request.
pub struct Requester {
    key: KeyPair,
    /// The key, PKCS#8 DER.
    pub key_pkcs8: Vec<u8>,
    /// The self-signed signer certificate, DER.
    pub self_signed: Vec<u8>,
}

impl Requester {
    /// A fresh RSA-2048 key with a self-signed certificate `CN=<cn>` (0.1 to 0.5 s of
    /// key generation).
    pub fn new(cn: &str) -> Self {
        let key = KeyPair::generate_for(&PKCS_RSA_SHA256).expect("RSA-2048 key generation");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("empty SAN list");
        params.distinguished_name = name(cn);
        let cert = params.self_signed(&key).expect("self-signed certificate");
        Self {
            key_pkcs8: key.serialize_der(),
            self_signed: cert.der().to_vec(),
            key,
        }
    }

    /// A PKCS#10 request for this key with subject `CN=<cn>`, one DNS name, and the
    /// challengePassword when given (as a UTF8String: token secrets hold `_`, which a
    /// PrintableString cannot).
    pub fn csr(&self, cn: &str, challenge: Option<&str>) -> Vec<u8> {
        let dns = format!("{}.example", cn.replace(' ', "-"));
        let mut params = CertificateParams::new(vec![dns]).expect("DNS name");
        params.distinguished_name = name(cn);
        let attrs = challenge
            .map(|c| {
                vec![rcgen::Attribute {
                    oid: CHALLENGE_PASSWORD,
                    values: utf8_set(c),
                }]
            })
            .unwrap_or_default();
        let csr = params
            .serialize_request_with_attributes(&self.key, attrs)
            .expect("CSR");
        csr.der().to_vec()
    }

    /// A certificate for this key from a throwaway CA that the gateway does not know, DER.
    pub fn certified_by_stranger(&self, cn: &str) -> Vec<u8> {
        let ca_key = KeyPair::generate().expect("P-256 key generation");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("empty SAN list");
        ca.distinguished_name = name("some other CA");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("empty SAN list");
        params.distinguished_name = name(cn);
        let cert = params.signed_by(&self.key, &issuer).expect("certificate");
        cert.der().to_vec()
    }

    /// The identity that signs with the self-signed certificate (PKCSReq and its polls).
    pub fn identity(&self) -> ClientIdentity {
        ClientIdentity::new(&self.self_signed, &self.key_pkcs8).expect("client identity")
    }

    /// The identity that signs with `cert_der`, a certificate for this key (RenewalReq).
    pub fn identity_with(&self, cert_der: &[u8]) -> ClientIdentity {
        ClientIdentity::new(cert_der, &self.key_pkcs8).expect("client identity")
    }
}

/// A pkiMessage of `message_type` from `client` to `ra_cert_der`, AES-128-CBC, with a random
/// senderNonce.
pub fn message(
    client: &ClientIdentity,
    ra_cert_der: &[u8],
    message_type: MessageType,
    transaction_id: &str,
    content: &[u8],
) -> Vec<u8> {
    let spec = RequestSpec {
        message_type,
        transaction_id,
        sender_nonce: &nonce(),
        content,
        cipher: ContentCipher::Aes128Cbc,
    };
    build_pki_message(client, ra_cert_der, &spec, &mut rng).expect("pkiMessage")
}

/// The IssuerAndSubject of a CertPoll: the issuing CA's name and the requested subject.
pub fn cert_poll_content(issuing_ca_der: &[u8], cn: &str) -> Vec<u8> {
    let ca = Certificate::from_der(issuing_ca_der).expect("issuing CA certificate");
    let subject = format!("CN={cn}").parse().expect("subject name");
    let content = IssuerAndSubject {
        issuer: ca.tbs_certificate().subject().clone(),
        subject,
    };
    content.to_der().expect("IssuerAndSubject")
}

/// The IssuerAndSerialNumber of a certificate (GetCert, GetCRL).
pub fn issuer_and_serial(cert_der: &[u8]) -> Vec<u8> {
    let cert = Certificate::from_der(cert_der).expect("certificate");
    let tbs = cert.tbs_certificate();
    let id = IssuerAndSerialNumber {
        issuer: tbs.issuer().clone(),
        serial_number: tbs.serial_number().clone(),
    };
    id.to_der().expect("IssuerAndSerialNumber")
}

/// A fresh 16-byte senderNonce.
pub fn nonce() -> [u8; 16] {
    let mut n = [0; 16];
    rng(&mut n);
    n
}

/// The operating system's generator, through aws-lc-rs.
pub fn rng(buf: &mut [u8]) {
    aws_lc_rs::rand::fill(buf).expect("system random generator");
}

/// A transactionID no other call in this process gets: `<prefix>-<random hex>`.
pub fn transaction_id(prefix: &str) -> String {
    let mut r = [0; 8];
    rng(&mut r);
    format!("{prefix}-{}", hex::encode(r))
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// `SET { UTF8String text }`, the DER of a one-valued attribute.
fn utf8_set(text: &str) -> Vec<u8> {
    let value = der::asn1::Utf8StringRef::new(text)
        .expect("UTF-8")
        .to_der()
        .expect("UTF8String");
    let set = der::asn1::SetOfVec::try_from(vec![der::Any::from_der(&value).expect("Any")])
        .expect("one-element SET");
    set.to_der().expect("SET")
}
