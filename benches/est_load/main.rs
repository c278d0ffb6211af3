//! End-to-end EST load generator: enrollments per second, latency, and how far they are
//! from what the machine's signatures allow.
//!
//! `cargo bench --bench est_load` starts the gateway in this process on loopback with a fresh
//! data directory, creates one unlimited-use enrollment token and a pool of distinct P-256
//! CSRs, then for each client count runs N kept-alive HTTPS connections that POST
//! `/.well-known/est/simpleenroll` back to back (HTTP Basic with the token, base64 CSR).
//! Every reply must be 200 and carry a certificate for the CSR's key; any failure fails the
//! run. Next to it, in the same process and on the same cores, it measures:
//!
//! - the crypto bound: (CSR verify + certificate sign) pairs per second, one thread per core;
//! - a TLS + HTTP ceiling: `GET cacerts` at the largest client count (no store, no signing);
//! - a store ceiling: the registrar's SQLite statements for one enrollment, without the rest;
//! - CPU per request by thread group (gateway runtime, store thread, load clients), read
//!   from /proc, and the registrar's and backend's own latency histograms.
//!
//! The gateway and the clients share the machine's cores: the client threads' CPU is
//! reported so that it can be subtracted by eye. Settings, as flags after `--` or as
//! environment variables: `--clients 1,4,16,64` (`EST_LOAD_CLIENTS`, default 16),
//! `--seconds` (`EST_LOAD_SECONDS`, 10), `--warmup` (`EST_LOAD_WARMUP`, 2), `--csrs`
//! (`EST_LOAD_CSRS`, 32), `--client-threads` (`EST_LOAD_CLIENT_THREADS`, number of cores),
//! `--no-ceilings` (`EST_LOAD_CEILINGS=0`). The summary is also written as JSON to
//! `target/est_load.json` (or `$CARGO_TARGET_DIR/est_load.json`).

mod bound;
mod client;
mod cpu;
mod csr;
mod report;
mod store;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use enrollgate::config::Config;
use enrollgate::gateway::Gateway;
use tokio::runtime::Runtime;

use client::{Kind, Shared};
use report::{Run, Summary};

/// Bench settings.
#[derive(Clone, Debug)]
struct Options {
    clients: Vec<usize>,
    seconds: f64,
    warmup: f64,
    csrs: usize,
    client_threads: usize,
    ceilings: bool,
}

/// The running gateway and what the clients need to reach it.
struct Target {
    gateway: Arc<Gateway>,
    shared: Shared,
    shutdown: tokio::sync::watch::Sender<bool>,
}

fn main() -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let opts = Options::parse(cores)?;
    enrollgate::server::tls::install_default_provider();
    let server_rt = runtime("eg-server", cores)?;
    let client_rt = runtime("eg-client", opts.client_threads)?;
    let dir = tempfile::tempdir()?;

    eprintln!("est_load: making {} CSRs", opts.csrs);
    let csrs = Arc::new(csr::pool(opts.csrs)?);
    let target = server_rt.block_on(start(dir.path(), csrs.clone()))?;
    eprintln!("est_load: gateway on {}", target.shared.addr);

    eprintln!("est_load: crypto bound on {cores} threads");
    let bound = bound::measure(&target.gateway.state.ca, &csrs, cores, 3.0)?;

    let mut runs = Vec::new();
    for &n in &opts.clients {
        let r = load(&client_rt, &target, Kind::Enroll, n, &opts)?;
        let mut r = r;
        r.ratio_to_crypto_bound = Some(r.per_sec / bound.pairs_per_sec);
        runs.push(r);
    }
    let mut store_ceiling = Vec::new();
    if opts.ceilings {
        let top = opts.clients.iter().copied().max().unwrap_or(16);
        runs.push(load(&client_rt, &target, Kind::CaCerts, top, &opts)?);
        for n in [1, top] {
            eprintln!("est_load: store alone, {n} tasks");
            let c = server_rt.block_on(store::measure(dir.path(), n, opts.seconds.min(5.0)))?;
            store_ceiling.push(c.into());
        }
    }
    let _ = target.shutdown.send(true);

    let failures: u64 = runs.iter().map(|r| r.failures).sum();
    let summary = Summary {
        cores,
        client_threads: opts.client_threads,
        warmup_seconds: opts.warmup,
        csr_pool: opts.csrs,
        crypto_bound: bound.into(),
        runs,
        store_ceiling,
        note: report::LEGEND.into(),
    };
    print!("{}", report::table(&summary));
    let path = report::write_json(&summary)?;
    println!("JSON: {}", path.display());
    if failures > 0 {
        bail!("{failures} requests failed");
    }
    Ok(())
}

