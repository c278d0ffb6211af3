//! Issued certificates as the ACME server remembers them: for download (RFC 8555 section
//! 7.4.2), revocation (7.6) and renewal information (RFC 9773).
//!
//! The gateway stores a [`CertRecord`] as one row keyed by [`CertRecord::id`], with unique
//! indexes on [`CertRecord::fingerprint`] (revocation finds the record by the certificate it
//! is given) and [`CertRecord::ari_id`] (renewalInfo and `replaces` name a CertID).

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use der::{Decode, Encode};
use serde::{Deserialize, Serialize};
use x509_cert::Certificate;
use x509_cert::ext::pkix::AuthorityKeyIdentifier;

use crate::ari::CertId;
use crate::problem::Problem;
use crate::resources::Identifier;

/// The media type of a certificate download (RFC 8555 section 9.1).
pub const PEM_CHAIN_CONTENT_TYPE: &str = "application/pem-certificate-chain";

/// The largest certificate accepted from a client (revocation), in bytes.
pub const MAX_CERT_LEN: usize = 32 * 1024;

/// A revocation that happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedAt {
    /// The CRL reason code (RFC 5280 section 5.3.1).
    pub reason: u8,
    /// When, unix seconds.
    pub at: i64,
}

/// An issued certificate, stored by the gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertRecord {
    /// Random id; the download URL is `Urls::certificate(id)`.
    pub id: String,
    /// The account that ordered it.
    pub account_id: String,
    /// The order that produced it.
    pub order_id: String,
    /// Lower-case hex SHA-256 of the leaf's DER.
    pub fingerprint: String,
    /// The serial number as lower-case hex of its DER content bytes.
    pub serial: String,
    /// The RFC 9773 CertID, when the leaf has an authority key identifier.
    pub ari_id: Option<String>,
    /// notBefore, unix seconds.
    pub not_before: i64,
    /// notAfter, unix seconds.
    pub not_after: i64,
    /// The identifiers of the order.
    pub identifiers: Vec<Identifier>,
    /// Leaf first, then the issuing chain, as PEM: the download body.
    pub chain_pem: String,
    /// Set once revoked.
    pub revoked: Option<RevokedAt>,
    /// The order that declared it replaces this certificate (RFC 9773 `replaces`).
    pub replaced_by: Option<String>,
}

/// What the crate reads from a leaf certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafInfo {
    /// Lower-case hex SHA-256 of the DER.
    pub fingerprint: String,
    /// The serial's DER content bytes.
    pub serial: Vec<u8>,
    /// The CertID, when an authority key identifier is present.
    pub cert_id: Option<CertId>,
    /// notBefore, unix seconds.
    pub not_before: i64,
    /// notAfter, unix seconds.
    pub not_after: i64,
    /// The subject public key.
    pub spki: spki::SubjectPublicKeyInfoOwned,
}

impl LeafInfo {
    /// Decodes a DER certificate of at most [`MAX_CERT_LEN`] bytes.
    pub fn from_der(der: &[u8]) -> Result<Self, Problem> {
        if der.len() > MAX_CERT_LEN {
            return Err(Problem::malformed("certificate too large"));
        }
        let cert = Certificate::from_der(der)
            .map_err(|_| Problem::malformed("certificate does not parse"))?;
        let tbs = cert.tbs_certificate();
        let serial = serial_content(tbs.serial_number())?;
        let aki = tbs
            .get_extension::<AuthorityKeyIdentifier>()
            .map_err(|_| Problem::malformed("authority key identifier does not parse"))?;
        let key_id = aki
            .and_then(|(_, a)| a.key_identifier)
            .map(|k| k.as_bytes().to_vec());
        let cert_id = key_id.map(|k| CertId {
            key_identifier: k,
            serial: serial.clone(),
        });
        Ok(Self {
            fingerprint: hex_lower(digest(&SHA256, der).as_ref()),
            serial,
            cert_id,
            not_before: unix(tbs.validity().not_before.to_unix_duration().as_secs()),
            not_after: unix(tbs.validity().not_after.to_unix_duration().as_secs()),
            spki: tbs.subject_public_key_info().clone(),
        })
    }
}

impl CertRecord {
    /// The record for a certificate the registrar issued for `order`.
    pub fn new(
        id: String,
        order: &crate::order::Order,
        leaf: &[u8],
        chain: &[Vec<u8>],
    ) -> Result<Self, Problem> {
        let info = LeafInfo::from_der(leaf)?;
        let pem: String = std::iter::once(leaf)
            .chain(chain.iter().map(Vec::as_slice))
            .map(pem_block)
            .collect();
        Ok(Self {
            id,
            account_id: order.account_id.clone(),
            order_id: order.id.clone(),
            fingerprint: info.fingerprint,
            serial: hex_lower(&info.serial),
            ari_id: info.cert_id.map(|c| c.to_string()),
            not_before: info.not_before,
            not_after: info.not_after,
            identifiers: order.identifiers.clone(),
            chain_pem: pem,
            revoked: None,
            replaced_by: None,
        })
    }

    /// Fails with `unauthorized` unless `account_id` ordered this certificate.
    pub fn check_owner(&self, account_id: &str) -> Result<(), Problem> {
        if self.account_id == account_id {
            Ok(())
        } else {
            Err(Problem::unauthorized(
                "certificate belongs to another account",
            ))
        }
    }

    /// Frees the certificate for another `replaces` after the replacing order `order_id`
    /// became invalid.
    pub fn release_replacement(&mut self, order_id: &str) {
        if self.replaced_by.as_deref() == Some(order_id) {
            self.replaced_by = None;
        }
    }
}

/// Lower-case hex.
pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unix(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// The content octets of the serial's DER INTEGER (with any leading zero that keeps it
/// positive), as RFC 9773 puts them in a CertID.
fn serial_content(serial: &x509_cert::serial_number::SerialNumber) -> Result<Vec<u8>, Problem> {
    let der = serial
        .to_der()
        .map_err(|_| Problem::malformed("serial number does not encode"))?;
    // Serials are at most 21 octets, so the header is a tag and a one-byte length.
    der.get(2..)
        .filter(|c| !c.is_empty())
        .map(<[u8]>::to_vec)
        .ok_or_else(|| Problem::malformed("empty serial number"))
}

fn pem_block(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}
