//! The crate's error type and its mapping to `PKIFailureInfo` (RFC 9810 section 5.2.3).

use der::asn1::BitString;
use enrollgate_model::RejectReason;

/// `PKIFailureInfo` bits (RFC 9810 section 5.2.3); the discriminant is the bit number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs, reason = "the names are the RFC's bit names")]
pub enum FailInfo {
    BadAlg = 0,
    BadMessageCheck = 1,
    BadRequest = 2,
    BadTime = 3,
    BadCertId = 4,
    BadDataFormat = 5,
    WrongAuthority = 6,
    IncorrectData = 7,
    MissingTimeStamp = 8,
    BadPop = 9,
    CertRevoked = 10,
    CertConfirmed = 11,
    WrongIntegrity = 12,
    BadRecipientNonce = 13,
    TimeNotAvailable = 14,
    UnacceptedPolicy = 15,
    UnacceptedExtension = 16,
    AddInfoNotAvailable = 17,
    BadSenderNonce = 18,
    BadCertTemplate = 19,
    SignerNotTrusted = 20,
    TransactionIdInUse = 21,
    UnsupportedVersion = 22,
    NotAuthorized = 23,
    SystemUnavail = 24,
    SystemFailure = 25,
    DuplicateCertReq = 26,
}

impl FailInfo {
    /// The DER `BIT STRING` with only this bit set (named-bit rules: no trailing zero bits).
    pub fn to_bit_string(self) -> BitString {
        let bit = self as usize;
        let mut bytes = vec![0u8; bit / 8 + 1];
        if let Some(byte) = bytes.last_mut() {
            *byte = 0x80 >> (bit % 8);
        }
        let unused = 7 - (bit % 8) as u8;
        // At most 7 unused bits and a non-empty byte string: always valid.
        BitString::new(unused, bytes).expect("1..=4 bytes with at most 7 unused bits is valid")
    }

    /// The RFC's name of the bit (`badMessageCheck`, ...), for logs and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Self::BadAlg => "badAlg",
            Self::BadMessageCheck => "badMessageCheck",
            Self::BadRequest => "badRequest",
            Self::BadTime => "badTime",
            Self::BadCertId => "badCertId",
            Self::BadDataFormat => "badDataFormat",
            Self::WrongAuthority => "wrongAuthority",
            Self::IncorrectData => "incorrectData",
            Self::MissingTimeStamp => "missingTimeStamp",
            Self::BadPop => "badPOP",
            Self::CertRevoked => "certRevoked",
            Self::CertConfirmed => "certConfirmed",
            Self::WrongIntegrity => "wrongIntegrity",
            Self::BadRecipientNonce => "badRecipientNonce",
            Self::TimeNotAvailable => "timeNotAvailable",
            Self::UnacceptedPolicy => "unacceptedPolicy",
            Self::UnacceptedExtension => "unacceptedExtension",
            Self::AddInfoNotAvailable => "addInfoNotAvailable",
            Self::BadSenderNonce => "badSenderNonce",
            Self::BadCertTemplate => "badCertTemplate",
            Self::SignerNotTrusted => "signerNotTrusted",
            Self::TransactionIdInUse => "transactionIdInUse",
            Self::UnsupportedVersion => "unsupportedVersion",
            Self::NotAuthorized => "notAuthorized",
            Self::SystemUnavail => "systemUnavail",
            Self::SystemFailure => "systemFailure",
            Self::DuplicateCertReq => "duplicateCertReq",
        }
    }

    /// The bit number's position in a received `PKIFailureInfo`.
    pub fn is_set_in(self, bits: &BitString) -> bool {
        bits.get(self as usize).unwrap_or(false)
    }
}

/// The `PKIFailureInfo` bit that tells a CMP client why the registrar refused a request.
pub fn fail_info_for_reject(reason: &RejectReason) -> FailInfo {
    match reason {
        RejectReason::Malformed(_) => FailInfo::BadDataFormat,
        RejectReason::BadSignature => FailInfo::BadPop,
        RejectReason::Unauthenticated => FailInfo::NotAuthorized,
        RejectReason::PolicyDenied(_) => FailInfo::BadCertTemplate,
        RejectReason::BadAlgorithm(_) => FailInfo::BadAlg,
        RejectReason::UnknownRoute => FailInfo::BadRequest,
        RejectReason::TransactionConflict => FailInfo::TransactionIdInUse,
        RejectReason::Refused => FailInfo::NotAuthorized,
        RejectReason::BackendUnavailable => FailInfo::SystemUnavail,
        RejectReason::Internal => FailInfo::SystemFailure,
    }
}

