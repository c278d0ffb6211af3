//! The admin listener: metrics, health, readiness and the operator API for held requests.
//! Bind it to loopback or a management network only: it has no authentication of its own.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use super::{AppState, Body, ConnInfo, text};

/// Answers one admin request.
pub async fn handle(
    state: Arc<AppState>,
    _conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method(), segments.as_slice()) {
        (&Method::GET, ["metrics"]) => {
            let mut r = Response::new(Body::from(state.metrics.render()));
            r.headers_mut().insert(
                "content-type",
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }
        (&Method::GET, ["healthz"]) => text(StatusCode::OK, "ok"),
        (&Method::GET, ["readyz"]) => match state.registrar.store().ping().await {
            Ok(()) => backends_ready(&state),
            Err(e) => {
                tracing::warn!(error = %e, "store not ready");
                text(StatusCode::SERVICE_UNAVAILABLE, "store unavailable")
            }
        },
        (&Method::GET, ["admin", "requests"]) => list_pending(&state).await,
        (&Method::POST, ["admin", "requests", id, "approve"]) => {
            match state.registrar.approve_pending(id).await {
                Ok(outcome) => text(StatusCode::OK, outcome.kind()),
                Err(reason) => text(StatusCode::CONFLICT, &reason.public_text()),
            }
        }
        (&Method::POST, ["admin", "requests", id, "reject"]) => {
            match state.registrar.reject_pending(id).await {
                Ok(()) => text(StatusCode::OK, "rejected"),
                Err(reason) => text(StatusCode::CONFLICT, &reason.public_text()),
            }
        }
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

/// Ready when every route has a backend whose circuit breaker is not open; one line per
/// backend either way, with its last failure.
fn backends_ready(state: &AppState) -> Response<Body> {
    let backend = state.registrar.backend();
    let health = backend.health();
    let mut lines = Vec::new();
    for h in &health {
        let state = match h.breaker {
            "closed" => "up",
            other => other,
        };
        let chain = match h.chain_known {
            true => "",
            false => " (CA chain unknown)",
        };
        let last = match &h.last_error {
            Some(e) => format!(" (last error: {e})"),
            None => String::new(),
        };
        lines.push(format!("backend {}: {state}{chain}{last}", h.name));
    }
    if !backend.ready() {
        lines.insert(0, "not ready".into());
        return text(StatusCode::SERVICE_UNAVAILABLE, &lines.join("\n"));
    }
    lines.insert(0, "ready".into());
    text(StatusCode::OK, &lines.join("\n"))
}

async fn list_pending(state: &AppState) -> Response<Body> {
    match state.registrar.store().pending_with_status("pending").await {
        Ok(list) => {
            let items: Vec<_> = list
                .iter()
                .map(|p| serde_json::json!({"id": p.id, "protocol": p.protocol, "route": p.route, "subject": p.subject, "created_at": p.created_at}))
                .collect();
            let mut r = Response::new(Body::from(serde_json::Value::from(items).to_string()));
            r.headers_mut().insert(
                "content-type",
                hyper::header::HeaderValue::from_static("application/json"),
            );
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "listing pending requests failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}
