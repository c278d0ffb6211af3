//! CMP over CoAP (RFC 9482): the resource paths and the checks before a CMP message is
//! handed to the CMP server. The CMP messages, their protection and polling (pollReq and
//! pollRep, RFC 9482 2.4) are the same as over HTTP and are left to the CMP crate.

use coap_lite::{RequestType, ResponseType};

use crate::format;
use crate::message::{Request, Response};

/// The route label if `path` is `/.well-known/cmp` or `/.well-known/cmp/p/<label>`
/// (RFC 9482 2.1); `Some(Err(4.04))` for other paths under `/.well-known/cmp`.
pub fn parse_cmp_path(path: &[String]) -> Option<Result<String, Response>> {
    let rest = match path {
        [wk, cmp, rest @ ..] if wk == ".well-known" && cmp == "cmp" => rest,
        _ => return None,
    };
    Some(match rest {
        [] => Ok(String::new()),
        [p, label] if p == "p" && valid_label(label) => Ok(label.clone()),
        _ => Err(Response::diagnostic(ResponseType::NotFound, "not found")),
    })
}

/// A CMP request is a POST of content format 259 with a body (RFC 9482 2.2).
pub fn check_cmp_request(request: &Request) -> Result<(), Response> {
    if request.method != RequestType::Post {
        return Err(Response::diagnostic(
            ResponseType::MethodNotAllowed,
            "CMP messages are POSTed",
        ));
    }
    if request.content_format != Some(format::PKIXCMP) {
        return Err(Response::diagnostic(
            ResponseType::UnsupportedContentFormat,
            "expected application/pkixcmp (259)",
        ));
    }
    if request.accept.is_some_and(|a| a != format::PKIXCMP) {
        return Err(Response::diagnostic(
            ResponseType::NotAcceptable,
            "CMP replies are 259",
        ));
    }
    if request.payload.is_empty() {
        return Err(Response::diagnostic(
            ResponseType::BadRequest,
            "empty CMP message",
        ));
    }
    Ok(())
}

/// The reply to a CMP request, including CMP error messages: 2.04 Changed with the DER
/// PKIMessage (RFC 9482 2.3).
pub fn cmp_response(der: Vec<u8>) -> Response {
    Response::with(ResponseType::Changed, format::PKIXCMP, der)
}

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 64
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Vec<String> {
        p.split('/')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    #[test]
    fn cmp_paths_select_routes() {
        assert_eq!(
            parse_cmp_path(&path("/.well-known/cmp")),
            Some(Ok(String::new()))
        );
        assert_eq!(
            parse_cmp_path(&path("/.well-known/cmp/p/iot")),
            Some(Ok("iot".into()))
        );
        assert!(matches!(
            parse_cmp_path(&path("/.well-known/cmp/x")),
            Some(Err(_))
        ));
        assert_eq!(parse_cmp_path(&path("/.well-known/est/sen")), None);
    }
}
