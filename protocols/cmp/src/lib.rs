//! The server side of CMP (RFC 9810) in the lightweight profile (RFC 9483), without I/O.
//!
//! The gateway drives one [`CmpServer`] per route through three calls per message:
//!
//! 1. [`CmpServer::decode`] parses the request (size-limited) and exposes its
//!    [`HeaderFacts`]: transactionID, senderKID, nonces, body type, protection kind and the
//!    extraCerts. With them the gateway looks up the enrollment token's secret (MAC) and the
//!    stored [`TransactionState`].
//! 2. [`CmpServer::verify_mac`] (PasswordBasedMac or PBMAC1, iteration count capped) or
//!    [`CmpServer::verify_signature`] (first extraCert) checks the protection and gives a
//!    [`Verified`] message. On failure the gateway sends [`CmpServer::error_reply`], a
//!    signed error message.
//! 3. [`CmpServer::step`] advances the transaction with the time and a random source and
//!    returns a [`Step`]: a [`Reply`] to send (with the state to store and an [`Event`] such as
//!    "revoke this unconfirmed certificate"), or a request for the registrar
//!    ([`Step::Issue`], [`Step::Poll`], [`Step::Revoke`]) whose answer goes back through
//!    [`CmpServer::reply_for_outcome`] or [`CmpServer::reply_for_revocation`].
//!
//! Replies repeat the request's transactionID, answer its senderNonce and carry a fresh
//! senderNonce that the client's next message must return. MAC-protected requests get
//! replies MACed with the same secret and parameters (fresh salt); all others are signed with
//! our ECDSA P-256 key, our chain in extraCerts. CRMF requests (ir, cr, kur) carry a signature
//! proof of possession that this crate checks, handing the registrar a
//! [`enrollgate_model::KeySource::Verified`]; p10cr hands on the PKCS#10 as it came.
//! Wire types in [`types`] mirror the RFC's ASN.1 and re-encode byte for byte.
//!
//! Not supported: central key generation and encrypted certificates (`privateKey`,
//! `encryptedCert`, EnvelopedData), POP by key encipherment or agreement and `poposkInput`,
//! several CertReqMsg or RevDetails in one message, `nested` messages and RA batching, the
//! announcement, key recovery and cross-certification bodies, KEM-based protection, RSA-PSS
//! or RSA for our own protection key, and `confirmWaitTime` in replies.

#![forbid(unsafe_code)]

pub mod client;
pub mod error;
mod exchange;
mod general;
mod incoming;
mod mac;
pub mod oid;
mod reply;
mod request;
mod server;
mod signature;
mod state;
pub mod types;

pub use client::{ClientProtection, ClientReply, ClientRequest, ClientTransaction, CmpClient};
pub use error::{CmpError, FailInfo, fail_info_for_reject};
pub use incoming::{HeaderFacts, Incoming, Limits, ProtectionKind, Verified};
pub use server::{CmpServer, PendingReply, Reply, ServerConfig, Step};
pub use state::{Event, RequestKind, TransactionState};

/// The media type of CMP messages over HTTP (RFC 9811 section 3.4).
pub fn http_content_type() -> &'static str {
    "application/pkixcmp"
}

#[cfg(test)]
mod tests;
