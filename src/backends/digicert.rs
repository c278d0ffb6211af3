//! DigiCert CertCentral through the Services API v2 (`https://www.digicert.com/services/v2`),
//! as documented at <https://dev.digicert.com/en/certcentral-apis/services-api.html>, for
//! private and client certificates ordered with a CSR and an API key (`X-DC-DEVKEY`).
//!
//! - `POST /order/certificate/{product}` (Orders: "Order Private SSL", "Order client
//!   certificate") with `certificate.common_name`, `certificate.csr` (PEM),
//!   `certificate.signature_hash`, `certificate.dns_names`, `organization.id`,
//!   `order_validity.years`, `payment_method` and `skip_approval`. `201 Created` carries the
//!   order `id` and `requests[].status`; when DigiCert issued at once it also carries
//!   `certificate_id` (and for private products `certificate_chain[].pem`).
//! - An order whose request waits for an approver (`requests[].status` = `pending`) is
//!   answered pending with the order id as reference; a poll reads
//!   `GET /order/certificate/{order_id}` ("Order info"): `status` `issued` with
//!   `certificate.id` gives the certificate, `pending`/`needs_approval`/`processing` stays
//!   pending, `rejected`/`canceled`/`revoked` is a refusal.
//! - `GET /certificate/{certificate_id}/download/format/pem_all` ("Download a certificate by
//!   format") gives the certificate, its intermediates and the root as PEM.
//! - Revocation: `GET /order/certificate?filters[serial_number]=...` ("List orders") finds the
//!   certificate id, `PUT /certificate/{certificate_id}/revoke` ("Revoke certificate")
//!   revokes it.
//! - Errors carry `{"errors": [{"code", "message"}]}` with 400 (e.g. `invalid_csr`), 401
//!   (`access_denied`), 403 and 404: DigiCert's refusals.
//!
//! The API key is read from a file or an environment variable and sent only in the header.
//! The Services API gives a chain only with a certificate, so `/cacerts` and revocation routing
//! need the chain as `ca_chain_file`.

use async_trait::async_trait;
use hyper::{Method, StatusCode};
use serde::Deserialize;

use super::config::DigicertSettings;
use super::http::{HttpClient, HttpResponse, excerpt, vendor_error};
use super::{BackendAnswer, BackendDef, BackendError, CaBackend, verify};
use crate::issuance::Approved;
use enrollgate_model::Secret;

/// A DigiCert CertCentral account.
pub struct DigicertBackend {
    http: HttpClient,
    settings: DigicertSettings,
    api_key: Secret,
}

/// The order answer.
#[derive(Deserialize)]
struct Ordered {
    id: u64,
    #[serde(default)]
    certificate_id: Option<u64>,
    #[serde(default)]
    requests: Vec<RequestState>,
}

#[derive(Deserialize)]
struct RequestState {
    #[serde(default)]
    status: String,
}

/// The "Order info" answer (the fields used here).
#[derive(Deserialize)]
struct OrderInfo {
    status: String,
    #[serde(default)]
    certificate: Option<CertificateRef>,
}

#[derive(Deserialize)]
struct CertificateRef {
    #[serde(default)]
    id: Option<u64>,
}

#[derive(Deserialize)]
struct OrderList {
    #[serde(default)]
    orders: Vec<OrderInfo>,
}

#[derive(Deserialize)]
struct Errors {
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

impl DigicertBackend {
    /// Builds the client; reads the API key now.
    pub fn new(def: &BackendDef) -> Result<Self, String> {
        let settings = def
            .digicert
            .clone()
            .ok_or("kind digicert needs a [digicert] table")?;
        let url = def.url.as_deref().unwrap_or_default();
        let http = HttpClient::new(url, &def.tls, super::cfssl::connect_timeout(def))
            .map_err(|e| e.to_string())?;
        let api_key = settings.api_key.load()?;
        Ok(Self {
            http,
            settings,
            api_key,
        })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<HttpResponse, BackendError> {
        let key = String::from_utf8_lossy(self.api_key.expose()).into_owned();
        let headers = vec![("x-dc-devkey", key), ("accept", "*/*".to_owned())];
        self.http.send_json(method, path, headers, body).await
    }

    fn order_body(&self, csr: &[u8]) -> Result<serde_json::Value, BackendError> {
        let parsed = enrollgate_pkix::Csr::from_der(csr)
            .map_err(|e| BackendError::Refused(format!("undecodable CSR: {e}")))?;
        let cn = parsed
            .common_name()
            .ok_or_else(|| BackendError::Refused("DigiCert orders need a common name".into()))?;
        let dns: Vec<String> = parsed
            .subject_alt_names()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|s| match s {
                enrollgate_pkix::San::Dns(d) => Some(d),
                _ => None,
            })
            .collect();
        let mut certificate = serde_json::json!({
            "common_name": cn,
            "csr": verify::csr_pem(csr),
            "signature_hash": self.settings.signature_hash,
        });
        if !dns.is_empty() {
            certificate["dns_names"] = dns.into();
        }
        if let Some(ca) = &self.settings.ca_cert_id {
            certificate["ca_cert_id"] = ca.clone().into();
        }
        Ok(serde_json::json!({
            "certificate": certificate,
            "organization": {"id": self.settings.organization_id},
            "order_validity": {"years": self.settings.validity_years},
            "payment_method": "balance",
            "skip_approval": self.settings.skip_approval,
        }))
    }

