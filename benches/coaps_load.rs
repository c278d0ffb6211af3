//! EST-coaps load generator: enrollments per second over DTLS 1.2, with a fresh handshake for
//! every enrollment and with resumed sessions.
//!
//! `cargo bench --bench coaps_load` starts the gateway in this process on loopback with a
//! fresh data directory and only the CoAPs listener. Its default route trusts a device CA made
//! with openssl; the load clients present that CA's device certificate (RFC 7925
//! ECDHE-ECDSA-AES128-CCM8, P-256) or an unlimited enrollment token as PSK
//! (PSK-AES128-CCM8). Every enrollment POSTs a distinct pooled P-256 CSR to
//! `/.well-known/est/sen` (content format 286) and must get 2.01 with a certs-only PKCS#7
//! (281) that carries the CSR's key; any failure fails the run.
//!
//! Modes, each run with N workers doing enrollments back to back:
//!
//! - `fresh-cert`, `fresh-psk`: a new UDP socket, cookie exchange and full handshake per
//!   enrollment, in-process client (`openssl` crate, `tests/common/coaps.rs`);
//! - `one-session`: one handshake per worker, then enrollments back to back over it;
//! - `sclient-fresh`, `sclient-resumed`: one `openssl s_client -dtls1_2` process per
//!   enrollment, without and with `-sess_in` (an abbreviated handshake). The `openssl` crate
//!   offers session resumption only through an `unsafe` call, which this workspace forbids,
//!   so resumption is measured with the real OpenSSL client; the `sclient-fresh` run beside
//!   it gives the like-for-like ratio. The gateway counts resumed handshakes, and the run
//!   checks that every one of these enrollments was resumed.
//!
//! The gateway and the clients share the machine's cores; the table gives the CPU of this
//! process (gateway plus in-process clients) and of the `s_client` children per enrollment.
//! Settings, as environment variables: `COAPS_LOAD_WORKERS` (default `1,8`),
//! `COAPS_LOAD_SECONDS` (default 5), `COAPS_LOAD_MODES` (default all, comma-separated).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use enrollgate::config::Config;
use enrollgate::gateway::Gateway;

#[path = "../tests/common/coaps.rs"]
mod kit;

#[path = "est_load/cpu.rs"]
#[expect(dead_code, reason = "the machine-wide busy share is not reported here")]
mod cpu;

#[path = "est_load/csr.rs"]
#[expect(
    dead_code,
    reason = "the EST pool's base64 bodies are not used over CoAP"
)]
mod csr;

use kit::{Auth, Client, Message, opt};

/// What the workers need.
struct Setup {
    addr: SocketAddr,
    dir: PathBuf,
    root: PathBuf,
    device_cert: PathBuf,
    device_key: PathBuf,
    psk: (String, String),
    csrs: Vec<csr::PooledCsr>,
}

/// One measured run.
struct Run {
    mode: &'static str,
    workers: usize,
    ok: usize,
    seconds: f64,
    latencies_us: Vec<u64>,
    /// CPU of the gateway's threads (runtime, store, everything but the load clients).
    cpu_gateway_ms: f64,
    /// CPU of the in-process load clients.
    cpu_clients_ms: f64,
    /// CPU of the `s_client` processes.
    cpu_children_ms: f64,
}

const MODES: [&str; 5] = [
    "fresh-cert",
    "fresh-psk",
    "one-session",
    "sclient-fresh",
    "sclient-resumed",
];

fn main() -> anyhow::Result<()> {
    enrollgate::server::tls::install_default_provider();
    let workers = list_env("COAPS_LOAD_WORKERS", "1,8")?;
    let seconds: f64 = std::env::var("COAPS_LOAD_SECONDS")
        .unwrap_or_else(|_| "5".into())
        .parse()
        .context("COAPS_LOAD_SECONDS")?;
    let modes: Vec<String> = std::env::var("COAPS_LOAD_MODES")
        .map(|m| m.split(',').map(str::to_owned).collect())
        .unwrap_or_else(|_| MODES.iter().map(|m| (*m).to_owned()).collect());

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .thread_name("eg-server")
        .enable_all()
        .build()?;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().to_owned();
    let (device_ca, device_cert, device_key) = device_pki(&dir)?;
    let (gateway, shutdown, addr, psk) = rt.block_on(start(&dir, &device_ca))?;
    eprintln!("coaps_load: gateway on {addr}, {cores} cores");
    let setup = Arc::new(Setup {
        addr,
        root: dir.join("data").join("root.crt"),
        dir,
        device_cert,
        device_key,
        psk,
        csrs: csr::pool(64)?,
    });

    let mut runs = Vec::new();
    for &n in &workers {
        for mode in MODES.iter().filter(|m| modes.iter().any(|x| x == *m)) {
            let resumed_before = resumed(&gateway);
            let r = run(&setup, mode, n, seconds)?;
            let resumed_now = resumed(&gateway) - resumed_before;
            if *mode == "sclient-resumed" && resumed_now < r.ok as u64 {
                bail!("{mode}: {} enrollments but {resumed_now} resumptions", r.ok);
            }
            eprintln!("coaps_load: {mode}, {n} workers: {:.1}/s", per_sec(&r));
            runs.push(r);
        }
    }
    let _ = shutdown.send(true);
    print_table(&runs, cores);
    Ok(())
}

