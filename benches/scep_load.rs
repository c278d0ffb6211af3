//! SCEP load: PKCSReq enrollments per second against a gateway running in this process, and
//! beside it the machine's RSA-2048 private-key operation rate, which bounds SCEP: every
//! PKCSReq costs the gateway two of them (opening the content-encryption key with the RA key,
//! signing the CertRep), against one ECDSA P-256 signature for the certificate itself.
//!
//! Before the clock starts the bench makes a few RSA-2048 requesters and one pkiMessage per
//! enrollment (distinct transactionID, subject and senderNonce; AES-128-CBC), built with
//! `enrollgate_scep::client` by the helpers the SCEP tests use. Workers (threads, one kept-alive
//! HTTP/1.1 connection each) POST them to `/scep/bench?operation=PKIOperation` back to back.
//! The route admits anonymous requests, so that what is measured is SCEP, the registrar, the
//! store and the signer, not a token check. After the clock stops every reply is opened with
//! its requester's key: it must be a SUCCESS certifying that key, and the gateway's issued
//! counter must equal the number of requests; anything else fails the run.
//!
//! The RSA rate is measured in the same process with aws-lc-rs (the gateway's provider):
//! PKCS#1 v1.5 SHA-256 signatures with a requester key, on one thread and on every core.
//!
//! `cargo bench --bench scep_load` (environment: `SCEP_LOAD_REQUESTS`, default 2000;
//! `SCEP_LOAD_WORKERS`, default 4; `SCEP_LOAD_KEYS`, default 4; `SCEP_LOAD_MAX_SECS`,
//! default 120).

#[path = "../tests/common/cmp.rs"]
mod kit;
#[path = "common/load.rs"]
mod load;
#[path = "../tests/common/scep_pki.rs"]
mod pki;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use der::{Decode, Encode};
use enrollgate_scep::client::{ClientIdentity, open_cert_rep};
use enrollgate_scep::{MessageType, PkiStatus};
use load::{Latencies, env_usize};
use x509_cert::Certificate;

/// The bench route: anonymous PKCSReq.
const ROUTES: &str = "[[routes]]\nlabel = \"\"\nprofile = \"device\"\n\
                      [[routes]]\nlabel = \"bench\"\nprofile = \"device\"\nauth = [\"anonymous\"]\n";

/// One prepared enrollment: which requester, and the pkiMessage.
struct Prepared {
    requester: usize,
    message: Vec<u8>,
}

/// A reply as received, checked after the clock stops.
struct Received {
    index: usize,
    latency: Duration,
    body: Vec<u8>,
}

fn main() -> anyhow::Result<()> {
    let requests = env_usize("SCEP_LOAD_REQUESTS", 2000).max(1);
    let workers = env_usize("SCEP_LOAD_WORKERS", 4).max(1);
    let keys = env_usize("SCEP_LOAD_KEYS", 4).max(1);
    let max = Duration::from_secs(env_usize("SCEP_LOAD_MAX_SECS", 120) as u64);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let running = runtime.block_on(load::start_gateway(dir.path(), ROUTES))?;
    let ra = pem_der(&dir.path().join("data/ra.crt"))?;

    let requesters: Vec<pki::Requester> = (0..keys)
        .map(|i| pki::Requester::new(&format!("scep-load-{i}")))
        .collect();
    let identities: Vec<ClientIdentity> = requesters.iter().map(|r| r.identity()).collect();
    let prepared = prepare(&requesters, &identities, &ra, requests + workers);

    // Warm-up: one enrollment per worker, untimed.
    let (warm, timed) = prepared.split_at(workers);
    drive(running.http, warm, workers, max)?;

    let started = Instant::now();
    let received = drive(running.http, timed, workers, max)?;
    let elapsed = started.elapsed();
    check(&received, timed, &requesters, &identities, &ra)?;
    let issued = running
        .gateway
        .state
        .metrics
        .requests
        .with_label_values(&["scep", "enroll", "issued"])
        .get();
    ensure!(
        issued == (warm.len() + received.len()) as u64,
        "the gateway counted {issued} issuances for {} requests",
        warm.len() + received.len()
    );
    report(&received, elapsed, workers);

    let pkcs8 = &requesters[0].key_pkcs8;
    let one = rsa_rate(pkcs8, 1, Duration::from_secs(2))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let all = rsa_rate(pkcs8, cores, Duration::from_secs(2))?;
    println!(
        "RSA-2048 private-key operations (aws-lc-rs, PKCS#1 v1.5 SHA-256 sign): {one:.0}/s on \
         one thread, {all:.0}/s on {cores} threads; at two per PKCSReq the signing bound is \
         {:.0} enrollments/s",
        all / 2.0
    );
    Ok(())
}

