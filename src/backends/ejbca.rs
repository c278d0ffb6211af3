//! EJBCA through its REST API v1 (EJBCA 7.x to 9.x, `/ejbca/ejbca-rest-api/v1`), as the
//! EJBCA REST Interface documentation and its bundled OpenAPI reference describe it
//! (<https://docs.keyfactor.com/ejbca/latest/ejbca-rest-interface>, API version 1.0).
//!
//! - `POST /v1/certificate/pkcs10enroll` with `certificate_request` (PEM),
//!   `certificate_profile_name`, `end_entity_profile_name`, `certificate_authority_name`,
//!   `username`, `password`, `include_chain` and `response_format` = `DER`. EJBCA answers
//!   `201` (older releases `200`) with `certificate` (base64 DER), `serial_number`,
//!   `response_format` and `certificate_chain` (base64 DER, issuing CA first).
//! - A request that an approval profile holds is answered `202` with the informational body
//!   `{"status_code": 202, "info_message": ...}`. Once an administrator approves it, the end
//!   entity may enroll with the same user name and password: a poll sends the same
//!   `pkcs10enroll` again. The pending reference carries the user name and the CSR, so any
//!   node can poll.
//! - Errors carry `{"error_code", "error_message"}`: 400, 403 (not authorized), 404 (unknown
//!   CA or profile), 409, 422 (the profile refuses the request) are EJBCA's refusals; 503
//!   (CA or crypto token offline) means nothing was issued.
//! - `PUT /v1/certificate/{issuer_dn}/{serial_hex}/revoke?reason=NAME` revokes;
//!   `GET /v1/ca/{subject_dn}/certificate/download` gives the CA chain as PEM.
//!
//! EJBCA authenticates the gateway by its TLS client certificate (`[backends.NAME.tls]`),
//! which EJBCA maps to an RA administrator role.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hyper::{Method, StatusCode};
use serde::Deserialize;

use super::config::EjbcaSettings;
use super::http::{HttpClient, HttpResponse, excerpt, vendor_error};
use super::{BackendAnswer, BackendDef, BackendError, CaBackend, verify};
use crate::issuance::Approved;
use enrollgate_model::Secret;

/// An EJBCA CA behind its REST API.
pub struct EjbcaBackend {
    http: HttpClient,
    settings: EjbcaSettings,
    password: Option<Secret>,
}

/// The `pkcs10enroll` success body (`CertificateRestResponse`).
#[derive(Deserialize)]
struct Enrolled {
    certificate: String,
    #[serde(default)]
    response_format: Option<String>,
    #[serde(default)]
    certificate_chain: Option<Vec<String>>,
}

/// EJBCA's error body (`ExceptionErrorRestResponse`).
#[derive(Deserialize)]
struct ErrorBody {
    error_code: u16,
    error_message: String,
}

impl EjbcaBackend {
    /// Builds the client; reads the enrollment password now.
    pub fn new(def: &BackendDef) -> Result<Self, String> {
        let settings = def
            .ejbca
            .clone()
            .ok_or("kind ejbca needs an [ejbca] table")?;
        let url = def.url.as_deref().unwrap_or_default();
        let http = HttpClient::new(url, &def.tls, super::cfssl::connect_timeout(def))
            .map_err(|e| e.to_string())?;
        let password = settings.password.as_ref().map(|p| p.load()).transpose()?;
        Ok(Self {
            http,
            settings,
            password,
        })
    }

    /// Sends one `pkcs10enroll` for `username` and maps the answer.
    async fn enroll(&self, username: &str, csr_der: &[u8]) -> Result<BackendAnswer, BackendError> {
        let password = self
            .password
            .as_ref()
            .map(|p| String::from_utf8_lossy(p.expose()).into_owned());
        let body = serde_json::json!({
            "certificate_request": verify::csr_pem(csr_der),
            "certificate_profile_name": self.settings.certificate_profile,
            "end_entity_profile_name": self.settings.end_entity_profile,
            "certificate_authority_name": self.settings.ca_name,
            "username": username,
            "password": password,
            "include_chain": self.settings.include_chain,
            "response_format": "DER",
        });
        let r = self
            .send(Method::POST, "/v1/certificate/pkcs10enroll", Some(body))
            .await?;
        match r.status {
            StatusCode::ACCEPTED => Ok(BackendAnswer::Pending {
                reference: reference(username, csr_der),
                retry_after: self.settings.retry_after_secs,
            }),
            s if s.is_success() => enrolled(&r.body),
            _ => Err(error_of(&r)),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<HttpResponse, BackendError> {
        let headers = vec![("accept", "application/json".to_owned())];
        self.http.send_json(method, path, headers, body).await
    }

    /// The end entity's user name for a request.
    fn username(&self, csr: &[u8]) -> Result<String, BackendError> {
        let cn = enrollgate_pkix::Csr::from_der(csr)
            .ok()
            .and_then(|c| c.common_name())
            .ok_or_else(|| BackendError::Refused("EJBCA user names need a common name".into()))?;
        Ok(self.settings.username.replace("{cn}", &cn))
    }

    async fn revoke_serial(&self, serial: &str, reason: u8) -> Result<(), BackendError> {
        let path = format!(
            "/v1/certificate/{}/{}/revoke?reason={}",
            path_escape(&self.settings.ca_subject_dn),
            serial.to_ascii_uppercase(),
            reason_name(reason)
        );
        let r = self.send(Method::PUT, &path, None).await?;
        if r.status.is_success() {
            Ok(())
        } else {
            Err(error_of(&r))
        }
    }
}

/// The pending reference: the user name and the CSR, so that a poll can enroll again.
fn reference(username: &str, csr_der: &[u8]) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(username),
        URL_SAFE_NO_PAD.encode(csr_der)
    )
}

