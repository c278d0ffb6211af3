//! A small CoAP-over-DTLS client for the CoAPs tests and the `coaps_load` bench: DTLS 1.2
//! through the `openssl` crate over a connected UDP socket, and CoAP messages encoded and
//! decoded here (RFC 7252 3, RFC 7959 2.2), independently of the gateway's own CoAP code.
//!
//! It can send what `coap-client` cannot be made to send (a broken header, a block sequence
//! with a gap, raw bytes inside an established session) and it can bind to any loopback
//! address (127.0.0.x), which the handshake-flood test needs.
//!
//! This file has no dependency on the integration-test harness, so that the bench can include
//! it with `#[path]` too.

#![allow(
    dead_code,
    reason = "the tests and the bench each use a different part of the kit"
)]

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use openssl::ssl::{
    HandshakeError, Ssl, SslContext, SslContextBuilder, SslFiletype, SslMethod, SslOptions,
    SslStream, SslVerifyMode, SslVersion,
};

/// The RFC 7925 certificate suite.
pub const CERT_SUITE: &str = "ECDHE-ECDSA-AES128-CCM8";
/// The RFC 7925 PSK suite.
pub const PSK_SUITE: &str = "PSK-AES128-CCM8";

/// CoAP option numbers used by the tests (RFC 7252 5.10, RFC 7959).
pub mod opt {
    /// Uri-Path.
    pub const URI_PATH: u16 = 11;
    /// Content-Format.
    pub const CONTENT_FORMAT: u16 = 12;
    /// Max-Age.
    pub const MAX_AGE: u16 = 14;
    /// Accept.
    pub const ACCEPT: u16 = 17;
    /// Block2.
    pub const BLOCK2: u16 = 23;
    /// Block1.
    pub const BLOCK1: u16 = 27;
    /// Size2.
    pub const SIZE2: u16 = 28;
    /// Size1.
    pub const SIZE1: u16 = 60;
}

/// Message types (RFC 7252 3).
pub mod kind {
    /// Confirmable.
    pub const CON: u8 = 0;
    /// Non-confirmable.
    pub const NON: u8 = 1;
    /// Acknowledgement.
    pub const ACK: u8 = 2;
    /// Reset.
    pub const RST: u8 = 3;
}

/// Method codes.
pub const GET: u8 = 1;
/// POST.
pub const POST: u8 = 2;

/// A CoAP message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// CON, NON, ACK or RST.
    pub kind: u8,
    /// The code, class in the top 3 bits.
    pub code: u8,
    /// The message id.
    pub mid: u16,
    /// The token.
    pub token: Vec<u8>,
    /// Options in any order (encoded sorted, stable).
    pub options: Vec<(u16, Vec<u8>)>,
    /// The payload.
    pub payload: Vec<u8>,
}

