//! Request handling: method and media checks, credentials, CSR checks, channel binding.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use enrollgate_model::{
    Credential, IssuanceRequest, KeySource, Operation, Protocol, Requester, Secret,
};
use enrollgate_pkix::{Csr, PkixError};

use crate::body::decode_base64_body;
use crate::csrattrs::{CsrAttr, encode_csr_attrs};
use crate::response::{CERTS_ONLY, EstResponse};
use crate::{EstError, EstOperation, EstPath};

/// The media type of csrattrs replies (RFC 7030 4.5.2).
pub const CSR_ATTRS: &str = "application/csrattrs";

/// One HTTP request as the server layer read it.
///
/// `Debug` hides the Authorization header, which carries a password.
#[derive(Clone)]
pub struct EstRequest<'a> {
    /// The HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
    /// The `Content-Transfer-Encoding` header, if any (informative only: RFC 8951 makes the
    /// body base64 whatever it says).
    pub content_transfer_encoding: Option<&'a str>,
    /// The raw `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The body, already limited in size by the server.
    pub body: &'a [u8],
    /// The TLS client certificate chain, leaf first; TLS has proven possession of its key.
    pub client_chain: &'a [Vec<u8>],
    /// The RFC 9266 tls-exporter channel binding (32 bytes), on TLS 1.3 only.
    pub tls_exporter: Option<&'a [u8]>,
    /// The peer's address, for audit.
    pub peer: Option<String>,
}

impl fmt::Debug for EstRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EstRequest")
            .field("method", &self.method)
            .field("content_type", &self.content_type)
            .field("authorization", &self.authorization.map(|_| ".."))
            .field("body_len", &self.body.len())
            .field("client_chain_len", &self.client_chain.len())
            .field("tls_exporter", &self.tls_exporter.is_some())
            .field("peer", &self.peer)
            .finish()
    }
}

/// What the server layer needs from the route to answer directly.
#[derive(Clone, Copy, Debug)]
pub struct RouteInfo<'a> {
    /// The CA chain for cacerts, DER, issuing CA first and root last.
    pub ca_chain: &'a [Vec<u8>],
    /// The csrattrs reply's entries.
    pub csr_attrs: &'a [CsrAttr],
}

/// What to do with a request that passed the protocol checks.
#[derive(Debug)]
pub enum Decision {
    /// Answer with this reply (cacerts, csrattrs).
    Respond(EstResponse),
    /// Hand this to the registrar, then render its outcome with
    /// [`encode_outcome`](crate::encode_outcome).
    Issue(IssuanceRequest),
}

/// Checks one EST request and decides: answer now, or ask the registrar.
pub fn handle(
    path: &EstPath,
    req: &EstRequest<'_>,
    route: &RouteInfo<'_>,
) -> Result<Decision, EstError> {
    let op = path.operation;
    if req.method != op.method() {
        return Err(EstError::MethodNotAllowed);
    }
    match op {
        EstOperation::CaCerts => cacerts(route).map(Decision::Respond),
        EstOperation::CsrAttrs => {
            let der = encode_csr_attrs(route.csr_attrs)?;
            Ok(Decision::Respond(EstResponse::base64(CSR_ATTRS, &der)))
        }
        EstOperation::SimpleEnroll | EstOperation::SimpleReenroll | EstOperation::ServerKeygen => {
            enrollment(path, req).map(Decision::Issue)
        }
    }
}

fn cacerts(route: &RouteInfo<'_>) -> Result<EstResponse, EstError> {
    if route.ca_chain.is_empty() {
        return Err(EstError::Internal("route has no CA chain".into()));
    }
    let der = enrollgate_pkix::certs_only(route.ca_chain)
        .map_err(|e| EstError::Internal(format!("CA chain: {e}")))?;
    Ok(EstResponse::base64(CERTS_ONLY, &der))
}

