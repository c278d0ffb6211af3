//! PKIX building blocks shared by every enrollgate protocol.
//!
//! - [`Csr`]: a decoded PKCS#10 certification request (RFC 2986) with its proof-of-possession
//!   check, subject, requested extensions and subjectAltNames, key kind and PKCS#9
//!   challengePassword.
//! - [`verify_signature`]: the one signature check of the gateway (CSR, CMS SignerInfo for
//!   SCEP, CMP protection), on aws-lc-rs, driven by an X.509 AlgorithmIdentifier and a
//!   SubjectPublicKeyInfo.
//! - [`certs_only`] and [`parse_certs_only`]: the degenerate CMS SignedData that EST
//!   (RFC 7030 4.1.3) and SCEP (RFC 8894 3.4) use to carry certificates.
//! - [`name_to_string`], [`San`], [`sha256_fingerprint`]: names for policy, logs and audit.
//!
//! # Design
//!
//! Decoding is strict DER through RustCrypto's `der`, `spki` and `x509-cert` crates; every
//! entry point has a size limit and returns [`PkixError`] rather than panicking. A CSR's
//! signature is checked over the request-info bytes exactly as received, never over a
//! re-encoding. The crate does no I/O and reads no clock.
//!
//! # Not supported
//!
//! - Signature algorithms other than RSA PKCS#1 v1.5 with SHA-256/384/512 (SHA-1 only through
//!   [`verify_signature_allowing_sha1`]), RSASSA-PSS with SHA-256/384/512 and salt = hash
//!   length, ECDSA on P-256/P-384/P-521 with SHA-256/384/512, and Ed25519. No Ed448, no
//!   post-quantum algorithms, no explicit EC curve parameters.
//! - subjectAltName kinds other than dNSName, iPAddress, rfc822Name and URI: they are refused
//!   ([`PkixError::UnsupportedName`]), not silently dropped.
//! - BER (indefinite lengths) in certs-only messages; CRLs in them are ignored.

#![forbid(unsafe_code)]

mod certs_only;
mod csr;
mod error;
mod names;
mod signature;

pub use certs_only::{MAX_CERTS_ONLY_LEN, certs_only, parse_certs_only};
pub use csr::{Csr, MAX_CSR_LEN};
pub use error::PkixError;
pub use names::{San, name_to_string, sha256_fingerprint};
pub use signature::{KeyKind, verify_signature, verify_signature_allowing_sha1};

/// Re-exported so that dependants name the same versions of the ASN.1 stack.
pub use {const_oid, der, spki, x509_cert};

#[cfg(test)]
mod tests;
