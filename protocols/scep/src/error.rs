//! The one error type of this crate, and the failure that says how to answer the peer.

use crate::attributes::FailInfo;
use crate::message::ReplyTo;

/// What was wrong with a SCEP request, or why we could not answer it.
///
/// Variants name what the peer did; [`ScepError::Malformed`] keeps the `der` error, which
/// carries the byte offset where decoding stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScepError {
    /// The message (or the GET `message` parameter) is larger than we accept.
    #[error("message of {len} bytes is larger than the {limit}-byte limit")]
    TooLarge {
        /// The size seen (for a GET parameter, its encoded size).
        len: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The bytes are not a valid DER encoding of the expected structure.
    #[error("malformed {what}: {source}")]
    Malformed {
        /// The structure being decoded, e.g. "SignedData".
        what: &'static str,
        /// The decoder's error, with the position where it stopped.
        #[source]
        source: der::Error,
    },
    /// The structure decoded, but a value in it breaks RFC 8894 or RFC 5652.
    #[error("invalid {what}: {why}")]
    Invalid {
        /// The structure being checked.
        what: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// A signed attribute that RFC 8894 requires is absent.
    #[error("missing signed attribute {0}")]
    MissingAttribute(&'static str),
    /// A digest, signature, key-transport or content-encryption algorithm we do not support.
    #[error("unsupported {what}: {oid}")]
    UnsupportedAlgorithm {
        /// Which algorithm slot, e.g. "content encryption".
        what: &'static str,
        /// The algorithm's OID, dotted.
        oid: String,
    },
    /// The SignerInfo's signature does not verify with the signer's certificate.
    #[error("the message signature does not verify")]
    BadSignature,
    /// The messageDigest attribute does not match the encapsulated content.
    #[error("the messageDigest attribute does not match the content")]
    DigestMismatch,
    /// No certificate in the message matches the SignerInfo's signer identifier.
    #[error("the signer's certificate is not in the message")]
    SignerNotFound,
    /// The EnvelopedData has no key-transport recipient matching our RA certificate.
    #[error("the envelope is not addressed to our RA certificate")]
    NotForUs,
    /// The content-encryption key or the content does not decrypt.
    #[error("the envelope does not decrypt")]
    DecryptFailed,
    /// A messageType that a server does not accept (CertRep, or an unknown number).
    #[error("unsupported SCEP messageType {0:?}")]
    UnsupportedMessageType(String),
    /// The HTTP request is not a SCEP operation we understand.
    #[error("bad SCEP HTTP request: {0}")]
    BadHttpRequest(String),
    /// A reply must be encrypted to a key we cannot encrypt to (SCEP uses RSA key transport).
    #[error("cannot encrypt to the requester's key: {0}")]
    UnsupportedRecipientKey(String),
    /// The RA certificate or key given to [`crate::RaIdentity::new`] is unusable.
    #[error("unusable RA identity: {0}")]
    BadRaIdentity(String),
    /// The request decoded but is not an issuance request (e.g. GetCRL given to the mapper).
    #[error("not an issuance request: {0}")]
    NotIssuance(&'static str),
    /// A cryptographic operation on our side failed; a bug or a bad key, never the peer.
    #[error("internal crypto failure: {0}")]
    Crypto(&'static str),
}

impl ScepError {
    /// Wraps a `der` error met while decoding `what`.
    pub(crate) fn malformed(what: &'static str) -> impl FnOnce(der::Error) -> Self {
        move |source| Self::Malformed { what, source }
    }

    /// An `Invalid` error.
    pub(crate) fn invalid(what: &'static str, why: impl Into<String>) -> Self {
        Self::Invalid {
            what,
            why: why.into(),
        }
    }

    /// An `UnsupportedAlgorithm` error for `oid`.
    pub(crate) fn unsupported(what: &'static str, oid: &const_oid::ObjectIdentifier) -> Self {
        Self::UnsupportedAlgorithm {
            what,
            oid: oid.to_string(),
        }
    }

    /// The failInfo that a CertRep FAILURE reports for this error (RFC 8894 section 3.2.1.4.5).
    pub fn fail_info(&self) -> FailInfo {
        match self {
            Self::UnsupportedAlgorithm { .. } | Self::UnsupportedRecipientKey(_) => {
                FailInfo::BadAlg
            }
            Self::BadSignature
            | Self::DigestMismatch
            | Self::SignerNotFound
            | Self::NotForUs
            | Self::DecryptFailed => FailInfo::BadMessageCheck,
            _ => FailInfo::BadRequest,
        }
    }
}

/// A request that could not be decoded or checked, and how to tell the peer.
///
/// When the transaction ID and sender nonce could be read, RFC 8894 wants a signed CertRep
/// with pkiStatus FAILURE; `reply` then holds what [`crate::cert_rep_failure`] needs. When
/// not even that much could be read, `reply` is `None` and the caller answers HTTP 400.
#[derive(Debug)]
pub struct ScepFailure {
    /// What went wrong.
    pub error: ScepError,
    /// Where to send a CertRep FAILURE, and with which failInfo; `None` means HTTP 400.
    pub reply: Option<Box<FailureReply>>,
}

/// The parts of a CertRep FAILURE that the decoder could determine.
#[derive(Clone, Debug)]
pub struct FailureReply {
    /// Transaction, nonce and requester to answer.
    pub reply_to: ReplyTo,
    /// The failInfo to report.
    pub fail_info: FailInfo,
}

impl ScepFailure {
    /// A failure that can only be answered with HTTP 400.
    pub(crate) fn http_only(error: ScepError) -> Self {
        Self { error, reply: None }
    }

    /// A failure answered with a CertRep FAILURE whose failInfo follows from the error.
    pub(crate) fn with_reply(error: ScepError, reply_to: ReplyTo) -> Self {
        let fail_info = error.fail_info();
        Self {
            error,
            reply: Some(Box::new(FailureReply {
                reply_to,
                fail_info,
            })),
        }
    }
}

impl std::fmt::Display for ScepFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.reply {
            Some(r) => write!(f, "{} (CertRep FAILURE {:?})", self.error, r.fail_info),
            None => write!(f, "{} (HTTP 400)", self.error),
        }
    }
}

impl std::error::Error for ScepFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}
