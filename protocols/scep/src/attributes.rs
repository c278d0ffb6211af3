//! SCEP's authenticated attributes (RFC 8894 section 3.2.1) and the CMS ones next to them.

use const_oid::ObjectIdentifier;
use der::asn1::{OctetString, PrintableStringRef, SetOfVec, Utf8StringRef};
use der::{Any, Decode, Encode, Tag, Tagged};
use x509_cert::attr::{Attribute, Attributes};

use crate::ScepError;

/// OIDs used by SCEP messages.
pub mod oid {
    use const_oid::ObjectIdentifier as Oid;

    /// id-messageType (RFC 8894 section 3.2.1.2).
    pub const MESSAGE_TYPE: Oid = Oid::new_unwrap("2.16.840.1.113733.1.9.2");
    /// id-pkiStatus.
    pub const PKI_STATUS: Oid = Oid::new_unwrap("2.16.840.1.113733.1.9.3");
    /// id-failInfo.
    pub const FAIL_INFO: Oid = Oid::new_unwrap("2.16.840.1.113733.1.9.4");
    /// id-senderNonce.
    pub const SENDER_NONCE: Oid = Oid::new_unwrap("2.16.840.1.113733.1.9.5");
    /// id-recipientNonce.
    pub const RECIPIENT_NONCE: Oid = Oid::new_unwrap("2.16.840.1.113733.1.9.6");
    /// id-transactionID.
    pub const TRANSACTION_ID: Oid = Oid::new_unwrap("2.16.840.1.113733.1.9.7");
    /// id-scep-failInfoText (RFC 8894 section 3.2.1.4.5).
    pub const FAIL_INFO_TEXT: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.24.1");
    /// CMS content-type attribute.
    pub const CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
    /// CMS message-digest attribute.
    pub const MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
    /// PKCS#9 challengePassword.
    pub const CHALLENGE_PASSWORD: Oid = Oid::new_unwrap("1.2.840.113549.1.9.7");
    /// CMS id-data.
    pub const DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
    /// CMS id-signedData.
    pub const SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
    /// CMS id-envelopedData.
    pub const ENVELOPED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.3");
}

/// Longest transactionID we accept; RFC 8894 clients use a hash in hex or base64.
pub const MAX_TRANSACTION_ID_LEN: usize = 256;
/// Longest nonce we accept; RFC 8894 says 16 octets, some clients send more.
pub const MAX_NONCE_LEN: usize = 64;

/// The SCEP messageType (RFC 8894 section 3.2.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// CertRep (3): the server's reply.
    CertRep,
    /// RenewalReq (17): a renewal signed with the certificate being replaced.
    RenewalReq,
    /// PKCSReq (19): a first enrolment.
    PkcsReq,
    /// CertPoll (20), called GetCertInitial before RFC 8894: polling a pending request.
    CertPoll,
    /// GetCert (21): fetch a certificate by issuer and serial.
    GetCert,
    /// GetCRL (22): fetch the CRL covering a certificate.
    GetCrl,
}

impl MessageType {
    /// The decimal number carried in the attribute.
    pub fn number(self) -> u8 {
        match self {
            Self::CertRep => 3,
            Self::RenewalReq => 17,
            Self::PkcsReq => 19,
            Self::CertPoll => 20,
            Self::GetCert => 21,
            Self::GetCrl => 22,
        }
    }

    /// Parses the attribute's decimal string.
    pub fn from_text(text: &str) -> Option<Self> {
        [
            Self::CertRep,
            Self::RenewalReq,
            Self::PkcsReq,
            Self::CertPoll,
            Self::GetCert,
            Self::GetCrl,
        ]
        .into_iter()
        .find(|t| t.number().to_string() == text)
    }
}

/// The CertRep pkiStatus (RFC 8894 section 3.2.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PkiStatus {
    /// SUCCESS (0): the envelope holds the certificate or CRL.
    Success,
    /// FAILURE (2): see failInfo.
    Failure,
    /// PENDING (3): poll again with CertPoll.
    Pending,
}