fn runtime(name: &str, threads: usize) -> anyhow::Result<Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name(name)
        .enable_all()
        .build()?)
}

/// Opens a gateway on a fresh data directory, HTTPS only, and makes one unlimited token.
async fn start(dir: &std::path::Path, csrs: Arc<Vec<csr::PooledCsr>>) -> anyhow::Result<Target> {
    let mut config = Config {
        data_dir: dir.join("data"),
        ..Config::default()
    };
    config.listen.https = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    config.listen.http = None;
    config.listen.admin = None;
    config.validate()?;
    let gateway = Arc::new(Gateway::open(config).await?);

    let expires = enrollgate::clock::now() + 86_400;
    let token = gateway
        .tokens
        .create(gateway.store.as_ref(), "", None, expires, None)
        .await?;
    let credential = [token.record.id.as_bytes(), b":", token.secret.expose()].concat();
    let authorization = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credential)
    );

    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let serving = gateway.clone();
    tokio::spawn(async move {
        if let Err(e) = serving.serve(shutdown_rx, bound_tx).await {
            eprintln!("est_load: gateway stopped: {e:#}");
        }
    });
    let addr = bound_rx
        .await?
        .https
        .context("the HTTPS listener did not bind")?;
    let root = enrollgate::ca::read_pem_certs(&dir.join("data").join("root.crt"))?;
    let shared = Shared {
        addr,
        tls: client::connector(root.first().context("root.crt is empty")?)?,
        authorization,
        csrs,
        phase: AtomicU8::new(client::WARMUP),
        request: Kind::Enroll,
    };
    Ok(Target {
        gateway,
        shared,
        shutdown,
    })
}

/// One run: `clients` connections, warm-up, then the measured window.
fn load(
    rt: &Runtime,
    target: &Target,
    kind: Kind,
    clients: usize,
    opts: &Options,
) -> anyhow::Result<Run> {
    let name = match kind {
        Kind::Enroll => "simpleenroll",
        Kind::CaCerts => "cacerts",
    };
    eprintln!(
        "est_load: {name}, {clients} clients, {}s warm-up + {}s",
        opts.warmup, opts.seconds
    );
    let shared = Arc::new(Shared {
        addr: target.shared.addr,
        tls: target.shared.tls.clone(),
        authorization: target.shared.authorization.clone(),
        csrs: target.shared.csrs.clone(),
        phase: AtomicU8::new(client::WARMUP),
        request: kind,
    });
    let metrics = &target.gateway.state.metrics;
    rt.block_on(async {
        let tasks: Vec<_> = (0..clients)
            .map(|i| tokio::spawn(client::run(shared.clone(), i)))
            .collect();
        tokio::time::sleep(Duration::from_secs_f64(opts.warmup)).await;

        let (cpu0, m0) = (cpu::snapshot(), Timers::read(metrics));
        shared.phase.store(client::MEASURE, Ordering::Relaxed);
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs_f64(opts.seconds)).await;
        shared.phase.store(client::STOP, Ordering::Relaxed);
        let window = started.elapsed().as_secs_f64();
        let (cpu1, m1) = (cpu::snapshot(), Timers::read(metrics));

        let mut tallies = Vec::new();
        for t in tasks {
            tallies.push(t.await?);
        }
        Ok(summarize(
            name,
            clients,
            window,
            tallies,
            cpu0.until(&cpu1),
            m1.since(&m0),
        ))
    })
}

/// The registrar's and backend's latency histograms: (sum seconds, count) each.
#[derive(Clone, Copy, Debug, Default)]
struct Timers {
    registrar: (f64, u64),
    backend: (f64, u64),
}

