//! CoAPs: EST-coaps (RFC 9148) and CMP over CoAP (RFC 9482) on one DTLS 1.2 UDP listener.
//!
//! One task reads the socket and dispatches datagrams by peer address. A datagram from an
//! unknown peer must be a ClientHello; the stateless cookie exchange of
//! [`enrollgate_coap::hello`] answers it with a HelloVerifyRequest and keeps nothing, so a
//! flood of spoofed hellos costs one HMAC each. Only a ClientHello returning a valid cookie
//! starts a session task, within the caps on sessions and on handshakes in progress.
//!
//! A session task ([`session`]) runs OpenSSL's DTLS over a channel of datagrams
//! ([`dtls::Datagrams`]: one datagram per read, one per write), drives its retransmission
//! timer, ends handshakes that stall, then serves CoAP through an
//! [`enrollgate_coap::Endpoint`] until the peer goes quiet for the idle timeout. Requests
//! go to [`resources`], which maps them onto the registrar and the CMP server.
//!
//! The DTLS profile is RFC 7925's: ECDHE-ECDSA-AES128-CCM8 with P-256 and an optional client
//! certificate (possession is proven by the handshake; the registrar validates the chain
//! against the route's anchors), and PSK-AES128-CCM8 with enrollment tokens (identity = token
//! id, key = the token secret). Other ECDHE-ECDSA or PSK AEAD suites are offered only when
//! `coaps.extra_ciphers` names them.

mod dtls;
mod resources;
mod session;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use enrollgate_coap::hello::{self, CookieKeys, Hello};
use tokio::net::UdpSocket;
use tokio::sync::{Semaphore, mpsc, watch};

use super::AppState;

/// How often the cookie secret changes; a cookie stays valid for one to two periods.
const COOKIE_ROTATION: Duration = Duration::from_secs(30);
/// Datagrams queued for one session before more are dropped.
const SESSION_QUEUE: usize = 32;
/// The metrics label of this transport.
const TRANSPORT: &str = "coaps";

/// The bound CoAPs socket and what its sessions share.
pub struct Listener {
    socket: Arc<UdpSocket>,
    shared: Arc<Shared>,
}

/// What every session task of one listener uses.
struct Shared {
    state: Arc<AppState>,
    socket: Arc<UdpSocket>,
    dtls: dtls::Dtls,
}

/// The dispatcher's view of one peer.
struct Peer {
    tx: mpsc::Sender<Vec<u8>>,
    id: u64,
    established: Arc<AtomicBool>,
}

impl Listener {
    /// Binds `addr` and prepares the DTLS context from the data directory's TLS identity.
    pub async fn bind(addr: SocketAddr, state: Arc<AppState>) -> anyhow::Result<Self> {
        let dtls = dtls::Dtls::new(&state)?;
        let socket = Arc::new(UdpSocket::bind(addr).await?);
        let shared = Arc::new(Shared {
            state,
            socket: socket.clone(),
            dtls,
        });
        Ok(Self { socket, shared })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Serves until `shutdown` turns true; sessions end with it.
    pub async fn serve(self, mut shutdown: watch::Receiver<bool>) {
        let mut dispatcher = Dispatcher::new(self.shared.clone(), shutdown.clone());
        let mut rotate = tokio::time::interval(COOKIE_ROTATION);
        rotate.tick().await;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((n, peer)) => dispatcher.datagram(peer, buf.get(..n).unwrap_or_default()),
                    Err(e) => tracing::debug!(error = %e, "coaps recv failed"),
                },
                Some((peer, id)) = dispatcher.closed_rx.recv() => dispatcher.closed(peer, id),
                _ = rotate.tick() => dispatcher.keys.rotate(&crate::crypto::random_bytes::<32>()),
                _ = shutdown.changed() => break,
            }
        }
        tracing::info!(listener = TRANSPORT, "draining sessions");
    }
}

/// Routes datagrams to sessions and answers unknown peers statelessly.
struct Dispatcher {
    shared: Arc<Shared>,
    sessions: HashMap<SocketAddr, Peer>,
    keys: CookieKeys,
    handshakes: Arc<Semaphore>,
    next_id: u64,
    closed_tx: mpsc::UnboundedSender<(SocketAddr, u64)>,
    closed_rx: mpsc::UnboundedReceiver<(SocketAddr, u64)>,
    shutdown: watch::Receiver<bool>,
}

