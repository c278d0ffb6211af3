//! One peer's DTLS session: handshake with a deadline, then CoAP until it goes quiet.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use enrollgate_coap::hello::Verified;
use enrollgate_coap::{Endpoint, Limits, Output, RequestId, Response};
use enrollgate_model::Credential;
use openssl::ssl::{Ssl, SslRef};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use tokio_openssl::SslStream;

use super::dtls::Datagrams;
use super::{Active, Shared, event, resources};

/// A fresh per-session header and payload allowance above the body limit.
const READ_SLACK: usize = 1024;

/// A session task's inputs.
pub(super) struct Session {
    pub shared: Arc<Shared>,
    pub peer: SocketAddr,
    pub established: Arc<AtomicBool>,
    pub shutdown: watch::Receiver<bool>,
}

/// What the DTLS handshake proved about the peer.
#[derive(Clone, Debug)]
pub(super) struct PeerInfo {
    pub peer: SocketAddr,
    pub credential: Credential,
    /// The certificate chain, leaf first, when the peer presented one.
    pub chain: Vec<Vec<u8>>,
}

impl Session {
    /// Handshake, then serve; returns when the session is over.
    pub async fn run(
        mut self,
        rx: mpsc::Receiver<Vec<u8>>,
        verified: Verified,
        first: Vec<u8>,
        permit: OwnedSemaphorePermit,
    ) {
        let state = self.shared.state.clone();
        let handshaking = Active::new(&state, "handshakes");
        let Some(mut stream) = self.handshake(rx, verified, first).await else {
            return;
        };
        drop((handshaking, permit));
        stream.get_mut().established();
        self.established.store(true, Ordering::Relaxed);
        let _session = Active::new(&state, "sessions");
        let Some(info) = self.peer_info(stream.ssl()).await else {
            return;
        };
        let ssl = stream.ssl();
        if ssl.session_reused() {
            event(&state, "resumed");
        }
        tracing::debug!(
            peer = %self.peer,
            credential = credential_kind(&info.credential),
            cipher = ssl.current_cipher().map_or("", |c| c.name()),
            resumed = ssl.session_reused(),
            "coaps session established"
        );
        self.serve(&mut stream, Arc::new(info)).await;
        let _ = tokio::time::timeout(Duration::from_millis(200), stream.shutdown()).await;
    }