fn list_env(name: &str, default: &str) -> anyhow::Result<Vec<usize>> {
    let text = std::env::var(name).unwrap_or_else(|_| default.into());
    text.split(',')
        .map(|n| n.trim().parse().with_context(|| format!("{name}: {n}")))
        .collect()
}

/// A device CA (trusted by the route) and a device certificate, made with openssl.
fn device_pki(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf, PathBuf)> {
    let p = |n: &str| dir.join(n);
    let s = |p: &Path| p.display().to_string();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let (ca, ca_key) = (p("device-ca.crt"), p("device-ca.key"));
    let ca_args = [
        "-keyout",
        &s(&ca_key),
        "-out",
        &s(&ca),
        "-subj",
        "/CN=load device CA",
    ];
    openssl(&[&["req", "-x509", "-days", "2"], &ec[..], &ca_args[..]])?;
    let (key, req, cert, ext) = (p("dev.key"), p("dev.csr"), p("dev.crt"), p("ext"));
    let dev_args = [
        "-keyout",
        &s(&key),
        "-out",
        &s(&req),
        "-subj",
        "/CN=load-device",
    ];
    openssl(&[&["req", "-new"], &ec[..], &dev_args[..]])?;
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
    )?;
    let sign = [
        "x509",
        "-req",
        "-in",
        &s(&req),
        "-CA",
        &s(&ca),
        "-CAkey",
        &s(&ca_key),
        "-days",
        "2",
        "-CAcreateserial",
        "-extfile",
        &s(&ext),
        "-out",
        &s(&cert),
    ];
    openssl(&[&sign[..]])?;
    Ok((ca, cert, key))
}