/// simpleenroll, simplereenroll and serverkeygen (RFC 7030 4.2, 4.4).
fn enrollment(path: &EstPath, req: &EstRequest<'_>) -> Result<IssuanceRequest, EstError> {
    check_media_type(req.content_type)?;
    let credential = credential(req.authorization, req.client_chain)?;

    // Re-enrollment is authenticated by the certificate being replaced (RFC 7030 4.2.2).
    let (operation, credential) = match path.operation {
        EstOperation::SimpleReenroll if req.client_chain.is_empty() => {
            return Err(EstError::Unauthorized);
        }
        EstOperation::SimpleReenroll => (
            Operation::Renew,
            Credential::Certificate {
                chain: req.client_chain.to_vec(),
            },
        ),
        _ => (Operation::Enroll, credential),
    };

    let csr = decode_csr(req.body)?;
    check_channel_binding(&csr, req.tls_exporter)?;
    let der = csr.der().to_vec();
    let key = match path.operation {
        EstOperation::ServerKeygen => KeySource::Generate { template_csr: der },
        _ => KeySource::Csr(der),
    };
    Ok(IssuanceRequest {
        protocol: Protocol::Est,
        route: path.label.clone(),
        operation,
        requester: Requester {
            credential,
            peer: req.peer.clone(),
        },
        key,
        transaction_id: None,
    })
}

/// `application/pkcs10` with any parameters; a missing header is tolerated, and so is the
/// unregistered `application/x-pkcs10` some clients send.
fn check_media_type(content_type: Option<&str>) -> Result<(), EstError> {
    let Some(value) = content_type else {
        return Ok(());
    };
    let media = value.split(';').next().unwrap_or_default().trim();
    let accepted = ["application/pkcs10", "application/x-pkcs10"];
    if accepted.iter().any(|m| media.eq_ignore_ascii_case(m)) {
        return Ok(());
    }
    Err(EstError::UnsupportedMediaType)
}

/// HTTP Basic gives a token; else a TLS client certificate; else anonymous.
fn credential(authorization: Option<&str>, chain: &[Vec<u8>]) -> Result<Credential, EstError> {
    if let Some(header) = authorization {
        let (id, secret) = parse_basic(header).ok_or(EstError::Unauthorized)?;
        return Ok(Credential::Token { id, secret });
    }
    if chain.is_empty() {
        return Ok(Credential::Anonymous);
    }
    Ok(Credential::Certificate {
        chain: chain.to_vec(),
    })
}

/// `Basic base64(id:secret)` (RFC 7617); `None` for any other scheme or a malformed value.
fn parse_basic(header: &str) -> Option<(String, Secret)> {
    let (scheme, value) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(value.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    if id.is_empty() {
        return None;
    }
    Some((id.to_owned(), Secret::new(secret.as_bytes())))
}

/// The body as a CSR: base64 as RFC 7030 says, or raw DER or PEM as some clients send.
///
/// The proof-of-possession signature is checked once, by the gateway's registrar, for every
/// protocol alike; checking it here too would double the costliest step of an enrollment.
fn decode_csr(body: &[u8]) -> Result<Csr, EstError> {
    let csr = if body.first() == Some(&0x30) {
        // Base64 text never starts with 0x30 ('0'): a DER SEQUENCE encodes as "M...".
        Csr::from_der(body)
    } else if body.trim_ascii_start().starts_with(b"-----BEGIN") {
        Csr::from_pem_or_der(body)
    } else {
        Csr::from_der(&decode_base64_body(body)?)
    }
    .map_err(|e| csr_error("decode", &e))?;
    Ok(csr)
}

fn csr_error(step: &'static str, error: &PkixError) -> EstError {
    tracing::debug!(step, %error, "est request refused");
    match error {
        PkixError::BadSignature => EstError::BadRequest("CSR signature does not verify".into()),
        other => EstError::BadRequest(format!("bad CSR: {other}")),
    }
}

/// RFC 7030 3.5 with RFC 9266: a challengePassword must be the base64 of the tls-exporter
/// value of this connection. Without an exporter (TLS 1.2) the password is not checked here.
fn check_channel_binding(csr: &Csr, exporter: Option<&[u8]>) -> Result<(), EstError> {
    let Some(exporter) = exporter else {
        return Ok(());
    };
    let password = csr
        .challenge_password_checked()
        .map_err(|e| csr_error("challengePassword", &e))?;
    match password {
        Some(p) if p.as_bytes() != STANDARD.encode(exporter).as_bytes() => {
            tracing::debug!("est channel binding mismatch");
            Err(EstError::BadRequest("channel binding mismatch".into()))
        }
        _ => Ok(()),
    }
}
