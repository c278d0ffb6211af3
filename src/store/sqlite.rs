//! The embedded default store: one SQLite file in WAL mode, driven by one thread.
//!
//! Every call becomes a job on a queue served by a dedicated thread (`eg-store`) that owns
//! the connection. The thread takes whatever jobs are waiting (up to [`BATCH`]) and runs
//! them in one write transaction, each inside its own savepoint: a job that fails is rolled
//! back alone, and no caller hears back before the transaction holding its writes has
//! committed (group commit). Under load many requests share one commit and one wake-up of
//! the thread, where a connection pool pays a thread hand-off per statement and SQLite
//! lets only one writer in at a time anyway. Other processes on the same file (the CLI
//! deciding a held request) wait on SQLite's busy timeout.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};
use tokio::sync::{mpsc, oneshot};

use super::{
    AuditRecord, CertificateRecord, PendingRecord, Store, StoreError, StoreResult, TokenRecord,
    TransactionRecord, TransactionState, decode_state, encode_state,
};

/// The schema; each statement is idempotent so that every start may run it.
const SCHEMA: &str = include_str!("schema.sql");

/// The most jobs one transaction carries.
const BATCH: usize = 128;

/// Jobs waiting beyond this make callers wait for room (back-pressure, bounded memory).
const QUEUE: usize = 4096;

/// How long SQLite waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A queued call: runs on the store thread inside the batch's transaction and returns
/// whether it succeeded, plus the hand-back to run once the batch's fate is known.
type Job = Box<dyn FnOnce(&Connection) -> (bool, Reply) + Send>;

/// Delivers a job's result; told whether the transaction committed (or why not).
type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;

/// SQLite-backed [`Store`].
#[derive(Clone, Debug)]
pub struct SqliteStore {
    jobs: mpsc::Sender<Job>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file, applies the schema and starts the
    /// store thread. The thread ends when the last handle is dropped.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let path = path.to_path_buf();
        let conn = tokio::task::spawn_blocking(move || connect(&path))
            .await
            .map_err(|e| StoreError::Corrupt(format!("store start: {e}")))??;
        let (jobs, queue) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("eg-store".into())
            .spawn(move || serve(conn, queue))
            .map_err(|e| StoreError::Corrupt(format!("store thread: {e}")))?;
        Ok(Self { jobs })
    }

    /// Runs `f` on the store thread and returns its result once its writes are committed.
    async fn call<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = f(conn);
            let ok = result.is_ok();
            let reply: Reply = Box::new(move |committed| {
                let result = match committed {
                    Ok(()) => result,
                    Err(e) => Err(StoreError::Corrupt(format!("commit failed: {e}"))),
                };
                let _ = tx.send(result);
            });
            (ok, reply)
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| StoreError::Corrupt("store thread stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Corrupt("store thread stopped".into()))?
    }
}

fn connect(path: &PathBuf) -> StoreResult<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// The store thread: batches of jobs, one transaction per batch.
fn serve(conn: Connection, mut queue: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(BATCH);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(&conn, &mut batch);
    }
}

fn run_batch(conn: &Connection, batch: &mut Vec<Job>) {
    if let Err(e) = control(conn, "BEGIN IMMEDIATE") {
        tracing::warn!(error = %e, "store: cannot begin a transaction");
        // Dropping a job drops its reply channel: its caller hears that the store failed.
        batch.clear();
        return;
    }
    let alone = batch.len() == 1;
    let mut replies = Vec::with_capacity(batch.len());
    let mut all_ok = true;
    for job in batch.drain(..) {
        // A job that shares the transaction runs in a savepoint so that its failure undoes
        // only its own writes; a job alone has the transaction to itself.
        let saved = !alone && control(conn, "SAVEPOINT job").is_ok();
        let (ok, reply) = job(conn);
        if saved {
            if !ok {
                let _ = control(conn, "ROLLBACK TO job");
            }
            let _ = control(conn, "RELEASE job");
        }
        all_ok &= ok;
        replies.push(reply);
    }
    let end = if alone && !all_ok {
        "ROLLBACK"
    } else {
        "COMMIT"
    };
    let committed = control(conn, end).map_err(|e| {
        let _ = control(conn, "ROLLBACK");
        tracing::warn!(error = %e, "store: commit failed");
        e.to_string()
    });
    for reply in replies {
        reply(committed.clone());
    }
}

/// A transaction-control statement, prepared once and kept.
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

fn token_row(r: &Row<'_>) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord {
        id: r.get("id")?,
        secret_hash: r.get("secret_hash")?,
        route: r.get("route")?,
        uses_left: r.get("uses_left")?,
        expires_at: r.get("expires_at")?,
        subject_pattern: r.get("subject_pattern")?,
    })
}

