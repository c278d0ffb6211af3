//! EST over CoAPs (RFC 9148): resource paths, content formats, requests for the registrar
//! and the mapping of its outcome to CoAP codes. Payloads are DER, never base64 (RFC 9148 4).

use coap_lite::{RequestType, ResponseType};
use enrollgate_est::{CsrAttr, encode_csr_attrs};
use enrollgate_model::{
    Credential, IssuanceRequest, KeySource, Operation, Outcome, Protocol, RejectReason, Requester,
};

use crate::format;
use crate::message::{Request, Response};
use crate::multipart::multipart_core;

/// The EST-coaps functions and their short paths (RFC 9148 4.1, Table 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EstCoapsOperation {
    /// `/crts`: the CA certificates (GET).
    Crts,
    /// `/sen`: simple enrollment (POST a PKCS#10).
    Sen,
    /// `/sren`: simple re-enrollment, authenticated by the certificate being replaced.
    Sren,
    /// `/skg`: server-side key generation; key and certs-only PKCS#7.
    Skg,
    /// `/skc`: server-side key generation; key and the bare certificate.
    Skc,
    /// `/att`: CSR attributes (GET).
    Att,
}

impl EstCoapsOperation {
    const ALL: [Self; 6] = [
        Self::Crts,
        Self::Sen,
        Self::Sren,
        Self::Skg,
        Self::Skc,
        Self::Att,
    ];

    /// The short path segment, e.g. `sen`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Crts => "crts",
            Self::Sen => "sen",
            Self::Sren => "sren",
            Self::Skg => "skg",
            Self::Skc => "skc",
            Self::Att => "att",
        }
    }

    /// The method the function takes.
    pub fn method(self) -> RequestType {
        match self {
            Self::Crts | Self::Att => RequestType::Get,
            _ => RequestType::Post,
        }
    }

    /// The content formats it can answer with, the default first (RFC 9148 Table 1).
    pub fn formats(self) -> &'static [u16] {
        match self {
            Self::Crts | Self::Sen | Self::Sren => &[format::PKCS7_CERTS, format::PKIX_CERT],
            Self::Skg | Self::Skc => &[format::MULTIPART_CORE],
            Self::Att => &[format::CSRATTRS],
        }
    }
}

/// A parsed EST-coaps path: `/.well-known/est[/label]/op`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EstCoapsPath {
    /// The route label, "" for the default route.
    pub label: String,
    /// The function.
    pub operation: EstCoapsOperation,
}

/// `None` when the path is not under `/.well-known/est`; `Some(Err(4.04))` when it is but
/// names no function.
pub fn parse_est_path(path: &[String]) -> Option<Result<EstCoapsPath, Response>> {
    let rest = match path {
        [wk, est, rest @ ..] if wk == ".well-known" && est == "est" => rest,
        _ => return None,
    };
    let (label, op) = match rest {
        [op] => ("", op),
        [label, op] if valid_label(label) => (label.as_str(), op),
        _ => return Some(Err(not_found())),
    };
    let operation = EstCoapsOperation::ALL
        .into_iter()
        .find(|o| o.as_str() == op);
    Some(
        operation
            .map(|operation| EstCoapsPath {
                label: label.to_owned(),
                operation,
            })
            .ok_or_else(not_found),
    )
}

/// What the route offers for answering directly.
#[derive(Clone, Copy, Debug)]
pub struct EstRoute<'a> {
    /// The CA chain, issuing CA first, root last (DER).
    pub ca_chain: &'a [Vec<u8>],
    /// The csrattrs entries.
    pub csr_attrs: &'a [CsrAttr],
}

/// What to do with a checked EST-coaps request.
#[derive(Debug)]
pub enum EstCoapsDecision {
    /// Answer with this.
    Respond(Response),
    /// Ask the registrar, then render its outcome with [`est_outcome`].
    Issue(IssuanceRequest),
}