    async fn handshake(
        &self,
        rx: mpsc::Receiver<Vec<u8>>,
        verified: Verified,
        first: Vec<u8>,
    ) -> Option<SslStream<Datagrams>> {
        let dtls = &self.shared.dtls;
        let state = &self.shared.state;
        let ssl = Ssl::new(&dtls.ctx).and_then(|mut ssl| {
            ssl.set_ex_data(dtls.cookie, verified.cookie);
            ssl.set_mtu(dtls.mtu)?;
            Ok(ssl)
        });
        let channel = Datagrams::new(
            vec![verified.replay, first],
            rx,
            self.shared.socket.clone(),
            self.peer,
        );
        let mut stream = match ssl.and_then(|ssl| SslStream::new(ssl, channel)) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "coaps: creating a DTLS session failed");
                return None;
            }
        };
        let deadline = Duration::from_secs(state.config.coaps.handshake_timeout_secs);
        match tokio::time::timeout(deadline, Pin::new(&mut stream).accept()).await {
            Ok(Ok(())) => Some(stream),
            Ok(Err(e)) => {
                event(state, "handshake_failed");
                tracing::debug!(peer = %self.peer, error = %e, "coaps handshake failed");
                None
            }
            Err(_) => {
                event(state, "handshake_timeout");
                tracing::debug!(peer = %self.peer, "coaps handshake timed out");
                None
            }
        }
    }

    /// The credential the handshake proved: a PSK identity (an enrollment token, which must
    /// exist), a client certificate chain, or nothing.
    async fn peer_info(&self, ssl: &SslRef) -> Option<PeerInfo> {
        let state = &self.shared.state;
        let chain = client_chain(ssl);
        let credential = if let Some(identity) = ssl.psk_identity() {
            let id = String::from_utf8_lossy(identity).into_owned();
            match state.registrar.store().token(&id).await {
                Ok(Some(_)) => Credential::TokenProven { id },
                Ok(None) => {
                    event(state, "psk_unknown_token");
                    tracing::debug!(peer = %self.peer, "coaps PSK identity names no token");
                    return None;
                }
                Err(e) => {
                    tracing::error!(error = %e, "store failed looking up a PSK identity");
                    return None;
                }
            }
        } else if chain.is_empty() {
            Credential::Anonymous
        } else {
            Credential::Certificate {
                chain: chain.clone(),
            }
        };
        Some(PeerInfo {
            peer: self.peer,
            credential,
            chain,
        })
    }

    async fn serve(&mut self, stream: &mut SslStream<Datagrams>, info: Arc<PeerInfo>) {
        let state = self.shared.state.clone();
        let cfg = &state.config.coaps;
        let limits = Limits {
            max_body: cfg.max_body_bytes,
            szx: block_szx(self.shared.dtls.mtu),
            ..Limits::default()
        };
        let first_mid = u16::from_be_bytes(crate::crypto::random_bytes::<2>());
        let mut endpoint = Endpoint::new(limits, first_mid);
        let (done_tx, mut done_rx) = mpsc::channel::<(RequestId, Response)>(8);
        let started = Instant::now();
        let idle = Duration::from_secs(cfg.idle_timeout_secs);
        let mut last_heard = Instant::now();
        let mut buf = vec![0u8; cfg.max_body_bytes.min(16 * 1024) + READ_SLACK];
        loop {
            let now_ms = || started.elapsed().as_millis() as u64;
            let idle_at = last_heard + idle;
            let wake = endpoint
                .next_timeout()
                .map(|ms| started + Duration::from_millis(ms))
                .map_or(idle_at, |t| t.min(idle_at));
            let send = tokio::select! {
                read = stream.read(&mut buf) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        last_heard = Instant::now();
                        let out = endpoint.receive(now_ms(), buf.get(..n).unwrap_or_default());
                        self.received(&info, &out, &done_tx);
                        out.send
                    }
                },
                Some((id, response)) = done_rx.recv() => endpoint.respond(now_ms(), id, response),
                _ = tokio::time::sleep_until(wake.into()) => {
                    if Instant::now() >= idle_at && endpoint.in_flight() == 0 {
                        event(&state, "idle_closed");
                        break;
                    }
                    endpoint.on_timeout(now_ms())
                }
                _ = self.shutdown.changed() => break,
            };
            for datagram in send {
                if stream.write_all(&datagram).await.is_err() {
                    return;
                }
            }
        }
    }

    fn received(
        &self,
        info: &Arc<PeerInfo>,
        out: &Output,
        done: &mpsc::Sender<(RequestId, Response)>,
    ) {
        let state = &self.shared.state;
        if let Some(e) = &out.refused {
            state
                .metrics
                .bad_input
                .with_label_values(&["coaps", e.kind()])
                .inc();
            tracing::debug!(peer = %self.peer, error = %e, "coaps message refused");
        }
        if out.duplicate {
            event(state, "duplicate");
        }
        let Some(request) = out.request.clone() else {
            return;
        };
        let (state, info, done) = (state.clone(), info.clone(), done.clone());
        tokio::spawn(async move {
            let id = request.id;
            let response = resources::handle(&state, &info, request).await;
            let _ = done.send((id, response)).await;
        });
    }
}

/// The client certificate chain, leaf first (OpenSSL's server-side chain omits the leaf).
fn client_chain(ssl: &SslRef) -> Vec<Vec<u8>> {
    let Some(leaf) = ssl.peer_certificate().and_then(|c| c.to_der().ok()) else {
        return Vec::new();
    };
    let mut chain = vec![leaf];
    if let Some(rest) = ssl.peer_cert_chain() {
        for cert in rest {
            if let Ok(der) = cert.to_der() {
                if !chain.contains(&der) {
                    chain.push(der);
                }
            }
        }
    }
    chain
}

/// The block size that fits a DTLS record in the MTU: record header, explicit nonce and
/// CCM-8 tag (29 bytes) and up to 100 bytes of CoAP header and options.
fn block_szx(dtls_mtu: u32) -> u8 {
    enrollgate_coap::option::szx_for((dtls_mtu as usize).saturating_sub(29 + 100))
}

fn credential_kind(c: &Credential) -> &'static str {
    match c {
        Credential::TokenProven { .. } => "psk",
        Credential::Certificate { .. } => "certificate",
        Credential::Anonymous => "anonymous",
        _ => "other",
    }
}
