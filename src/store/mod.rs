//! Everything that must outlive a request: tokens, issued certificates, revocations,
//! transactions, pending requests and the audit log.
//!
//! Callers see only the [`Store`] trait, whose calls are each one short statement or
//! read-modify-write on one row with portable types, so that a PostgreSQL implementation can
//! follow the SQLite one (the embedded default) without touching callers; no node keeps
//! state of its own. [`PostgresStore`] is that implementation, for several nodes on one
//! database (`[store]` in the configuration).

mod postgres;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use async_trait::async_trait;

/// A storage failure. Always our side's problem, never the peer's.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] rusqlite::Error),
    /// PostgreSQL failed or did not answer in time (the text never holds a password).
    #[error("database: {0}")]
    Postgres(String),
    /// A stored value could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

/// Result alias for store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// An enrollment token as stored: never the secret, only its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    /// Public identifier.
    pub id: String,
    /// Lower-case hex SHA-256 of the secret.
    pub secret_hash: String,
    /// The route label the token is valid for.
    pub route: String,
    /// Uses left; `None` for unlimited.
    pub uses_left: Option<i64>,
    /// Unix time after which the token is refused.
    pub expires_at: i64,
    /// Optional subject pattern the CSR must match (glob, `*` wildcard).
    pub subject_pattern: Option<String>,
}

/// An issued certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateRecord {
    /// Serial number, lower-case hex.
    pub serial: String,
    /// The route it was issued on.
    pub route: String,
    /// The profile it was issued under.
    pub profile: String,
    /// The subject, RFC 4514 text.
    pub subject: String,
    /// Unix time of notAfter.
    pub not_after: i64,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// When it was revoked (unix time) and why (CRLReason).
    pub revoked: Option<(i64, u8)>,
}

/// Where a transaction stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransactionState {
    /// Claimed by a node that is working on it now.
    InProgress,
    /// Finished with a certificate (serial).
    Issued(String),
    /// Waiting for a decision (pending request id).
    Pending(String),
    /// Refused, with the reason kind and public text.
    Rejected(String),
}

/// One protocol transaction: the key that makes a retry idempotent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionRecord {
    /// Protocol name.
    pub protocol: String,
    /// Transaction id as the protocol gave it.
    pub id: String,
    /// SHA-256 of the request it was first used with.
    pub fingerprint: String,
    /// Where it stands.
    pub state: TransactionState,
}

/// A request waiting for a person, a webhook or a slow backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingRecord {
    /// Identifier shown to operators and used by polling clients.
    pub id: String,
    /// Protocol it arrived with.
    pub protocol: String,
    /// Route label.
    pub route: String,
    /// Subject asked for, RFC 4514 text.
    pub subject: String,
    /// The serialised request (JSON) to issue once approved.
    pub request: String,
    /// pending, approved, rejected or issued.
    pub status: String,
    /// Serial of the issued certificate, once issued.
    pub serial: Option<String>,
    /// Unix time of creation.
    pub created_at: i64,
}

/// One audit record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditRecord {
    /// requested, issued, denied, failed, revoked, approved, rejected.
    pub event: String,
    /// Protocol name.
    pub protocol: String,
    /// Route label.
    pub route: String,
    /// Profile name.
    pub profile: String,
    /// Who asked (token id, certificate subject, ...), never a secret.
    pub requester: String,
    /// Subject asked for or issued.
    pub subject: String,
    /// Serial when one exists.
    pub serial: String,
    /// Reason or backend detail.
    pub detail: String,
}

/// The storage interface. Implementations must be safe to share between nodes.
#[async_trait]
pub trait Store: Send + Sync {
    /// Inserts a new token.
    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()>;
    /// Finds a token by id.
    async fn token(&self, id: &str) -> StoreResult<Option<TokenRecord>>;
    /// Finds a token by the hash of its secret.
    async fn token_by_secret_hash(&self, hash: &str) -> StoreResult<Option<TokenRecord>>;
    /// Takes one use of a token if it has one left and is not expired at `now`;
    /// returns whether a use was taken. Atomic across nodes.
    async fn take_token_use(&self, id: &str, now: i64) -> StoreResult<bool>;
    /// Gives back a use taken for a request that then failed on our side.
    async fn return_token_use(&self, id: &str) -> StoreResult<()>;

