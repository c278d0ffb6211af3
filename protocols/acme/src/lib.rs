//! A sans-I/O ACME server core (RFC 8555).
#![forbid(unsafe_code)]

pub mod account;
mod b64;
pub mod eab;
pub mod ids;
pub mod jwk;
pub mod jws;
pub mod problem;
pub mod resources;
pub mod router;

#[cfg(test)]
mod test_support;