impl Dispatcher {
    fn new(shared: Arc<Shared>, shutdown: watch::Receiver<bool>) -> Self {
        let (closed_tx, closed_rx) = mpsc::unbounded_channel();
        let handshakes = Arc::new(Semaphore::new(shared.state.config.coaps.max_handshakes));
        Self {
            shared,
            sessions: HashMap::new(),
            keys: CookieKeys::new(&crate::crypto::random_bytes::<32>()),
            handshakes,
            next_id: 0,
            closed_tx,
            closed_rx,
            shutdown,
        }
    }

    fn datagram(&mut self, peer: SocketAddr, data: &[u8]) {
        if let Some(known) = self.sessions.get(&peer) {
            // A peer that starts over after its session was established gets a new one;
            // hellos during a handshake are retransmissions for OpenSSL to handle.
            if !(known.established.load(Ordering::Relaxed) && hello::is_client_hello(data)) {
                self.forward(peer, data);
                return;
            }
        }
        match hello::inspect(data, &peer_bytes(peer), &self.keys) {
            Hello::NotClientHello(why) => {
                event(&self.shared.state, "no_session");
                tracing::debug!(%peer, why, "coaps datagram without session dropped");
            }
            Hello::NeedsCookie {
                bad_cookie,
                hello_verify,
            } => {
                if bad_cookie {
                    event(&self.shared.state, "bad_cookie");
                    tracing::debug!(%peer, "coaps ClientHello with an invalid cookie");
                }
                event(&self.shared.state, "hello_verify");
                let _ = self.shared.socket.try_send_to(&hello_verify, peer);
            }
            Hello::Verified(verified) => self.start(peer, verified, data.to_vec()),
        }
    }

    fn forward(&mut self, peer: SocketAddr, data: &[u8]) {
        let Some(known) = self.sessions.get(&peer) else {
            return;
        };
        match known.tx.try_send(data.to_vec()) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => event(&self.shared.state, "queue_full"),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.sessions.remove(&peer);
            }
        }
    }

    fn start(&mut self, peer: SocketAddr, verified: hello::Verified, first: Vec<u8>) {
        let limits = &self.shared.state.config.coaps;
        let replacing = self.sessions.contains_key(&peer);
        if !replacing && self.sessions.len() >= limits.max_sessions {
            event(&self.shared.state, "session_limit");
            tracing::debug!(%peer, "coaps session limit reached");
            return;
        }
        let Ok(permit) = self.handshakes.clone().try_acquire_owned() else {
            event(&self.shared.state, "handshake_limit");
            tracing::debug!(%peer, "coaps handshake limit reached");
            return;
        };
        let (tx, rx) = mpsc::channel(SESSION_QUEUE);
        let established = Arc::new(AtomicBool::new(false));
        self.next_id += 1;
        let id = self.next_id;
        // Replacing drops the old sender: the old session sees its channel close and ends.
        self.sessions.insert(
            peer,
            Peer {
                tx,
                id,
                established: established.clone(),
            },
        );
        let task = session::Session {
            shared: self.shared.clone(),
            peer,
            established,
            shutdown: self.shutdown.clone(),
        };
        let closed = self.closed_tx.clone();
        tokio::spawn(async move {
            task.run(rx, verified, first, permit).await;
            let _ = closed.send((peer, id));
        });
    }

    fn closed(&mut self, peer: SocketAddr, id: u64) {
        if self.sessions.get(&peer).is_some_and(|p| p.id == id) {
            self.sessions.remove(&peer);
        }
    }
}

/// The peer's address as the cookie binds it: IP octets and port.
fn peer_bytes(peer: SocketAddr) -> Vec<u8> {
    let mut out = match peer.ip() {
        std::net::IpAddr::V4(ip) => ip.octets().to_vec(),
        std::net::IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    out.extend_from_slice(&peer.port().to_be_bytes());
    out
}

/// Counts a transport event.
fn event(state: &AppState, name: &str) {
    state
        .metrics
        .transport_events
        .with_label_values(&[TRANSPORT, name])
        .inc();
}

/// A gauge of sessions or handshakes, decremented when dropped.
struct Active {
    state: Arc<AppState>,
    what: &'static str,
}

impl Active {
    fn new(state: &Arc<AppState>, what: &'static str) -> Self {
        state
            .metrics
            .transport_active
            .with_label_values(&[TRANSPORT, what])
            .inc();
        Self {
            state: state.clone(),
            what,
        }
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.state
            .metrics
            .transport_active
            .with_label_values(&[TRANSPORT, self.what])
            .dec();
    }
}