fn openssl(parts: &[&[&str]]) -> anyhow::Result<()> {
    let args: Vec<&str> = parts.concat();
    let out = Command::new("openssl")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .context("running openssl")?;
    if !out.status.success() {
        bail!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// The running gateway, its stop switch, its CoAPs address and a PSK (token id, secret).
type Started = (
    Arc<Gateway>,
    tokio::sync::watch::Sender<bool>,
    SocketAddr,
    (String, String),
);

/// Opens the gateway with only the CoAPs listener.
async fn start(dir: &Path, device_ca: &Path) -> anyhow::Result<Started> {
    let mut config = Config {
        data_dir: dir.join("data"),
        ..Config::default()
    };
    config.listen.https = None;
    config.listen.http = None;
    config.listen.admin = None;
    config.listen.coaps = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.coaps.max_sessions = 10_000;
    config.coaps.max_handshakes = 1_000;
    for route in &mut config.routes {
        route.trust_anchors = vec![device_ca.to_owned()];
    }
    config.validate()?;
    let gateway = Arc::new(Gateway::open(config).await?);
    let expires = enrollgate::clock::now() + 86_400;
    let token = gateway
        .tokens
        .create(gateway.store.as_ref(), "", None, expires, None)
        .await?;
    let psk = (
        token.record.id.clone(),
        String::from_utf8(token.secret.expose().to_vec())?,
    );
    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let serving = gateway.clone();
    tokio::spawn(async move {
        if let Err(e) = serving.serve(shutdown_rx, bound_tx).await {
            eprintln!("coaps_load: gateway stopped: {e:#}");
        }
    });
    let addr = bound_rx.await?.coaps.context("no CoAPs listener")?;
    Ok((gateway, shutdown, addr, psk))
}

fn resumed(gw: &Gateway) -> u64 {
    gw.state
        .metrics
        .transport_events
        .with_label_values(&["coaps", "resumed"])
        .get()
}

/// Runs `workers` threads of `mode` for `seconds`.
fn run(
    setup: &Arc<Setup>,
    mode: &'static str,
    workers: usize,
    seconds: f64,
) -> anyhow::Result<Run> {
    let stop = Arc::new(AtomicBool::new(false));
    let next_csr = Arc::new(AtomicUsize::new(0));
    let (threads0, children0) = (cpu::snapshot(), children_cpu_ms());
    let process0 = process_cpu_ms();
    let started = Instant::now();
    let threads = (0..workers)
        .map(|w| {
            let (setup, stop, next) = (setup.clone(), stop.clone(), next_csr.clone());
            std::thread::Builder::new()
                .name(format!("eg-client-{w}"))
                .spawn(move || worker(&setup, mode, w, &stop, &next))
        })
        .collect::<Result<Vec<_>, _>>()?;
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut latencies_us = Vec::new();
    for t in threads {
        let lat = t.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
        latencies_us.extend(lat);
    }
    let seconds = started.elapsed().as_secs_f64();
    // Worker threads have exited by now, so their CPU is read from the process total.
    let used = threads0.until(&cpu::snapshot());
    let gateway_s = used.seconds[0] + used.seconds[1] + used.seconds[3];
    let process_ms = process_cpu_ms() - process0;
    Ok(Run {
        mode,
        workers,
        ok: latencies_us.len(),
        seconds,
        latencies_us,
        cpu_gateway_ms: gateway_s * 1000.0,
        cpu_clients_ms: (process_ms - gateway_s * 1000.0).max(0.0),
        cpu_children_ms: children_cpu_ms() - children0,
    })
}

/// One worker: enrollments back to back until told to stop; their latencies.
fn worker(
    setup: &Setup,
    mode: &str,
    index: usize,
    stop: &AtomicBool,
    next: &AtomicUsize,
) -> anyhow::Result<Vec<u64>> {
    let cert_ctx = kit::context(
        Some(setup.root.as_path()),
        &Auth::Certificate {
            cert: &setup.device_cert,
            key: &setup.device_key,
        },
    );
    let psk_ctx = kit::context(
        None,
        &Auth::Psk {
            id: &setup.psk.0,
            secret: &setup.psk.1,
        },
    );
    let session_file = setup.dir.join(format!("session-{index}.pem"));
    let mut kept = None;
    if mode == "one-session" {
        kept = Some(Client::connect(
            setup.addr,
            &cert_ctx,
            Duration::from_secs(10),
        )?);
    }
    if mode == "sclient-resumed" {
        // One full handshake writes the session the later ones resume.
        let csr = pick(setup, next);
        sclient(
            setup,
            &csr.der,
            &csr.spki_der,
            Some(("-sess_out", &session_file)),
        )?;
    }
    let mut latencies = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let csr = pick(setup, next);
        let t = Instant::now();
        match mode {
            "fresh-cert" | "fresh-psk" => {
                let ctx = if mode == "fresh-cert" {
                    &cert_ctx
                } else {
                    &psk_ctx
                };
                let mut c = Client::connect(setup.addr, ctx, Duration::from_secs(10))?;
                enroll(&mut c, &csr.der, &csr.spki_der)?;
                c.close();
            }
            "one-session" => {
                let c = kept.as_mut().context("session")?;
                enroll(c, &csr.der, &csr.spki_der)?;
            }
            "sclient-fresh" => sclient(setup, &csr.der, &csr.spki_der, None)?,
            "sclient-resumed" => sclient(
                setup,
                &csr.der,
                &csr.spki_der,
                Some(("-sess_in", &session_file)),
            )?,
            other => bail!("unknown mode {other}"),
        }
        latencies.push(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
    }
    if let Some(c) = kept {
        c.close();
    }
    Ok(latencies)
}

fn pick<'a>(setup: &'a Setup, next: &AtomicUsize) -> &'a csr::PooledCsr {
    let i = next.fetch_add(1, Ordering::Relaxed) % setup.csrs.len();
    &setup.csrs[i]
}

/// POSTs a CSR to `sen` over `c` and checks the reply.
fn enroll(c: &mut Client, csr: &[u8], spki: &[u8]) -> anyhow::Result<()> {
    let options = [(opt::CONTENT_FORMAT, kit::uint(286))];
    let reply = c.request(kit::POST, "/.well-known/est/sen", &options, csr, 6)?;
    check(&reply, spki)
}

/// 2.01, certs-only PKCS#7, holding the requested key.
fn check(reply: &Message, spki: &[u8]) -> anyhow::Result<()> {
    if reply.code_str() != "2.01" || reply.uint(opt::CONTENT_FORMAT) != Some(281) {
        bail!(
            "sen answered {} {:?}",
            reply.code_str(),
            String::from_utf8_lossy(&reply.payload)
        );
    }
    if !reply.payload.windows(spki.len()).any(|w| w == spki) {
        bail!("the certificate does not carry the requested key");
    }
    Ok(())
}