/// Everything that can go wrong while handling a CMP message.
///
/// Variants name what the peer did; [`CmpError::fail_info`] gives the wire form.
#[derive(Debug, thiserror::Error)]
pub enum CmpError {
    /// The message is larger than the configured limit.
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The message's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The message is not a DER `PKIMessage`.
    #[error("malformed message: {0}")]
    Malformed(#[from] der::Error),
    /// A field the profile requires is missing or has a wrong form.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// `pvno` is neither 2 nor 3.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// The message carries no protection, or a kind the caller did not expect.
    #[error("message protection missing or of the wrong kind")]
    WrongProtection,
    /// A protection, MAC, PBKDF or hash algorithm we do not implement.
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// The PBM/PBKDF2 iteration count is above the configured cap.
    #[error("iteration count {count} exceeds the limit of {max}")]
    IterationCountTooHigh {
        /// The count in the message.
        count: u64,
        /// The configured cap.
        max: u64,
    },
    /// The MAC or signature over the message does not verify.
    #[error("message protection does not verify")]
    BadMessageCheck,
    /// Signature protection without a usable protection certificate in extraCerts.
    #[error("no usable protection certificate in extraCerts")]
    MissingSignerCertificate,
    /// The protection certificate does not chain to an anchor of the route, has expired or
    /// was revoked (RFC 9483 section 3.5: signerNotTrusted).
    #[error("the protection certificate is not trusted")]
    UntrustedSigner,
    /// The CRMF proof of possession is missing, unsupported or wrong.
    #[error("proof of possession failed: {0}")]
    BadPop(String),
    /// The certificate template lacks something we need (central key generation is not
    /// supported).
    #[error("bad certificate template: {0}")]
    BadCertTemplate(String),
    /// `senderNonce` is missing or shorter than 128 bits (RFC 9483 section 3.1).
    #[error("senderNonce missing or shorter than 128 bits")]
    BadSenderNonce,
    /// `recipNonce` does not repeat our last `senderNonce`.
    #[error("recipNonce does not match our last senderNonce")]
    BadRecipientNonce,
    /// A new transaction reused a transactionID.
    #[error("transactionID already in use")]
    TransactionIdInUse,
    /// A message that does not fit the transaction's state.
    #[error("message out of sequence: {0}")]
    OutOfSequence(&'static str),
    /// certConf names a certificate we did not issue in this transaction, or hashes it wrongly.
    #[error("certificate confirmation does not match: {0}")]
    BadCertId(String),
    /// The requester may not do this.
    #[error("not authorized: {0}")]
    NotAuthorized(String),
    /// The transaction waited too long for certConf.
    #[error("confirmation deadline passed")]
    ConfirmationTimeout,
    /// Our own failure (a key that does not sign, a state that does not encode).
    #[error("internal error: {0}")]
    Internal(String),
}

impl CmpError {
    /// The `PKIFailureInfo` bit for this error.
    pub fn fail_info(&self) -> FailInfo {
        match self {
            Self::TooLarge { .. } | Self::Malformed(_) => FailInfo::BadDataFormat,
            Self::BadRequest(_) | Self::OutOfSequence(_) => FailInfo::BadRequest,
            Self::UnsupportedVersion(_) => FailInfo::UnsupportedVersion,
            Self::WrongProtection => FailInfo::WrongIntegrity,
            Self::UnsupportedAlgorithm(_) | Self::IterationCountTooHigh { .. } => FailInfo::BadAlg,
            Self::BadMessageCheck => FailInfo::BadMessageCheck,
            Self::MissingSignerCertificate | Self::UntrustedSigner => FailInfo::SignerNotTrusted,
            Self::BadPop(_) => FailInfo::BadPop,
            Self::BadCertTemplate(_) => FailInfo::BadCertTemplate,
            Self::BadRecipientNonce => FailInfo::BadRecipientNonce,
            Self::BadSenderNonce => FailInfo::BadSenderNonce,
            Self::TransactionIdInUse => FailInfo::TransactionIdInUse,
            Self::BadCertId(_) => FailInfo::BadCertId,
            Self::NotAuthorized(_) => FailInfo::NotAuthorized,
            Self::ConfirmationTimeout => FailInfo::BadTime,
            Self::Internal(_) => FailInfo::SystemFailure,
        }
    }

    /// Text safe to put into the reply's `statusString`; internals stay in our logs.
    pub fn public_text(&self) -> String {
        match self {
            Self::Internal(_) => "internal error".into(),
            Self::Malformed(_) => "malformed message".into(),
            other => other.to_string(),
        }
    }

    /// Whether no CMP reply can be formed and the transport should answer with a bare
    /// HTTP 400 (RFC 9811 section 3.3): the bytes are not a `PKIMessage` at all.
    pub fn needs_bare_http_error(&self) -> bool {
        matches!(self, Self::TooLarge { .. } | Self::Malformed(_))
    }
}
