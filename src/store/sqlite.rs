//! The embedded default store: one SQLite file in WAL mode.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
};

use super::{
    AuditRecord, CertificateRecord, PendingRecord, Store, StoreError, StoreResult, TokenRecord,
    TransactionRecord, TransactionState,
};

/// The schema; each statement is idempotent so that every start may run it.
const SCHEMA: &str = include_str!("schema.sql");

/// SQLite-backed [`Store`].
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies the schema.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        Ok(Self { pool })
    }
}

fn token_row(r: &SqliteRow) -> StoreResult<TokenRecord> {
    Ok(TokenRecord {
        id: r.try_get("id")?,
        secret_hash: r.try_get("secret_hash")?,
        route: r.try_get("route")?,
        uses_left: r.try_get("uses_left")?,
        expires_at: r.try_get("expires_at")?,
        subject_pattern: r.try_get("subject_pattern")?,
    })
}

fn cert_row(r: &SqliteRow) -> StoreResult<CertificateRecord> {
    let revoked_at: Option<i64> = r.try_get("revoked_at")?;
    let reason: Option<i64> = r.try_get("revocation_reason")?;
    Ok(CertificateRecord {
        serial: r.try_get("serial")?,
        route: r.try_get("route")?,
        profile: r.try_get("profile")?,
        subject: r.try_get("subject")?,
        not_after: r.try_get("not_after")?,
        der: r.try_get("der")?,
        revoked: revoked_at.map(|at| (at, u8::try_from(reason.unwrap_or(0)).unwrap_or(0))),
    })
}

fn pending_row(r: &SqliteRow) -> StoreResult<PendingRecord> {
    Ok(PendingRecord {
        id: r.try_get("id")?,
        protocol: r.try_get("protocol")?,
        route: r.try_get("route")?,
        subject: r.try_get("subject")?,
        request: r.try_get("request")?,
        status: r.try_get("status")?,
        serial: r.try_get("serial")?,
        created_at: r.try_get("created_at")?,
    })
}

fn encode_state(state: &TransactionState) -> (&'static str, Option<&str>) {
    match state {
        TransactionState::InProgress => ("in_progress", None),
        TransactionState::Issued(serial) => ("issued", Some(serial)),
        TransactionState::Pending(id) => ("pending", Some(id)),
        TransactionState::Rejected(why) => ("rejected", Some(why)),
    }
}

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

#[async_trait]
impl Store for SqliteStore {
    async fn insert_token(&self, t: &TokenRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO tokens (id, secret_hash, route, uses_left, expires_at, subject_pattern) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&t.id)
        .bind(&t.secret_hash)
        .bind(&t.route)
        .bind(t.uses_left)
        .bind(t.expires_at)
        .bind(&t.subject_pattern)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn token(&self, id: &str) -> StoreResult<Option<TokenRecord>> {
        let row = sqlx::query("SELECT * FROM tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_row).transpose()
    }

    async fn token_by_secret_hash(&self, hash: &str) -> StoreResult<Option<TokenRecord>> {
        let row = sqlx::query("SELECT * FROM tokens WHERE secret_hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_row).transpose()
    }

    async fn take_token_use(&self, id: &str, now: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE tokens SET uses_left = uses_left - 1 \
             WHERE id = $1 AND expires_at > $2 AND (uses_left IS NULL OR uses_left > 0)",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn return_token_use(&self, id: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE tokens SET uses_left = uses_left + 1 WHERE id = $1 AND uses_left IS NOT NULL",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn insert_certificate(&self, c: &CertificateRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO certificates (serial, route, profile, subject, not_after, der) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&c.serial)
        .bind(&c.route)
        .bind(&c.profile)
        .bind(&c.subject)
        .bind(c.not_after)
        .bind(&c.der)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn certificate(&self, serial: &str) -> StoreResult<Option<CertificateRecord>> {
        let row = sqlx::query("SELECT * FROM certificates WHERE serial = $1")
            .bind(serial)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(cert_row).transpose()
    }

    async fn revoke(&self, serial: &str, at: i64, reason: u8) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE certificates SET revoked_at = $2, revocation_reason = $3 \
             WHERE serial = $1 AND revoked_at IS NULL",
        )
        .bind(serial)
        .bind(at)
        .bind(i64::from(reason))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoked_certificates(&self, now: i64) -> StoreResult<Vec<CertificateRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM certificates WHERE revoked_at IS NOT NULL AND not_after > $1 ORDER BY serial",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(cert_row).collect()
    }

    async fn claim_transaction(
        &self,
        protocol: &str,
        id: &str,
        fingerprint: &str,
    ) -> StoreResult<Option<TransactionRecord>> {
        let inserted = sqlx::query(
            "INSERT INTO transactions (protocol, id, fingerprint, state) VALUES ($1, $2, $3, 'in_progress') \
             ON CONFLICT (protocol, id) DO NOTHING",
        )
        .bind(protocol)
        .bind(id)
        .bind(fingerprint)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(None);
        }
        // The conflicting row exists; it can only vanish if a concurrent failure released it.
        match self.transaction(protocol, id).await? {
            Some(existing) => Ok(Some(existing)),
            None => Err(StoreError::Database(sqlx::Error::RowNotFound)),
        }
    }

