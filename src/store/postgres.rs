//! The shared store: PostgreSQL, for several stateless gateway nodes on one database.
//!
//! Each node keeps a small pool of connections (deadpool). Every call is one statement, so
//! the calls that must be atomic across nodes are atomic in the database itself:
//! `take_token_use`, `take_blob` and `update_pending` are single conditional `UPDATE` or
//! `DELETE` statements (PostgreSQL re-checks the condition on the newest row version after
//! waiting for a concurrent writer), `claim_transaction` and `next_counter` are
//! `INSERT .. ON CONFLICT` statements. The schema is the SQLite one with PostgreSQL types
//! (`BIGSERIAL`, `BYTEA`), created at start under an advisory lock so that nodes starting
//! together do not race on it.
//!
//! TLS (rustls, [`tls`]) when `[store] tls_ca_file` names the CAs of the server's certificate.
//!
//! Timeouts: the connection attempt (`connect_timeout_secs`), the wait for a pooled
//! connection and each statement (`query_timeout_secs`, enforced by the server as
//! `statement_timeout` and by the client around the whole call). The password is never
//! logged: the log names host, port, database and user only.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use super::{
    AuditRecord, CertificateRecord, PendingRecord, Store, StoreError, StoreResult, TokenRecord,
    TransactionRecord, TransactionState, decode_state, encode_state,
};
use crate::config::StoreConfig;

mod tls;

/// The SQLite schema (portable SQL, every statement idempotent) in PostgreSQL's types.
fn schema() -> String {
    include_str!("schema.sql")
        .replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
        .replace(" BLOB ", " BYTEA ")
}

/// The advisory lock key held while the schema is applied ("enrollg" in ASCII).
const SCHEMA_LOCK: i64 = 0x0065_6e72_6f6c_6c67;

/// How many times a transaction claim is retried when the row it collided with vanished
/// (released by its owner) before it could be read.
const CLAIM_ATTEMPTS: usize = 5;

