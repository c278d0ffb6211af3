//! Building and signing X.509 certificates and CRLs (RFC 5280) with a [`SigningKey`].
//!
//! x509-cert keeps its TBSCertificate fields private, so the to-be-signed structures are
//! declared here with `der`'s derive macros, field for field as RFC 5280 section 4.1 lists them.

use std::time::SystemTime;

use const_oid::AssociatedOid;
use der::asn1::{Any, BitString, OctetString};
use der::flagset::FlagSet;
use der::{Decode, Encode, Sequence};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::crypto::{KeyError, SigningKey};

/// RFC 5280 4.1: TBSCertificate, version 3 only.
#[derive(Sequence)]
struct TbsCertificate {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    version: u8,
    serial_number: SerialNumber,
    signature: AlgorithmIdentifierOwned,
    issuer: Name,
    validity: Validity,
    subject: Name,
    subject_public_key_info: SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    extensions: Option<Vec<Extension>>,
}

/// RFC 5280 4.1 / 5.1: the signed envelope shared by certificates and CRLs.
#[derive(Sequence)]
struct Signed {
    tbs: Any,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}

/// RFC 5280 5.1: one revoked certificate.
#[derive(Sequence)]
struct RevokedEntry {
    serial_number: SerialNumber,
    revocation_date: Time,
    #[asn1(optional = "true")]
    crl_entry_extensions: Option<Vec<Extension>>,
}

/// RFC 5280 5.1: TBSCertList, version 2.
#[derive(Sequence)]
struct TbsCertList {
    version: u8,
    signature: AlgorithmIdentifierOwned,
    issuer: Name,
    this_update: Time,
    next_update: Time,
    #[asn1(optional = "true")]
    revoked: Option<Vec<RevokedEntry>>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    extensions: Option<Vec<Extension>>,
}

/// What a certificate says, before it is signed.
#[derive(Clone, Debug)]
pub struct CertTemplate {
    /// Serial number bytes (positive, at most 20 octets).
    pub serial: Vec<u8>,
    /// The subject name.
    pub subject: Name,
    /// The certified public key.
    pub public_key: SubjectPublicKeyInfoOwned,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// `Some(path_len)` for a CA certificate.
    pub ca: Option<Option<u8>>,
    /// Key usage bits.
    pub key_usage: FlagSet<KeyUsages>,
    /// Extended key usage purposes (empty: no extension).
    pub extended_key_usage: Vec<const_oid::ObjectIdentifier>,
    /// Subject alternative names (empty: no extension).
    pub subject_alt_names: Vec<GeneralName>,
}

/// The issuer side of a signature: its key, name and key identifier.
pub struct Issuer<'a> {
    /// The signing key.
    pub key: &'a SigningKey,
    /// The issuer's subject name.
    pub name: &'a Name,
    /// The issuer's subject key identifier, `None` for a self-signed certificate.
    pub key_id: Option<&'a [u8]>,
}

/// Failure to build a certificate or CRL.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Encoding failed.
    #[error("encoding: {0}")]
    Der(#[from] der::Error),
    /// Signing failed.
    #[error("signing: {0}")]
    Key(#[from] KeyError),
}

/// The subject key identifier we put in certificates: SHA-256 of the public key bits,
/// truncated to 160 bits (RFC 7093 section 2, method 1).
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    let bits = spki.subject_public_key.raw_bytes();
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bits).as_ref()[..20].to_vec()
}

/// Builds and signs a certificate; returns its DER.
pub fn sign_certificate(
    template: &CertTemplate,
    issuer: &Issuer<'_>,
) -> Result<Vec<u8>, BuildError> {
    let ski = key_identifier(&template.public_key);
    let tbs = TbsCertificate {
        version: 2,
        serial_number: SerialNumber::new(&template.serial)?,
        signature: issuer.key.signature_algorithm(),
        issuer: issuer.name.clone(),
        validity: Validity::new(
            Time::try_from(template.not_before)?,
            Time::try_from(template.not_after)?,
        ),
        subject: template.subject.clone(),
        subject_public_key_info: template.public_key.clone(),
        extensions: Some(extensions(template, &ski, issuer.key_id.unwrap_or(&ski))?),
    };
    sign(&tbs.to_der()?, issuer.key)
}

