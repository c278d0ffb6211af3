//! PKCS#10 certification requests (RFC 2986).

use std::fmt;

use base64::Engine as _;
use const_oid::db::{rfc2985, rfc5912};
use der::asn1::{AnyRef, BitStringRef};
use der::{Decode, Encode, Sequence};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::Attribute;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::name::Name;
use x509_cert::request::CertReq;

use crate::PkixError;
use crate::names::{San, directory_string, name_to_string};
use crate::signature::{KeyKind, verify_signature};

/// The largest DER request accepted. Real requests are a few hundred bytes to a few KiB.
pub const MAX_CSR_LEN: usize = 64 * 1024;

/// PEM text may be a third larger than its DER plus armour lines.
const MAX_PEM_LEN: usize = MAX_CSR_LEN / 3 * 4 + 4096;

/// PEM labels that certification requests are found under (the second is Netscape's).
const PEM_LABELS: [&str; 2] = ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"];

/// A decoded PKCS#10 request. Decoding checks structure only; call
/// [`Csr::verify_signature`] for proof of possession.
///
/// `Debug` shows the subject and algorithms only: attributes may hold a challengePassword.
#[derive(Clone)]
pub struct Csr {
    der: Vec<u8>,
    /// The DER of certificationRequestInfo exactly as received: what the signature covers.
    info_der: Vec<u8>,
    subject_der: Vec<u8>,
    public_key_der: Vec<u8>,
    req: CertReq,
}

/// The outer SEQUENCE, borrowed, to keep the signed bytes as they were received.
#[derive(Sequence)]
struct RawCertReq<'a> {
    info: AnyRef<'a>,
    algorithm: AnyRef<'a>,
    signature: BitStringRef<'a>,
}

impl Csr {
    /// Decodes a DER request of at most [`MAX_CSR_LEN`] bytes.
    pub fn from_der(der: &[u8]) -> Result<Self, PkixError> {
        const WHAT: &str = "certification request";
        if der.len() > MAX_CSR_LEN {
            return Err(PkixError::TooLarge {
                what: WHAT,
                limit: MAX_CSR_LEN,
            });
        }
        let raw = RawCertReq::from_der(der).map_err(PkixError::malformed(WHAT))?;
        let req = CertReq::from_der(der).map_err(PkixError::malformed(WHAT))?;
        let encode_err = PkixError::malformed(WHAT);
        Ok(Self {
            der: der.to_vec(),
            info_der: raw.info.to_der().map_err(PkixError::malformed(WHAT))?,
            subject_der: req
                .info
                .subject
                .to_der()
                .map_err(PkixError::malformed(WHAT))?,
            public_key_der: req.info.public_key.to_der().map_err(encode_err)?,
            req,
        })
    }

    /// Decodes a request given as DER or as PEM (`CERTIFICATE REQUEST` or
    /// `NEW CERTIFICATE REQUEST`; line length and CR/LF are not checked).
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self, PkixError> {
        let trimmed = bytes.trim_ascii_start();
        if !trimmed.starts_with(b"-----BEGIN ") {
            return Self::from_der(bytes);
        }
        if bytes.len() > MAX_PEM_LEN {
            return Err(PkixError::TooLarge {
                what: "PEM request",
                limit: MAX_PEM_LEN,
            });
        }
        Self::from_der(&lenient_pem(trimmed)?)
    }

    /// The request as received.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The decoded request, for callers that need a field this type does not expose.
    pub fn cert_req(&self) -> &CertReq {
        &self.req
    }

    /// Checks the request's signature with its own public key: proof of possession.
    pub fn verify_signature(&self) -> Result<(), PkixError> {
        let signature = self
            .req
            .signature
            .as_bytes()
            .ok_or_else(|| PkixError::invalid("request signature", "not whole bytes"))?;
        verify_signature(
            &self.req.info.public_key,
            &self.req.algorithm,
            &self.info_der,
            signature,
        )
    }

    /// The signature algorithm the requester used.
    pub fn signature_algorithm(&self) -> &AlgorithmIdentifierOwned {
        &self.req.algorithm
    }

    /// The subject name.
    pub fn subject(&self) -> &Name {
        &self.req.info.subject
    }

    /// The DER of the subject name.
    pub fn subject_der(&self) -> Vec<u8> {
        self.subject_der.clone()
    }

    /// The subject as an RFC 4514 string, e.g. `CN=dev1,O=Acme`.
    pub fn subject_string(&self) -> String {
        name_to_string(&self.req.info.subject)
    }

    /// The most specific (last encoded) commonName, if any is readable text.
    pub fn common_name(&self) -> Option<String> {
        self.req
            .info
            .subject
            .iter()
            .filter(|atv| atv.oid == const_oid::db::rfc4519::COMMON_NAME)
            .filter_map(|atv| directory_string(&atv.value))
            .last()
    }

