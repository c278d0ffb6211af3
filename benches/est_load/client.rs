//! One load client: a kept-alive HTTPS connection sending EST requests back to back.
//!
//! hyper's HTTP/1.1 client runs over tokio-rustls with the aws-lc-rs provider (ring never
//! enters the build). Each reply is checked: status 200, a certs-only PKCS#7 whose first
//! certificate certifies the key of the CSR that was sent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use der::{Decode, Encode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;

use crate::csr::PooledCsr;

/// The run is warming up: requests are sent but not counted.
pub const WARMUP: u8 = 0;
/// The measured window: completed requests are counted.
pub const MEASURE: u8 = 1;
/// Clients finish their request in flight and stop.
pub const STOP: u8 = 2;

/// What every client of a run shares.
pub struct Shared {
    /// The gateway's HTTPS address.
    pub addr: SocketAddr,
    /// TLS client settings trusting the gateway's root.
    pub tls: TlsConnector,
    /// `Basic base64(id:secret)`.
    pub authorization: String,
    /// The requests to cycle through.
    pub csrs: Arc<Vec<PooledCsr>>,
    /// WARMUP, MEASURE or STOP.
    pub phase: AtomicU8,
    /// Path and method of the request to send.
    pub request: Kind,
}

/// Which request the clients send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// POST simpleenroll with a CSR (the load under test).
    Enroll,
    /// GET cacerts: TLS and HTTP with no store and no signature (a ceiling).
    CaCerts,
}

/// What one client saw in the measured window.
#[derive(Debug, Default)]
pub struct Tally {
    /// Latency of each successful request, microseconds.
    pub latencies_us: Vec<u32>,
    /// Requests that failed, with the first few reasons.
    pub failures: u64,
    /// Up to three failure messages, for the report.
    pub first_errors: Vec<String>,
}

/// TLS settings that trust only `root_der`, offering HTTP/1.1.
pub fn connector(root_der: &[u8]) -> anyhow::Result<TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(root_der.to_vec()))
        .context("adding the gateway root")?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Runs one client until the phase turns STOP; reconnects after a failed request.
pub async fn run(shared: Arc<Shared>, index: usize) -> Tally {
    let mut tally = Tally::default();
    let mut next = index;
    while shared.phase.load(Ordering::Relaxed) != STOP {
        let mut sender = match connect(&shared).await {
            Ok(s) => s,
            Err(e) => {
                note_failure(&mut tally, e);
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        while shared.phase.load(Ordering::Relaxed) != STOP {
            let csr = &shared.csrs[next % shared.csrs.len()];
            next += 1;
            let started = Instant::now();
            let result = one_request(&shared, &mut sender, csr).await;
            let micros = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
            match result {
                Ok(()) if shared.phase.load(Ordering::Relaxed) == MEASURE => {
                    tally.latencies_us.push(micros);
                }
                Ok(()) => {}
                Err(e) => {
                    note_failure(&mut tally, e);
                    break;
                }
            }
        }
    }
    tally
}

/// Failures count in every phase: warm-up errors are errors too.
fn note_failure(tally: &mut Tally, e: anyhow::Error) {
    tally.failures += 1;
    if tally.first_errors.len() < 3 {
        tally.first_errors.push(format!("{e:#}"));
    }
}

async fn connect(shared: &Shared) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let tcp = tokio::net::TcpStream::connect(shared.addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from("localhost")?;
    let tls = shared
        .tls
        .connect(name, tcp)
        .await
        .context("TLS handshake")?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

async fn one_request(
    shared: &Shared,
    sender: &mut SendRequest<Full<Bytes>>,
    csr: &PooledCsr,
) -> anyhow::Result<()> {
    let request = match shared.request {
        Kind::Enroll => Request::post("/.well-known/est/simpleenroll")
            .header(HOST, "localhost")
            .header(CONTENT_TYPE, "application/pkcs10")
            .header(AUTHORIZATION, &shared.authorization)
            .body(Full::new(csr.body.clone()))?,
        Kind::CaCerts => Request::get("/.well-known/est/cacerts")
            .header(HOST, "localhost")
            .body(Full::new(Bytes::new()))?,
    };
    sender.ready().await.context("connection closed")?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if status != StatusCode::OK {
        bail!("status {status}: {}", String::from_utf8_lossy(&body));
    }
    let certs = decode_certs_only(&body)?;
    if shared.request == Kind::Enroll {
        check_certifies(&certs, csr)?;
    }
    Ok(())
}

/// The certificates of a base64 certs-only PKCS#7 body.
fn decode_certs_only(body: &[u8]) -> anyhow::Result<Vec<Vec<u8>>> {
    let text: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let der = STANDARD.decode(text).context("reply is not base64")?;
    let certs = enrollgate_pkix::parse_certs_only(&der).context("reply is not certs-only")?;
    if certs.is_empty() {
        bail!("reply holds no certificate");
    }
    Ok(certs)
}

/// The first certificate decodes and certifies the CSR's key.
fn check_certifies(certs: &[Vec<u8>], csr: &PooledCsr) -> anyhow::Result<()> {
    let first = certs.first().context("no certificate")?;
    let cert = x509_cert::Certificate::from_der(first).context("certificate decodes")?;
    let spki = cert.tbs_certificate().subject_public_key_info().to_der()?;
    if spki != csr.spki_der {
        bail!("certificate certifies another key");
    }
    Ok(())
}
