//! Certificate authorities behind the gateway.
//!
//! A backend sees only an [`Approved`] request: the registrar's checked result, which no
//! protocol can make. It answers with a certificate, a pending reference, or an error that
//! says whether the request surely did not reach issuance (so another backend may be tried).
//!
//! The registrar holds one [`CaBackend`]: a [`Router`] that picks, per route, an ordered list
//! of named backends (`[backends.NAME]` in the configuration, `backends = [..]` on a route)
//! and fails over to the next only when the first surely did not issue
//! ([`BackendError::Unavailable`]: connection refused, 502/503, circuit open, concurrency
//! cap reached). Each backend is wrapped in a [`Guarded`] that adds the per-backend timeout,
//! concurrency cap, retries with backoff for calls that are safe to repeat, a circuit breaker,
//! metrics, and checks of every certificate a CA hands back (it must certify the approved key
//! and verify against its chain).
//!
//! The backends:
//!
//! | kind | module | API |
//! |---|---|---|
//! | `builtin` | [`builtin`] | in-process signer |
//! | `cfssl` | [`cfssl`] | `cfssl serve` `/api/v1/cfssl/sign`, `authsign`, `info` |
//! | `ejbca` | [`ejbca`] | EJBCA REST API v1 (`pkcs10enroll`, `revoke`, CA certificate download) |
//! | `digicert` | [`digicert`] | DigiCert CertCentral Services API v2 (order, order info, download, revoke) |
//! | `est` | [`est`] | RFC 7030 client: `simpleenroll`, `cacerts` |
//! | `cmp` | [`cmp`] | RFC 9810/9483 client: `p10cr`, `pollReq`, `certConf` over RFC 6712 HTTP |
//!
//! Pending answers (a CA holding the request for approval) reach the registrar as
//! [`BackendAnswer::Pending`] with a reference that the router prefixes with the backend
//! name; the registrar stores it and asks again through [`CaBackend::poll`].
//!
//! Not supported: server-generated keys and CRMF (`ir`/`cr`) requests on backends that need a
//! PKCS#10 (every remote one); revocation through EST (the protocol has none) and through
//! upstream CMP; cfssl, EJBCA and DigiCert choose validity and extensions from their own
//! profiles, not from ours.

pub mod builtin;
pub mod cfssl;
pub mod cmp;
pub mod config;
pub mod digicert;
pub mod ejbca;
pub mod est;
mod guard;
pub mod http;
mod router;
pub mod verify;

pub use builtin::BuiltinBackend;
pub use config::{BackendDef, BackendKind, SecretRef};
pub use guard::{Guarded, Resilience};
pub use router::Router;

use async_trait::async_trait;

use crate::issuance::Approved;

/// A backend's certificate.
#[derive(Clone, Debug)]
pub struct BackendCert {
    /// The end-entity certificate, DER.
    pub certificate: Vec<u8>,
    /// Issuing chain above it, DER.
    pub chain: Vec<Vec<u8>>,
    /// The name of the backend that issued it (filled in by the router's guard).
    pub issued_by: String,
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
    /// The CA answered something unusable: not its API's format (an HTML error page,
    /// garbage), a certificate for another key, or a chain that does not verify.
    #[error("unusable answer from the CA: {0}")]
    Invalid(String),
}

impl BackendError {
    /// A stable lower-case name for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Refused(_) => "refused",
            Self::Unavailable(_) => "unavailable",
            Self::Ambiguous(_) => "ambiguous",
            Self::Unsupported => "unsupported",
            Self::Invalid(_) => "invalid",
        }
    }
}

/// How one backend is doing, for `/readyz`.
#[derive(Clone, Debug)]
pub struct BackendHealth {
    /// Backend name.
    pub name: String,
    /// `closed` (healthy), `open` (failing fast) or `half-open` (one trial call allowed).
    pub breaker: &'static str,
    /// Whether the CA chain is known (fetched or configured).
    pub chain_known: bool,
    /// The last failure, if the last call failed.
    pub last_error: Option<String>,
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

    /// Asks again about a request the CA answered [`BackendAnswer::Pending`] for.
    async fn poll(&self, _reference: &str) -> Result<BackendAnswer, BackendError> {
        Err(BackendError::Unsupported)
    }
    /// Revokes a certificate given in full (backends that need its issuer use it).
    async fn revoke_certificate(&self, certificate: &[u8], reason: u8) -> Result<(), BackendError> {
        let serial = verify::serial_hex(certificate)
            .ok_or_else(|| BackendError::Invalid("undecodable certificate".into()))?;
        self.revoke(&serial, reason).await
    }
    /// Reads the CA chain from the CA (at start, and while it is unknown).
    async fn fetch_ca_chain(&self) -> Result<Vec<Vec<u8>>, BackendError> {
        Ok(self.ca_chain())
    }
    /// The chain clients of `route` should trust.
    fn route_ca_chain(&self, _route: &str) -> Vec<Vec<u8>> {
        self.ca_chain()
    }
    /// Health of every backend behind this one.
    fn health(&self) -> Vec<BackendHealth> {
        Vec::new()
    }
    /// Whether requests can be served: by default, when no circuit breaker is open.
    fn ready(&self) -> bool {
        self.health().iter().all(|h| h.breaker != "open")
    }
    /// Whether this backend signs in this process with keys it holds (the built-in CA):
    /// its certificates' signatures need no second check, everything else about the answer
    /// (the key it certifies, the chain) is still checked.
    fn signs_in_process(&self) -> bool {
        false
    }
}