/// `count` PKCSReq messages spread over the requesters, each with its own subject and
/// transactionID.
fn prepare(
    requesters: &[pki::Requester],
    identities: &[ClientIdentity],
    ra: &[u8],
    count: usize,
) -> Vec<Prepared> {
    (0..count)
        .map(|i| {
            let requester = i % requesters.len();
            let cn = format!("scep-load-{i}");
            let csr = requesters[requester].csr(&cn, None);
            let tid = pki::transaction_id("load");
            let message =
                pki::message(&identities[requester], ra, MessageType::PkcsReq, &tid, &csr);
            Prepared { requester, message }
        })
        .collect()
}

/// POSTs every prepared message with `workers` threads; fails on any non-200 reply.
fn drive(
    addr: std::net::SocketAddr,
    work: &[Prepared],
    workers: usize,
    max: Duration,
) -> anyhow::Result<Vec<Received>> {
    let connect = || Ok(kit::HttpConn::connect(addr)?);
    load::drain(work, workers, max, connect, |conn, index, p| {
        if conn.closed {
            *conn = kit::HttpConn::connect(addr)?;
        }
        let t = Instant::now();
        let reply = conn.post(
            "/scep/bench?operation=PKIOperation",
            "application/x-pki-message",
            &p.message,
        )?;
        let latency = t.elapsed();
        ensure!(reply.status == 200, "HTTP {}", reply.status);
        Ok(Received {
            index,
            latency,
            body: reply.body,
        })
    })
}

/// Every reply must be a SUCCESS CertRep certifying its requester's key.
fn check(
    received: &[Received],
    work: &[Prepared],
    requesters: &[pki::Requester],
    identities: &[ClientIdentity],
    ra: &[u8],
) -> anyhow::Result<()> {
    ensure!(
        received.len() == work.len(),
        "{} replies for {} requests",
        received.len(),
        work.len()
    );
    for r in received {
        let who = work[r.index].requester;
        let rep = open_cert_rep(&identities[who], ra, &r.body)
            .map_err(|e| anyhow::anyhow!("reply {}: {e}", r.index))?;
        if rep.status != PkiStatus::Success {
            bail!(
                "reply {}: {:?} {:?}",
                r.index,
                rep.status,
                rep.fail_info_text
            );
        }
        let cert = rep
            .certificates
            .first()
            .context("SUCCESS without a certificate")?;
        let spki = Certificate::from_der(cert)?
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()?;
        let own = Certificate::from_der(&requesters[who].self_signed)?
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()?;
        ensure!(spki == own, "reply {}: certifies another key", r.index);
    }
    Ok(())
}

/// RSA-2048 signatures per second with `threads` threads signing for `window`.
fn rsa_rate(pkcs8: &[u8], threads: usize, window: Duration) -> anyhow::Result<f64> {
    let key = RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| anyhow::anyhow!("RSA key: {e}"))?;
    let total = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let mut sig = vec![0; key.public_modulus_len()];
                let mut n = 0;
                while started.elapsed() < window {
                    if key
                        .sign(&RSA_PKCS1_SHA256, &rng, b"scep_load", &mut sig)
                        .is_ok()
                    {
                        n += 1;
                    }
                }
                total.fetch_add(n, Ordering::Relaxed);
            });
        }
    });
    Ok(total.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

fn pem_der(path: &Path) -> anyhow::Result<Vec<u8>> {
    let text = std::fs::read(path).with_context(|| path.display().to_string())?;
    Ok(der::pem::decode_vec(&text)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .1)
}

fn report(received: &[Received], elapsed: Duration, workers: usize) {
    let latencies = Latencies::new(received.iter().map(|r| r.latency).collect());
    println!(
        "scep_load: {} PKCSReq enrollments (RSA-2048 requesters, AES-128-CBC) in {:.2} s with \
         {workers} workers: {:.1} enrollments/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        latencies.ms(0.5),
        latencies.ms(0.99),
        latencies.ms(1.0)
    );
}
