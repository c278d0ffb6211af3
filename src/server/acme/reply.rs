//! Replies and refusals: every response gets a fresh `Replay-Nonce` and the directory link;
//! every refusal is a problem document, a counter and a debug line.

use std::sync::Arc;

use enrollgate_acme::{PROBLEM_CONTENT_TYPE, Problem};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::Value;

use super::Ctx;
use crate::server::{AppState, Body, text};

/// A successful answer, before the nonce and the directory link are added.
pub(crate) struct Reply {
    status: StatusCode,
    body: Vec<u8>,
    content_type: Option<&'static str>,
    location: Option<String>,
    links: Vec<String>,
    retry_after: Option<u32>,
    no_store: bool,
}

impl Reply {
    /// A JSON body.
    pub(crate) fn json(status: StatusCode, value: &Value) -> Self {
        let mut r = Self::empty(status);
        r.body = value.to_string().into_bytes();
        r.content_type = Some("application/json");
        r
    }

    /// No body.
    pub(crate) fn empty(status: StatusCode) -> Self {
        Self {
            status,
            body: Vec::new(),
            content_type: None,
            location: None,
            links: Vec::new(),
            retry_after: None,
            no_store: false,
        }
    }

    /// A body of some other media type.
    pub(crate) fn bytes(body: Vec<u8>, content_type: &'static str) -> Self {
        let mut r = Self::empty(StatusCode::OK);
        r.body = body;
        r.content_type = Some(content_type);
        r
    }

    /// Adds `Location`.
    pub(crate) fn location(mut self, url: String) -> Self {
        self.location = Some(url);
        self
    }

    /// Adds a `Link` with relation `rel`.
    pub(crate) fn link(mut self, url: &str, rel: &str) -> Self {
        self.links.push(format!("<{url}>;rel=\"{rel}\""));
        self
    }

    /// Adds `Retry-After` in seconds.
    pub(crate) fn retry_after(mut self, secs: u32) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// Adds `Cache-Control: no-store` (newNonce, RFC 8555 section 7.2).
    pub(crate) fn no_store(mut self) -> Self {
        self.no_store = true;
        self
    }

    /// The HTTP response, with `Replay-Nonce` when one could be minted.
    pub(crate) fn into_response(
        mut self,
        nonce: Option<String>,
        directory: Option<&str>,
    ) -> Response<Body> {
        if let Some(d) = directory {
            self.links.push(format!("<{d}>;rel=\"index\""));
        }
        let mut headers: Vec<(HeaderName, String)> = Vec::new();
        let named = |n: &'static str| HeaderName::from_static(n);
        if let Some(n) = nonce {
            headers.push((named("replay-nonce"), n));
        }
        if let Some(ct) = self.content_type {
            headers.push((hyper::header::CONTENT_TYPE, ct.to_owned()));
        }
        if let Some(l) = self.location {
            headers.push((hyper::header::LOCATION, l));
        }
        if let Some(s) = self.retry_after {
            headers.push((hyper::header::RETRY_AFTER, s.to_string()));
        }
        if self.no_store {
            headers.push((hyper::header::CACHE_CONTROL, "no-store".into()));
        }
        headers.extend(self.links.into_iter().map(|l| (hyper::header::LINK, l)));

        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        for (name, value) in headers {
            match HeaderValue::try_from(value) {
                Ok(v) => {
                    response.headers_mut().append(name, v);
                }
                Err(_) => return text(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
            }
        }
        response
    }
}

/// A refusal: the problem plus the headers some problems need.
pub(crate) struct Refusal {
    problem: Problem,
    retry_after: Option<u32>,
    location: Option<String>,
}

impl From<Problem> for Refusal {
    fn from(problem: Problem) -> Self {
        Self {
            problem,
            retry_after: None,
            location: None,
        }
    }
}

impl Refusal {
    /// Adds `Retry-After` (rateLimited).
    pub(crate) fn retry_after(mut self, secs: u32) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// Adds `Location` (the conflicting account of a keyChange, RFC 8555 section 7.3.5).
    pub(crate) fn location(mut self, url: String) -> Self {
        self.location = Some(url);
        self
    }
}

/// Counts, logs and renders a refusal. Without a context (no ACME route) no nonce is minted.
pub(crate) async fn refuse(
    state: &Arc<AppState>,
    ctx: Option<&Ctx<'_>>,
    refusal: Refusal,
) -> Response<Body> {
    let p = &refusal.problem;
    state
        .metrics
        .bad_input
        .with_label_values(&["acme", p.kind.name()])
        .inc();
    tracing::debug!(
        kind = p.kind.name(), status = p.status, detail = %p.detail,
        route = ctx.map(|c| c.label.as_str()), "acme request refused"
    );
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut reply = Reply::bytes(p.to_body(), PROBLEM_CONTENT_TYPE);
    reply.status = status;
    reply.location = refusal.location;
    reply.retry_after = refusal.retry_after;
    match ctx {
        Some(c) => {
            let nonce = c.records.mint_nonce(c.nonce_lifetime()).await;
            reply.into_response(nonce, Some(&c.urls.directory()))
        }
        None => reply.into_response(None, None),
    }
}