/// PostgreSQL-backed [`Store`].
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// Client-side bound on one call, pool wait included.
    call_timeout: Duration,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects as `[store]` says (reading its environment variables now), applies the
    /// schema and checks that the database answers.
    pub async fn connect(config: &StoreConfig) -> StoreResult<Self> {
        let pg = config
            .postgres()
            .map_err(StoreError::Postgres)?
            .ok_or_else(|| StoreError::Postgres("[store] selects no PostgreSQL URL".into()))?;
        Self::open(
            pg,
            config.tls_ca_file.as_deref(),
            config.pool_size,
            Duration::from_secs(config.connect_timeout_secs),
            Duration::from_secs(config.query_timeout_secs),
        )
        .await
    }

    /// Opens a pool on `pg` with these limits, applies the schema and checks the database.
    /// With `tls_ca_file`, every connection is TLS to a server certified by those CAs.
    pub async fn open(
        mut pg: tokio_postgres::Config,
        tls_ca_file: Option<&std::path::Path>,
        pool_size: usize,
        connect_timeout: Duration,
        query_timeout: Duration,
    ) -> StoreResult<Self> {
        pg.connect_timeout(connect_timeout);
        if pg.get_application_name().is_none() {
            pg.application_name("enrollgate");
        }
        // The server cancels a statement that outlives the query timeout.
        let millis = query_timeout.as_millis();
        let options = match pg.get_options() {
            Some(o) if !o.trim().is_empty() => format!("{o} -c statement_timeout={millis}"),
            _ => format!("-c statement_timeout={millis}"),
        };
        pg.options(options);
        let target = describe_target(&pg);
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match tls_ca_file {
            Some(ca) => {
                pg.ssl_mode(tokio_postgres::config::SslMode::Require);
                let tls = tls::RustlsConnect::from_ca_file(ca).map_err(StoreError::Postgres)?;
                Manager::from_config(pg, tls, manager_config)
            }
            None => Manager::from_config(pg, NoTls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(query_timeout))
            .create_timeout(Some(connect_timeout))
            .recycle_timeout(Some(connect_timeout))
            .build()
            .map_err(|e| StoreError::Postgres(format!("connection pool: {e}")))?;
        let store = Self {
            pool,
            call_timeout: query_timeout + connect_timeout,
        };
        store
            .apply_schema()
            .await
            .map_err(|e| StoreError::Postgres(format!("{target}: {e}")))?;
        let tls = tls_ca_file.is_some();
        tracing::info!(database = %target, pool_size, tls, "store: PostgreSQL");
        Ok(store)
    }

    async fn apply_schema(&self) -> StoreResult<()> {
        let work = async {
            let mut client = self.pool.get().await.map_err(pool_error)?;
            let tx = client.transaction().await.map_err(pg_error)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
                .await
                .map_err(pg_error)?;
            tx.batch_execute(&schema()).await.map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)
        };
        self.bounded(work).await
    }

    async fn bounded<T>(
        &self,
        work: impl std::future::Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        tokio::time::timeout(self.call_timeout, work)
            .await
            .map_err(|_| {
                StoreError::Postgres(format!("no answer within {}s", self.call_timeout.as_secs()))
            })?
    }

    /// Every row of one statement.
    async fn rows(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<Vec<Row>> {
        self.bounded(async {
            let client = self.pool.get().await.map_err(pool_error)?;
            let stmt = client.prepare_cached(sql).await.map_err(pg_error)?;
            client.query(&stmt, params).await.map_err(pg_error)
        })
        .await
    }

    /// At most one row.
    async fn row(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<Option<Row>> {
        let mut rows = self.rows(sql, params).await?;
        if rows.len() > 1 {
            return Err(StoreError::Corrupt(format!(
                "{} rows where at most one was expected",
                rows.len()
            )));
        }
        Ok(rows.pop())
    }

    /// Rows changed by a write.
    async fn exec(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<u64> {
        self.bounded(async {
            let client = self.pool.get().await.map_err(pool_error)?;
            let stmt = client.prepare_cached(sql).await.map_err(pg_error)?;
            client.execute(&stmt, params).await.map_err(pg_error)
        })
        .await
    }

    async fn read_transaction(
        &self,
        protocol: &str,
        id: &str,
    ) -> StoreResult<Option<TransactionRecord>> {
        let row = self
            .row(
                "SELECT fingerprint, state, detail FROM transactions \
                 WHERE protocol = $1 AND id = $2",
                &[&protocol, &id],
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(TransactionRecord {
            protocol: protocol.to_owned(),
            id: id.to_owned(),
            fingerprint: get(&row, "fingerprint")?,
            state: decode_state(&get::<String>(&row, "state")?, get(&row, "detail")?)?,
        }))
    }
}

/// `host:port/dbname as user`, never the password.
fn describe_target(pg: &tokio_postgres::Config) -> String {
    let host = pg.get_hosts().first().map_or_else(
        || "localhost".to_owned(),
        |h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        },
    );
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let db = pg.get_dbname().or(pg.get_user()).unwrap_or("postgres");
    let user = pg.get_user().unwrap_or("(default user)");
    format!("postgresql {host}:{port}/{db} as {user}")
}

/// The error's kind and, for a server error, its code and message (which name objects and
/// values of our own statements, never connection secrets).
fn pg_error(e: tokio_postgres::Error) -> StoreError {
    use std::error::Error as _;
    let text = match e.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => match e.source() {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    };
    StoreError::Postgres(text)
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg_error(e),
        other => StoreError::Postgres(format!("connection pool: {other}")),
    }
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, column: &str) -> StoreResult<T> {
    row.try_get(column)
        .map_err(|e| StoreError::Corrupt(format!("column {column}: {e}")))
}

fn token_row(r: &Row) -> StoreResult<TokenRecord> {
    Ok(TokenRecord {
        id: get(r, "id")?,
        secret_hash: get(r, "secret_hash")?,
        route: get(r, "route")?,
        uses_left: get(r, "uses_left")?,
        expires_at: get(r, "expires_at")?,
        subject_pattern: get(r, "subject_pattern")?,
    })
}

fn cert_row(r: &Row) -> StoreResult<CertificateRecord> {
    let revoked_at: Option<i64> = get(r, "revoked_at")?;
    let reason: Option<i64> = get(r, "revocation_reason")?;
    Ok(CertificateRecord {
        serial: get(r, "serial")?,
        route: get(r, "route")?,
        profile: get(r, "profile")?,
        subject: get(r, "subject")?,
        not_after: get(r, "not_after")?,
        der: get(r, "der")?,
        revoked: revoked_at.map(|at| (at, u8::try_from(reason.unwrap_or(0)).unwrap_or(0))),
    })
}

fn pending_row(r: &Row) -> StoreResult<PendingRecord> {
    Ok(PendingRecord {
        id: get(r, "id")?,
        protocol: get(r, "protocol")?,
        route: get(r, "route")?,
        subject: get(r, "subject")?,
        request: get(r, "request")?,
        status: get(r, "status")?,
        serial: get(r, "serial")?,
        created_at: get(r, "created_at")?,
    })
}

fn audit_row(r: &Row) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        event: get(r, "event")?,
        protocol: get(r, "protocol")?,
        route: get(r, "route")?,
        profile: get(r, "profile")?,
        requester: get(r, "requester")?,
        subject: get(r, "subject")?,
        serial: get(r, "serial")?,
        detail: get(r, "detail")?,
    })
}

