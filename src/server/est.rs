//! EST (RFC 7030) over HTTPS: the protocol crate decides, the registrar issues.

use std::sync::Arc;

use enrollgate_est::{CsrAttr, Decision, EstError, EstPath, EstRequest, EstResponse, RouteInfo};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use super::{AppState, Body, ConnInfo, read_body, text};

/// Answers one EST request.
pub async fn handle(
    state: &Arc<AppState>,
    conn: &ConnInfo,
    path: EstPath,
    req: Request<Incoming>,
) -> Response<Body> {
    if state.registrar.route(&path.label).is_none() {
        state
            .metrics
            .bad_input
            .with_label_values(&["est", "unknown_route"])
            .inc();
        tracing::debug!(label = %path.label, "EST request for an unknown route");
        // Read the body first: a reply sent while the client is still writing is lost to
        // an HTTP/2 stream reset or an HTTP/1.1 close with unread data.
        let _ = read_body(state, req.into_body()).await;
        return text(StatusCode::NOT_FOUND, "unknown route");
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (content_type, cte, authorization) = (
        header("content-type"),
        header("content-transfer-encoding"),
        header("authorization"),
    );
    let method = req.method().as_str().to_owned();
    let body = match read_body(state, req.into_body()).await {
        Ok(b) => b,
        Err(response) => {
            state
                .metrics
                .bad_input
                .with_label_values(&["est", "body"])
                .inc();
            return *response;
        }
    };
    let chain = state.registrar.ca_chain(&path.label);
    let csr_attrs = state
        .config
        .route(&path.label)
        .map(|r| csr_attrs(&state.config, &r.profile))
        .unwrap_or_default();
    let route = RouteInfo {
        ca_chain: &chain,
        csr_attrs: &csr_attrs,
    };
    let est_req = EstRequest {
        method: &method,
        content_type: content_type.as_deref(),
        content_transfer_encoding: cte.as_deref(),
        authorization: authorization.as_deref(),
        body: &body,
        client_chain: &conn.client_chain,
        tls_exporter: conn.tls_exporter.as_deref(),
        peer: conn.peer.map(|p| p.to_string()),
    };
    match enrollgate_est::handle(&path, &est_req, &route) {
        Ok(Decision::Respond(r)) => convert(r),
        Ok(Decision::Issue(mut request)) => {
            if may_be_held(&state.config, &path.label) {
                request.transaction_id = Some(resend_key(&request));
            }
            let outcome = state.registrar.issue(request).await;
            convert(enrollgate_est::encode_outcome(path.operation, &outcome))
        }
        Err(e) => error_response(state, &e),
    }
}

/// Whether a request on this route may be answered 202 (held for an operator, or by a
/// backend that can ask for approval). Only then does EST need a transaction key.
pub(crate) fn may_be_held(config: &crate::config::Config, label: &str) -> bool {
    config
        .route(label)
        .is_some_and(|r| r.manual_approval || r.backends.iter().any(|b| b != "builtin"))
}

/// EST carries no transaction id: a client told 202 resends the same request (RFC 7030
/// 4.2.3). The key that lets the registrar recognise the resend is made of what the resend
/// repeats exactly: the operation, who asks (the token id or the client certificate) and the
/// CSR's bytes. A different CSR or another requester is a new transaction.
pub(crate) fn resend_key(request: &enrollgate_model::IssuanceRequest) -> String {
    use enrollgate_model::{Credential, KeySource};
    let who = match &request.requester.credential {
        Credential::Token { id, .. } | Credential::TokenProven { id } => format!("token:{id}"),
        Credential::Certificate { chain } => format!(
            "cert:{}",
            crate::crypto::sha256_hex(chain.first().map(Vec::as_slice).unwrap_or_default())
        ),
        Credential::Password(_) => "password".to_owned(),
        Credential::Anonymous => "anonymous".to_owned(),
    };
    let csr = match &request.key {
        KeySource::Csr(der) | KeySource::Generate { template_csr: der } => der.as_slice(),
        KeySource::Verified { .. } => &[],
    };
    format!(
        "{}:{who}:{}",
        request.operation.as_str(),
        crate::crypto::sha256_hex(csr)
    )
}

/// The response for a refused EST request, counted and logged at debug.
pub fn error_response(state: &AppState, e: &EstError) -> Response<Body> {
    state
        .metrics
        .bad_input
        .with_label_values(&["est", e.kind()])
        .inc();
    tracing::debug!(error = %e, "EST request refused");
    convert(e.response())
}

/// What the route's profile would like a CSR to carry (RFC 7030 4.5): the preferred key
/// type and signature algorithm, the first accepted key type being the preferred one.
pub(crate) fn csr_attrs(config: &crate::config::Config, profile: &str) -> Vec<CsrAttr> {
    use const_oid::db::{rfc5912, rfc8410};
    let Some(first) = config
        .profiles
        .get(profile)
        .and_then(|p| p.key_types.first())
    else {
        return Vec::new();
    };
    match first.as_str() {
        "p256" => vec![
            CsrAttr::EcCurve(rfc5912::SECP_256_R_1),
            CsrAttr::Oid(rfc5912::ECDSA_WITH_SHA_256),
        ],
        "p384" => vec![
            CsrAttr::EcCurve(rfc5912::SECP_384_R_1),
            CsrAttr::Oid(rfc5912::ECDSA_WITH_SHA_384),
        ],
        "p521" => vec![
            CsrAttr::EcCurve(rfc5912::SECP_521_R_1),
            CsrAttr::Oid(rfc5912::ECDSA_WITH_SHA_512),
        ],
        "ed25519" => vec![CsrAttr::Oid(rfc8410::ID_ED_25519)],
        _ => vec![
            CsrAttr::Oid(rfc5912::RSA_ENCRYPTION),
            CsrAttr::Oid(rfc5912::SHA_256_WITH_RSA_ENCRYPTION),
        ],
    }
}

fn convert(r: EstResponse) -> Response<Body> {
    let mut builder = Response::builder().status(r.status);
    for (name, value) in r.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Body::from(r.body))
        .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
}