impl Timers {
    fn read(m: &enrollgate::metrics::Metrics) -> Self {
        let r = m.request_seconds.with_label_values(&["est", "enroll"]);
        let b = m.backend_seconds.with_label_values(&["builtin", "ok"]);
        Self {
            registrar: (r.get_sample_sum(), r.get_sample_count()),
            backend: (b.get_sample_sum(), b.get_sample_count()),
        }
    }

    /// Mean microseconds per call since `before`, registrar then backend.
    fn since(&self, before: &Self) -> (Option<f64>, Option<f64>) {
        let mean = |(s1, c1): (f64, u64), (s0, c0): (f64, u64)| {
            (c1 > c0).then(|| (s1 - s0) * 1e6 / (c1 - c0) as f64)
        };
        (
            mean(self.registrar, before.registrar),
            mean(self.backend, before.backend),
        )
    }
}

fn summarize(
    request: &'static str,
    clients: usize,
    seconds: f64,
    tallies: Vec<client::Tally>,
    usage: cpu::Usage,
    (registrar_mean_us, backend_mean_us): (Option<f64>, Option<f64>),
) -> Run {
    let mut latencies: Vec<u32> = Vec::new();
    let mut failures = 0;
    let mut errors = Vec::new();
    for t in tallies {
        latencies.extend(t.latencies_us);
        failures += t.failures;
        errors.extend(t.first_errors);
    }
    errors.truncate(5);
    latencies.sort_unstable();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
        latencies.get(i).map_or(0.0, |&us| f64::from(us) / 1000.0)
    };
    let completed = latencies.len() as u64;
    let per = |s: f64| s * 1e6 / completed.max(1) as f64;
    Run {
        request,
        clients,
        seconds,
        completed,
        per_sec: completed as f64 / seconds,
        p50_ms: pct(0.50),
        p90_ms: pct(0.90),
        p99_ms: pct(0.99),
        max_ms: pct(1.0),
        failures,
        errors,
        ratio_to_crypto_bound: None,
        machine_busy: usage.machine_busy,
        server_cpu_us: per(usage.seconds[0]),
        sqlite_cpu_us: per(usage.seconds[1]),
        client_cpu_us: per(usage.seconds[2]),
        other_cpu_us: per(usage.seconds[3]),
        registrar_mean_us: (request == "simpleenroll")
            .then_some(registrar_mean_us)
            .flatten(),
        backend_mean_us: (request == "simpleenroll")
            .then_some(backend_mean_us)
            .flatten(),
    }
}

impl Options {
    /// Flags after `--` win over environment variables; cargo's own `--bench` is ignored.
    fn parse(cores: usize) -> anyhow::Result<Self> {
        let env = |k: &str| std::env::var(k).ok();
        let mut o = Self {
            clients: list(&env("EST_LOAD_CLIENTS").unwrap_or_else(|| "16".into()))?,
            seconds: num(&env("EST_LOAD_SECONDS").unwrap_or_else(|| "10".into()))?,
            warmup: num(&env("EST_LOAD_WARMUP").unwrap_or_else(|| "2".into()))?,
            csrs: num::<usize>(&env("EST_LOAD_CSRS").unwrap_or_else(|| "32".into()))?.max(1),
            client_threads: match env("EST_LOAD_CLIENT_THREADS") {
                Some(v) => num(&v)?,
                None => cores,
            },
            ceilings: env("EST_LOAD_CEILINGS").is_none_or(|v| v != "0"),
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--clients" => o.clients = list(&value()?)?,
                "--seconds" => o.seconds = num(&value()?)?,
                "--warmup" => o.warmup = num(&value()?)?,
                "--csrs" => o.csrs = num::<usize>(&value()?)?.max(1),
                "--client-threads" => o.client_threads = num(&value()?)?,
                "--no-ceilings" => o.ceilings = false,
                _ => {} // `--bench` and any filter cargo passes along
            }
        }
        if o.clients.is_empty() || o.clients.contains(&0) || o.seconds <= 0.0 {
            bail!("need at least one client count above 0 and a positive --seconds");
        }
        Ok(o)
    }
}

fn num<T: std::str::FromStr>(s: &str) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    s.trim().parse().map_err(|e| anyhow::anyhow!("{s:?}: {e}"))
}

fn list(s: &str) -> anyhow::Result<Vec<usize>> {
    s.split(',').map(num).collect()
}