impl PkiStatus {
    /// The decimal number carried in the attribute.
    pub fn number(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Failure => 2,
            Self::Pending => 3,
        }
    }

    /// Parses the attribute's decimal string.
    pub fn from_text(text: &str) -> Option<Self> {
        [Self::Success, Self::Failure, Self::Pending]
            .into_iter()
            .find(|s| s.number().to_string() == text)
    }
}

/// The CertRep failInfo (RFC 8894 section 3.2.1.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailInfo {
    /// badAlg (0): unrecognised or unsupported algorithm.
    BadAlg,
    /// badMessageCheck (1): integrity check (signature, digest, decryption) failed.
    BadMessageCheck,
    /// badRequest (2): transaction not permitted or supported.
    BadRequest,
    /// badTime (3): signingTime not close enough to our time.
    BadTime,
    /// badCertId (4): no certificate matches the criteria given.
    BadCertId,
}

impl FailInfo {
    /// The RFC 8894 name, for metrics labels and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::BadAlg => "badAlg",
            Self::BadMessageCheck => "badMessageCheck",
            Self::BadRequest => "badRequest",
            Self::BadTime => "badTime",
            Self::BadCertId => "badCertId",
        }
    }

    /// The decimal number carried in the attribute.
    pub fn number(self) -> u8 {
        match self {
            Self::BadAlg => 0,
            Self::BadMessageCheck => 1,
            Self::BadRequest => 2,
            Self::BadTime => 3,
            Self::BadCertId => 4,
        }
    }

    /// Parses the attribute's decimal string.
    pub fn from_text(text: &str) -> Option<Self> {
        [
            Self::BadAlg,
            Self::BadMessageCheck,
            Self::BadRequest,
            Self::BadTime,
            Self::BadCertId,
        ]
        .into_iter()
        .find(|f| f.number().to_string() == text)
    }
}

/// The signed attributes a SCEP message carries, as read from the wire.
#[derive(Clone, Debug, Default)]
pub(crate) struct ScepAttributes {
    pub message_type: Option<String>,
    pub transaction_id: Option<String>,
    pub sender_nonce: Option<Vec<u8>>,
    pub recipient_nonce: Option<Vec<u8>>,
    pub pki_status: Option<String>,
    pub fail_info: Option<String>,
    pub fail_info_text: Option<String>,
    pub content_type: Option<ObjectIdentifier>,
    pub message_digest: Option<Vec<u8>>,
}

impl ScepAttributes {
    /// Reads the attributes we know; others are ignored, as CMS allows.
    pub(crate) fn parse(attrs: &Attributes) -> Result<Self, ScepError> {
        let mut out = Self::default();
        for attr in attrs.iter() {
            let Some(value) = single_value(attr)? else {
                continue;
            };
            out.read(attr.oid, value)?;
        }
        Ok(out)
    }

    fn read(&mut self, oid: ObjectIdentifier, value: &Any) -> Result<(), ScepError> {
        match oid {
            o if o == oid::MESSAGE_TYPE => self.message_type = Some(text(value, 8)?),
            o if o == oid::TRANSACTION_ID => {
                self.transaction_id = Some(text(value, MAX_TRANSACTION_ID_LEN)?);
            }
            o if o == oid::SENDER_NONCE => self.sender_nonce = Some(nonce(value)?),
            o if o == oid::RECIPIENT_NONCE => self.recipient_nonce = Some(nonce(value)?),
            o if o == oid::PKI_STATUS => self.pki_status = Some(text(value, 8)?),
            o if o == oid::FAIL_INFO => self.fail_info = Some(text(value, 8)?),
            o if o == oid::FAIL_INFO_TEXT => self.fail_info_text = Some(text(value, 1024)?),
            o if o == oid::CONTENT_TYPE => {
                let bytes = value
                    .to_der()
                    .map_err(ScepError::malformed("contentType"))?;
                let ct = ObjectIdentifier::from_der(&bytes)
                    .map_err(ScepError::malformed("contentType"))?;
                self.content_type = Some(ct);
            }
            o if o == oid::MESSAGE_DIGEST => self.message_digest = Some(octets(value, 64)?),
            _ => {}
        }
        Ok(())
    }
}

