//! CMP server side (placeholder doc, replaced below).

pub mod oid;
pub mod types;
