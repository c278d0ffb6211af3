//! What the SCEP and CMP load generators share: settings from the environment, a gateway in
//! this process on a loopback HTTP port, worker threads that drain a list of prepared
//! requests, and latency percentiles.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use enrollgate::config::Config;
use enrollgate::gateway::{Bound, Gateway};
use tokio::sync::{oneshot, watch};

/// A setting from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A gateway serving plain HTTP on loopback; it stops when this is dropped.
pub struct Running {
    /// The gateway, for its state and metrics.
    pub gateway: Arc<Gateway>,
    /// Its HTTP listener.
    pub http: SocketAddr,
    _stop: watch::Sender<bool>,
}

/// Starts a gateway with its data in `dir/data`, logging warnings only, and `extra` appended
/// to the configuration (routes).
pub async fn start_gateway(dir: &Path, extra: &str) -> anyhow::Result<Running> {
    let text = format!(
        "data_dir = \"{}\"\n[listen]\nhttp = \"127.0.0.1:0\"\n[log]\nlevel = \"warn\"\n{extra}",
        dir.join("data").display()
    );
    let config = Config::parse(&text, Path::new("load.toml"))?;
    let gateway = Arc::new(Gateway::open(config).await?);
    let (stop, shutdown) = watch::channel(false);
    let (tx, rx) = oneshot::channel::<Bound>();
    let serving = gateway.clone();
    tokio::spawn(async move { serving.serve(shutdown, tx).await });
    let http = rx.await?.http.context("no HTTP listener")?;
    Ok(Running {
        gateway,
        http,
        _stop: stop,
    })
}

/// Runs `one` on every item of `work` with `workers` threads, each holding the connection
/// `connect` made; fails when any call fails or when `max` has passed. The results come in
/// completion order.
pub fn drain<T: Sync, C, R: Send>(
    work: &[T],
    workers: usize,
    max: Duration,
    connect: impl Fn() -> anyhow::Result<C> + Sync,
    one: impl Fn(&mut C, usize, &T) -> anyhow::Result<R> + Sync,
) -> anyhow::Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(work.len()));
    let deadline = Instant::now() + max;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| -> anyhow::Result<()> {
                    let mut conn = connect()?;
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = work.get(index) else {
                            return Ok(());
                        };
                        ensure!(Instant::now() < deadline, "over the time limit");
                        let result = one(&mut conn, index, item)?;
                        results
                            .lock()
                            .map_err(|_| anyhow::anyhow!("poisoned"))?
                            .push(result);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
        }
        anyhow::Ok(())
    })?;
    results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("poisoned"))
}

/// Latencies, sorted, for percentiles.
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// Sorts `latencies`.
    pub fn new(mut latencies: Vec<Duration>) -> Self {
        latencies.sort();
        Self(latencies)
    }

    /// The `p` quantile (0 to 1) in milliseconds; 0 when empty.
    pub fn ms(&self, p: f64) -> f64 {
        let i = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}