    fn pending(&self, order_id: u64) -> BackendAnswer {
        BackendAnswer::Pending {
            reference: order_id.to_string(),
            retry_after: self.settings.retry_after_secs,
        }
    }

    /// Downloads an issued certificate with its chain.
    async fn download(&self, certificate_id: u64) -> Result<BackendAnswer, BackendError> {
        let path = format!("/certificate/{certificate_id}/download/format/pem_all");
        let r = self.send(Method::GET, &path, None).await?;
        if !r.status.is_success() {
            return Err(error_of(&r));
        }
        let certs = verify::pem_certificates(&r.body)?;
        let ordered = super::est::order_chain(certs)?;
        let cert = verify::split_leaf(ordered)
            .ok_or_else(|| BackendError::Invalid("empty download".into()))?;
        Ok(BackendAnswer::Issued(cert))
    }

    /// After an order was placed, a failed download leaves the order to be polled.
    async fn download_or_pending(&self, order_id: u64, certificate_id: u64) -> BackendAnswer {
        match self.download(certificate_id).await {
            Ok(answer) => answer,
            Err(e) => {
                tracing::warn!(order = order_id, error = %e, "DigiCert download failed; polling");
                self.pending(order_id)
            }
        }
    }
}

/// The backend error for a DigiCert answer that is not a success.
fn error_of(r: &HttpResponse) -> BackendError {
    match serde_json::from_slice::<Errors>(&r.body) {
        Ok(e) if !e.errors.is_empty() => {
            let text = e
                .errors
                .iter()
                .map(|i| format!("{} ({})", i.message, i.code))
                .collect::<Vec<_>>()
                .join("; ");
            vendor_error(r.status, Some(text))
        }
        _ => vendor_error(r.status, None),
    }
}

fn json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, BackendError> {
    serde_json::from_slice(body)
        .map_err(|_| BackendError::Invalid(format!("not a DigiCert answer: {}", excerpt(body))))
}

/// DigiCert's revocation reasons (RFC 5280 codes it accepts).
fn reason_name(code: u8) -> &'static str {
    match code {
        1 => "key_compromise",
        3 => "affiliation_changed",
        4 => "superseded",
        5 => "cessation_of_operation",
        _ => "unspecified",
    }
}

#[async_trait]
impl CaBackend for DigicertBackend {
    fn name(&self) -> &str {
        "digicert"
    }

    async fn issue(&self, request: &Approved) -> Result<BackendAnswer, BackendError> {
        let csr = request
            .csr()
            .ok_or_else(|| BackendError::Refused("DigiCert orders need a PKCS#10".into()))?;
        let body = self.order_body(csr)?;
        let path = format!("/order/certificate/{}", self.settings.product);
        let r = self.send(Method::POST, &path, Some(body)).await?;
        if !r.status.is_success() {
            return Err(error_of(&r));
        }
        let order: Ordered = json(&r.body)?;
        let approved = order.requests.iter().all(|q| q.status != "pending");
        match order.certificate_id {
            Some(cid) if approved => Ok(self.download_or_pending(order.id, cid).await),
            _ => Ok(self.pending(order.id)),
        }
    }

    async fn poll(&self, reference: &str) -> Result<BackendAnswer, BackendError> {
        let order_id: u64 = reference
            .parse()
            .map_err(|_| BackendError::Invalid("unreadable DigiCert order id".into()))?;
        let r = self
            .send(Method::GET, &format!("/order/certificate/{order_id}"), None)
            .await?;
        if r.status != StatusCode::OK {
            return Err(error_of(&r));
        }
        let info: OrderInfo = json(&r.body)?;
        match info.status.as_str() {
            "issued" => match info.certificate.and_then(|c| c.id) {
                Some(cid) => self.download(cid).await,
                None => Err(BackendError::Invalid(
                    "issued order without certificate".into(),
                )),
            },
            "rejected" | "canceled" | "revoked" | "expired" => Err(BackendError::Refused(format!(
                "DigiCert order {order_id} is {}",
                info.status
            ))),
            _ => Ok(self.pending(order_id)),
        }
    }

    async fn revoke(&self, serial: &str, reason: u8) -> Result<(), BackendError> {
        let path = format!(
            "/order/certificate?filters%5Bserial_number%5D={}",
            serial.to_ascii_uppercase()
        );
        let r = self.send(Method::GET, &path, None).await?;
        if r.status != StatusCode::OK {
            return Err(error_of(&r));
        }
        let list: OrderList = json(&r.body)?;
        let cid = list
            .orders
            .iter()
            .find_map(|o| o.certificate.as_ref().and_then(|c| c.id))
            .ok_or_else(|| BackendError::Refused(format!("no DigiCert order for {serial}")))?;
        let body = serde_json::json!({
            "reason": reason_name(reason),
            "comments": "revoked through enrollgate",
            "skip_approval": self.settings.skip_approval,
        });
        let r = self
            .send(
                Method::PUT,
                &format!("/certificate/{cid}/revoke"),
                Some(body),
            )
            .await?;
        if r.status.is_success() {
            Ok(())
        } else {
            Err(error_of(&r))
        }
    }

    fn ca_chain(&self) -> Vec<Vec<u8>> {
        Vec::new()
    }
}