impl Message {
    /// A request of `method` to `path` (`/a/b`).
    pub fn request(kind: u8, method: u8, mid: u16, token: &[u8], path: &str) -> Self {
        let options = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| (opt::URI_PATH, s.as_bytes().to_vec()))
            .collect();
        Self {
            kind,
            code: method,
            mid,
            token: token.to_vec(),
            options,
            payload: Vec::new(),
        }
    }

    /// Adds an unsigned-integer option.
    pub fn with_uint(mut self, number: u16, value: u32) -> Self {
        self.options.push((number, uint(value)));
        self
    }

    /// Adds an option.
    pub fn with_option(mut self, number: u16, value: &[u8]) -> Self {
        self.options.push((number, value.to_vec()));
        self
    }

    /// Sets the payload.
    pub fn with_payload(mut self, payload: &[u8]) -> Self {
        self.payload = payload.to_vec();
        self
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let tkl = u8::try_from(self.token.len().min(8)).unwrap_or(8);
        let mut out = vec![0x40 | (self.kind & 3) << 4 | tkl, self.code];
        out.extend_from_slice(&self.mid.to_be_bytes());
        out.extend_from_slice(self.token.get(..usize::from(tkl)).unwrap_or_default());
        let mut options = self.options.clone();
        options.sort_by_key(|(n, _)| *n);
        let mut last = 0u16;
        for (number, value) in &options {
            let (d, l) = (number - last, value.len());
            last = *number;
            let (dn, dx) = nibble(usize::from(d));
            let (ln, lx) = nibble(l);
            out.push(dn << 4 | ln);
            out.extend_from_slice(&dx);
            out.extend_from_slice(&lx);
            out.extend_from_slice(value);
        }
        if !self.payload.is_empty() {
            out.push(0xff);
            out.extend_from_slice(&self.payload);
        }
        out
    }

    /// Parses a datagram; `None` when it is not a well-formed CoAP message.
    pub fn decode(b: &[u8]) -> Option<Self> {
        let (&first, rest) = b.split_first()?;
        if first >> 6 != 1 {
            return None;
        }
        let tkl = usize::from(first & 0xf);
        let code = *rest.first()?;
        let mid = u16::from_be_bytes([*rest.get(1)?, *rest.get(2)?]);
        let token = rest.get(3..3 + tkl)?.to_vec();
        let mut at = 4 + tkl;
        let mut options = Vec::new();
        let mut number = 0u16;
        while let Some(&head) = b.get(at) {
            at += 1;
            if head == 0xff {
                break;
            }
            let delta = ext(b, &mut at, head >> 4)?;
            let len = ext(b, &mut at, head & 0xf)?;
            number = number.checked_add(u16::try_from(delta).ok()?)?;
            options.push((number, b.get(at..at + len)?.to_vec()));
            at += len;
        }
        Some(Self {
            kind: first >> 4 & 3,
            code,
            mid,
            token,
            options,
            payload: b.get(at..).unwrap_or_default().to_vec(),
        })
    }

    /// The first value of option `number`.
    pub fn option(&self, number: u16) -> Option<&[u8]> {
        self.options
            .iter()
            .find(|(n, _)| *n == number)
            .map(|(_, v)| v.as_slice())
    }

    /// Option `number` as an unsigned integer.
    pub fn uint(&self, number: u16) -> Option<u32> {
        self.option(number)
            .map(|v| v.iter().fold(0u32, |a, b| a << 8 | u32::from(*b)))
    }

    /// The code as `c.dd`, e.g. `2.05`.
    pub fn code_str(&self) -> String {
        format!("{}.{:02}", self.code >> 5, self.code & 0x1f)
    }
}

/// A code from its class and detail, e.g. `code(4, 8)` for 4.08.
pub const fn code(class: u8, detail: u8) -> u8 {
    class << 5 | detail
}

/// An unsigned integer option value in the fewest bytes.
pub fn uint(v: u32) -> Vec<u8> {
    let b = v.to_be_bytes();
    let skip = b.iter().take_while(|x| **x == 0).count();
    b.get(skip..).unwrap_or_default().to_vec()
}

/// A Block1/Block2 value.
pub fn block(num: u32, more: bool, szx: u8) -> Vec<u8> {
    uint(num << 4 | u32::from(more) << 3 | u32::from(szx & 7))
}

fn nibble(v: usize) -> (u8, Vec<u8>) {
    match v {
        0..=12 => (v as u8, Vec::new()),
        13..=268 => (13, vec![(v - 13) as u8]),
        _ => (14, ((v - 269) as u16).to_be_bytes().to_vec()),
    }
}

fn ext(b: &[u8], at: &mut usize, n: u8) -> Option<usize> {
    let v = match n {
        0..=12 => usize::from(n),
        13 => usize::from(*b.get(*at)?) + 13,
        14 => usize::from(u16::from_be_bytes([*b.get(*at)?, *b.get(*at + 1)?])) + 269,
        _ => return None,
    };
    *at += match n {
        13 => 1,
        14 => 2,
        _ => 0,
    };
    Some(v)
}

/// How the client authenticates in the handshake.
#[derive(Clone, Debug)]
pub enum Auth<'a> {
    /// No client certificate.
    Anonymous,
    /// A client certificate (PEM chain) and its key (PEM).
    Certificate {
        /// The certificate chain file.
        cert: &'a Path,
        /// The key file.
        key: &'a Path,
    },
    /// A pre-shared key: identity and key bytes.
    Psk {
        /// The identity (an enrollment token id).
        id: &'a str,
        /// The key (the token secret).
        secret: &'a str,
    },
}