fn cert_row(r: &Row<'_>) -> rusqlite::Result<CertificateRecord> {
    let revoked_at: Option<i64> = r.get("revoked_at")?;
    let reason: Option<i64> = r.get("revocation_reason")?;
    Ok(CertificateRecord {
        serial: r.get("serial")?,
        route: r.get("route")?,
        profile: r.get("profile")?,
        subject: r.get("subject")?,
        not_after: r.get("not_after")?,
        der: r.get("der")?,
        revoked: revoked_at.map(|at| (at, u8::try_from(reason.unwrap_or(0)).unwrap_or(0))),
    })
}

fn pending_row(r: &Row<'_>) -> rusqlite::Result<PendingRecord> {
    Ok(PendingRecord {
        id: r.get("id")?,
        protocol: r.get("protocol")?,
        route: r.get("route")?,
        subject: r.get("subject")?,
        request: r.get("request")?,
        status: r.get("status")?,
        serial: r.get("serial")?,
        created_at: r.get("created_at")?,
    })
}

fn audit_row(r: &Row<'_>) -> rusqlite::Result<AuditRecord> {
    Ok(AuditRecord {
        event: r.get("event")?,
        protocol: r.get("protocol")?,
        route: r.get("route")?,
        profile: r.get("profile")?,
        requester: r.get("requester")?,
        subject: r.get("subject")?,
        serial: r.get("serial")?,
        detail: r.get("detail")?,
    })
}

/// One row or none.
fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Option<T>> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row(params, map)
        .optional()?)
}

