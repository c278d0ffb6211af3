//! ACME load: throughput of complete orders (newOrder to certificate download) against a
//! gateway running in this process, on a route whose challenges always pass
//! (`validation = "always-pass"`, which the configuration accepts only beside
//! `[acme] insecure_benchmark_validation = true`), so that what is measured is the ACME
//! server, the store and the registrar, not a network validation.
//!
//! Each worker owns one account (instant-acme over a TCP_NODELAY client) and runs orders back
//! to back: newOrder, authorization, challenge, ready, finalize with a pre-made CSR,
//! certificate download.
//! Bounded in count and time; prints orders per second, latency percentiles and the mean time
//! of each phase.
//!
//! `cargo bench --bench acme_load` (environment: `ACME_LOAD_ORDERS`, default 200;
//! `ACME_LOAD_WORKERS`, default 8; `ACME_LOAD_MAX_SECS`, default 120).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use enrollgate::config::Config;
use enrollgate::gateway::{Bound, Gateway};
use instant_acme::{
    Account, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use tokio::sync::{Mutex, oneshot, watch};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let orders = env_usize("ACME_LOAD_ORDERS", 200);
    let workers = env_usize("ACME_LOAD_WORKERS", 8).max(1);
    let max_secs = env_usize("ACME_LOAD_MAX_SECS", 120) as u64;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(orders, workers, Duration::from_secs(max_secs)))
}

async fn run(orders: usize, workers: usize, max: Duration) -> anyhow::Result<()> {
    enrollgate::server::tls::install_default_provider();
    let dir = tempfile::tempdir()?;
    let (directory, root, _stop) = start_gateway(dir.path()).await?;
    let csrs = Arc::new(Mutex::new(make_csrs(dir.path(), orders)?));

    let mut accounts = Vec::with_capacity(workers);
    for _ in 0..workers {
        let new = NewAccount {
            contact: &[],
            terms_of_service_agreed: true,
            only_return_existing: false,
        };
        let (account, _) = Account::builder_with_http(http_client(&root)?)
            .create(&new, directory.clone(), None)
            .await
            .context("creating a bench account")?;
        accounts.push(account);
    }

    let started = Instant::now();
    let cpu_before = process_cpu_secs();
    let deadline = started + max;
    let tasks: Vec<_> = accounts
        .into_iter()
        .map(|account| {
            let csrs = csrs.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let Some((name, csr)) = csrs.lock().await.pop() else {
                        break;
                    };
                    latencies.push(one_order(&account, &name, &csr).await?);
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let elapsed = started.elapsed();
    report(&latencies, elapsed, workers);
    if let (Some(before), Some(after)) = (cpu_before, process_cpu_secs()) {
        let cpu = after - before;
        println!(
            "acme_load: process CPU (gateway and clients) {cpu:.2} s: {:.2} ms per order, \
             {:.0} orders per CPU-second",
            cpu * 1000.0 / latencies.len().max(1) as f64,
            latencies.len() as f64 / cpu.max(f64::EPSILON)
        );
    }
    Ok(())
}

/// The phases of one order, in the order they run.
const PHASES: [&str; 5] = [
    "newOrder",
    "authz+challenge",
    "ready",
    "finalize",
    "certificate",
];

/// Runs one order; returns the time each of its [`PHASES`] took.
async fn one_order(
    account: &Account,
    name: &str,
    csr: &[u8],
) -> anyhow::Result<[Duration; PHASES.len()]> {
    let retry = RetryPolicy::new()
        .initial_delay(Duration::from_millis(1))
        .backoff(2.0)
        .timeout(Duration::from_secs(30));
    let mut phases = [Duration::ZERO; PHASES.len()];
    let mut lap = Instant::now();
    let mut mark = |i: usize| {
        phases[i] = lap.elapsed();
        lap = Instant::now();
    };

    let ids = [Identifier::Dns(name.to_owned())];
    let mut order = account.new_order(&NewOrder::new(&ids)).await?;
    mark(0);
    let mut authzs = order.authorizations();
    while let Some(authz) = authzs.next().await {
        let mut authz = authz?;
        let mut challenge = authz
            .challenge(ChallengeType::Http01)
            .context("no http-01 challenge")?;
        challenge.set_ready().await?;
    }
    mark(1);
    anyhow::ensure!(order.poll_ready(&retry).await? == OrderStatus::Ready);
    mark(2);
    order.finalize_csr(csr).await?;
    mark(3);
    let chain = order.poll_certificate(&retry).await?;
    anyhow::ensure!(chain.contains("BEGIN CERTIFICATE"), "no certificate");
    mark(4);
    Ok(phases)
}

/// Starts the gateway; returns the bench route's directory URL, the root CA file and the
/// sender that stops it when dropped.
async fn start_gateway(
    dir: &Path,
) -> anyhow::Result<(String, std::path::PathBuf, watch::Sender<bool>)> {
    let data = dir.join("data");
    let text = format!(
        "data_dir = \"{}\"\n\
         [listen]\nhttps = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\n\
         admin = \"127.0.0.1:0\"\ncoaps = \"127.0.0.1:0\"\n\
         [log]\nlevel = \"warn\"\n\
         [acme]\ninsecure_benchmark_validation = true\n\
         [acme.rate_limits]\norders_per_account = 1000000\n\
         [[routes]]\nlabel = \"\"\nprofile = \"device\"\n\
         [[routes]]\nlabel = \"bench\"\nprofile = \"device\"\nauth = [\"anonymous\"]\n\
         [[acme.routes]]\nlabel = \"bench\"\nvalidation = \"always-pass\"\n",
        data.display()
    );
    let config = Config::parse(&text, Path::new("acme_load.toml"))?;
    let gateway = Arc::new(Gateway::open(config).await?);
    let (stop, shutdown) = watch::channel(false);
    let (tx, rx) = oneshot::channel::<Bound>();
    let serving = gateway.clone();
    tokio::spawn(async move { serving.serve(shutdown, tx).await });
    let bound = rx.await?;
    let https = bound.https.context("no HTTPS listener")?;
    Ok((
        format!("https://{https}/acme/bench/directory"),
        data.join("root.crt"),
        stop,
    ))
}

/// An HTTPS client trusting `root`, with TCP_NODELAY. instant-acme's default client leaves
/// Nagle's algorithm on: hyper writes a POST's headers and body separately, so the body waits
/// for the server's delayed ACK, about 40 ms a request, and the bench would measure that.
fn http_client(root: &Path) -> anyhow::Result<Box<dyn instant_acme::HttpClient>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(root)? {
        roots.add(cert?)?;
    }
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
    tcp.set_nodelay(true);
    tcp.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .wrap_connector(tcp);
    let executor = hyper_util::rt::TokioExecutor::new();
    let client = hyper_util::client::legacy::Client::builder(executor)
        .build::<_, instant_acme::BodyWrapper<bytes::Bytes>>(https);
    Ok(Box::new(client))
}

/// One P-256 key and `n` CSRs for distinct names, made with openssl before timing starts.
fn make_csrs(dir: &Path, n: usize) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let key = dir.join("bench.key");
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ],
        &key,
    )?;
    (0..n)
        .map(|i| {
            let name = format!("load{i}.bench.test");
            let out = dir.join(format!("{i}.csr"));
            let status = std::process::Command::new("openssl")
                .args(["req", "-new", "-key"])
                .arg(&key)
                .args(["-subj", &format!("/CN={name}")])
                .args(["-addext", &format!("subjectAltName=DNS:{name}")])
                .args(["-outform", "DER", "-out"])
                .arg(&out)
                .status()?;
            anyhow::ensure!(status.success(), "openssl req failed");
            Ok((name, std::fs::read(&out)?))
        })
        .collect()
}

