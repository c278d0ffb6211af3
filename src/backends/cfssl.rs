//! cfssl remote signing: the `cfssl serve` API (cfssl 1.x, `api/v1/cfssl`).
//!
//! - `POST /api/v1/cfssl/sign` with `{"certificate_request": PEM, "profile", "label"}`, or,
//!   when an HMAC key is configured, `POST /api/v1/cfssl/authsign` with
//!   `{"token": base64(HMAC-SHA256(key, request)), "request": base64(request)}`, where
//!   `request` is the same JSON as for `sign` and the key is the hex `standard` auth key of
//!   cfssl's signing configuration.
//! - `POST /api/v1/cfssl/info` with `{"label", "profile"}` for the signing CA certificate.
//!
//! Answers are cfssl's envelope `{"success", "result", "errors": [{"code", "message"}],
//! "messages"}`; the certificate is `result.certificate`, PEM. cfssl signs whatever its
//! profile allows: subject and SANs come from the CSR (which our policy approved), validity
//! and usages from cfssl's profile. cfssl does not hold requests: it never answers pending.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hyper::Method;
use serde::Deserialize;

use super::config::CfsslSettings;
use super::http::{HttpClient, excerpt, status_error, transport_error};
use super::{BackendAnswer, BackendDef, BackendError, CaBackend, verify};
use crate::issuance::Approved;
use async_trait::async_trait;

/// A `cfssl serve` signer.
pub struct CfsslBackend {
    http: HttpClient,
    settings: CfsslSettings,
    auth_key: Option<hmac::Key>,
}

/// cfssl's answer envelope.
#[derive(Deserialize)]
struct Envelope {
    success: bool,
    #[serde(default)]
    result: Option<serde_json::Value>,
    #[serde(default)]
    errors: Vec<Message>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

impl CfsslBackend {
    /// Builds the client; reads the HMAC key now.
    pub fn new(def: &BackendDef) -> Result<Self, String> {
        let settings = def.cfssl.clone().unwrap_or_default();
        let url = def.url.as_deref().unwrap_or_default();
        let http =
            HttpClient::new(url, &def.tls, connect_timeout(def)).map_err(|e| e.to_string())?;
        let auth_key = match &settings.auth_key {
            Some(r) => {
                let secret = r.load()?;
                let raw = hex::decode(secret.expose()).map_err(|_| {
                    "cfssl.auth_key must be hex, as in cfssl's auth_keys".to_owned()
                })?;
                Some(hmac::Key::new(hmac::HMAC_SHA256, &raw))
            }
            None => None,
        };
        Ok(Self {
            http,
            settings,
            auth_key,
        })
    }

    /// POSTs a JSON request (through `authsign` when keyed) and returns `result`.
    async fn call(
        &self,
        endpoint: &str,
        request: serde_json::Value,
    ) -> Result<serde_json::Value, BackendError> {
        let request = request.to_string().into_bytes();
        let (path, body) = match (&self.auth_key, endpoint) {
            (Some(key), "sign") => {
                let token = hmac::sign(key, &request);
                let body = serde_json::json!({
                    "token": STANDARD.encode(token.as_ref()),
                    "request": STANDARD.encode(&request),
                });
                (
                    "/api/v1/cfssl/authsign".to_owned(),
                    body.to_string().into_bytes(),
                )
            }
            _ => (format!("/api/v1/cfssl/{endpoint}"), request),
        };
        let headers = [("content-type", "application/json".to_owned())];
        let response = self
            .http
            .send(Method::POST, &path, &headers, Some(Bytes::from(body)))
            .await
            .map_err(transport_error)?;
        let envelope: Option<Envelope> = serde_json::from_slice(&response.body).ok();
        match envelope {
            Some(Envelope {
                success: true,
                result: Some(result),
                ..
            }) if response.status.is_success() => Ok(result),
            Some(e) if !e.success => {
                let text = e
                    .errors
                    .iter()
                    .map(|m| format!("{} ({})", m.message, m.code))
                    .collect::<Vec<_>>()
                    .join("; ");
                let status = if response.status.is_success() {
                    hyper::StatusCode::BAD_REQUEST
                } else {
                    response.status
                };
                Err(status_error(status, Some(text)))
            }
            _ if response.status.is_success() => Err(BackendError::Invalid(format!(
                "not a cfssl answer: {}",
                excerpt(&response.body)
            ))),
            _ => Err(status_error(response.status, None)),
        }
    }

    fn names(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        if let Some(p) = &self.settings.profile {
            m.insert("profile".into(), p.clone().into());
        }
        if let Some(l) = &self.settings.label {
            m.insert("label".into(), l.clone().into());
        }
        m
    }
}

/// Connecting may take at most half the call's budget, so that failover has time left.
pub(super) fn connect_timeout(def: &BackendDef) -> std::time::Duration {
    std::time::Duration::from_millis(def.timeout_secs.saturating_mul(500).max(200))
}

fn certificate_of(result: &serde_json::Value) -> Result<Vec<Vec<u8>>, BackendError> {
    let pem = result["certificate"]
        .as_str()
        .ok_or_else(|| BackendError::Invalid("cfssl result has no certificate".into()))?;
    verify::pem_certificates(pem.as_bytes()).map_err(Into::into)
}

#[async_trait]
impl CaBackend for CfsslBackend {
    fn name(&self) -> &str {
        "cfssl"
    }

    async fn issue(&self, request: &Approved) -> Result<BackendAnswer, BackendError> {
        let csr = request
            .csr()
            .ok_or_else(|| BackendError::Refused("cfssl signs PKCS#10 requests only".into()))?;
        let mut body = self.names();
        body.insert("certificate_request".into(), verify::csr_pem(csr).into());
        let result = self.call("sign", body.into()).await?;
        let certs = certificate_of(&result)?;
        let cert = verify::split_leaf(certs)
            .ok_or_else(|| BackendError::Invalid("empty answer".into()))?;
        Ok(BackendAnswer::Issued(cert))
    }

    async fn revoke(&self, _serial: &str, _reason: u8) -> Result<(), BackendError> {
        // `cfssl serve` revokes only with its certificate database and an authority key id;
        // the gateway's store and CRL keep the revocation instead.
        Err(BackendError::Unsupported)
    }

    fn ca_chain(&self) -> Vec<Vec<u8>> {
        Vec::new()
    }

    async fn fetch_ca_chain(&self) -> Result<Vec<Vec<u8>>, BackendError> {
        let result = self.call("info", self.names().into()).await?;
        certificate_of(&result)
    }
}
