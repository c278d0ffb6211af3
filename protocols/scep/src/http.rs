//! The HTTP mapping of SCEP (RFC 8894 section 4): operations in the query string, the
//! GetCACaps text, GetCACert and GetNextCACert replies, PKIOperation bodies.

use base64::Engine as _;
use x509_cert::Certificate;

use crate::message::MAX_MESSAGE_LEN;
use crate::{RaIdentity, ScepError, signed};

/// Content type of a PKIOperation reply.
pub const PKI_MESSAGE_CONTENT_TYPE: &str = "application/x-pki-message";
/// Content type of GetCACert with one CA certificate and no RA.
pub const CA_CERT_CONTENT_TYPE: &str = "application/x-x509-ca-cert";
/// Content type of GetCACert with an RA certificate and the CA chain.
pub const CA_RA_CERT_CONTENT_TYPE: &str = "application/x-x509-ca-ra-cert";
/// Content type of GetNextCACert.
pub const NEXT_CA_CERT_CONTENT_TYPE: &str = "application/x-x509-next-ca-cert";
/// Content type of GetCACaps.
pub const CA_CAPS_CONTENT_TYPE: &str = "text/plain";

/// Longest query string we read.
const MAX_QUERY_LEN: usize = MAX_MESSAGE_LEN / 3 * 4 * 3 + 1024;

/// A SCEP HTTP request, once the method and query string are read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScepHttpRequest {
    /// GetCACaps; `message` names a CA when the server has several.
    GetCaCaps {
        /// The optional `message` parameter.
        message: Option<String>,
    },
    /// GetCACert.
    GetCaCert {
        /// The optional `message` parameter.
        message: Option<String>,
    },
    /// GetNextCACert.
    GetNextCaCert {
        /// The optional `message` parameter.
        message: Option<String>,
    },
    /// PKIOperation with its pkiMessage (POST body, or the GET `message` parameter decoded).
    PkiOperation(Vec<u8>),
}

/// One HTTP reply: content type and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpReply {
    /// The Content-Type header value.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

/// Reads a SCEP request from the HTTP method (`GET` or `POST`), the raw query string
/// (without `?`) and the body. Bodies and GET messages over [`MAX_MESSAGE_LEN`] are refused.
pub fn parse_http_request(
    method: &str,
    query: &str,
    body: &[u8],
) -> Result<ScepHttpRequest, ScepError> {
    if query.len() > MAX_QUERY_LEN {
        return Err(ScepError::TooLarge {
            len: query.len(),
            limit: MAX_QUERY_LEN,
        });
    }
    let operation = query_param(query, "operation")?
        .ok_or_else(|| ScepError::BadHttpRequest("no operation parameter".into()))?;
    let message = query_param(query, "message")?;
    let is_post = method.eq_ignore_ascii_case("POST");
    if !is_post && !method.eq_ignore_ascii_case("GET") {
        return Err(ScepError::BadHttpRequest(format!("method {method}")));
    }
    match operation.as_str() {
        "GetCACaps" => Ok(ScepHttpRequest::GetCaCaps { message }),
        "GetCACert" => Ok(ScepHttpRequest::GetCaCert { message }),
        "GetNextCACert" => Ok(ScepHttpRequest::GetNextCaCert { message }),
        "PKIOperation" if is_post => pki_operation_body(body),
        "PKIOperation" => pki_operation_get(message.as_deref()),
        other => Err(ScepError::BadHttpRequest(format!(
            "unknown operation {other:?}"
        ))),
    }
}

/// The GetCACaps reply (RFC 8894 section 3.5.2): one capability per line.
///
/// We offer AES, SHA-256, SHA-512, POSTPKIOperation, Renewal and SCEPStandard, and
/// GetNextCACert when `next_ca` (a rollover CA exists).
pub fn ca_caps(next_ca: bool) -> HttpReply {
    let mut caps = vec![
        "AES",
        "POSTPKIOperation",
        "Renewal",
        "SHA-256",
        "SHA-512",
        "SCEPStandard",
    ];
    if next_ca {
        caps.push("GetNextCACert");
    }
    let mut text = caps.join("\n");
    text.push('\n');
    HttpReply {
        content_type: CA_CAPS_CONTENT_TYPE,
        body: text.into_bytes(),
    }
}