    /// Records an issued certificate.
    async fn insert_certificate(&self, cert: &CertificateRecord) -> StoreResult<()>;
    /// Finds a certificate by serial.
    async fn certificate(&self, serial: &str) -> StoreResult<Option<CertificateRecord>>;
    /// Marks a certificate revoked; returns false when unknown or already revoked.
    async fn revoke(&self, serial: &str, at: i64, reason: u8) -> StoreResult<bool>;
    /// All revoked certificates that have not expired at `now`.
    async fn revoked_certificates(&self, now: i64) -> StoreResult<Vec<CertificateRecord>>;

    /// Claims a transaction id for a request fingerprint. Returns `None` when the claim was
    /// made, or the existing record when the id was already used.
    async fn claim_transaction(
        &self,
        protocol: &str,
        id: &str,
        fingerprint: &str,
    ) -> StoreResult<Option<TransactionRecord>>;
    /// Reads a transaction without claiming it (a resent request is answered from it before
    /// its credential is checked again).
    async fn transaction(&self, protocol: &str, id: &str)
    -> StoreResult<Option<TransactionRecord>>;
    /// Moves a claimed transaction to its final or pending state.
    async fn set_transaction_state(
        &self,
        protocol: &str,
        id: &str,
        state: &TransactionState,
    ) -> StoreResult<()>;
    /// Releases a claim after a failure on our side, so that a retry can proceed.
    async fn release_transaction(&self, protocol: &str, id: &str) -> StoreResult<()>;

    /// Stores a protocol's own state blob for a transaction (CMP, ACME).
    async fn put_blob(
        &self,
        kind: &str,
        key: &str,
        value: &[u8],
        expires_at: i64,
    ) -> StoreResult<()>;
    /// Reads a state blob that has not expired at `now`.
    async fn blob(&self, kind: &str, key: &str, now: i64) -> StoreResult<Option<Vec<u8>>>;
    /// Every unexpired blob of a kind, with its key (for sweepers; keep kinds small).
    async fn blobs_of_kind(&self, kind: &str, now: i64) -> StoreResult<Vec<(String, Vec<u8>)>>;
    /// Deletes a state blob; returns whether it existed (single-use values such as nonces).
    async fn take_blob(&self, kind: &str, key: &str, now: i64) -> StoreResult<bool>;

    /// Stores a pending request.
    async fn insert_pending(&self, pending: &PendingRecord) -> StoreResult<()>;
    /// Finds a pending request.
    async fn pending(&self, id: &str) -> StoreResult<Option<PendingRecord>>;
    /// Lists requests whose status is `status`.
    async fn pending_with_status(&self, status: &str) -> StoreResult<Vec<PendingRecord>>;
    /// Changes a pending request's status from `from` to `to`; false if it was not `from`.
    async fn update_pending(
        &self,
        id: &str,
        from: &str,
        to: &str,
        serial: Option<&str>,
    ) -> StoreResult<bool>;

    /// Appends an audit record.
    async fn audit(&self, record: &AuditRecord) -> StoreResult<()>;
    /// The newest audit records, newest first.
    async fn recent_audit(&self, limit: i64) -> StoreResult<Vec<AuditRecord>>;

    /// Increments and returns a named counter (CRL numbers).
    async fn next_counter(&self, name: &str) -> StoreResult<i64>;
    /// Whether the database answers.
    async fn ping(&self) -> StoreResult<()>;
}

/// A transaction state as stored: the state column and the detail column.
fn encode_state(state: &TransactionState) -> (&'static str, Option<&str>) {
    match state {
        TransactionState::InProgress => ("in_progress", None),
        TransactionState::Issued(serial) => ("issued", Some(serial)),
        TransactionState::Pending(id) => ("pending", Some(id)),
        TransactionState::Rejected(why) => ("rejected", Some(why)),
    }
}

/// The inverse of [`encode_state`].
fn decode_state(state: &str, detail: Option<String>) -> StoreResult<TransactionState> {
    let detail = detail.unwrap_or_default();
    Ok(match state {
        "in_progress" => TransactionState::InProgress,
        "issued" => TransactionState::Issued(detail),
        "pending" => TransactionState::Pending(detail),
        "rejected" => TransactionState::Rejected(detail),
        other => return Err(StoreError::Corrupt(format!("transaction state {other}"))),
    })
}
