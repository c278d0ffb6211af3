//! Listeners and request routing: thin async glue between sockets, protocol crates and the
//! registrar. Anything that needs an RFC citation lives in a protocol crate.

pub mod acme;
pub mod admin;
pub mod cmp;
pub mod coaps;
mod est;
pub mod listener;
mod scep;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use crate::ca::BuiltinCa;
use crate::config::Config;
use crate::issuance::Registrar;
use crate::metrics::Metrics;

/// What every handler may use.
pub struct AppState {
    /// The configuration.
    pub config: Arc<Config>,
    /// The registrar.
    pub registrar: Arc<Registrar>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The built-in CA (CRL signing, SCEP RA identity).
    pub ca: Arc<BuiltinCa>,
    /// The SCEP RA identity, parsed once.
    pub scep_ra: Option<Arc<enrollgate_scep::RaIdentity>>,
    /// CMP servers by route.
    pub cmp: cmp::CmpServers,
    /// Token secrets (CMP MAC keys are derived from the token id).
    pub tokens: Arc<crate::tokens::Tokens>,
    /// The ACME server's validator; its protocol state lives in the store.
    pub acme: acme::AcmeService,
}

/// What the listener knows about the connection a request came on.
#[derive(Clone, Debug, Default)]
pub struct ConnInfo {
    /// The peer's address.
    pub peer: Option<SocketAddr>,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The client certificate chain, leaf first, if one was presented and its key proven.
    pub client_chain: Vec<Vec<u8>>,
    /// RFC 9266 tls-exporter channel binding (TLS 1.3 only).
    pub tls_exporter: Option<Vec<u8>>,
}

/// The body type of every response.
pub type Body = Full<Bytes>;

/// Routes one request and emits its summary line.
pub async fn handle(
    state: Arc<AppState>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let deadline = Duration::from_secs(state.config.limits.request_timeout_secs);
    let response = match tokio::time::timeout(deadline, route(&state, &conn, req)).await {
        Ok(r) => r,
        Err(_) => {
            state
                .metrics
                .connections
                .with_label_values(&["request", "timeout"])
                .inc();
            text(StatusCode::SERVICE_UNAVAILABLE, "request timed out")
        }
    };
    tracing::info!(
        method = %method, path = %path, status = response.status().as_u16(),
        peer = ?conn.peer, micros = started.elapsed().as_micros() as u64, "request"
    );
    response
}

async fn route(state: &Arc<AppState>, conn: &ConnInfo, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    if let Some(parsed) = enrollgate_est::parse_path(&path) {
        if !conn.tls {
            state
                .metrics
                .bad_input
                .with_label_values(&["est", "not_tls"])
                .inc();
            tracing::debug!(peer = ?conn.peer, "EST request over plain HTTP refused");
            let _ = read_body(state, req.into_body()).await;
            return text(StatusCode::FORBIDDEN, "EST is served over HTTPS only");
        }
        return match parsed {
            Ok(est_path) => est::handle(state, conn, est_path, req).await,
            Err(e) => est::error_response(state, &e),
        };
    }
    if let Some(label) = cmp::route_label(&path) {
        let label = label.to_owned();
        return cmp::handle(state, conn, &label, req).await;
    }
    if let Some((label, below)) = acme::split_path(&state.config, &path) {
        let (label, below) = (label.to_owned(), below.to_owned());
        return acme::handle(state, conn, &label, &below, req).await;
    }
    if let Some(label) = scep::route_label(&path) {
        let label = label.to_owned();
        return scep::handle(state, conn, &label, req).await;
    }
    match path.as_str() {
        "/crl" | "/ca.crl" => crl(state).await,
        "/ca.crt" | "/root.crt" => Response::builder()
            .header("content-type", "application/pkix-cert")
            .body(Body::from(state.ca.root.cert.clone()))
            .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "internal error")),
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

/// Reads a request body up to the configured limit; `Err` carries the response to send.
pub async fn read_body(state: &AppState, body: Incoming) -> Result<Bytes, Box<Response<Body>>> {
    match Limited::new(body, state.config.limits.max_body_bytes)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(Box::new(text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large",
            )))
        }
        Err(_) => Err(Box::new(text(
            StatusCode::BAD_REQUEST,
            "could not read request body",
        ))),
    }
}

/// A short plain-text response.
pub fn text(status: StatusCode, message: &str) -> Response<Body> {
    let mut r = Response::new(Body::from(format!("{message}\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn crl(state: &AppState) -> Response<Body> {
    match crate::crl::current(state).await {
        Ok(der) => Response::builder()
            .header("content-type", "application/pkix-crl")
            .body(Body::from(der))
            .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "internal error")),
        Err(e) => {
            tracing::error!(error = %e, "CRL generation failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}
