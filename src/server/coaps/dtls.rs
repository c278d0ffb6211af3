//! The DTLS 1.2 context (RFC 7925 profile) and the datagram channel OpenSSL runs over.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use openssl::ex_data::Index;
use openssl::pkey::PKey;
use openssl::ssl::{
    Ssl, SslContext, SslContextBuilder, SslMethod, SslOptions, SslVerifyMode, SslVersion,
};
use openssl::x509::X509;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Sleep;

use super::super::AppState;

/// The certificate suite of RFC 7925 4.4.
const CERT_SUITE: &str = "ECDHE-ECDSA-AES128-CCM8";
/// The PSK suite of RFC 7925 4.2.
const PSK_SUITE: &str = "PSK-AES128-CCM8";
/// The longest PSK identity accepted (token ids are short).
const MAX_IDENTITY: usize = 64;
/// IPv6 and UDP headers: the DTLS MTU is the path MTU less these.
const IP_UDP_OVERHEAD: u16 = 48;

/// The server context and the index under which each session keeps its verified cookie.
pub(super) struct Dtls {
    pub ctx: SslContext,
    pub cookie: Index<Ssl, Vec<u8>>,
    /// The DTLS MTU: the path MTU less IP and UDP headers.
    pub mtu: u32,
}

impl Dtls {
    /// Builds the context from the data directory's TLS certificate and key.
    pub fn new(state: &AppState) -> anyhow::Result<Self> {
        let cfg = &state.config;
        let cookie = Ssl::new_ex_index::<Vec<u8>>()?;
        let mut b = SslContextBuilder::new(SslMethod::dtls_server())?;
        b.set_min_proto_version(Some(SslVersion::DTLS1_2))?;
        b.set_max_proto_version(Some(SslVersion::DTLS1_2))?;
        let mut suites = vec![CERT_SUITE];
        if cfg.coaps.psk {
            suites.push(PSK_SUITE);
        }
        suites.extend(cfg.coaps.extra_ciphers.iter().map(String::as_str));
        b.set_cipher_list(&suites.join(":"))
            .context("coaps.extra_ciphers names a suite this OpenSSL lacks")?;
        b.set_groups_list("P-256")?;
        identity(&mut b, state)?;
        // Ask for a client certificate but accept any: the handshake proves possession of
        // its key, and the registrar validates the chain against the route's anchors.
        b.set_verify_callback(SslVerifyMode::PEER, |_, _| true);
        b.set_session_id_context(b"enrollgate-coaps")?;
        b.set_options(
            SslOptions::COOKIE_EXCHANGE
                | SslOptions::NO_QUERY_MTU
                | SslOptions::CIPHER_SERVER_PREFERENCE,
        );
        cookie_callbacks(&mut b, cookie);
        if cfg.coaps.psk {
            psk_callback(&mut b, state.tokens.clone());
        }
        let mtu = u32::from(cfg.coaps.mtu.saturating_sub(IP_UDP_OVERHEAD));
        Ok(Self {
            ctx: b.build(),
            cookie,
            mtu,
        })
    }
}

fn identity(b: &mut SslContextBuilder, state: &AppState) -> anyhow::Result<()> {
    let key_der = crate::ca::read_pem(&state.config.data_dir.join("tls.key"))?;
    let key = PKey::private_key_from_pkcs8(&key_der).context("tls.key is not PKCS#8")?;
    b.set_private_key(&key)?;
    let leaf = X509::from_der(&state.ca.tls.cert)?;
    b.set_certificate(&leaf)?;
    b.add_extra_chain_cert(X509::from_der(&state.ca.issuing.cert)?)?;
    b.check_private_key()
        .context("tls.key does not match tls.crt")?;
    Ok(())
}

