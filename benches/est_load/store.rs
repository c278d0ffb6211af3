//! The store ceiling: the registrar's SQLite statements for one EST enrollment, alone.
//!
//! Per enrollment the registrar (src/issuance) runs, in this order: the token lookup
//! (`SELECT` by id), `take_token_use` (an `UPDATE`, even for unlimited tokens), the
//! "requested" audit `INSERT`, then after the signature the certificate `INSERT` and the
//! "issued" audit `INSERT`: one read and four autocommit write transactions. This runs the
//! same calls through the same [`SqliteStore`] from `clients` concurrent tasks, on a fresh
//! database, with no TLS, HTTP or crypto, to show how fast the store alone could go.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use enrollgate::store::{AuditRecord, CertificateRecord, SqliteStore, Store, TokenRecord};

/// What the store-only run measured.
#[derive(Clone, Copy, Debug)]
pub struct StoreCeiling {
    /// Concurrent tasks.
    pub clients: usize,
    /// Enrollments' worth of statements per second.
    pub per_sec: f64,
    /// Mean wall time of one enrollment's statements, microseconds.
    pub mean_us: f64,
    /// CPU of the store thread per enrollment, microseconds.
    pub sqlite_cpu_us: f64,
    /// CPU of the async side (the runtime's side of each store call) per enrollment, microseconds.
    pub async_cpu_us: f64,
}

/// Runs the statement sequence for `seconds` on a new database in `dir`.
pub async fn measure(
    dir: &std::path::Path,
    clients: usize,
    seconds: f64,
) -> anyhow::Result<StoreCeiling> {
    let store =
        Arc::new(SqliteStore::open(&dir.join(format!("store-ceiling-{clients}.db"))).await?);
    let token = TokenRecord {
        id: "tokbench".into(),
        secret_hash: "0".repeat(64),
        route: String::new(),
        uses_left: None,
        expires_at: i64::MAX,
        subject_pattern: None,
    };
    store.insert_token(&token).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let before = crate::cpu::snapshot();
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| tokio::spawn(loop_statements(store.clone(), stop.clone(), c)))
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut done = 0u64;
    let mut busy = Duration::ZERO;
    for t in tasks {
        let (n, d) = t.await??;
        done += n;
        busy += d;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let usage = before.until(&crate::cpu::snapshot());
    let per = |s: f64| s * 1e6 / done.max(1) as f64;
    Ok(StoreCeiling {
        clients,
        per_sec: done as f64 / elapsed,
        mean_us: busy.as_secs_f64() * 1e6 / done.max(1) as f64,
        sqlite_cpu_us: per(usage.seconds[1]),
        async_cpu_us: per(usage.seconds[0]),
    })
}

async fn loop_statements(
    store: Arc<SqliteStore>,
    stop: Arc<AtomicBool>,
    client: usize,
) -> anyhow::Result<(u64, Duration)> {
    let mut done = 0u64;
    let mut busy = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        one_enrollment(store.as_ref(), client, done).await?;
        busy += started.elapsed();
        done += 1;
    }
    Ok((done, busy))
}

/// The registrar's statements for one issued certificate, in its order.
async fn one_enrollment(store: &dyn Store, client: usize, n: u64) -> anyhow::Result<()> {
    let token = store
        .token("tokbench")
        .await?
        .ok_or_else(|| anyhow::anyhow!("token vanished"))?;
    anyhow::ensure!(store.take_token_use(&token.id, 1).await?, "token refused");
    let mut audit = AuditRecord {
        event: "requested".into(),
        protocol: "est".into(),
        route: String::new(),
        profile: "device".into(),
        requester: format!("token:{}", token.id),
        subject: format!("CN=bench-device-{client:02},O=enrollgate bench"),
        ..AuditRecord::default()
    };
    store.audit(&audit).await?;
    let serial = format!("{client:08x}{n:024x}");
    let record = CertificateRecord {
        serial: serial.clone(),
        route: String::new(),
        profile: "device".into(),
        subject: audit.subject.clone(),
        not_after: i64::MAX,
        der: vec![0x30; 520],
        revoked: None,
    };
    store.insert_certificate(&record).await?;
    audit.event = "issued".into();
    audit.serial = serial;
    audit.detail = "builtin".into();
    store.audit(&audit).await?;
    Ok(())
}