/// A DTLS 1.2 client context. With `root`, the server's certificate must chain to it.
pub fn context(root: Option<&Path>, auth: &Auth<'_>) -> SslContext {
    let mut b = SslContextBuilder::new(SslMethod::dtls_client()).expect("DTLS client context");
    b.set_min_proto_version(Some(SslVersion::DTLS1_2))
        .expect("DTLS 1.2");
    b.set_max_proto_version(Some(SslVersion::DTLS1_2))
        .expect("DTLS 1.2");
    b.set_options(SslOptions::NO_QUERY_MTU);
    match auth {
        Auth::Psk { id, secret } => {
            b.set_cipher_list(PSK_SUITE).expect("PSK suite");
            let (id, key) = (id.as_bytes().to_vec(), secret.as_bytes().to_vec());
            b.set_psk_client_callback(move |_, _, id_out, key_out| {
                let id_dst = id_out.get_mut(..=id.len()).ok_or_else(no_room)?;
                id_dst[..id.len()].copy_from_slice(&id);
                id_dst[id.len()] = 0;
                key_out
                    .get_mut(..key.len())
                    .ok_or_else(no_room)?
                    .copy_from_slice(&key);
                Ok(key.len())
            });
        }
        _ => b.set_cipher_list(CERT_SUITE).expect("certificate suite"),
    }
    if let Auth::Certificate { cert, key } = auth {
        b.set_certificate_chain_file(cert)
            .expect("client certificate");
        b.set_private_key_file(key, SslFiletype::PEM)
            .expect("client key");
    }
    match root {
        Some(root) => {
            b.set_ca_file(root).expect("trust anchor");
            b.set_verify(SslVerifyMode::PEER);
        }
        None => b.set_verify(SslVerifyMode::NONE),
    }
    b.build()
}

fn no_room() -> openssl::error::ErrorStack {
    openssl::error::ErrorStack::get()
}

/// A connected UDP socket as a byte stream for OpenSSL: one datagram per read or write.
#[derive(Debug)]
pub struct Udp(pub UdpSocket);

impl Read for Udp {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.recv(buf)
    }
}