/// Checks an EST-coaps request (method, formats, CSR) and decides.
///
/// `credential` is what the DTLS session proved: a client certificate chain, a PSK
/// identity (an enrollment token, as [`Credential::TokenProven`]), or nothing. Re-enrollment
/// needs the certificate being replaced.
pub fn est_request(
    path: &EstCoapsPath,
    request: &Request,
    route: &EstRoute<'_>,
    credential: Credential,
    peer: Option<String>,
) -> EstCoapsDecision {
    match check(path, request, route, credential, peer) {
        Ok(decision) => decision,
        Err(response) => EstCoapsDecision::Respond(response),
    }
}

fn check(
    path: &EstCoapsPath,
    request: &Request,
    route: &EstRoute<'_>,
    credential: Credential,
    peer: Option<String>,
) -> Result<EstCoapsDecision, Response> {
    let op = path.operation;
    if request.method != op.method() {
        return Err(Response::diagnostic(
            ResponseType::MethodNotAllowed,
            "method not allowed",
        ));
    }
    accepted_format(op, request.accept)?;
    match op {
        EstCoapsOperation::Crts => crts(route, request.accept).map(EstCoapsDecision::Respond),
        EstCoapsOperation::Att => {
            let der = encode_csr_attrs(route.csr_attrs).map_err(|_| {
                Response::diagnostic(ResponseType::InternalServerError, "internal error")
            })?;
            Ok(EstCoapsDecision::Respond(Response::with(
                ResponseType::Content,
                format::CSRATTRS,
                der,
            )))
        }
        _ => enrollment(path, request, credential, peer).map(EstCoapsDecision::Issue),
    }
}

fn enrollment(
    path: &EstCoapsPath,
    request: &Request,
    credential: Credential,
    peer: Option<String>,
) -> Result<IssuanceRequest, Response> {
    if request
        .content_format
        .is_some_and(|cf| cf != format::PKCS10)
    {
        return Err(Response::diagnostic(
            ResponseType::UnsupportedContentFormat,
            "expected application/pkcs10 (286)",
        ));
    }
    if request.payload.is_empty() {
        return Err(Response::diagnostic(
            ResponseType::BadRequest,
            "empty request",
        ));
    }
    // A quick structural check, so that garbage gets 4.00 here; the registrar decodes again
    // and checks the proof of possession once for every protocol.
    enrollgate_pkix::Csr::from_der(&request.payload)
        .map_err(|e| Response::diagnostic(ResponseType::BadRequest, &format!("bad CSR: {e}")))?;
    let (operation, credential) = match (path.operation, credential) {
        (EstCoapsOperation::Sren, c @ Credential::Certificate { .. }) => (Operation::Renew, c),
        (EstCoapsOperation::Sren, _) => {
            return Err(Response::diagnostic(
                ResponseType::Unauthorized,
                "re-enrollment needs the current certificate as DTLS client certificate",
            ));
        }
        (_, c) => (Operation::Enroll, c),
    };
    let der = request.payload.clone();
    let key = match path.operation {
        EstCoapsOperation::Skg | EstCoapsOperation::Skc => {
            KeySource::Generate { template_csr: der }
        }
        _ => KeySource::Csr(der),
    };
    Ok(IssuanceRequest {
        protocol: Protocol::EstCoaps,
        route: path.label.clone(),
        operation,
        requester: Requester { credential, peer },
        key,
        transaction_id: None,
    })
}

fn crts(route: &EstRoute<'_>, accept: Option<u16>) -> Result<Response, Response> {
    let internal = || Response::diagnostic(ResponseType::InternalServerError, "internal error");
    if accept == Some(format::PKIX_CERT) {
        // One certificate: the root, the explicit trust anchor (RFC 9148 4.1).
        let root = route.ca_chain.last().ok_or_else(internal)?;
        return Ok(Response::with(
            ResponseType::Content,
            format::PKIX_CERT,
            root.clone(),
        ));
    }
    let der = enrollgate_pkix::certs_only(route.ca_chain).map_err(|_| internal())?;
    Ok(Response::with(
        ResponseType::Content,
        format::PKCS7_CERTS,
        der,
    ))
}

