//! Certificate authorities behind the gateway.
//!
//! A backend sees only an [`Approved`] request: the registrar's checked result, which no
//! protocol can make. It answers with a certificate, a pending reference, or an error that
//! says whether the request surely did not reach issuance (so another backend may be tried).

mod builtin;

pub use builtin::BuiltinBackend;

use async_trait::async_trait;

use crate::issuance::Approved;

/// A backend's certificate.
#[derive(Clone, Debug)]
pub struct BackendCert {
    /// The end-entity certificate, DER.
    pub certificate: Vec<u8>,
    /// Issuing chain above it, DER.
    pub chain: Vec<Vec<u8>>,
}

/// What a backend answered.
#[derive(Clone, Debug)]
pub enum BackendAnswer {
    /// Issued now.
    Issued(BackendCert),
    /// The CA holds the request (approval); poll with this reference.
    Pending {
        /// The backend's own reference.
        reference: String,
        /// Seconds before asking again.
        retry_after: u32,
    },
}

/// Why a backend call failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The CA refused the request.
    #[error("refused by the CA: {0}")]
    Refused(String),
    /// The CA surely did not issue (connection refused, 5xx before acceptance).
    #[error("CA unavailable: {0}")]
    Unavailable(String),
    /// The CA may or may not have issued (timeout after sending).
    #[error("CA answer unknown: {0}")]
    Ambiguous(String),
    /// The operation is not offered by this backend.
    #[error("not supported by this backend")]
    Unsupported,
}

/// A certificate authority the registrar can call.
#[async_trait]
pub trait CaBackend: Send + Sync {
    /// The name used in metrics, logs and audit.
    fn name(&self) -> &str;
    /// Issues a certificate for an approved request.
    async fn issue(&self, request: &Approved) -> Result<BackendAnswer, BackendError>;
    /// Revokes a certificate by serial (lower-case hex) with an RFC 5280 reason code.
    async fn revoke(&self, serial: &str, reason: u8) -> Result<(), BackendError>;
    /// The issuing chain (issuing CA first, root last) for `cacerts` and friends.
    fn ca_chain(&self) -> Vec<Vec<u8>>;
}