/// One revoked certificate for a CRL.
#[derive(Clone, Debug)]
pub struct Revoked {
    /// Serial number bytes.
    pub serial: Vec<u8>,
    /// When it was revoked.
    pub at: SystemTime,
    /// RFC 5280 CRLReason code.
    pub reason: u8,
}

/// Builds and signs a CRL (RFC 5280 section 5) with a CRL number.
pub fn sign_crl(
    issuer: &Issuer<'_>,
    this_update: SystemTime,
    next_update: SystemTime,
    number: u64,
    revoked: &[Revoked],
) -> Result<Vec<u8>, BuildError> {
    let entries = revoked
        .iter()
        .map(|r| {
            let reason = Extension {
                extn_id: const_oid::db::rfc5280::ID_CE_CRL_REASONS,
                critical: false,
                // CRLReason ::= ENUMERATED: tag 10, length 1, the code.
                extn_value: OctetString::new(vec![0x0a, 0x01, r.reason])?,
            };
            Ok(RevokedEntry {
                serial_number: SerialNumber::new(&r.serial)?,
                revocation_date: Time::try_from(r.at)?,
                crl_entry_extensions: Some(vec![reason]),
            })
        })
        .collect::<Result<Vec<_>, der::Error>>()?;
    let mut exts = vec![ext(
        &x509_cert::ext::pkix::CrlNumber(der::asn1::Uint::new(&number.to_be_bytes())?),
        false,
    )?];
    if let Some(kid) = issuer.key_id {
        exts.push(ext(&authority_key_id(kid)?, false)?);
    }
    let tbs = TbsCertList {
        version: 1,
        signature: issuer.key.signature_algorithm(),
        issuer: issuer.name.clone(),
        this_update: Time::try_from(this_update)?,
        next_update: Time::try_from(next_update)?,
        revoked: (!entries.is_empty()).then_some(entries),
        extensions: Some(exts),
    };
    sign(&tbs.to_der()?, issuer.key)
}

fn sign(tbs_der: &[u8], key: &SigningKey) -> Result<Vec<u8>, BuildError> {
    let signature = key.sign(tbs_der)?;
    let signed = Signed {
        tbs: Any::from_der(tbs_der)?,
        signature_algorithm: key.signature_algorithm(),
        signature: BitString::from_bytes(&signature)?,
    };
    Ok(signed.to_der()?)
}

fn extensions(t: &CertTemplate, ski: &[u8], aki: &[u8]) -> Result<Vec<Extension>, der::Error> {
    let basic = BasicConstraints {
        ca: t.ca.is_some(),
        path_len_constraint: t.ca.flatten(),
    };
    let mut out = vec![
        ext(&basic, true)?,
        ext(&KeyUsage(t.key_usage), true)?,
        ext(&SubjectKeyIdentifier(OctetString::new(ski)?), false)?,
        ext(&authority_key_id(aki)?, false)?,
    ];
    if !t.extended_key_usage.is_empty() {
        out.push(ext(&ExtendedKeyUsage(t.extended_key_usage.clone()), false)?);
    }
    if !t.subject_alt_names.is_empty() {
        // RFC 5280 4.2.1.6: critical when the subject is empty.
        let critical = t.subject.is_empty();
        out.push(ext(&SubjectAltName(t.subject_alt_names.clone()), critical)?);
    }
    Ok(out)
}

fn authority_key_id(kid: &[u8]) -> Result<AuthorityKeyIdentifier, der::Error> {
    Ok(AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(kid)?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    })
}

fn ext<T: AssociatedOid + Encode>(value: &T, critical: bool) -> Result<Extension, der::Error> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}
