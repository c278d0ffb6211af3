//! Identifiers, tokens and nonces made from caller-supplied randomness.
//!
//! The crate reads no OS randomness: the gateway passes an [`Rng`], a closure that fills a
//! buffer from a cryptographically secure source (for example `aws_lc_rs::rand::fill`).

use crate::b64;

/// Bytes of randomness in every identifier, token and nonce (RFC 8555 section 8.3 asks for
/// at least 128 bits of entropy in a token).
pub const RANDOM_BYTES: usize = 16;

/// A source of secure random bytes, supplied by the caller.
pub type Rng<'a> = dyn FnMut(&mut [u8]) + 'a;

/// A fresh random identifier: 128 bits as base64url (22 characters).
pub fn new_id(rng: &mut Rng<'_>) -> String {
    let mut buf = [0u8; RANDOM_BYTES];
    rng(&mut buf);
    b64::encode(&buf)
}

/// A fresh anti-replay nonce for the `Replay-Nonce` header (RFC 8555 section 6.5). The
/// gateway stores it and accepts it once.
pub fn new_nonce(rng: &mut Rng<'_>) -> String {
    new_id(rng)
}

/// Whether `nonce` has the syntax of RFC 8555 section 6.5.1 (base64url, no padding).
pub fn is_nonce_syntax(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce.len() <= 256
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
