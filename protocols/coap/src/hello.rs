//! The stateless DTLS 1.2 cookie exchange (RFC 6347 4.2.1), done before a server keeps any
//! state for a peer.
//!
//! [`inspect`] reads the first record of a datagram from an unknown peer. A ClientHello
//! without a valid cookie is answered with a HelloVerifyRequest built here, whose cookie is
//! an HMAC over the peer's address and the ClientHello's random under a secret that the
//! caller rotates ([`CookieKeys`]); nothing is remembered. A ClientHello that returns a
//! valid cookie is the first point where the server creates a DTLS session.
//!
//! The DTLS library then needs the handshake to look as if it had sent the
//! HelloVerifyRequest itself (its handshake message sequence must expect 1). [`Verified`]
//! therefore carries a *replay*: the same ClientHello with the cookie removed and message
//! sequence 0, to be fed to the library first; the library answers it with its own
//! HelloVerifyRequest (carrying the same cookie, which the caller hands it), which the caller
//! discards, and then reads the real ClientHello. The handshake transcript starts at the
//! cookie-bearing ClientHello (RFC 6347 4.2.6), so the replay does not change it.

use aws_lc_rs::hmac;

/// The length of our cookies.
pub const COOKIE_LEN: usize = 32;

const RECORD_HEADER: usize = 13;
const HANDSHAKE_HEADER: usize = 12;
const CONTENT_HANDSHAKE: u8 = 22;
const CLIENT_HELLO: u8 = 1;
const HELLO_VERIFY_REQUEST: u8 = 3;
/// DTLS 1.0's version number, which RFC 6347 4.2.1 says a HelloVerifyRequest carries.
const DTLS_1_0: [u8; 2] = [0xfe, 0xff];

/// The current and the previous cookie secret: a cookie made just before a rotation is
/// still accepted.
pub struct CookieKeys {
    current: hmac::Key,
    previous: Option<hmac::Key>,
}

impl std::fmt::Debug for CookieKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieKeys(..)")
    }
}

impl CookieKeys {
    /// Keys from a fresh random secret.
    pub fn new(secret: &[u8; 32]) -> Self {
        Self {
            current: hmac::Key::new(hmac::HMAC_SHA256, secret),
            previous: None,
        }
    }

    /// Makes a new secret current; the old one keeps verifying until the next rotation.
    pub fn rotate(&mut self, secret: &[u8; 32]) {
        let next = hmac::Key::new(hmac::HMAC_SHA256, secret);
        self.previous = Some(std::mem::replace(&mut self.current, next));
    }

    /// The cookie for a peer (its address, as bytes) and a ClientHello random.
    pub fn cookie(&self, peer: &[u8], random: &[u8]) -> Vec<u8> {
        tag(&self.current, peer, random)
    }

    fn verify(&self, peer: &[u8], random: &[u8], cookie: &[u8]) -> bool {
        let input = [peer, random].concat();
        let ok = |key: &hmac::Key| hmac::verify(key, &input, cookie).is_ok();
        ok(&self.current) || self.previous.as_ref().is_some_and(ok)
    }
}

fn tag(key: &hmac::Key, peer: &[u8], random: &[u8]) -> Vec<u8> {
    hmac::sign(key, &[peer, random].concat()).as_ref().to_vec()
}

/// What a datagram from an unknown peer is.
#[derive(Debug, PartialEq, Eq)]
pub enum Hello {
    /// Not an unfragmented epoch-0 ClientHello in the first record: dropped.
    NotClientHello(&'static str),
    /// A ClientHello without a cookie, or with one that does not verify: send this
    /// HelloVerifyRequest and forget the peer.
    NeedsCookie {
        /// Whether a cookie was presented and failed (rather than absent).
        bad_cookie: bool,
        /// The datagram to send back.
        hello_verify: Vec<u8>,
    },
    /// A ClientHello with a valid cookie: start a session.
    Verified(Verified),
}

/// A ClientHello whose cookie verified.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    /// The cookie, for the DTLS library's cookie callbacks.
    pub cookie: Vec<u8>,
    /// The cookie-less ClientHello to feed the library before the real one.
    pub replay: Vec<u8>,
}

/// Reads the first record of `datagram` from `peer` (its address as bytes).
pub fn inspect(datagram: &[u8], peer: &[u8], keys: &CookieKeys) -> Hello {
    let hello = match ClientHello::parse(datagram) {
        Ok(h) => h,
        Err(why) => return Hello::NotClientHello(why),
    };
    if !hello.cookie.is_empty() && keys.verify(peer, hello.random, hello.cookie) {
        return match hello.replay() {
            Some(replay) => Hello::Verified(Verified {
                cookie: hello.cookie.to_vec(),
                replay,
            }),
            None => Hello::NotClientHello("record sequence 0 on a cookie-bearing ClientHello"),
        };
    }
    Hello::NeedsCookie {
        bad_cookie: !hello.cookie.is_empty(),
        hello_verify: hello_verify_request(hello.record_seq, &keys.cookie(peer, hello.random)),
    }
}

/// The fields of a ClientHello record that the cookie exchange needs.
#[derive(Debug)]
struct ClientHello<'a> {
    record: &'a [u8],
    record_seq: [u8; 6],
    random: &'a [u8],
    cookie: &'a [u8],
    /// Offset of the cookie length byte within `record`.
    cookie_at: usize,
}

