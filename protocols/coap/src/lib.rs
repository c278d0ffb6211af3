//! CoAP for enrollgate: EST over CoAPs (RFC 9148) and CMP over CoAP (RFC 9482), without I/O.
//!
//! The server keeps one [`Endpoint`] per DTLS session. It hands in each decrypted datagram
//! with the current time ([`Endpoint::receive`]) and gets back datagrams to send and, once a
//! request is complete, a [`Request`]. The endpoint does what RFC 7252 and RFC 7959 ask of
//! a server below the resources:
//!
//! - header and option checks: malformed messages are dropped (or Reset when Confirmable),
//!   unknown critical options get 4.02, unknown methods 4.05;
//! - deduplication by message id for EXCHANGE_LIFETIME, bounded in count;
//! - Block1 reassembly with Size1 and a size limit (4.13), gaps refused with 4.08, 2.31
//!   Continue for each block; Block2 slicing of large responses with Size2, the later
//!   blocks served from a bounded, expiring cache;
//! - piggybacked responses, or an empty ACK after [`Limits::separate_after_ms`] and then a
//!   separate Confirmable response, retransmitted until acknowledged ([`Endpoint::on_timeout`]).
//!
//! The resources map onto the shared issuance model: [`est`] parses the RFC 9148 short paths
//! (`crts`, `sen`, `sren`, `skg`, `skc`, `att`) and turns a request into an
//! [`IssuanceRequest`](enrollgate_model::IssuanceRequest) for the registrar and its outcome
//! into a CoAP response with DER payloads; [`cmp`] checks CMP requests (content format 259)
//! and wraps the CMP server's reply; [`discovery`] answers `/.well-known/core` with the
//! `ace.est.*` and `ace.cmp` resource types. [`hello`] does the stateless DTLS cookie exchange
//! (RFC 6347 4.2.1), which a DTLS server must do before it keeps any state for a peer.
//!
//! # Not supported
//!
//! - Observe (RFC 7641), multicast, proxying (Proxy-Uri gets 4.02), OSCORE, BERT and CoAP
//!   over TCP (RFC 8323).
//! - EST-coaps `/att` answers the route's attributes only; encrypted server-generated keys
//!   (content format 280) are not produced.
//! - Several simultaneous block-wise transfers to the same resource on one session: a new
//!   Block1 block 0 restarts the transfer. Request-Tag (RFC 9175) is ignored.
//! - Block2 later blocks of a POST response are served only while the response is kept
//!   (60 s by default); a GET that lost its kept response is processed again.

#![forbid(unsafe_code)]

mod block;
pub mod cmp;
pub mod discovery;
mod endpoint;
mod error;
pub mod est;
pub mod hello;
mod message;
mod multipart;
pub mod option;

pub use coap_lite::{RequestType, ResponseType};
pub use endpoint::{Endpoint, Limits, Output};
pub use error::CoapError;
pub use message::{Request, RequestId, Response};
pub use multipart::{multipart_core, parse_multipart_core};

/// CoAP content formats used here (IANA CoAP Content-Formats registry).
pub mod format {
    /// application/link-format (RFC 6690).
    pub const LINK_FORMAT: u16 = 40;
    /// application/multipart-core (RFC 8710).
    pub const MULTIPART_CORE: u16 = 62;
    /// application/pkixcmp (RFC 9482).
    pub const PKIXCMP: u16 = 259;
    /// application/pkcs7-mime; smime-type=certs-only (RFC 9148).
    pub const PKCS7_CERTS: u16 = 281;
    /// application/pkcs8 (RFC 9148).
    pub const PKCS8: u16 = 284;
    /// application/csrattrs (RFC 9148).
    pub const CSRATTRS: u16 = 285;
    /// application/pkcs10 (RFC 9148).
    pub const PKCS10: u16 = 286;
    /// application/pkix-cert (RFC 9148).
    pub const PKIX_CERT: u16 = 287;
}

#[cfg(test)]
mod tests;
