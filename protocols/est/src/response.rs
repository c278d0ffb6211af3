//! EST replies: certs-only bodies, the serverkeygen multipart, and outcome rendering.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use enrollgate_model::{Issued, Outcome, RejectReason};

use crate::{EstError, EstOperation};

/// The media type of certificate replies (RFC 7030 4.1.3, 4.2.3).
pub const CERTS_ONLY: &str = "application/pkcs7-mime; smime-type=certs-only";

/// Seconds a client is told to wait when the CA is unavailable.
pub const BACKEND_RETRY_AFTER_SECS: u32 = 30;

/// The multipart boundary of serverkeygen replies. Base64 has no `-`, so a line starting with
/// `--` never occurs inside a part.
const BOUNDARY: &str = "enrollgate-est-boundary";

/// An HTTP reply for the server layer to write as is.
///
/// `Debug` shows the status, headers and body length only: a serverkeygen body holds a
/// private key.
#[derive(Clone, PartialEq, Eq)]
pub struct EstResponse {
    /// The HTTP status code.
    pub status: u16,
    /// Header names and values, in order.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl fmt::Debug for EstResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EstResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl EstResponse {
    /// A `text/plain` reply.
    pub(crate) fn text(status: u16, text: &str) -> Self {
        Self {
            status,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
            body: format!("{text}\n").into_bytes(),
        }
    }

    /// A 200 reply whose body is the base64 of `der`, as RFC 7030 sends every body.
    pub(crate) fn base64(content_type: &str, der: &[u8]) -> Self {
        Self {
            status: 200,
            headers: vec![
                ("Content-Type", content_type.to_owned()),
                ("Content-Transfer-Encoding", "base64".into()),
            ],
            body: base64_lines(der, "\n").into_bytes(),
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Renders the registrar's answer to an enrollment request (RFC 7030 4.2.3, 4.4.2).
///
/// Issued: 200 with the certificate alone in a certs-only body, or for serverkeygen a
/// `multipart/mixed` of the PKCS#8 key and the certificate. Pending: 202 with `Retry-After`.
/// Rejected: the status that fits the reason, with its public text.
pub fn encode_outcome(op: EstOperation, outcome: &Outcome) -> EstResponse {
    match outcome {
        Outcome::Issued(issued) if op == EstOperation::ServerKeygen => keygen_reply(issued),
        Outcome::Issued(issued) => certificate_reply(&issued.certificate),
        Outcome::Pending { retry_after, .. } => {
            let mut reply = EstResponse::text(202, "request pending, retry later");
            reply.headers.push(("Retry-After", retry_after.to_string()));
            reply
        }
        Outcome::Rejected(reason) => rejection(reason),
    }
}

fn certificate_reply(certificate: &[u8]) -> EstResponse {
    match enrollgate_pkix::certs_only(&[certificate.to_vec()]) {
        Ok(der) => EstResponse::base64(CERTS_ONLY, &der),
        Err(e) => EstError::Internal(format!("issued certificate: {e}")).response(),
    }
}

fn keygen_reply(issued: &Issued) -> EstResponse {
    let Some(key) = &issued.private_key else {
        return EstError::Internal("serverkeygen outcome without a private key".into()).response();
    };
    let certs = match enrollgate_pkix::certs_only(std::slice::from_ref(&issued.certificate)) {
        Ok(der) => der,
        Err(e) => return EstError::Internal(format!("issued certificate: {e}")).response(),
    };
    let mut body = String::new();
    for (content_type, der) in [("application/pkcs8", key.expose()), (CERTS_ONLY, &certs)] {
        body.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Type: {content_type}\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            base64_lines(der, "\r\n")
        ));
    }
    body.push_str(&format!("--{BOUNDARY}--\r\n"));
    EstResponse {
        status: 200,
        headers: vec![(
            "Content-Type",
            format!("multipart/mixed; boundary={BOUNDARY}"),
        )],
        body: body.into_bytes(),
    }
}

fn rejection(reason: &RejectReason) -> EstResponse {
    let status = match reason {
        RejectReason::Malformed(_)
        | RejectReason::BadSignature
        | RejectReason::BadAlgorithm(_)
        | RejectReason::TransactionConflict => 400,
        RejectReason::Unauthenticated => 401,
        RejectReason::PolicyDenied(_) | RejectReason::Refused => 403,
        RejectReason::UnknownRoute => 404,
        RejectReason::BackendUnavailable => 503,
        RejectReason::Internal => 500,
    };
    let mut reply = EstResponse::text(status, &reason.public_text());
    match reason {
        RejectReason::Unauthenticated => reply.headers.push(www_authenticate()),
        RejectReason::BackendUnavailable => reply
            .headers
            .push(("Retry-After", BACKEND_RETRY_AFTER_SECS.to_string())),
        _ => {}
    }
    reply
}

/// The `WWW-Authenticate` header of a 401.
pub(crate) fn www_authenticate() -> (&'static str, String) {
    ("WWW-Authenticate", r#"Basic realm="enrollgate""#.into())
}

/// Standard base64 in lines of 64 characters.
fn base64_lines(der: &[u8], line_end: &str) -> String {
    let text = STANDARD.encode(der);
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .filter_map(|chunk| std::str::from_utf8(chunk).ok())
        .collect();
    lines.join(line_end)
}