/// The GetCACert reply (RFC 8894 section 4.2.1): with an RA, a certs-only PKCS#7 holding the
/// RA certificate then the CA chain (issuing CA first); with no RA and one CA certificate,
/// that certificate in DER.
pub fn ca_cert_reply(ra_cert: Option<&[u8]>, ca_chain: &[Vec<u8>]) -> Result<HttpReply, ScepError> {
    if let (None, [ca]) = (ra_cert, ca_chain) {
        return Ok(HttpReply {
            content_type: CA_CERT_CONTENT_TYPE,
            body: ca.clone(),
        });
    }
    let certs: Vec<Vec<u8>> = ra_cert
        .map(<[u8]>::to_vec)
        .into_iter()
        .chain(ca_chain.iter().cloned())
        .collect();
    if certs.is_empty() {
        return Err(ScepError::invalid("GetCACert", "no certificate to serve"));
    }
    let body = enrollgate_pkix::certs_only(&certs)
        .map_err(|e| ScepError::invalid("GetCACert", e.to_string()))?;
    Ok(HttpReply {
        content_type: CA_RA_CERT_CONTENT_TYPE,
        body,
    })
}

/// The GetNextCACert reply (RFC 8894 section 4.7.1): a SignedData by the current RA whose
/// content is a certs-only PKCS#7 of the next CA chain (and its RA certificate, if any).
pub fn next_ca_cert_reply(ra: &RaIdentity, next_chain: &[Vec<u8>]) -> Result<HttpReply, ScepError> {
    let inner = enrollgate_pkix::certs_only(next_chain)
        .map_err(|e| ScepError::invalid("GetNextCACert", e.to_string()))?;
    let certs: &[Certificate] = std::slice::from_ref(ra.certificate());
    let body = signed::sign(ra, Some(&inner), Vec::new(), certs)?;
    Ok(HttpReply {
        content_type: NEXT_CA_CERT_CONTENT_TYPE,
        body,
    })
}

/// Wraps an encoded CertRep for the wire.
pub fn pki_operation_reply(cert_rep: Vec<u8>) -> HttpReply {
    HttpReply {
        content_type: PKI_MESSAGE_CONTENT_TYPE,
        body: cert_rep,
    }
}

fn pki_operation_body(body: &[u8]) -> Result<ScepHttpRequest, ScepError> {
    if body.len() > MAX_MESSAGE_LEN {
        return Err(ScepError::TooLarge {
            len: body.len(),
            limit: MAX_MESSAGE_LEN,
        });
    }
    if body.is_empty() {
        return Err(ScepError::BadHttpRequest("empty PKIOperation body".into()));
    }
    Ok(ScepHttpRequest::PkiOperation(body.to_vec()))
}

/// The GET form: `message` is base64 of the DER message. Clients differ in escaping, so
/// spaces (an unescaped `+` read as form data) become `+` again and line breaks are dropped.
fn pki_operation_get(message: Option<&str>) -> Result<ScepHttpRequest, ScepError> {
    let message =
        message.ok_or_else(|| ScepError::BadHttpRequest("no message parameter".into()))?;
    let limit = MAX_MESSAGE_LEN.div_ceil(3) * 4 + 1024;
    if message.len() > limit {
        return Err(ScepError::TooLarge {
            len: message.len(),
            limit,
        });
    }
    let cleaned: String = message
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n'))
        .map(|c| if c == ' ' { '+' } else { c })
        .collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let der = engine
        .decode(&cleaned)
        .map_err(|_| ScepError::BadHttpRequest("message parameter is not base64".into()))?;
    pki_operation_body(&der)
}

/// The first value of `name` in a query string, percent-decoded.
fn query_param(query: &str, name: &str) -> Result<Option<String>, ScepError> {
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(key)? == name {
            return percent_decode(value).map(Some);
        }
    }
    Ok(None)
}

/// Decodes `%XX` escapes and `+` as space (form encoding).
fn percent_decode(text: &str) -> Result<String, ScepError> {
    let bad = || ScepError::BadHttpRequest("bad percent escape".into());
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return Err(bad());
                }
                let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| ScepError::BadHttpRequest("query is not UTF-8".into()))
}