/// Every row.
fn all<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, map)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Rows changed by a write.
fn exec(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> StoreResult<usize> {
    Ok(conn.prepare_cached(sql)?.execute(params)?)
}

fn read_transaction(
    conn: &Connection,
    protocol: &str,
    id: &str,
) -> StoreResult<Option<TransactionRecord>> {
    let row = one(
        conn,
        "SELECT fingerprint, state, detail FROM transactions WHERE protocol = ?1 AND id = ?2",
        params![protocol, id],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        },
    )?;
    let Some((fingerprint, state, detail)) = row else {
        return Ok(None);
    };
    Ok(Some(TransactionRecord {
        protocol: protocol.to_owned(),
        id: id.to_owned(),
        fingerprint,
        state: decode_state(&state, detail)?,
    }))
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_token(&self, t: &TokenRecord) -> StoreResult<()> {
        let t = t.clone();
        self.call(move |c| {
            exec(
                c,
                "INSERT INTO tokens (id, secret_hash, route, uses_left, expires_at, subject_pattern) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![t.id, t.secret_hash, t.route, t.uses_left, t.expires_at, t.subject_pattern],
            )
            .map(drop)
        })
        .await
    }

    async fn token(&self, id: &str) -> StoreResult<Option<TokenRecord>> {
        let id = id.to_owned();
        self.call(move |c| one(c, "SELECT * FROM tokens WHERE id = ?1", [id], token_row))
            .await
    }

    async fn token_by_secret_hash(&self, hash: &str) -> StoreResult<Option<TokenRecord>> {
        let hash = hash.to_owned();
        self.call(move |c| {
            one(
                c,
                "SELECT * FROM tokens WHERE secret_hash = ?1",
                [hash],
                token_row,
            )
        })
        .await
    }

    async fn take_token_use(&self, id: &str, now: i64) -> StoreResult<bool> {
        let id = id.to_owned();
        self.call(move |c| {
            exec(
                c,
                "UPDATE tokens SET uses_left = uses_left - 1 \
                 WHERE id = ?1 AND expires_at > ?2 AND (uses_left IS NULL OR uses_left > 0)",
                params![id, now],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn return_token_use(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.call(move |c| {
            exec(
                c,
                "UPDATE tokens SET uses_left = uses_left + 1 WHERE id = ?1 AND uses_left IS NOT NULL",
                [id],
            )
            .map(drop)
        })
        .await
    }

    async fn insert_certificate(&self, cert: &CertificateRecord) -> StoreResult<()> {
        let cert = cert.clone();
        self.call(move |c| {
            exec(
                c,
                "INSERT INTO certificates (serial, route, profile, subject, not_after, der) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    cert.serial,
                    cert.route,
                    cert.profile,
                    cert.subject,
                    cert.not_after,
                    cert.der
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn certificate(&self, serial: &str) -> StoreResult<Option<CertificateRecord>> {
        let serial = serial.to_owned();
        self.call(move |c| {
            one(
                c,
                "SELECT * FROM certificates WHERE serial = ?1",
                [serial],
                cert_row,
            )
        })
        .await
    }

    async fn revoke(&self, serial: &str, at: i64, reason: u8) -> StoreResult<bool> {
        let serial = serial.to_owned();
        self.call(move |c| {
            exec(
                c,
                "UPDATE certificates SET revoked_at = ?2, revocation_reason = ?3 \
                 WHERE serial = ?1 AND revoked_at IS NULL",
                params![serial, at, i64::from(reason)],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn revoked_certificates(&self, now: i64) -> StoreResult<Vec<CertificateRecord>> {
        self.call(move |c| {
            all(
                c,
                "SELECT * FROM certificates WHERE revoked_at IS NOT NULL AND not_after > ?1 \
                 ORDER BY serial",
                [now],
                cert_row,
            )
        })
        .await
    }

    async fn claim_transaction(
        &self,
        protocol: &str,
        id: &str,
        fingerprint: &str,
    ) -> StoreResult<Option<TransactionRecord>> {
        let (protocol, id, fingerprint) =
            (protocol.to_owned(), id.to_owned(), fingerprint.to_owned());
        self.call(move |c| {
            let inserted = exec(
                c,
                "INSERT INTO transactions (protocol, id, fingerprint, state) \
                 VALUES (?1, ?2, ?3, 'in_progress') ON CONFLICT (protocol, id) DO NOTHING",
                params![protocol, id, fingerprint],
            )?;
            if inserted == 1 {
                return Ok(None);
            }
            // The same thread serves every call, so the conflicting row is still there.
            read_transaction(c, &protocol, &id)?
                .map(Some)
                .ok_or_else(|| StoreError::Corrupt("claimed transaction vanished".into()))
        })
        .await
    }

    async fn transaction(
        &self,
        protocol: &str,
        id: &str,
    ) -> StoreResult<Option<TransactionRecord>> {
        let (protocol, id) = (protocol.to_owned(), id.to_owned());
        self.call(move |c| read_transaction(c, &protocol, &id))
            .await
    }

    async fn set_transaction_state(
        &self,
        protocol: &str,
        id: &str,
        state: &TransactionState,
    ) -> StoreResult<()> {
        let (protocol, id) = (protocol.to_owned(), id.to_owned());
        let (name, detail) = encode_state(state);
        let detail = detail.map(str::to_owned);
        self.call(move |c| {
            exec(
                c,
                "UPDATE transactions SET state = ?3, detail = ?4 WHERE protocol = ?1 AND id = ?2",
                params![protocol, id, name, detail],
            )
            .map(drop)
        })
        .await
    }

    async fn release_transaction(&self, protocol: &str, id: &str) -> StoreResult<()> {
        let (protocol, id) = (protocol.to_owned(), id.to_owned());
        self.call(move |c| {
            exec(
                c,
                "DELETE FROM transactions WHERE protocol = ?1 AND id = ?2 AND state = 'in_progress'",
                params![protocol, id],
            )
            .map(drop)
        })
        .await
    }

    async fn put_blob(
        &self,
        kind: &str,
        key: &str,
        value: &[u8],
        expires_at: i64,
    ) -> StoreResult<()> {
        let (kind, key, value) = (kind.to_owned(), key.to_owned(), value.to_vec());
        self.call(move |c| {
            exec(
                c,
                "INSERT INTO blobs (kind, key, value, expires_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, \
                 expires_at = excluded.expires_at",
                params![kind, key, value, expires_at],
            )
            .map(drop)
        })
        .await
    }

    async fn blob(&self, kind: &str, key: &str, now: i64) -> StoreResult<Option<Vec<u8>>> {
        let (kind, key) = (kind.to_owned(), key.to_owned());
        self.call(move |c| {
            one(
                c,
                "SELECT value FROM blobs WHERE kind = ?1 AND key = ?2 AND expires_at > ?3",
                params![kind, key, now],
                |r| r.get(0),
            )
        })
        .await
    }

    async fn blobs_of_kind(&self, kind: &str, now: i64) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let kind = kind.to_owned();
        self.call(move |c| {
            all(
                c,
                "SELECT key, value FROM blobs WHERE kind = ?1 AND expires_at > ?2",
                params![kind, now],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .await
    }

    async fn take_blob(&self, kind: &str, key: &str, now: i64) -> StoreResult<bool> {
        let (kind, key) = (kind.to_owned(), key.to_owned());
        self.call(move |c| {
            exec(
                c,
                "DELETE FROM blobs WHERE kind = ?1 AND key = ?2 AND expires_at > ?3",
                params![kind, key, now],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn insert_pending(&self, p: &PendingRecord) -> StoreResult<()> {
        let p = p.clone();
        self.call(move |c| {
            exec(
                c,
                "INSERT INTO pending (id, protocol, route, subject, request, status, serial, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![p.id, p.protocol, p.route, p.subject, p.request, p.status, p.serial, p.created_at],
            )
            .map(drop)
        })
        .await
    }

    async fn pending(&self, id: &str) -> StoreResult<Option<PendingRecord>> {
        let id = id.to_owned();
        self.call(move |c| one(c, "SELECT * FROM pending WHERE id = ?1", [id], pending_row))
            .await
    }

    async fn pending_with_status(&self, status: &str) -> StoreResult<Vec<PendingRecord>> {
        let status = status.to_owned();
        self.call(move |c| {
            all(
                c,
                "SELECT * FROM pending WHERE status = ?1 ORDER BY created_at",
                [status],
                pending_row,
            )
        })
        .await
    }

    async fn update_pending(
        &self,
        id: &str,
        from: &str,
        to: &str,
        serial: Option<&str>,
    ) -> StoreResult<bool> {
        let (id, from, to) = (id.to_owned(), from.to_owned(), to.to_owned());
        let serial = serial.map(str::to_owned);
        self.call(move |c| {
            exec(
                c,
                "UPDATE pending SET status = ?3, serial = COALESCE(?4, serial) \
                 WHERE id = ?1 AND status = ?2",
                params![id, from, to, serial],
            )
            .map(|n| n == 1)
        })
        .await
    }

    async fn audit(&self, a: &AuditRecord) -> StoreResult<()> {
        let a = a.clone();
        let at = crate::clock::now();
        self.call(move |c| {
            exec(
                c,
                "INSERT INTO audit (at, event, protocol, route, profile, requester, subject, serial, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![at, a.event, a.protocol, a.route, a.profile, a.requester, a.subject, a.serial, a.detail],
            )
            .map(drop)
        })
        .await
    }

    async fn recent_audit(&self, limit: i64) -> StoreResult<Vec<AuditRecord>> {
        self.call(move |c| {
            all(
                c,
                "SELECT * FROM audit ORDER BY seq DESC LIMIT ?1",
                [limit],
                audit_row,
            )
        })
        .await
    }

    async fn next_counter(&self, name: &str) -> StoreResult<i64> {
        let name = name.to_owned();
        self.call(move |c| {
            one(
                c,
                "INSERT INTO counters (name, value) VALUES (?1, 1) \
                 ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value",
                [name],
                |r| r.get(0),
            )?
            .ok_or_else(|| StoreError::Corrupt("counter upsert returned nothing".into()))
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.call(|c| one(c, "SELECT 1", [], |r| r.get::<_, i64>(0)).map(drop))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn token_uses_run_out_and_expire() {
        let (_d, s) = store().await;
        let t = TokenRecord {
            id: "t1".into(),
            secret_hash: "h".into(),
            route: String::new(),
            uses_left: Some(1),
            expires_at: 100,
            subject_pattern: None,
        };
        s.insert_token(&t).await.unwrap();
        assert_eq!(s.token_by_secret_hash("h").await.unwrap(), Some(t));
        assert!(
            !s.take_token_use("t1", 100).await.unwrap(),
            "expired at 100"
        );
        assert!(s.take_token_use("t1", 99).await.unwrap());
        assert!(!s.take_token_use("t1", 99).await.unwrap(), "spent");
        s.return_token_use("t1").await.unwrap();
        assert!(s.take_token_use("t1", 99).await.unwrap());
    }

    #[tokio::test]
    async fn a_transaction_is_claimed_once() {
        let (_d, s) = store().await;
        assert_eq!(s.claim_transaction("scep", "x", "f1").await.unwrap(), None);
        let again = s
            .claim_transaction("scep", "x", "f2")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.fingerprint, "f1");
        assert_eq!(again.state, TransactionState::InProgress);
        s.set_transaction_state("scep", "x", &TransactionState::Issued("ab".into()))
            .await
            .unwrap();
        let done = s
            .claim_transaction("scep", "x", "f1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done.state, TransactionState::Issued("ab".into()));
    }

    #[tokio::test]
    async fn blobs_are_single_use_and_counters_count() {
        let (_d, s) = store().await;
        s.put_blob("nonce", "n1", b"", 50).await.unwrap();
        assert!(s.take_blob("nonce", "n1", 10).await.unwrap());
        assert!(!s.take_blob("nonce", "n1", 10).await.unwrap());
        assert_eq!(s.next_counter("crl").await.unwrap(), 1);
        assert_eq!(s.next_counter("crl").await.unwrap(), 2);
    }
}
