//! enrollgate: a certificate enrollment gateway.
//!
//! Devices enroll with whatever protocol their firmware speaks (EST today; SCEP, CMP, ACME and
//! the CoAP mappings plug into the same spine). Each protocol crate under `protocols/` turns
//! its wire format into one [`enrollgate_model::IssuanceRequest`]; the [`issuance::Registrar`]
//! authenticates the requester, applies the route's profile policy, enforces one certificate
//! per transaction, audits, and calls the [`backends::CaBackend`] that signs. The
//! [`server`] module is the thin async glue between sockets and that spine.

#![forbid(unsafe_code)]

pub mod backends;
pub mod ca;
pub mod clock;
pub mod config;
pub mod crl;
pub mod crypto;
pub mod gateway;
pub mod issuance;
pub mod metrics;
pub mod server;
pub mod store;
pub mod tokens;
