//! CMP load: `ir` enrollments per second against a gateway running in this process and, in the
//! same run and with the same messages, against OpenSSL's mock CMP server (`openssl cmp
//! -port`), which checks the MAC and returns a fixed certificate without issuing anything: the
//! gap between the two is what the gateway's registrar, store and signer cost.
//!
//! One enrollment token is the MAC credential of every request (senderKID = token id); the
//! mock server gets the same reference and secret (`-srv_ref`, `-srv_secret`), so the very
//! same bytes are valid for both. Before the clock starts the bench builds one ir per
//! enrollment with the CMP test kit (PasswordBasedMac, 500 iterations, a P-256 key and a
//! signature POP, a fresh transactionID). Two kinds of work are measured:
//!
//! - `implicit`: the ir asks for implicitConfirm, which both servers grant: one message;
//! - `confirm`: ir, then certConf answering the ip (built at run time, its MAC included): two
//!   messages, as `openssl cmp` sends them by default.
//!
//! Every reply is checked: an ip with a certificate, MAC-protected with the token's secret,
//! and a pkiConf for the certConf. Workers are threads, each with its own HTTP/1.1 connection.
//! OpenSSL 3.0's mock server is single-threaded, holds one transaction at a time and closes a
//! connection when its transaction ends, so it is measured with one worker and a new
//! connection per transaction (as the `openssl cmp` client makes them); the gateway the same
//! way (the same work), then with kept-alive connections, with one worker and with
//! `CMP_LOAD_WORKERS`.
//!
//! OpenSSL 3.0's mock server cannot be bound to loopback only: it listens on every interface,
//! on a free port, for the seconds of the run, and is killed afterwards.
//!
//! `cargo bench --bench cmp_load` (environment: `CMP_LOAD_REQUESTS`, default 1000 per run;
//! `CMP_LOAD_WORKERS`, default 4; `CMP_LOAD_MAX_SECS`, default 120 per run).

#[path = "../tests/common/cmp.rs"]
mod kit;
#[path = "common/load.rs"]
mod load;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use kit::{ClientKey, Head, Mac};
use load::{Latencies, env_usize};

/// The two kinds of work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Work {
    Implicit,
    Confirm,
}

/// Where the messages go, and how.
#[derive(Clone, Copy)]
struct Target {
    name: &'static str,
    addr: SocketAddr,
    path: &'static str,
    /// A new connection for every transaction, as `openssl cmp` makes them (OpenSSL 3.0's
    /// mock server closes a connection once its transaction is over, whatever its
    /// `Connection` header said).
    fresh: bool,
}

impl Target {
    fn gateway(addr: SocketAddr, fresh: bool) -> Self {
        Self {
            name: "gateway",
            addr,
            path: "/.well-known/cmp",
            fresh,
        }
    }
}

/// One prepared enrollment.
struct Prepared {
    head: Head,
    ir: Vec<u8>,
}

fn main() -> anyhow::Result<()> {
    let requests = env_usize("CMP_LOAD_REQUESTS", 1000).max(1);
    let workers = env_usize("CMP_LOAD_WORKERS", 4).max(1);
    let max = Duration::from_secs(env_usize("CMP_LOAD_MAX_SECS", 120) as u64);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let running = runtime.block_on(load::start_gateway(dir.path(), ""))?;
    let mac = runtime.block_on(token(&running))?;
    let addr = running.http;
    let cert = dir.path().join("data/issuing.crt");
    let keys: Vec<ClientKey> = (0..8).map(|_| ClientKey::generate()).collect();

    for work in [Work::Implicit, Work::Confirm] {
        let mock = Mock::start(&mac, &cert, work)?;
        let runs = [
            (mock.target(), 1),
            (Target::gateway(addr, true), 1),
            (Target::gateway(addr, false), 1),
            (Target::gateway(addr, false), workers),
        ];
        for (target, n) in runs {
            let prepared = prepare(&keys, &mac, work, requests + n);
            let (warm, timed) = prepared.split_at(n);
            drive(&target, warm, work, &mac, n, max)?;
            let started = Instant::now();
            let latencies = drive(&target, timed, work, &mac, n, max)?;
            report(&target, work, n, latencies, started.elapsed());
        }
    }
    let issued = running
        .gateway
        .state
        .metrics
        .requests
        .with_label_values(&["cmp", "enroll", "issued"])
        .get();
    let sent = 2 * (3 * requests + 2 + workers) as u64;
    ensure!(
        issued == sent,
        "the gateway counted {issued} issuances for {sent} irs"
    );
    Ok(())
}

/// An unlimited enrollment token of the default route, as MAC credential.
async fn token(running: &load::Running) -> anyhow::Result<Mac> {
    let expires = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
    )? + 86_400;
    let state = &running.gateway.state;
    let token = state
        .tokens
        .create(state.registrar.store().as_ref(), "", None, expires, None)
        .await?;
    let secret = String::from_utf8(token.secret.expose().to_vec())?;
    Ok(Mac::new(&token.record.id, &secret))
}

