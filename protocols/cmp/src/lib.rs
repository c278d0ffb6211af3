//! CMP server side (placeholder doc, replaced below).

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
