//! EST, Enrollment over Secure Transport (RFC 7030), without I/O.
//!
//! The server layer reads an HTTP request and hands it in as an [`EstRequest`] together with
//! the path parsed by [`parse_path`] and the route's data ([`RouteInfo`]). [`handle`] checks
//! method, media type, credential, CSR and channel binding, and decides:
//!
//! - cacerts and csrattrs are answered at once ([`Decision::Respond`]);
//! - simpleenroll, simplereenroll and serverkeygen become one
//!   [`IssuanceRequest`](enrollgate_model::IssuanceRequest) for the registrar
//!   ([`Decision::Issue`]); its [`Outcome`](enrollgate_model::Outcome) is rendered by
//!   [`encode_outcome`].
//!
//! Errors before the registrar are [`EstError`]s; [`EstError::response`] renders them.
//! Bodies follow RFC 7030 as clarified by RFC 8951: base64 whatever Content-Transfer-Encoding
//! says; for robustness raw DER and PEM requests are also read. Credentials: HTTP Basic
//! (`id:secret`, an enrollment token), else the TLS client certificate, else anonymous;
//! simplereenroll always uses the client certificate. Channel binding uses RFC 9266's
//! tls-exporter: when the connection supplies one and the CSR has a challengePassword, the
//! password must be its base64.
//!
//! [`decode_base64_body`], [`parse_multipart`] and [`parse_csr_attrs`] serve clients and tests.
//!
//! # Not supported
//!
//! - Full CMC (`/fullcmc`, RFC 7030 4.3) and server-side key generation with an encrypted key
//!   (`application/pkcs7-mime; smime-type=server-generated-key`): keys are returned as
//!   unencrypted PKCS#8, protected by TLS only (RFC 7030 4.4.2).
//! - HTTP Digest authentication (RFC 7030 3.2.3 allows it; few clients use it): only Basic.
//! - tls-unique channel binding (TLS 1.2, RFC 5929): only tls-exporter on TLS 1.3.
//! - `Allow` headers on 405 replies.

#![forbid(unsafe_code)]

mod body;
mod csrattrs;
mod error;
mod path;
mod request;
mod response;

pub use body::{decode_base64_body, parse_multipart};
pub use csrattrs::{CsrAttr, MAX_CSR_ATTRS_LEN, encode_csr_attrs, parse_csr_attrs};
pub use error::EstError;
pub use path::{EstOperation, EstPath, parse_path};
pub use request::{CSR_ATTRS, Decision, EstRequest, RouteInfo, handle};
pub use response::{BACKEND_RETRY_AFTER_SECS, CERTS_ONLY, EstResponse, encode_outcome};

#[cfg(test)]
mod tests;