impl<'a> ClientHello<'a> {
    fn parse(datagram: &'a [u8]) -> Result<Self, &'static str> {
        let header = datagram
            .get(..RECORD_HEADER)
            .ok_or("shorter than a record header")?;
        if header.first() != Some(&CONTENT_HANDSHAKE) {
            return Err("not a handshake record");
        }
        if header.get(3..5) != Some(&[0, 0]) {
            return Err("not epoch 0");
        }
        let len = usize::from(u16::from_be_bytes([byte(header, 11)?, byte(header, 12)?]));
        let record = datagram
            .get(..RECORD_HEADER + len)
            .ok_or("record longer than datagram")?;
        let mut record_seq = [0u8; 6];
        record_seq.copy_from_slice(header.get(5..11).ok_or("short header")?);
        let hs = record.get(RECORD_HEADER..).ok_or("empty record")?;
        if hs.first() != Some(&CLIENT_HELLO) {
            return Err("not a ClientHello");
        }
        let msg_len = u24(hs, 1)?;
        if u24(hs, 6)? != 0 || u24(hs, 9)? != msg_len || hs.len() != HANDSHAKE_HEADER + msg_len {
            return Err("fragmented ClientHello");
        }
        // client_version (2), random (32), session_id <0..32>, cookie <0..255>.
        let body = RECORD_HEADER + HANDSHAKE_HEADER;
        let random = record.get(body + 2..body + 34).ok_or("short ClientHello")?;
        let sid_len = usize::from(byte(record, body + 34)?);
        let cookie_at = body + 35 + sid_len;
        let cookie_len = usize::from(byte(record, cookie_at)?);
        let cookie = record
            .get(cookie_at + 1..cookie_at + 1 + cookie_len)
            .ok_or("short cookie")?;
        Ok(Self {
            record,
            record_seq,
            random,
            cookie,
            cookie_at,
        })
    }

    /// The same ClientHello without its cookie, as message 0 in the previous record number.
    fn replay(&self) -> Option<Vec<u8>> {
        let seq = u64::from_be_bytes([
            0,
            0,
            self.record_seq[0],
            self.record_seq[1],
            self.record_seq[2],
            self.record_seq[3],
            self.record_seq[4],
            self.record_seq[5],
        ]);
        let prev = seq.checked_sub(1)?.to_be_bytes();
        let mut out = Vec::with_capacity(self.record.len());
        out.extend_from_slice(self.record.get(..self.cookie_at)?);
        out.push(0);
        out.extend_from_slice(self.record.get(self.cookie_at + 1 + self.cookie.len()..)?);
        let record_len = out.len() - RECORD_HEADER;
        let msg_len = record_len - HANDSHAKE_HEADER;
        out.get_mut(5..11)?.copy_from_slice(prev.get(2..)?);
        out.get_mut(11..13)?
            .copy_from_slice(&u16::try_from(record_len).ok()?.to_be_bytes());
        let h = RECORD_HEADER;
        out.get_mut(h + 1..h + 4)?
            .copy_from_slice(u24_bytes(msg_len).get(..)?);
        out.get_mut(h + 4..h + 6)?.copy_from_slice(&[0, 0]);
        out.get_mut(h + 9..h + 12)?
            .copy_from_slice(u24_bytes(msg_len).get(..)?);
        Some(out)
    }
}

/// A HelloVerifyRequest in one record, which repeats the ClientHello's record sequence
/// number (RFC 6347 4.2.1).
fn hello_verify_request(record_seq: [u8; 6], cookie: &[u8]) -> Vec<u8> {
    let body_len = 2 + 1 + cookie.len();
    let mut out = Vec::with_capacity(RECORD_HEADER + HANDSHAKE_HEADER + body_len);
    out.push(CONTENT_HANDSHAKE);
    out.extend_from_slice(&DTLS_1_0);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&record_seq);
    out.extend_from_slice(&((HANDSHAKE_HEADER + body_len) as u16).to_be_bytes());
    out.push(HELLO_VERIFY_REQUEST);
    out.extend_from_slice(&u24_bytes(body_len));
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&u24_bytes(body_len));
    out.extend_from_slice(&DTLS_1_0);
    out.push(cookie.len() as u8);
    out.extend_from_slice(cookie);
    out
}

/// Whether an outgoing datagram starts with a HelloVerifyRequest (the DTLS library's answer
/// to the replay, which the caller drops).
pub fn is_hello_verify_request(datagram: &[u8]) -> bool {
    datagram.first() == Some(&CONTENT_HANDSHAKE)
        && datagram.get(RECORD_HEADER) == Some(&HELLO_VERIFY_REQUEST)
}

/// Whether a datagram starts with an epoch-0 ClientHello (a peer starting over).
pub fn is_client_hello(datagram: &[u8]) -> bool {
    datagram.first() == Some(&CONTENT_HANDSHAKE)
        && datagram.get(3..5) == Some(&[0, 0])
        && datagram.get(RECORD_HEADER) == Some(&CLIENT_HELLO)
}

fn byte(b: &[u8], at: usize) -> Result<u8, &'static str> {
    b.get(at).copied().ok_or("truncated")
}

fn u24(b: &[u8], at: usize) -> Result<usize, &'static str> {
    let v = b.get(at..at + 3).ok_or("truncated")?;
    Ok(v.iter().fold(0usize, |acc, x| (acc << 8) | usize::from(*x)))
}

fn u24_bytes(v: usize) -> [u8; 3] {
    let b = (v as u32).to_be_bytes();
    [b[1], b[2], b[3]]
}

#[cfg(test)]
mod tests;
