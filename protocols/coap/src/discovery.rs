//! Resource discovery through `/.well-known/core` (RFC 6690) with the EST-coaps resource
//! types of RFC 9148 8.2 and the CMP one of RFC 9482 3.

use coap_lite::{RequestType, ResponseType};

use crate::format;
use crate::message::{Request, Response};

/// The resources we announce: path, resource type, content formats.
const LINKS: [(&str, &str, &str); 7] = [
    ("/.well-known/est/crts", "ace.est.crts", "\"281 287\""),
    ("/.well-known/est/sen", "ace.est.sen", "\"281 287\""),
    ("/.well-known/est/sren", "ace.est.sren", "\"281 287\""),
    ("/.well-known/est/skg", "ace.est.skg", "62"),
    ("/.well-known/est/skc", "ace.est.skc", "62"),
    ("/.well-known/est/att", "ace.est.att", "285"),
    ("/.well-known/cmp", "ace.cmp", "259"),
];

/// Whether the path is `/.well-known/core`.
pub fn is_discovery(path: &[String]) -> bool {
    matches!(path, [wk, core] if wk == ".well-known" && core == "core")
}

/// Answers `GET /.well-known/core[?rt=...]` in link format (40). An `rt` filter matches
/// exactly or, ending in `*`, by prefix (RFC 6690 4.1); other filters are ignored.
pub fn discovery(request: &Request) -> Response {
    if request.method != RequestType::Get {
        return Response::diagnostic(ResponseType::MethodNotAllowed, "method not allowed");
    }
    let filter = request.query.iter().find_map(|q| q.strip_prefix("rt="));
    let matches = |rt: &str| match filter {
        None => true,
        Some(f) => match f.strip_suffix('*') {
            Some(prefix) => rt.starts_with(prefix),
            None => rt == f,
        },
    };
    let links: Vec<String> = LINKS
        .iter()
        .filter(|(_, rt, _)| matches(rt))
        .map(|(path, rt, ct)| format!("<{path}>;rt=\"{rt}\";ct={ct}"))
        .collect();
    if links.is_empty() {
        return Response::diagnostic(ResponseType::NotFound, "no matching resource");
    }
    Response::with(
        ResponseType::Content,
        format::LINK_FORMAT,
        links.join(",").into_bytes(),
    )
}