/// The dispatcher verified the cookie before the session existed; OpenSSL is handed the
/// same cookie to answer the replayed hello with and to accept the real one.
fn cookie_callbacks(b: &mut SslContextBuilder, index: Index<Ssl, Vec<u8>>) {
    b.set_cookie_generate_cb(move |ssl, out| {
        let cookie = ssl.ex_data(index).map(Vec::as_slice).unwrap_or_default();
        let dst = out
            .get_mut(..cookie.len())
            .ok_or_else(openssl::error::ErrorStack::get)?;
        dst.copy_from_slice(cookie);
        Ok(cookie.len())
    });
    b.set_cookie_verify_cb(move |ssl, presented| {
        ssl.ex_data(index)
            .is_some_and(|c| !c.is_empty() && c.as_slice() == presented)
    });
}

/// PSK identity = enrollment token id; key = the token secret's bytes. An identity that is
/// not a plausible token id gets no key, which fails the handshake.
fn psk_callback(b: &mut SslContextBuilder, tokens: Arc<crate::tokens::Tokens>) {
    b.set_psk_server_callback(move |_ssl, identity, out| {
        let Some(id) = identity
            .filter(|i| !i.is_empty() && i.len() <= MAX_IDENTITY)
            .and_then(|i| std::str::from_utf8(i).ok())
            .filter(|i| {
                i.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            })
        else {
            return Ok(0);
        };
        let secret = tokens.secret_for(id);
        let key = secret.expose();
        match out.get_mut(..key.len()) {
            Some(dst) => {
                dst.copy_from_slice(key);
                Ok(key.len())
            }
            None => Ok(0),
        }
    });
}

/// One peer's datagrams as a stream for OpenSSL: each read returns one datagram, each write
/// sends one. While the handshake runs, reads also wake on a short tick so that OpenSSL
/// checks its retransmission timer (it retransmits when a read would block after the timer
/// expired), and OpenSSL's answer to the replayed hello is dropped.
pub(super) struct Datagrams {
    preload: VecDeque<Vec<u8>>,
    rx: mpsc::Receiver<Vec<u8>>,
    socket: Arc<UdpSocket>,
    peer: SocketAddr,
    tick: Option<Pin<Box<Sleep>>>,
}

/// How often a handshake in progress lets OpenSSL look at its timer.
const HANDSHAKE_TICK: Duration = Duration::from_millis(250);

impl Datagrams {
    /// A channel whose first reads are `preload`, then what the dispatcher forwards.
    pub fn new(
        preload: Vec<Vec<u8>>,
        rx: mpsc::Receiver<Vec<u8>>,
        socket: Arc<UdpSocket>,
        peer: SocketAddr,
    ) -> Self {
        Self {
            preload: preload.into(),
            rx,
            socket,
            peer,
            tick: Some(Box::pin(tokio::time::sleep(HANDSHAKE_TICK))),
        }
    }

    /// The handshake is over: no more ticks, no more filtering.
    pub fn established(&mut self) {
        self.tick = None;
    }

    fn poll_tick(&mut self, cx: &mut Context<'_>) {
        let Some(tick) = self.tick.as_mut() else {
            return;
        };
        if tick.as_mut().poll(cx).is_ready() {
            tick.as_mut()
                .reset(tokio::time::Instant::now() + HANDSHAKE_TICK);
            let _ = tick.as_mut().poll(cx);
            cx.waker().wake_by_ref();
        }
    }
}

impl AsyncRead for Datagrams {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let datagram = match self.preload.pop_front() {
            Some(d) => d,
            None => match self.rx.poll_recv(cx) {
                Poll::Ready(Some(d)) => d,
                // The dispatcher dropped us: end of stream.
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => {
                    self.poll_tick(cx);
                    return Poll::Pending;
                }
            },
        };
        let n = datagram.len().min(buf.remaining());
        buf.put_slice(datagram.get(..n).unwrap_or_default());
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Datagrams {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.tick.is_some() && enrollgate_coap::hello::is_hello_verify_request(buf) {
            return Poll::Ready(Ok(buf.len()));
        }
        match self.socket.poll_send_to(cx, buf, self.peer) {
            Poll::Ready(Err(e)) => {
                // UDP: a send error is a lost datagram, which DTLS and CoAP recover from.
                tracing::debug!(peer = %self.peer, error = %e, "coaps send failed");
                Poll::Ready(Ok(buf.len()))
            }
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