/// OpenSSL's mock CMP server, killed on drop.
struct Mock {
    child: Child,
    addr: SocketAddr,
}

impl Mock {
    /// A mock server for `work`: with `-grant_implicitconf` it grants implicit confirmation
    /// even to a client that did not ask, and then refuses its certConf.
    fn start(mac: &Mac, cert: &Path, work: Work) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let secret = format!("pass:{}", String::from_utf8_lossy(&mac.secret));
        let child = Command::new("openssl")
            .args(["cmp", "-port", &port.to_string(), "-max_msgs", "0"])
            .args(["-srv_ref", &mac.kid, "-srv_secret", &secret])
            .arg("-rsp_cert")
            .arg(cert)
            .args((work == Work::Implicit).then_some("-grant_implicitconf"))
            .args(["-verbosity", "8"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("openssl is needed (scripts/test-deps.sh)")?;
        let mock = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(mock.addr).is_err() {
            ensure!(Instant::now() < deadline, "the mock server did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(mock)
    }
}

impl Mock {
    /// The mock server takes any path; this is the one `openssl cmp` uses in its docs.
    fn target(&self) -> Target {
        Target {
            name: "openssl cmp -port mock",
            addr: self.addr,
            path: "/pkix/",
            fresh: true,
        }
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `count` irs, MAC-protected with the token, each under a fresh transactionID.
fn prepare(keys: &[ClientKey], mac: &Mac, work: Work, count: usize) -> Vec<Prepared> {
    (0..count)
        .map(|i| {
            let head = Head {
                implicit_confirm: work == Work::Implicit,
                ..Head::new()
            };
            let body = kit::ir_body(&keys[i % keys.len()], &format!("CN=cmp-load-{i}"));
            let ir = kit::protect_mac(&head, body, mac);
            Prepared { head, ir }
        })
        .collect()
}

/// Runs every prepared enrollment with `workers` threads; returns the latencies.
fn drive(
    target: &Target,
    work: &[Prepared],
    kind: Work,
    mac: &Mac,
    workers: usize,
    max: Duration,
) -> anyhow::Result<Vec<Duration>> {
    let connect = || Ok(kit::HttpConn::connect(target.addr)?);
    load::drain(work, workers, max, connect, |conn, _, p| {
        let t = Instant::now();
        enroll(conn, target, p, kind, mac)?;
        Ok(t.elapsed())
    })
}

/// One enrollment: ir (and certConf), every reply checked.
fn enroll(
    conn: &mut kit::HttpConn,
    target: &Target,
    p: &Prepared,
    kind: Work,
    mac: &Mac,
) -> anyhow::Result<()> {
    if target.fresh {
        *conn = kit::HttpConn::connect(target.addr)?;
    }
    let ip = post(conn, target, &p.ir)?;
    let cert = kit::issued_cert(&ip).with_context(|| format!("no certificate: {:?}", ip.body))?;
    kit::assert_mac_by(&ip, mac, "ip");
    if kind == Work::Confirm {
        let conf = kit::protect_mac(
            &p.head.answering(&ip),
            kit::cert_conf_body(&cert, 0, true),
            mac,
        );
        let reply = post(conn, target, &conf)?;
        ensure!(
            reply.body.kind().name() == "pkiconf",
            "certConf answered with {:?}",
            reply.body
        );
    }
    Ok(())
}

/// POSTs a message, reconnecting first when the server closed the connection.
fn post(
    conn: &mut kit::HttpConn,
    target: &Target,
    der: &[u8],
) -> anyhow::Result<enrollgate_cmp::types::PkiMessage> {
    if conn.closed {
        *conn = kit::HttpConn::connect(target.addr)?;
    }
    let reply = conn.cmp(target.path, der)?;
    ensure!(reply.status == 200, "HTTP {}", reply.status);
    Ok(kit::decode(&reply.body))
}

fn report(target: &Target, work: Work, workers: usize, latencies: Vec<Duration>, took: Duration) {
    let latencies = Latencies::new(latencies);
    let messages = if work == Work::Confirm { 2 } else { 1 };
    let rate = latencies.len() as f64 / took.as_secs_f64();
    let connections = if target.fresh {
        "new connection per transaction"
    } else {
        "kept alive"
    };
    println!(
        "cmp_load {:<22} {:<8} {workers} worker(s), {connections}: {} irs in {:.2} s: \
         {rate:.1} enrollments/s ({:.1} messages/s); latency p50 {:.2} ms, p99 {:.2} ms",
        target.name,
        format!("{work:?}").to_lowercase(),
        latencies.len(),
        took.as_secs_f64(),
        rate * f64::from(messages),
        latencies.ms(0.5),
        latencies.ms(0.99)
    );
}