    /// The subjectAltNames requested in the extensionRequest attribute (empty if none).
    pub fn subject_alt_names(&self) -> Result<Vec<San>, PkixError> {
        let extensions = self.requested_extensions()?;
        let Some(ext) = extensions
            .iter()
            .find(|e| e.extn_id == rfc5912::ID_CE_SUBJECT_ALT_NAME)
        else {
            return Ok(Vec::new());
        };
        let names = SubjectAltName::from_der(ext.extn_value.as_bytes())
            .map_err(PkixError::malformed("subjectAltName"))?;
        names.0.iter().map(San::from_general_name).collect()
    }

    /// The extensions of the extensionRequest attribute (RFC 2985 5.4.2), empty if absent.
    /// More than one such attribute or value, or one extension twice, is invalid.
    pub fn requested_extensions(&self) -> Result<Vec<Extension>, PkixError> {
        const WHAT: &str = "extensionRequest";
        let Some(attr) = self.single_attribute(rfc5912::ID_EXTENSION_REQ, WHAT)? else {
            return Ok(Vec::new());
        };
        let value = single_value(attr, WHAT)?;
        let extensions: Vec<Extension> = value.decode_as().map_err(PkixError::malformed(WHAT))?;
        for (i, ext) in extensions.iter().enumerate() {
            if extensions.iter().take(i).any(|e| e.extn_id == ext.extn_id) {
                return Err(PkixError::invalid(WHAT, format!("{} twice", ext.extn_id)));
            }
        }
        Ok(extensions)
    }

    /// The subject public key.
    pub fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.req.info.public_key
    }

    /// The DER of the subject public key info.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.public_key_der.clone()
    }

    /// The type and size of the subject public key.
    pub fn key_kind(&self) -> Result<KeyKind, PkixError> {
        KeyKind::of(&self.req.info.public_key)
    }

    /// The PKCS#9 challengePassword (RFC 2985 5.4.1), if present and readable.
    /// See [`Csr::challenge_password_checked`] to tell "absent" from "unreadable".
    pub fn challenge_password(&self) -> Option<String> {
        self.challenge_password_checked().ok().flatten()
    }

    /// The challengePassword: `Ok(None)` if absent, an error if it is present but not a
    /// single DirectoryString.
    pub fn challenge_password_checked(&self) -> Result<Option<String>, PkixError> {
        const WHAT: &str = "challengePassword";
        let oid = rfc2985::PKCS_9_AT_CHALLENGE_PASSWORD;
        let Some(attr) = self.single_attribute(oid, WHAT)? else {
            return Ok(None);
        };
        let value = single_value(attr, WHAT)?;
        directory_string(value)
            .map(Some)
            .ok_or_else(|| PkixError::invalid(WHAT, "not a readable DirectoryString"))
    }

    /// The attribute with `oid`, if exactly one is present; two or more are invalid.
    fn single_attribute(
        &self,
        oid: const_oid::ObjectIdentifier,
        what: &'static str,
    ) -> Result<Option<&Attribute>, PkixError> {
        let mut found = self.req.info.attributes.iter().filter(|a| a.oid == oid);
        let first = found.next();
        if found.next().is_some() {
            return Err(PkixError::invalid(what, "attribute present twice"));
        }
        Ok(first)
    }
}

impl fmt::Debug for Csr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Csr")
            .field("subject", &self.subject_string())
            .field("key", &self.key_kind().map(|k| k.to_string()).ok())
            .field("signature_algorithm", &self.req.algorithm.oid)
            .field("attributes", &self.req.info.attributes.len())
            .finish_non_exhaustive()
    }
}

/// The one value of a single-valued attribute.
fn single_value<'a>(
    attr: &'a Attribute,
    what: &'static str,
) -> Result<&'a der::asn1::Any, PkixError> {
    let mut values = attr.values.iter();
    match (values.next(), values.next()) {
        (Some(value), None) => Ok(value),
        _ => Err(PkixError::invalid(
            what,
            "attribute must have exactly one value",
        )),
    }
}

/// Reads the first PEM block of a request; tolerant of line length, CR/LF and stray spaces.
fn lenient_pem(text: &[u8]) -> Result<Vec<u8>, PkixError> {
    let text = std::str::from_utf8(text).map_err(|_| PkixError::BadPem("not text".into()))?;
    let mut lines = text.lines().map(str::trim);
    let label = lines
        .next()
        .and_then(|l| l.strip_prefix("-----BEGIN "))
        .and_then(|l| l.strip_suffix("-----"))
        .ok_or_else(|| PkixError::BadPem("no BEGIN line".into()))?;
    if !PEM_LABELS.contains(&label) {
        return Err(PkixError::BadPem(format!(
            "label {label:?} is not a request"
        )));
    }
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    for line in lines.by_ref() {
        if line == end {
            return base64::engine::general_purpose::STANDARD
                .decode(body)
                .map_err(|e| PkixError::BadPem(e.to_string()));
        }
        body.extend(line.chars().filter(|c| !c.is_ascii_whitespace()));
    }
    Err(PkixError::BadPem("no END line".into()))
}
