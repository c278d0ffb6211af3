//! Upstream EST (RFC 7030): the gateway as an EST client of another EST server.
//!
//! - `POST {url}/simpleenroll` with the requester's PKCS#10, base64 (`application/pkcs10`),
//!   authenticated by our TLS client certificate and/or HTTP Basic credentials.
//!   `200` carries a base64 certs-only PKCS#7 (RFC 7030 4.2.3); `202` with `Retry-After`
//!   means the server holds the request (4.2.3): we answer pending, and a poll simply sends
//!   the same CSR again, which is what RFC 7030 asks a client to do. The reference is the
//!   base64 CSR itself, so a poll needs nothing but the reference.
//! - `GET {url}/cacerts` for the chain (4.1).
//!
//! `url` is the EST base including any label, e.g. `https://ca:8443/.well-known/est/devices`.
//! EST has no revocation.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use der::Decode;
use hyper::{Method, StatusCode};
use x509_cert::Certificate;

use super::http::{HttpClient, excerpt, status_error, transport_error};
use super::{BackendAnswer, BackendCert, BackendDef, BackendError, CaBackend, verify};
use crate::issuance::Approved;
use enrollgate_model::Secret;

/// Seconds to wait when a 202 carries no usable Retry-After.
const DEFAULT_RETRY: u32 = 60;

/// An upstream EST server.
pub struct EstBackend {
    http: HttpClient,
    basic: Option<String>,
}

impl EstBackend {
    /// Builds the client; reads the Basic password now.
    pub fn new(def: &BackendDef) -> Result<Self, String> {
        let url = def.url.as_deref().unwrap_or_default();
        let http = HttpClient::new(url, &def.tls, super::cfssl::connect_timeout(def))
            .map_err(|e| e.to_string())?;
        let settings = def.est.clone().unwrap_or_default();
        let basic = match (&settings.username, &settings.password) {
            (Some(user), Some(p)) => {
                let password: Secret = p.load()?;
                let pair = [user.as_bytes(), b":", password.expose()].concat();
                Some(format!("Basic {}", STANDARD.encode(pair)))
            }
            (None, None) => None,
            _ => return Err("est.username and est.password go together".into()),
        };
        Ok(Self { http, basic })
    }

    async fn enroll(&self, csr_b64: &str) -> Result<BackendAnswer, BackendError> {
        let mut headers = vec![
            ("content-type", "application/pkcs10".to_owned()),
            ("content-transfer-encoding", "base64".to_owned()),
            ("accept", "application/pkcs7-mime".to_owned()),
        ];
        if let Some(b) = &self.basic {
            headers.push(("authorization", b.clone()));
        }
        let body = Bytes::from(csr_b64.to_owned());
        let r = self
            .http
            .send(Method::POST, "/simpleenroll", &headers, Some(body))
            .await
            .map_err(transport_error)?;
        match r.status {
            StatusCode::OK => {
                let certs = certs_only_b64(&r.body)?;
                Ok(BackendAnswer::Issued(leaf_first(certs)?))
            }
            StatusCode::ACCEPTED => Ok(BackendAnswer::Pending {
                reference: csr_b64.to_owned(),
                retry_after: r
                    .header("retry-after")
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(DEFAULT_RETRY),
            }),
            // RFC 7030 error bodies are free text: a 4xx from an EST server is its refusal.
            s if s.is_client_error() && s != StatusCode::NOT_FOUND => {
                Err(status_error(s, Some(excerpt(&r.body))))
            }
            s => Err(status_error(s, None)),
        }
    }
}

/// Decodes a base64 certs-only PKCS#7 body.
fn certs_only_b64(body: &[u8]) -> Result<Vec<Vec<u8>>, BackendError> {
    let text: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let der = STANDARD
        .decode(text)
        .map_err(|_| BackendError::Invalid(format!("not base64: {}", excerpt(body))))?;
    let certs = enrollgate_pkix::parse_certs_only(&der)
        .map_err(|e| BackendError::Invalid(format!("not a certs-only PKCS#7: {e}")))?;
    if certs.is_empty() {
        return Err(BackendError::Invalid("no certificate in the answer".into()));
    }
    Ok(certs)
}

/// Orders certificates leaf first: the leaf is the one that issued none of the others.
fn leaf_first(certs: Vec<Vec<u8>>) -> Result<BackendCert, BackendError> {
    let ordered = order_chain(certs)?;
    verify::split_leaf(ordered).ok_or_else(|| BackendError::Invalid("empty answer".into()))
}

/// Orders a set of certificates from the lowest (issuing nothing) upwards.
pub(super) fn order_chain(certs: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, BackendError> {
    let parsed = certs
        .iter()
        .map(|c| Certificate::from_der(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| BackendError::Invalid(format!("undecodable certificate: {e}")))?;
    let issues_another = |i: usize| {
        parsed.iter().enumerate().any(|(j, other)| {
            j != i && other.tbs_certificate().issuer() == parsed[i].tbs_certificate().subject()
        })
    };
    let Some(mut current) = (0..parsed.len()).find(|&i| !issues_another(i)) else {
        return Ok(certs);
    };
    let mut order = vec![current];
    while order.len() < parsed.len() {
        let issuer = parsed[current].tbs_certificate().issuer();
        let next = (0..parsed.len())
            .find(|j| !order.contains(j) && parsed[*j].tbs_certificate().subject() == issuer);
        match next {
            Some(j) => {
                order.push(j);
                current = j;
            }
            None => break,
        }
    }
    Ok(order.into_iter().map(|i| certs[i].clone()).collect())
}

#[async_trait]
impl CaBackend for EstBackend {
    fn name(&self) -> &str {
        "est"
    }

    async fn issue(&self, request: &Approved) -> Result<BackendAnswer, BackendError> {
        let csr = request.csr().ok_or_else(|| {
            BackendError::Refused("upstream EST forwards PKCS#10 requests only".into())
        })?;
        self.enroll(&STANDARD.encode(csr)).await
    }

    async fn poll(&self, reference: &str) -> Result<BackendAnswer, BackendError> {
        self.enroll(reference).await
    }

    async fn revoke(&self, _serial: &str, _reason: u8) -> Result<(), BackendError> {
        Err(BackendError::Unsupported)
    }

    fn ca_chain(&self) -> Vec<Vec<u8>> {
        Vec::new()
    }

    async fn fetch_ca_chain(&self) -> Result<Vec<Vec<u8>>, BackendError> {
        let headers = [("accept", "application/pkcs7-mime".to_owned())];
        let r = self
            .http
            .send(Method::GET, "/cacerts", &headers, None)
            .await
            .map_err(transport_error)?;
        if r.status != StatusCode::OK {
            return Err(status_error(r.status, None));
        }
        order_chain(certs_only_b64(&r.body)?)
    }
}