fn parse_reference(reference: &str) -> Option<(String, Vec<u8>)> {
    let (user, csr) = reference.split_once('.')?;
    let user = String::from_utf8(URL_SAFE_NO_PAD.decode(user).ok()?).ok()?;
    Some((user, URL_SAFE_NO_PAD.decode(csr).ok()?))
}

/// Decodes a `pkcs10enroll` success body.
fn enrolled(body: &[u8]) -> Result<BackendAnswer, BackendError> {
    let e: Enrolled = serde_json::from_slice(body)
        .map_err(|_| BackendError::Invalid(format!("not an EJBCA answer: {}", excerpt(body))))?;
    let pem = e.response_format.as_deref() == Some("PEM");
    let mut certs = vec![decode_cert(&e.certificate, pem)?];
    for c in e.certificate_chain.unwrap_or_default() {
        certs.push(decode_cert(&c, pem)?);
    }
    let cert = verify::split_leaf(certs).ok_or_else(|| BackendError::Invalid("empty".into()))?;
    Ok(BackendAnswer::Issued(cert))
}

fn decode_cert(text: &str, pem: bool) -> Result<Vec<u8>, BackendError> {
    if pem || text.starts_with("-----BEGIN") {
        let mut certs = verify::pem_certificates(text.as_bytes())?;
        return certs
            .pop()
            .ok_or_else(|| BackendError::Invalid("no certificate".into()));
    }
    let clean: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD
        .decode(clean)
        .map_err(|_| BackendError::Invalid("certificate is not base64".into()))
}

/// The backend error for an EJBCA answer that is not a success.
fn error_of(r: &HttpResponse) -> BackendError {
    match serde_json::from_slice::<ErrorBody>(&r.body) {
        Ok(e) => {
            let status = StatusCode::from_u16(e.error_code)
                .ok()
                .filter(|s| s.is_client_error() || s.is_server_error())
                .unwrap_or(r.status);
            vendor_error(status, Some(e.error_message))
        }
        Err(_) => vendor_error(r.status, None),
    }
}

/// EJBCA's names for the RFC 5280 reason codes (`RevocationReasons`).
fn reason_name(code: u8) -> &'static str {
    match code {
        1 => "KEY_COMPROMISE",
        2 => "CA_COMPROMISE",
        3 => "AFFILIATION_CHANGED",
        4 => "SUPERSEDED",
        5 => "CESSATION_OF_OPERATION",
        6 => "CERTIFICATE_HOLD",
        8 => "REMOVE_FROM_CRL",
        9 => "PRIVILEGES_WITHDRAWN",
        10 => "AA_COMPROMISE",
        _ => "UNSPECIFIED",
    }
}

/// Percent-encodes a path segment (a DN holds `=`, `,` and spaces).
pub(super) fn path_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[async_trait]
impl CaBackend for EjbcaBackend {
    fn name(&self) -> &str {
        "ejbca"
    }

    async fn issue(&self, request: &Approved) -> Result<BackendAnswer, BackendError> {
        let csr = request
            .csr()
            .ok_or_else(|| BackendError::Refused("EJBCA enrolls PKCS#10 requests only".into()))?;
        let username = self.username(csr)?;
        self.enroll(&username, csr).await
    }

    async fn poll(&self, reference: &str) -> Result<BackendAnswer, BackendError> {
        let (username, csr) = parse_reference(reference)
            .ok_or_else(|| BackendError::Invalid("unreadable EJBCA pending reference".into()))?;
        self.enroll(&username, &csr).await
    }

    async fn revoke(&self, serial: &str, reason: u8) -> Result<(), BackendError> {
        self.revoke_serial(serial, reason).await
    }

    fn ca_chain(&self) -> Vec<Vec<u8>> {
        Vec::new()
    }

    async fn fetch_ca_chain(&self) -> Result<Vec<Vec<u8>>, BackendError> {
        let path = format!(
            "/v1/ca/{}/certificate/download",
            path_escape(&self.settings.ca_subject_dn)
        );
        let r = self.send(Method::GET, &path, None).await?;
        if !r.status.is_success() {
            return Err(error_of(&r));
        }
        let certs = verify::pem_certificates(&r.body)?;
        super::est::order_chain(certs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_round_trip_and_dns_are_escaped() {
        let r = reference("gw-dev 1", b"\x30\x03\x02\x01\x00");
        assert_eq!(
            parse_reference(&r),
            Some(("gw-dev 1".to_owned(), b"\x30\x03\x02\x01\x00".to_vec()))
        );
        assert!(parse_reference("no-dot").is_none());
        assert_eq!(path_escape("CN=A B,O=C"), "CN%3DA%20B%2CO%3DC");
        assert_eq!(reason_name(1), "KEY_COMPROMISE");
    }

    fn answer(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status: StatusCode::from_u16(status).unwrap(),
            headers: hyper::HeaderMap::new(),
            body: bytes::Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn error_bodies_map_by_what_they_say_about_issuance() {
        fn kind(status: u16, body: &str) -> &'static str {
            error_of(&answer(status, body)).kind()
        }
        let body = |code: u16| format!(r#"{{"error_code":{code},"error_message":"m"}}"#);
        assert_eq!(kind(422, &body(422)), "refused");
        assert_eq!(kind(403, &body(403)), "refused");
        assert_eq!(kind(503, &body(503)), "unavailable");
        // "General failure." may follow a certificate that was made: never failed over.
        assert_eq!(kind(500, &body(500)), "ambiguous");
        assert_eq!(kind(404, "<html>Not Found</html>"), "invalid");
        assert_eq!(kind(500, "<html>oops</html>"), "ambiguous");
        assert!(matches!(
            enrolled(b"{not json"),
            Err(BackendError::Invalid(_))
        ));
    }
}
