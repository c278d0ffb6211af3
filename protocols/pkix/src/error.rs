//! The one error type of this crate.

/// What was wrong with the input, or why it could not be checked.
///
/// Variants name the cause as the peer caused it; [`PkixError::Malformed`] keeps the `der`
/// error, which carries the byte offset where decoding stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkixError {
    /// The bytes are not a valid DER encoding of the expected structure.
    #[error("malformed {what}: {source}")]
    Malformed {
        /// The structure being decoded, e.g. "certification request".
        what: &'static str,
        /// The decoder's error, with the position where it stopped.
        #[source]
        source: der::Error,
    },
    /// The structure decoded, but a value in it breaks the standard.
    #[error("invalid {what}: {why}")]
    Invalid {
        /// The structure being checked.
        what: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// The input is larger than this crate accepts for that structure.
    #[error("{what} is larger than {limit} bytes")]
    TooLarge {
        /// The structure being decoded.
        what: &'static str,
        /// The limit in bytes.
        limit: usize,
    },
    /// PEM armour was present but could not be read.
    #[error("bad PEM: {0}")]
    BadPem(String),
    /// The signature does not verify with the given key.
    #[error("signature does not verify")]
    BadSignature,
    /// The signature algorithm, or its parameters, are not supported.
    #[error("unsupported signature algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// The public key type or curve is not supported, or the key bytes are not a valid key.
    #[error("unsupported or invalid public key: {0}")]
    UnsupportedKey(String),
    /// The key does not fit the signature algorithm (an RSA key with an ECDSA signature, an
    /// ECDSA signature whose curve differs from the key's).
    #[error("key does not match the signature algorithm: {0}")]
    KeyAlgorithmMismatch(String),
    /// A subjectAltName of a kind this crate does not hand on (otherName, directoryName, ...).
    /// Refused rather than dropped, so that policy never misses a requested name.
    #[error("unsupported subjectAltName kind: {0}")]
    UnsupportedName(&'static str),
}

impl PkixError {
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
}