    async fn transaction(
        &self,
        protocol: &str,
        id: &str,
    ) -> StoreResult<Option<TransactionRecord>> {
        let row = sqlx::query("SELECT * FROM transactions WHERE protocol = $1 AND id = $2")
            .bind(protocol)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let state: String = row.try_get("state")?;
        Ok(Some(TransactionRecord {
            protocol: protocol.to_owned(),
            id: id.to_owned(),
            fingerprint: row.try_get("fingerprint")?,
            state: decode_state(&state, row.try_get("detail")?)?,
        }))
    }

    async fn set_transaction_state(
        &self,
        protocol: &str,
        id: &str,
        state: &TransactionState,
    ) -> StoreResult<()> {
        let (name, detail) = encode_state(state);
        sqlx::query(
            "UPDATE transactions SET state = $3, detail = $4 WHERE protocol = $1 AND id = $2",
        )
        .bind(protocol)
        .bind(id)
        .bind(name)
        .bind(detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn release_transaction(&self, protocol: &str, id: &str) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM transactions WHERE protocol = $1 AND id = $2 AND state = 'in_progress'",
        )
        .bind(protocol)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn put_blob(
        &self,
        kind: &str,
        key: &str,
        value: &[u8],
        expires_at: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO blobs (kind, key, value, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
        )
        .bind(kind)
        .bind(key)
        .bind(value)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn blob(&self, kind: &str, key: &str, now: i64) -> StoreResult<Option<Vec<u8>>> {
        let row =
            sqlx::query("SELECT value FROM blobs WHERE kind = $1 AND key = $2 AND expires_at > $3")
                .bind(kind)
                .bind(key)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    async fn blobs_of_kind(&self, kind: &str, now: i64) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let rows = sqlx::query("SELECT key, value FROM blobs WHERE kind = $1 AND expires_at > $2")
            .bind(kind)
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("key")?, r.try_get("value")?)))
            .collect()
    }

    async fn take_blob(&self, kind: &str, key: &str, now: i64) -> StoreResult<bool> {
        let done =
            sqlx::query("DELETE FROM blobs WHERE kind = $1 AND key = $2 AND expires_at > $3")
                .bind(kind)
                .bind(key)
                .bind(now)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_pending(&self, p: &PendingRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO pending (id, protocol, route, subject, request, status, serial, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&p.id)
        .bind(&p.protocol)
        .bind(&p.route)
        .bind(&p.subject)
        .bind(&p.request)
        .bind(&p.status)
        .bind(&p.serial)
        .bind(p.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn pending(&self, id: &str) -> StoreResult<Option<PendingRecord>> {
        let row = sqlx::query("SELECT * FROM pending WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(pending_row).transpose()
    }

    async fn pending_with_status(&self, status: &str) -> StoreResult<Vec<PendingRecord>> {
        let rows = sqlx::query("SELECT * FROM pending WHERE status = $1 ORDER BY created_at")
            .bind(status)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(pending_row).collect()
    }

    async fn update_pending(
        &self,
        id: &str,
        from: &str,
        to: &str,
        serial: Option<&str>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE pending SET status = $3, serial = COALESCE($4, serial) WHERE id = $1 AND status = $2",
        )
        .bind(id)
        .bind(from)
        .bind(to)
        .bind(serial)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn audit(&self, a: &AuditRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit (at, event, protocol, route, profile, requester, subject, serial, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(crate::clock::now())
        .bind(&a.event)
        .bind(&a.protocol)
        .bind(&a.route)
        .bind(&a.profile)
        .bind(&a.requester)
        .bind(&a.subject)
        .bind(&a.serial)
        .bind(&a.detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn recent_audit(&self, limit: i64) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query("SELECT * FROM audit ORDER BY seq DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    event: r.try_get("event")?,
                    protocol: r.try_get("protocol")?,
                    route: r.try_get("route")?,
                    profile: r.try_get("profile")?,
                    requester: r.try_get("requester")?,
                    subject: r.try_get("subject")?,
                    serial: r.try_get("serial")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    async fn next_counter(&self, name: &str) -> StoreResult<i64> {
        let row = sqlx::query(
            "INSERT INTO counters (name, value) VALUES ($1, 1) \
             ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value",
        )
        .bind(name)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("value")?)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
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