fn openssl(args: &[&str], out: &Path) -> anyhow::Result<()> {
    let status = std::process::Command::new("openssl")
        .args(args)
        .arg(out)
        .status()
        .context("openssl is needed (scripts/test-deps.sh)")?;
    anyhow::ensure!(status.success(), "openssl {args:?} failed");
    Ok(())
}

/// User plus system CPU time of this process (Linux `/proc/self/stat`, 100 ticks a second),
/// so that a figure taken on a busy machine can be judged by CPU spent, not only wall time.
fn process_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn report(orders: &[[Duration; PHASES.len()]], elapsed: Duration, workers: usize) {
    let latencies: Vec<Duration> = orders.iter().map(|p| p.iter().sum()).collect();
    let mut sorted = latencies.clone();
    sorted.sort();
    let pct = |p: f64| {
        let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "acme_load: {} complete orders in {:.2} s with {workers} workers: {:.1} orders/s; \
         latency p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        sorted.len(),
        elapsed.as_secs_f64(),
        sorted.len() as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.95),
        pct(1.0)
    );
    let n = orders.len().max(1) as f64;
    let means: Vec<String> = PHASES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let total: f64 = orders.iter().map(|p| p[i].as_secs_f64()).sum();
            format!("{name} {:.1} ms", total * 1000.0 / n)
        })
        .collect();
    println!("acme_load: mean per phase: {}", means.join(", "));
}
