//! A sans-I/O ACME server core (RFC 8555).
#![forbid(unsafe_code)]

pub mod account;
pub mod ari;
mod b64;
pub mod cert;
pub mod challenge;
pub mod eab;
pub mod finalize;
pub mod ids;
pub mod jwk;
pub mod jws;
pub mod order;
pub mod problem;
pub mod resources;
pub mod revocation;
pub mod router;
pub mod validation;

#[cfg(test)]
mod test_support;
