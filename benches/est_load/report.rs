//! The summary: a table on standard output and the same figures as JSON.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use crate::bound::Bound;
use crate::store::StoreCeiling;

/// One load run (one client count, one request kind).
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    /// `simpleenroll` or `cacerts`.
    pub request: &'static str,
    /// Concurrent kept-alive connections.
    pub clients: usize,
    /// Length of the measured window, seconds.
    pub seconds: f64,
    /// Successful requests completed in the window.
    pub completed: u64,
    /// Successful requests per second.
    pub per_sec: f64,
    /// Latency percentiles and maximum, milliseconds.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest request.
    pub max_ms: f64,
    /// Failed requests (any phase).
    pub failures: u64,
    /// The first few failure messages.
    pub errors: Vec<String>,
    /// per_sec divided by the crypto bound (enrollments only).
    pub ratio_to_crypto_bound: Option<f64>,
    /// Busy share of all cores during the window.
    pub machine_busy: f64,
    /// CPU microseconds per request: gateway runtime threads (TLS, HTTP, EST, registrar,
    /// signatures).
    pub server_cpu_us: f64,
    /// CPU microseconds per request in the store thread.
    pub sqlite_cpu_us: f64,
    /// CPU microseconds per request in the load clients.
    pub client_cpu_us: f64,
    /// CPU microseconds per request in any other thread.
    pub other_cpu_us: f64,
    /// Mean time inside the registrar (authentication, policy, store, backend), microseconds.
    pub registrar_mean_us: Option<f64>,
    /// Mean time inside the backend call (certificate signature), microseconds.
    pub backend_mean_us: Option<f64>,
}

/// Everything one bench invocation measured.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Cores the machine offers.
    pub cores: usize,
    /// Threads of the load clients' runtime (they compete with the gateway for the cores).
    pub client_threads: usize,
    /// Warm-up before each window, seconds.
    pub warmup_seconds: f64,
    /// Distinct CSRs cycled through.
    pub csr_pool: usize,
    /// The crypto bound.
    pub crypto_bound: BoundJson,
    /// The enrollment runs, then the cacerts ceiling runs.
    pub runs: Vec<Run>,
    /// The store-only ceiling runs.
    pub store_ceiling: Vec<StoreJson>,
    /// A plain-language note on how to read the figures.
    pub note: String,
}

/// [`Bound`] as JSON.
#[derive(Debug, Serialize)]
pub struct BoundJson {
    threads: usize,
    pairs_per_sec: f64,
    micros_per_pair_one_core: f64,
    verify_per_sec_one_core: f64,
    sign_per_sec_one_core: f64,
}

impl From<Bound> for BoundJson {
    fn from(b: Bound) -> Self {
        Self {
            threads: b.threads,
            pairs_per_sec: b.pairs_per_sec,
            micros_per_pair_one_core: b.micros_per_pair,
            verify_per_sec_one_core: b.verify_per_sec_one_core,
            sign_per_sec_one_core: b.sign_per_sec_one_core,
        }
    }
}

/// [`StoreCeiling`] as JSON.
#[derive(Debug, Serialize)]
pub struct StoreJson {
    clients: usize,
    enrollments_per_sec: f64,
    mean_us: f64,
    sqlite_cpu_us: f64,
    async_cpu_us: f64,
}

impl From<StoreCeiling> for StoreJson {
    fn from(s: StoreCeiling) -> Self {
        Self {
            clients: s.clients,
            enrollments_per_sec: s.per_sec,
            mean_us: s.mean_us,
            sqlite_cpu_us: s.sqlite_cpu_us,
            async_cpu_us: s.async_cpu_us,
        }
    }
}

/// The human-readable table.
pub fn table(s: &Summary) -> String {
    let mut out = String::new();
    let b = &s.crypto_bound;
    let _ = writeln!(
        out,
        "\nest_load on {} cores. The load clients ({} threads) run on the SAME cores as the \
         gateway:\nevery client CPU microsecond below is taken from the gateway.",
        s.cores, s.client_threads
    );
    let _ = writeln!(
        out,
        "crypto bound: {:.0} (CSR verify + certificate sign)/s on {} threads \
         ({:.1} us of one core each; one core alone: verify {:.0}/s, sign {:.0}/s)\n",
        b.pairs_per_sec,
        b.threads,
        b.micros_per_pair_one_core,
        b.verify_per_sec_one_core,
        b.sign_per_sec_one_core
    );
    let _ = writeln!(
        out,
        "{:<12} {:>4} {:>9} {:>7} {:>7} {:>7} {:>7} {:>5} {:>6} {:>5} | {:>7} {:>7} {:>7} {:>6} | {:>7} {:>6}",
        "request",
        "conn",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "fail",
        "ratio",
        "busy",
        "srv us",
        "sql us",
        "cli us",
        "oth us",
        "reg us",
        "sig us"
    );
    for r in &s.runs {
        let opt = |v: Option<f64>, d: usize| v.map_or("-".into(), |v| format!("{v:.d$}"));
        let _ = writeln!(
            out,
            "{:<12} {:>4} {:>9.0} {:>7.2} {:>7.2} {:>7.2} {:>7.1} {:>5} {:>6} {:>4.0}% | {:>7.0} {:>7.0} {:>7.0} {:>6.0} | {:>7} {:>6}",
            r.request,
            r.clients,
            r.per_sec,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.max_ms,
            r.failures,
            opt(r.ratio_to_crypto_bound, 3),
            r.machine_busy * 100.0,
            r.server_cpu_us,
            r.sqlite_cpu_us,
            r.client_cpu_us,
            r.other_cpu_us,
            opt(r.registrar_mean_us, 0),
            opt(r.backend_mean_us, 0),
        );
    }
    if !s.store_ceiling.is_empty() {
        let _ = writeln!(
            out,
            "\nstore alone (the registrar's 1 SELECT + 4 autocommit writes per enrollment):"
        );
        for c in &s.store_ceiling {
            let _ = writeln!(
                out,
                "  {:>3} tasks: {:>7.0} enrollments/s, mean {:>6.0} us, sqlite CPU {:>4.0} us + async {:>4.0} us each",
                c.clients, c.enrollments_per_sec, c.mean_us, c.sqlite_cpu_us, c.async_cpu_us
            );
        }
    }
    let _ = writeln!(out, "\n{}", s.note);
    out
}

/// Writes the summary as JSON to `$CARGO_TARGET_DIR/est_load.json` (else `target/`).
pub fn write_json(s: &Summary) -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("est_load.json");
    std::fs::write(&path, serde_json::to_string_pretty(s)?)?;
    Ok(path)
}

/// The legend printed under the table.
pub const LEGEND: &str = "conn: concurrent kept-alive HTTPS connections. ratio: req/s / crypto bound. \
busy: share of all cores in use.\nsrv/sql/cli/oth us: CPU microseconds per request in the gateway's \
runtime threads, the store thread,\nthe load clients and other threads. reg us: mean time \
inside the registrar (authn, policy, store, signature);\nsig us: mean time of the backend's \
signature call. cacerts rows: TLS + HTTP alone (no store, no signature).";