impl Write for Udp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.send(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A UDP socket on `local` (port 0) connected to `server`, with a short read timeout so
/// that OpenSSL's retransmission timer gets looked at.
pub fn udp(local: IpAddr, server: SocketAddr) -> io::Result<UdpSocket> {
    let sock = UdpSocket::bind(SocketAddr::new(local, 0))?;
    sock.connect(server)?;
    sock.set_read_timeout(Some(Duration::from_millis(100)))?;
    Ok(sock)
}

/// An established DTLS session carrying CoAP.
pub struct Client {
    stream: SslStream<Udp>,
    next_mid: u16,
    next_token: u32,
}

impl Client {
    /// Handshakes with `server` from 127.0.0.1 within `deadline`.
    pub fn connect(server: SocketAddr, ctx: &SslContext, deadline: Duration) -> io::Result<Self> {
        Self::connect_from([127, 0, 0, 1].into(), server, ctx, deadline)
    }

    /// Handshakes from the loopback address `local`.
    pub fn connect_from(
        local: IpAddr,
        server: SocketAddr,
        ctx: &SslContext,
        deadline: Duration,
    ) -> io::Result<Self> {
        let ssl = new_ssl(ctx)?;
        let stream = handshake(ssl, Udp(udp(local, server)?), Instant::now() + deadline)?;
        Ok(Self {
            stream,
            next_mid: u16::from_be_bytes(rand2()),
            next_token: 1,
        })
    }

    /// The OpenSSL session, for its cipher name and whether it was resumed.
    pub fn ssl(&self) -> &openssl::ssl::SslRef {
        self.stream.ssl()
    }

    /// Sends one datagram's worth of bytes inside the session.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// The next datagram received within `wait`, or `None`.
    pub fn recv_raw(&mut self, wait: Duration) -> Option<Vec<u8>> {
        let until = Instant::now() + wait;
        let mut buf = vec![0u8; 2048];
        while Instant::now() < until {
            match self.stream.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => return buf.get(..n).map(<[u8]>::to_vec),
                Err(e) if is_timeout(&e) => {}
                Err(_) => return None,
            }
        }
        None
    }

    /// A fresh message id.
    pub fn mid(&mut self) -> u16 {
        self.next_mid = self.next_mid.wrapping_add(1);
        self.next_mid
    }

    /// A fresh token.
    pub fn token(&mut self) -> Vec<u8> {
        self.next_token += 1;
        self.next_token.to_be_bytes().to_vec()
    }

    /// Sends `msg` (Confirmable) and returns the response to it: piggybacked, or separate
    /// after an empty ACK (which is then acknowledged). Retransmits every 2 s.
    pub fn exchange(&mut self, msg: &Message, wait: Duration) -> io::Result<Message> {
        let until = Instant::now() + wait;
        let bytes = msg.encode();
        self.send_raw(&bytes)?;
        let mut resend = Instant::now() + Duration::from_secs(2);
        let mut acked = false;
        while Instant::now() < until {
            let Some(d) = self.recv_raw(Duration::from_millis(100)) else {
                if !acked && Instant::now() >= resend {
                    self.send_raw(&bytes)?;
                    resend = Instant::now() + Duration::from_secs(2);
                }
                continue;
            };
            let Some(reply) = Message::decode(&d) else {
                continue;
            };
            if reply.kind == kind::ACK && reply.mid == msg.mid && reply.code == 0 {
                acked = true;
                continue;
            }
            let ours = reply.token == msg.token
                && (reply.mid == msg.mid || reply.kind != kind::ACK)
                && reply.code != 0;
            if reply.kind == kind::RST && reply.mid == msg.mid {
                return Ok(reply);
            }
            if !ours {
                continue;
            }
            if reply.kind == kind::CON {
                let ack = Message {
                    kind: kind::ACK,
                    mid: reply.mid,
                    ..Message::default()
                };
                self.send_raw(&ack.encode())?;
            }
            return Ok(reply);
        }
        Err(io::Error::new(io::ErrorKind::TimedOut, "no CoAP response"))
    }

    /// A Confirmable request with `payload` sent block-wise in blocks of `16 << szx` bytes
    /// when it is larger, and a response body collected through Block2. Returns the last
    /// response (its payload replaced by the whole body).
    pub fn request(
        &mut self,
        method: u8,
        path: &str,
        options: &[(u16, Vec<u8>)],
        payload: &[u8],
        szx: u8,
    ) -> io::Result<Message> {
        let size = 16usize << szx;
        let token = self.token();
        let blocks: Vec<&[u8]> = if payload.len() > size {
            payload.chunks(size).collect()
        } else {
            vec![payload]
        };
        let mut reply = Message::default();
        for (num, chunk) in blocks.iter().enumerate() {
            let mid = self.mid();
            let mut msg = Message::request(kind::CON, method, mid, &token, path);
            msg.options.extend_from_slice(options);
            if blocks.len() > 1 {
                let more = num + 1 < blocks.len();
                msg.options
                    .push((opt::BLOCK1, block(num as u32, more, szx)));
                if num == 0 {
                    msg.options.push((opt::SIZE1, uint(payload.len() as u32)));
                }
            }
            msg.payload = chunk.to_vec();
            reply = self.exchange(&msg, Duration::from_secs(30))?;
            if reply.code != code(2, 31) {
                break;
            }
        }
        let mut body = reply.payload.clone();
        while let Some(b2) = reply.uint(opt::BLOCK2).filter(|b| b & 8 != 0) {
            let mid = self.mid();
            let mut msg = Message::request(kind::CON, method, mid, &token, path);
            msg.options.extend(
                options
                    .iter()
                    .filter(|(n, _)| *n != opt::CONTENT_FORMAT)
                    .cloned(),
            );
            msg.options
                .push((opt::BLOCK2, block((b2 >> 4) + 1, false, (b2 & 7) as u8)));
            reply = self.exchange(&msg, Duration::from_secs(30))?;
            if reply.code >> 5 != 2 {
                return Ok(reply);
            }
            body.extend_from_slice(&reply.payload);
        }
        reply.payload = body;
        Ok(reply)
    }

    /// Closes the session with a close_notify (best effort).
    pub fn close(mut self) {
        let _ = self.stream.shutdown();
    }
}

/// A new `Ssl` with the MTU set for loopback tests.
fn new_ssl(ctx: &SslContext) -> io::Result<Ssl> {
    let mut ssl = Ssl::new(ctx).map_err(io::Error::other)?;
    ssl.set_mtu(1200).map_err(io::Error::other)?;
    Ok(ssl)
}

/// Drives a client handshake until `until`; a read timeout lets OpenSSL retransmit.
fn handshake(ssl: Ssl, udp: Udp, until: Instant) -> io::Result<SslStream<Udp>> {
    let mut step = ssl.connect(udp);
    loop {
        match step {
            Ok(stream) => return Ok(stream),
            Err(HandshakeError::WouldBlock(mid)) => {
                if Instant::now() >= until {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "handshake"));
                }
                step = mid.handshake();
            }
            Err(e) => return Err(io::Error::other(e.to_string())),
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn rand2() -> [u8; 2] {
    let mut b = [0u8; 2];
    openssl::rand::rand_bytes(&mut b).expect("random bytes");
    b
}

/// `text` without ANSI colour sequences (`ESC [ ... m`), as the gateway's log has them when
/// its terminal detection says so.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\x1b') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        rest = tail.find('m').map_or("", |m| &tail[m + 1..]);
    }
    out.push_str(rest);
    out
}