fn accepted_format(op: EstCoapsOperation, accept: Option<u16>) -> Result<(), Response> {
    match accept {
        Some(cf) if !op.formats().contains(&cf) => Err(Response::diagnostic(
            ResponseType::NotAcceptable,
            "no such content format for this resource",
        )),
        _ => Ok(()),
    }
}

/// Renders the registrar's outcome (RFC 9148 5.5 and 5.7): 2.01 with the certificate (281,
/// or 287 when accepted), or for skg/skc a multipart-core of the key and certificate;
/// pending: 5.03 with Max-Age; refusals: 4.00, 4.01, 4.03, 4.04, 5.03, 5.00.
pub fn est_outcome(op: EstCoapsOperation, accept: Option<u16>, outcome: &Outcome) -> Response {
    match outcome {
        Outcome::Issued(issued) => issued_response(op, accept, issued),
        Outcome::Pending { retry_after, .. } => Response::diagnostic(
            ResponseType::ServiceUnavailable,
            "request pending, retry later",
        )
        .max_age(*retry_after),
        Outcome::Rejected(reason) => rejection(reason),
    }
}

fn issued_response(
    op: EstCoapsOperation,
    accept: Option<u16>,
    issued: &enrollgate_model::Issued,
) -> Response {
    let internal = || Response::diagnostic(ResponseType::InternalServerError, "internal error");
    let certs = || enrollgate_pkix::certs_only(std::slice::from_ref(&issued.certificate));
    match op {
        EstCoapsOperation::Skg | EstCoapsOperation::Skc => {
            let Some(key) = &issued.private_key else {
                return internal();
            };
            let cert_part = if op == EstCoapsOperation::Skc {
                (format::PKIX_CERT, issued.certificate.clone())
            } else {
                match certs() {
                    Ok(der) => (format::PKCS7_CERTS, der),
                    Err(_) => return internal(),
                }
            };
            let body =
                multipart_core(&[(format::PKCS8, key.expose()), (cert_part.0, &cert_part.1)]);
            Response::with(ResponseType::Created, format::MULTIPART_CORE, body)
        }
        _ if accept == Some(format::PKIX_CERT) => Response::with(
            ResponseType::Created,
            format::PKIX_CERT,
            issued.certificate.clone(),
        ),
        _ => match certs() {
            Ok(der) => Response::with(ResponseType::Created, format::PKCS7_CERTS, der),
            Err(_) => internal(),
        },
    }
}

/// The CoAP code for a refusal, with its public text as diagnostic payload.
pub fn rejection(reason: &RejectReason) -> Response {
    let code = match reason {
        RejectReason::Malformed(_)
        | RejectReason::BadSignature
        | RejectReason::BadAlgorithm(_)
        | RejectReason::TransactionConflict => ResponseType::BadRequest,
        RejectReason::Unauthenticated => ResponseType::Unauthorized,
        RejectReason::PolicyDenied(_) | RejectReason::Refused => ResponseType::Forbidden,
        RejectReason::UnknownRoute => ResponseType::NotFound,
        RejectReason::BackendUnavailable => ResponseType::ServiceUnavailable,
        RejectReason::Internal => ResponseType::InternalServerError,
    };
    let response = Response::diagnostic(code, &reason.public_text());
    match reason {
        RejectReason::BackendUnavailable => {
            response.max_age(enrollgate_est::BACKEND_RETRY_AFTER_SECS)
        }
        _ => response,
    }
}

fn not_found() -> Response {
    Response::diagnostic(ResponseType::NotFound, "not found")
}

/// Route labels: letters, digits, `-` and `_`, at most 64.
fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 64
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

#[cfg(test)]
mod tests;