/// Builds the SET OF Attribute that is signed, DER-sorted.
pub(crate) fn build_attributes(list: Vec<Attribute>) -> Result<Attributes, ScepError> {
    SetOfVec::try_from(list).map_err(ScepError::malformed("signed attributes"))
}

/// An attribute holding one PrintableString (messageType, pkiStatus, failInfo,
/// transactionID).
pub(crate) fn printable_attr(oid: ObjectIdentifier, value: &str) -> Result<Attribute, ScepError> {
    let s = PrintableStringRef::new(value).map_err(ScepError::malformed("PrintableString"))?;
    attr(oid, Any::encode_from(&s))
}

/// An attribute holding one UTF8String (failInfoText).
pub(crate) fn utf8_attr(oid: ObjectIdentifier, value: &str) -> Result<Attribute, ScepError> {
    let s = Utf8StringRef::new(value).map_err(ScepError::malformed("UTF8String"))?;
    attr(oid, Any::encode_from(&s))
}

/// An attribute holding one OCTET STRING (nonces, messageDigest).
pub(crate) fn octets_attr(oid: ObjectIdentifier, value: &[u8]) -> Result<Attribute, ScepError> {
    let s = OctetString::new(value).map_err(ScepError::malformed("OCTET STRING"))?;
    attr(oid, Any::encode_from(&s))
}

/// An attribute holding one OBJECT IDENTIFIER (contentType).
pub(crate) fn oid_attr(
    oid: ObjectIdentifier,
    value: ObjectIdentifier,
) -> Result<Attribute, ScepError> {
    attr(oid, Any::encode_from(&value))
}

fn attr(oid: ObjectIdentifier, value: der::Result<Any>) -> Result<Attribute, ScepError> {
    let value = value.map_err(ScepError::malformed("attribute value"))?;
    let values = SetOfVec::try_from(vec![value]).map_err(ScepError::malformed("attribute"))?;
    Ok(Attribute { oid, values })
}

/// The one value of an attribute; SCEP attributes are single-valued.
fn single_value(attr: &Attribute) -> Result<Option<&Any>, ScepError> {
    let mut values = attr.values.iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(ScepError::invalid(
            "signed attributes",
            format!("{} has several values", attr.oid),
        ));
    }
    Ok(first)
}

/// A string value; clients use PrintableString, some UTF8String or IA5String.
fn text(value: &Any, limit: usize) -> Result<String, ScepError> {
    match value.tag() {
        Tag::PrintableString | Tag::Utf8String | Tag::Ia5String => {}
        other => {
            return Err(ScepError::invalid(
                "signed attributes",
                format!("string with tag {other}"),
            ));
        }
    }
    if value.value().len() > limit {
        return Err(ScepError::invalid(
            "signed attributes",
            "string value too long",
        ));
    }
    String::from_utf8(value.value().to_vec())
        .map_err(|_| ScepError::invalid("signed attributes", "string is not UTF-8"))
}

fn nonce(value: &Any) -> Result<Vec<u8>, ScepError> {
    let n = octets(value, MAX_NONCE_LEN)?;
    if n.is_empty() {
        return Err(ScepError::invalid("signed attributes", "empty nonce"));
    }
    Ok(n)
}

fn octets(value: &Any, limit: usize) -> Result<Vec<u8>, ScepError> {
    if value.tag() != Tag::OctetString {
        return Err(ScepError::invalid(
            "signed attributes",
            "expected an OCTET STRING",
        ));
    }
    if value.value().len() > limit {
        return Err(ScepError::invalid(
            "signed attributes",
            "OCTET STRING too long",
        ));
    }
    Ok(value.value().to_vec())
}
