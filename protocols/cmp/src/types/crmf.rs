//! CRMF request types (RFC 4211, module `PKIXCRMF-2005`, IMPLICIT TAGS).
//!
//! A `[n]` tag on a CHOICE (`Name`, `Time`, `POPOPrivKey`) is always explicit in ASN.1, so those
//! fields say `EXPLICIT` even in this implicitly tagged module.

use der::asn1::{Any, BitString, Int, Null, ObjectIdentifier};
use der::{Choice, Sequence};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::ext::Extensions;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::time::Time;

/// `CertReqMessages ::= SEQUENCE SIZE (1..MAX) OF CertReqMsg` (RFC 4211 section 3).
pub type CertReqMessages = Vec<CertReqMsg>;

/// `CertReqMsg` (RFC 4211 section 3).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct CertReqMsg {
    /// `certReq`.
    pub cert_req: CertRequest,
    /// `popo`.
    #[asn1(optional = "true")]
    pub popo: Option<ProofOfPossession>,
    /// `regInfo`.
    #[asn1(optional = "true")]
    pub reg_info: Option<Vec<AttributeTypeAndValue>>,
}

/// `CertRequest` (RFC 4211 section 5).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct CertRequest {
    /// `certReqId`.
    pub cert_req_id: i64,
    /// `certTemplate`.
    pub cert_template: CertTemplate,
    /// `controls`.
    #[asn1(optional = "true")]
    pub controls: Option<Vec<AttributeTypeAndValue>>,
}

/// `AttributeTypeAndValue` as CRMF uses it for controls and regInfo (RFC 4211 section 6).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct AttributeTypeAndValue {
    /// `type`.
    pub oid: ObjectIdentifier,
    /// `value`, kept raw.
    pub value: Any,
}

/// `CertTemplate` (RFC 4211 section 5). Names are kept as raw `Name` DER.
#[derive(Clone, Debug, Default, PartialEq, Eq, Sequence)]
#[asn1(tag_mode = "IMPLICIT")]
pub struct CertTemplate {
    /// `version [0]`.
    #[asn1(context_specific = "0", optional = "true")]
    pub version: Option<i64>,
    /// `serialNumber [1]`.
    #[asn1(context_specific = "1", optional = "true")]
    pub serial_number: Option<Int>,
    /// `signingAlg [2]`.
    #[asn1(context_specific = "2", optional = "true")]
    pub signing_alg: Option<AlgorithmIdentifierOwned>,
    /// `issuer [3]`: a `Name`, raw.
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    pub issuer: Option<Any>,
    /// `validity [4]`.
    #[asn1(context_specific = "4", optional = "true")]
    pub validity: Option<OptionalValidity>,
    /// `subject [5]`: a `Name`, raw.
    #[asn1(context_specific = "5", tag_mode = "EXPLICIT", optional = "true")]
    pub subject: Option<Any>,
    /// `publicKey [6]`.
    #[asn1(context_specific = "6", optional = "true")]
    pub public_key: Option<SubjectPublicKeyInfoOwned>,
    /// `issuerUID [7]`.
    #[asn1(context_specific = "7", optional = "true")]
    pub issuer_uid: Option<BitString>,
    /// `subjectUID [8]`.
    #[asn1(context_specific = "8", optional = "true")]
    pub subject_uid: Option<BitString>,
    /// `extensions [9]`.
    #[asn1(context_specific = "9", optional = "true")]
    pub extensions: Option<Extensions>,
}

/// `OptionalValidity` (RFC 4211 section 5).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct OptionalValidity {
    /// `notBefore [0]`.
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub not_before: Option<Time>,
    /// `notAfter [1]`.
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub not_after: Option<Time>,
}

/// `ProofOfPossession` (RFC 4211 section 4).
#[derive(Clone, Debug, PartialEq, Eq, Choice)]
#[expect(
    clippy::large_enum_variant,
    reason = "a wire type; one per request, never in bulk"
)]
pub enum ProofOfPossession {
    /// `raVerified [0] NULL`.
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    RaVerified(Null),
    /// `signature [1] POPOSigningKey`.
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true")]
    Signature(PopoSigningKey),
    /// `keyEncipherment [2] POPOPrivKey` (not supported; kept raw).
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", constructed = "true")]
    KeyEncipherment(Any),
    /// `keyAgreement [3] POPOPrivKey` (not supported; kept raw).
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", constructed = "true")]
    KeyAgreement(Any),
}

/// `POPOSigningKey` (RFC 4211 section 4.1).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct PopoSigningKey {
    /// `poposkInput [0]`: only used when the template lacks subject or key (not supported).
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub poposk_input: Option<PopoSigningKeyInput>,
    /// `algorithmIdentifier`.
    pub algorithm_identifier: AlgorithmIdentifierOwned,
    /// `signature`.
    pub signature: BitString,
}

/// `POPOSigningKeyInput` (RFC 4211 section 4.1); `authInfo` is kept raw.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct PopoSigningKeyInput {
    /// `authInfo`: `sender [0] GeneralName` or `publicKeyMAC PKMACValue`.
    pub auth_info: Any,
    /// `publicKey`.
    pub public_key: SubjectPublicKeyInfoOwned,
}

/// `CertId` (RFC 4211 section 6.5), the value of the `oldCertID` control.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct CertId {
    /// `issuer`.
    pub issuer: GeneralName,
    /// `serialNumber`.
    pub serial_number: Int,
}
