//! The crypto bound: how many enrollments' worth of signatures the cores can do at best.
//!
//! One thread per core loops over the CSR pool: verify the CSR's signature (the proof of
//! possession, [`enrollgate_pkix::Csr::verify_signature`]) and build and sign a certificate
//! for it with the gateway's own issuing CA key ([`enrollgate::ca::x509::sign_certificate`]).
//! Decoding the CSR is left out on purpose: the bound is the signatures alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use der::flagset::FlagSet;
use enrollgate::ca::BuiltinCa;
use enrollgate::ca::x509::{CertTemplate, sign_certificate};
use enrollgate_pkix::Csr;
use x509_cert::ext::pkix::KeyUsages;

use crate::csr::PooledCsr;

/// What the bound run measured.
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    /// Threads run, one per core.
    pub threads: usize,
    /// (verify + sign) pairs per second over all threads.
    pub pairs_per_sec: f64,
    /// Microseconds of one core per pair.
    pub micros_per_pair: f64,
    /// Verifications alone per second on one core.
    pub verify_per_sec_one_core: f64,
    /// Certificate signatures alone per second on one core.
    pub sign_per_sec_one_core: f64,
}

/// Runs `threads` threads for `seconds`, then each half alone on one core for a second.
pub fn measure(
    ca: &Arc<BuiltinCa>,
    csrs: &[PooledCsr],
    threads: usize,
    seconds: f64,
) -> anyhow::Result<Bound> {
    let parsed: Arc<Vec<Csr>> = Arc::new(
        csrs.iter()
            .map(|c| Csr::from_der(&c.der))
            .collect::<Result<_, _>>()
            .context("pooled CSR decodes")?,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..threads)
        .map(|i| {
            let (ca, parsed, stop) = (ca.clone(), parsed.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("eg-bound-{i}"))
                .spawn(move || pairs_until(&ca, &parsed, &stop, i))
        })
        .collect::<Result<_, _>>()?;
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut done = 0u64;
    for w in workers {
        done += w
            .join()
            .map_err(|_| anyhow::anyhow!("bound thread panicked"))??;
    }
    let pairs_per_sec = done as f64 / seconds;

    let window = Duration::from_secs(1);
    let verify = rate(window, |i| {
        parsed[i % parsed.len()].verify_signature().is_ok()
    });
    let sign = rate(window, |i| sign_one(ca, &parsed[i % parsed.len()]).is_ok());
    Ok(Bound {
        threads,
        pairs_per_sec,
        micros_per_pair: threads as f64 * 1e6 / pairs_per_sec,
        verify_per_sec_one_core: verify,
        sign_per_sec_one_core: sign,
    })
}

fn pairs_until(
    ca: &BuiltinCa,
    parsed: &[Csr],
    stop: &AtomicBool,
    start: usize,
) -> anyhow::Result<u64> {
    let mut done = 0u64;
    let mut i = start;
    while !stop.load(Ordering::Relaxed) {
        let csr = &parsed[i % parsed.len()];
        csr.verify_signature().context("CSR verifies")?;
        sign_one(ca, csr)?;
        done += 1;
        i += 1;
    }
    Ok(done)
}

/// Builds and signs the certificate the gateway would issue for `csr`.
fn sign_one(ca: &BuiltinCa, csr: &Csr) -> anyhow::Result<Vec<u8>> {
    let now = SystemTime::now();
    let template = CertTemplate {
        serial: enrollgate::ca::random_serial(),
        subject: csr.subject().clone(),
        public_key: csr.public_key().clone(),
        not_before: now,
        not_after: now + Duration::from_secs(365 * 86_400),
        ca: None,
        key_usage: FlagSet::from(KeyUsages::DigitalSignature) | KeyUsages::KeyEncipherment,
        extended_key_usage: vec![const_oid::db::rfc5280::ID_KP_CLIENT_AUTH],
        subject_alt_names: Vec::new(),
    };
    Ok(sign_certificate(&template, &ca.issuing.issuer())?)
}

/// Calls `f` on this thread for `window`; returns calls per second.
fn rate(window: Duration, mut f: impl FnMut(usize) -> bool) -> f64 {
    let started = Instant::now();
    let mut n = 0usize;
    while started.elapsed() < window {
        if !f(n) {
            return 0.0;
        }
        n += 1;
    }
    n as f64 / started.elapsed().as_secs_f64()
}