#[async_trait]
impl Store for PostgresStore {
    async fn insert_token(&self, t: &TokenRecord) -> StoreResult<()> {
        self.exec(
            "INSERT INTO tokens (id, secret_hash, route, uses_left, expires_at, subject_pattern) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &t.id,
                &t.secret_hash,
                &t.route,
                &t.uses_left,
                &t.expires_at,
                &t.subject_pattern,
            ],
        )
        .await
        .map(drop)
    }

    async fn token(&self, id: &str) -> StoreResult<Option<TokenRecord>> {
        self.row("SELECT * FROM tokens WHERE id = $1", &[&id])
            .await?
            .as_ref()
            .map(token_row)
            .transpose()
    }

    async fn token_by_secret_hash(&self, hash: &str) -> StoreResult<Option<TokenRecord>> {
        self.row("SELECT * FROM tokens WHERE secret_hash = $1", &[&hash])
            .await?
            .as_ref()
            .map(token_row)
            .transpose()
    }

    async fn take_token_use(&self, id: &str, now: i64) -> StoreResult<bool> {
        self.exec(
            "UPDATE tokens SET uses_left = uses_left - 1 \
             WHERE id = $1 AND expires_at > $2 AND (uses_left IS NULL OR uses_left > 0)",
            &[&id, &now],
        )
        .await
        .map(|n| n == 1)
    }

    async fn return_token_use(&self, id: &str) -> StoreResult<()> {
        self.exec(
            "UPDATE tokens SET uses_left = uses_left + 1 WHERE id = $1 AND uses_left IS NOT NULL",
            &[&id],
        )
        .await
        .map(drop)
    }

    async fn insert_certificate(&self, c: &CertificateRecord) -> StoreResult<()> {
        self.exec(
            "INSERT INTO certificates (serial, route, profile, subject, not_after, der) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &c.serial,
                &c.route,
                &c.profile,
                &c.subject,
                &c.not_after,
                &c.der,
            ],
        )
        .await
        .map(drop)
    }

    async fn certificate(&self, serial: &str) -> StoreResult<Option<CertificateRecord>> {
        self.row("SELECT * FROM certificates WHERE serial = $1", &[&serial])
            .await?
            .as_ref()
            .map(cert_row)
            .transpose()
    }

    async fn revoke(&self, serial: &str, at: i64, reason: u8) -> StoreResult<bool> {
        self.exec(
            "UPDATE certificates SET revoked_at = $2, revocation_reason = $3 \
             WHERE serial = $1 AND revoked_at IS NULL",
            &[&serial, &at, &i64::from(reason)],
        )
        .await
        .map(|n| n == 1)
    }

    async fn revoked_certificates(&self, now: i64) -> StoreResult<Vec<CertificateRecord>> {
        self.rows(
            "SELECT * FROM certificates WHERE revoked_at IS NOT NULL AND not_after > $1 \
             ORDER BY serial",
            &[&now],
        )
        .await?
        .iter()
        .map(cert_row)
        .collect()
    }

    async fn claim_transaction(
        &self,
        protocol: &str,
        id: &str,
        fingerprint: &str,
    ) -> StoreResult<Option<TransactionRecord>> {
        for _ in 0..CLAIM_ATTEMPTS {
            // The claim itself is this one statement. On a conflict it waits for the other
            // writer to commit and inserts nothing; the next statement (a new snapshot)
            // then sees that writer's row.
            let inserted = self
                .exec(
                    "INSERT INTO transactions (protocol, id, fingerprint, state) \
                     VALUES ($1, $2, $3, 'in_progress') ON CONFLICT (protocol, id) DO NOTHING",
                    &[&protocol, &id, &fingerprint],
                )
                .await?;
            if inserted == 1 {
                return Ok(None);
            }
            if let Some(existing) = self.read_transaction(protocol, id).await? {
                return Ok(Some(existing));
            }
            // Released in between: claim again.
        }
        Err(StoreError::Postgres(format!(
            "transaction {protocol}/{id} kept changing hands"
        )))
    }

    async fn transaction(
        &self,
        protocol: &str,
        id: &str,
    ) -> StoreResult<Option<TransactionRecord>> {
        self.read_transaction(protocol, id).await
    }

    async fn set_transaction_state(
        &self,
        protocol: &str,
        id: &str,
        state: &TransactionState,
    ) -> StoreResult<()> {
        let (name, detail) = encode_state(state);
        self.exec(
            "UPDATE transactions SET state = $3, detail = $4 WHERE protocol = $1 AND id = $2",
            &[&protocol, &id, &name, &detail],
        )
        .await
        .map(drop)
    }

    async fn release_transaction(&self, protocol: &str, id: &str) -> StoreResult<()> {
        self.exec(
            "DELETE FROM transactions WHERE protocol = $1 AND id = $2 AND state = 'in_progress'",
            &[&protocol, &id],
        )
        .await
        .map(drop)
    }

    async fn put_blob(
        &self,
        kind: &str,
        key: &str,
        value: &[u8],
        expires_at: i64,
    ) -> StoreResult<()> {
        self.exec(
            "INSERT INTO blobs (kind, key, value, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, \
             expires_at = excluded.expires_at",
            &[&kind, &key, &value, &expires_at],
        )
        .await
        .map(drop)
    }

    async fn blob(&self, kind: &str, key: &str, now: i64) -> StoreResult<Option<Vec<u8>>> {
        self.row(
            "SELECT value FROM blobs WHERE kind = $1 AND key = $2 AND expires_at > $3",
            &[&kind, &key, &now],
        )
        .await?
        .map(|r| get(&r, "value"))
        .transpose()
    }

    async fn blobs_of_kind(&self, kind: &str, now: i64) -> StoreResult<Vec<(String, Vec<u8>)>> {
        self.rows(
            "SELECT key, value FROM blobs WHERE kind = $1 AND expires_at > $2",
            &[&kind, &now],
        )
        .await?
        .iter()
        .map(|r| Ok((get(r, "key")?, get(r, "value")?)))
        .collect()
    }

    async fn take_blob(&self, kind: &str, key: &str, now: i64) -> StoreResult<bool> {
        self.exec(
            "DELETE FROM blobs WHERE kind = $1 AND key = $2 AND expires_at > $3",
            &[&kind, &key, &now],
        )
        .await
        .map(|n| n == 1)
    }

    async fn insert_pending(&self, p: &PendingRecord) -> StoreResult<()> {
        self.exec(
            "INSERT INTO pending (id, protocol, route, subject, request, status, serial, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &p.id,
                &p.protocol,
                &p.route,
                &p.subject,
                &p.request,
                &p.status,
                &p.serial,
                &p.created_at,
            ],
        )
        .await
        .map(drop)
    }

    async fn pending(&self, id: &str) -> StoreResult<Option<PendingRecord>> {
        self.row("SELECT * FROM pending WHERE id = $1", &[&id])
            .await?
            .as_ref()
            .map(pending_row)
            .transpose()
    }

    async fn pending_with_status(&self, status: &str) -> StoreResult<Vec<PendingRecord>> {
        self.rows(
            "SELECT * FROM pending WHERE status = $1 ORDER BY created_at, id",
            &[&status],
        )
        .await?
        .iter()
        .map(pending_row)
        .collect()
    }

    async fn update_pending(
        &self,
        id: &str,
        from: &str,
        to: &str,
        serial: Option<&str>,
    ) -> StoreResult<bool> {
        self.exec(
            "UPDATE pending SET status = $3, serial = COALESCE($4, serial) \
             WHERE id = $1 AND status = $2",
            &[&id, &from, &to, &serial],
        )
        .await
        .map(|n| n == 1)
    }

    async fn audit(&self, a: &AuditRecord) -> StoreResult<()> {
        let at = crate::clock::now();
        self.exec(
            "INSERT INTO audit (at, event, protocol, route, profile, requester, subject, serial, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &at,
                &a.event,
                &a.protocol,
                &a.route,
                &a.profile,
                &a.requester,
                &a.subject,
                &a.serial,
                &a.detail,
            ],
        )
        .await
        .map(drop)
    }

    async fn recent_audit(&self, limit: i64) -> StoreResult<Vec<AuditRecord>> {
        self.rows(
            "SELECT * FROM audit ORDER BY seq DESC LIMIT $1",
            &[&limit.max(0)],
        )
        .await?
        .iter()
        .map(audit_row)
        .collect()
    }

    async fn next_counter(&self, name: &str) -> StoreResult<i64> {
        let row = self
            .row(
                "INSERT INTO counters (name, value) VALUES ($1, 1) \
                 ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value",
                &[&name],
            )
            .await?
            .ok_or_else(|| StoreError::Corrupt("counter upsert returned nothing".into()))?;
        get(&row, "value")
    }

    async fn ping(&self) -> StoreResult<()> {
        self.rows("SELECT 1", &[]).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_schema_uses_postgresql_types_only() {
        let schema = super::schema();
        for sqlite_only in ["BLOB", "AUTOINCREMENT", "INTEGER PRIMARY KEY"] {
            assert!(
                !schema.contains(sqlite_only),
                "{sqlite_only} left in:\n{schema}"
            );
        }
        assert_eq!(schema.matches("BYTEA").count(), 2);
        assert!(schema.contains("seq BIGSERIAL PRIMARY KEY"));
    }
}
