//! The store alone: the registrar's statements for one EST enrollment (token lookup,
//! `take_token_use`, "requested" audit, certificate insert, "issued" audit) from concurrent
//! tasks, on SQLite in a temporary directory and on a throwaway PostgreSQL cluster
//! (`initdb`/`pg_ctl`, loopback TCP, `fsync=off` like the tests) through one node's pool and
//! through two nodes' pools. No TLS, HTTP or crypto: how fast each store could carry
//! enrollments. Run with `cargo bench --bench store_postgres`.

#[path = "../tests/common/postgres.rs"]
mod pg;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use enrollgate::config::StoreConfig;
use enrollgate::store::{
    AuditRecord, CertificateRecord, PostgresStore, SqliteStore, Store, TokenRecord,
};

/// Enrollments per measured run.
const ENROLLMENTS: usize = 4000;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let cluster = pg::Cluster::start();
    println!("store ceiling: {ENROLLMENTS} enrollments' statements per run (5 calls each)");
    println!(
        "{:<36} {:>7} {:>14} {:>10} {:>10}",
        "store", "tasks", "enrollments/s", "p50 ms", "p99 ms"
    );
    runtime.block_on(async {
        let cases = [1usize, 16, 64]
            .into_iter()
            .flat_map(|c| [(c, true), (c, false)]);
        for (n, (clients, shared)) in cases.enumerate() {
            let tokens = if shared {
                "one token"
            } else {
                "token per task"
            };
            let name = |store: &str| format!("{store}, {tokens}");
            let dir = tempfile::tempdir()?;
            let sqlite: Arc<dyn Store> =
                Arc::new(SqliteStore::open(&dir.path().join("bench.db")).await?);
            let m = run(&[sqlite], clients, shared).await?;
            report(&name("sqlite"), clients, m);

            let db = format!("bench{n}");
            cluster.create_database(&db);
            let config = StoreConfig {
                url: Some(cluster.url(&db)),
                pool_size: 16,
                ..StoreConfig::default()
            };
            let one: Arc<dyn Store> = Arc::new(PostgresStore::connect(&config).await?);
            let m = run(std::slice::from_ref(&one), clients, shared).await?;
            report(&name("postgresql 1 node"), clients, m);
            let other: Arc<dyn Store> = Arc::new(PostgresStore::connect(&config).await?);
            let m = run(&[one, other], clients, shared).await?;
            report(&name("postgresql 2 nodes"), clients, m);
        }
        anyhow::Ok(())
    })?;
    Ok(())
}

struct Measured {
    per_sec: f64,
    latencies: Vec<Duration>,
}

fn report(name: &str, clients: usize, mut m: Measured) {
    m.latencies.sort();
    let at = |q: f64| {
        let i = ((m.latencies.len() as f64 - 1.0) * q).round() as usize;
        m.latencies[i].as_secs_f64() * 1e3
    };
    println!(
        "{name:<36} {clients:>7} {:>14.0} {:>10.2} {:>10.2}",
        m.per_sec,
        at(0.5),
        at(0.99)
    );
}

/// Runs [`ENROLLMENTS`] enrollments from `clients` tasks spread over `nodes`, all under one
/// unlimited token (every use updates the same row) or each task under its own.
async fn run(
    nodes: &[Arc<dyn Store>],
    clients: usize,
    shared_token: bool,
) -> anyhow::Result<Measured> {
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let run = RUN.fetch_add(1, Ordering::Relaxed);
    let token_of = move |c: usize| {
        if shared_token {
            format!("tok{run}")
        } else {
            format!("tok{run}-{c}")
        }
    };
    let owners = if shared_token { 1 } else { clients };
    for c in 0..owners {
        let id = token_of(c);
        nodes[0]
            .insert_token(&TokenRecord {
                secret_hash: format!("{id}-hash"),
                id,
                route: String::new(),
                uses_left: None,
                expires_at: i64::MAX,
                subject_pattern: None,
            })
            .await?;
    }
    let per_task = ENROLLMENTS / clients;
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let store = nodes[c % nodes.len()].clone();
            let token = token_of(c);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task);
                for n in 0..per_task {
                    let t = Instant::now();
                    one_enrollment(store.as_ref(), &token, c, n).await?;
                    latencies.push(t.elapsed());
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(ENROLLMENTS);
    for t in tasks {
        latencies.extend(t.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(Measured {
        per_sec: latencies.len() as f64 / elapsed,
        latencies,
    })
}

/// The registrar's statements for one issued certificate, in its order.
async fn one_enrollment(
    store: &dyn Store,
    token: &str,
    client: usize,
    n: usize,
) -> anyhow::Result<()> {
    let t = store
        .token(token)
        .await?
        .ok_or_else(|| anyhow::anyhow!("token vanished"))?;
    anyhow::ensure!(store.take_token_use(&t.id, 1).await?, "token refused");
    let mut audit = AuditRecord {
        event: "requested".into(),
        protocol: "est".into(),
        profile: "device".into(),
        requester: format!("token:{token}"),
        subject: format!("CN=bench-{client:02}"),
        ..AuditRecord::default()
    };
    store.audit(&audit).await?;
    let serial = format!("{token}-{client:04x}-{n:08x}");
    store
        .insert_certificate(&CertificateRecord {
            serial: serial.clone(),
            route: String::new(),
            profile: "device".into(),
            subject: audit.subject.clone(),
            not_after: i64::MAX,
            der: vec![0x30; 520],
            revoked: None,
        })
        .await?;
    audit.event = "issued".into();
    audit.serial = serial;
    store.audit(&audit).await?;
    Ok(())
}