/// One enrollment through an `openssl s_client -dtls1_2` process: the CoAP request goes in
/// on stdin, the reply comes out on stdout; closing stdin ends the session.
fn sclient(
    setup: &Setup,
    csr: &[u8],
    spki: &[u8],
    session: Option<(&str, &Path)>,
) -> anyhow::Result<()> {
    let mut cmd = Command::new("timeout");
    cmd.args([
        "10",
        "openssl",
        "s_client",
        "-dtls1_2",
        "-quiet",
        "-no_ign_eof",
    ])
    .args([
        "-connect",
        &setup.addr.to_string(),
        "-cipher",
        kit::CERT_SUITE,
    ])
    .arg("-cert")
    .arg(&setup.device_cert)
    .arg("-key")
    .arg(&setup.device_key);
    if let Some((flag, file)) = session {
        cmd.arg(flag).arg(file);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("openssl s_client")?;
    let request = Message::request(kit::kind::CON, kit::POST, 1, &[7], "/.well-known/est/sen")
        .with_uint(opt::CONTENT_FORMAT, 286)
        .with_payload(csr);
    let mut stdin = child.stdin.take().context("stdin")?;
    stdin.write_all(&request.encode())?;
    let mut stdout = child.stdout.take().context("stdout")?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let reply = loop {
        let n = stdout.read(&mut buf)?;
        if n == 0 {
            bail!(
                "s_client ended without a complete reply ({} bytes)",
                got.len()
            );
        }
        got.extend_from_slice(&buf[..n]);
        if let Some(m) = Message::decode(&got).filter(complete) {
            break m;
        }
    };
    // On end of input s_client sends close_notify, then lingers up to 0.5 s for the peer's
    // close: reap it aside so that its linger is not counted as enrollment time.
    drop(stdin);
    let _ = std::thread::Builder::new()
        .name("eg-client-reap".into())
        .spawn(move || child.wait());
    check(&reply, spki)
}

/// Whether a reply read from a byte stream is whole: an error, or a DER body all there.
fn complete(m: &Message) -> bool {
    if m.code_str() != "2.01" {
        return true;
    }
    match m.payload.as_slice() {
        [0x30, 0x82, hi, lo, rest @ ..] => rest.len() >= usize::from(*hi) << 8 | usize::from(*lo),
        [0x30, 0x81, len, rest @ ..] => rest.len() >= usize::from(*len),
        _ => false,
    }
}

/// CPU milliseconds of this process (all threads, live and exited).
fn process_cpu_ms() -> f64 {
    stat_ms(11) + stat_ms(12)
}

/// CPU milliseconds of this process's waited-for children (`s_client`).
fn children_cpu_ms() -> f64 {
    stat_ms(13) + stat_ms(14)
}

/// Field `i` (0-based after the command name) of /proc/self/stat, clock ticks as ms.
fn stat_ms(i: usize) -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let field = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(i))
        .and_then(|f| f.parse::<f64>().ok())
        .unwrap_or(0.0);
    // The kernel's USER_HZ is 100 on Linux.
    field * 10.0
}

fn per_sec(r: &Run) -> f64 {
    r.ok as f64 / r.seconds
}

fn print_table(runs: &[Run], cores: usize) {
    println!("\nEST-coaps enrollments (sen), {cores} cores shared by gateway and clients");
    println!(
        "{:<16} {:>7} {:>8} {:>9} {:>8} {:>8} {:>10} {:>10} {:>10} {:>11}",
        "mode",
        "workers",
        "enrolls",
        "per sec",
        "p50 ms",
        "p99 ms",
        "gw ms/enr",
        "cli ms/enr",
        "sc ms/enr",
        "gw-bound/s"
    );
    for r in runs {
        let mut l = r.latencies_us.clone();
        l.sort_unstable();
        let q = |p: f64| {
            l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
                .map_or(0.0, |v| *v as f64 / 1000.0)
        };
        let per = |ms: f64| ms / r.ok.max(1) as f64;
        let gw = per(r.cpu_gateway_ms);
        println!(
            "{:<16} {:>7} {:>8} {:>9.1} {:>8.2} {:>8.2} {:>10.3} {:>10.3} {:>10.2} {:>11.0}",
            r.mode,
            r.workers,
            r.ok,
            per_sec(r),
            q(0.5),
            q(0.99),
            gw,
            per(r.cpu_clients_ms),
            per(r.cpu_children_ms),
            if gw > 0.0 {
                cores as f64 * 1000.0 / gw
            } else {
                0.0
            }
        );
    }
    println!(
        "gw: CPU of the gateway's threads per enrollment; cli: in-process clients (and s_client \
         spawning); sc: s_client processes; gw-bound/s: cores / gw, the rate if the gateway \
         had the machine to itself"
    );
}
