//! CoAP requests to EST-coaps, CMP over CoAP and discovery: the protocol crate checks and
//! maps, the registrar and the CMP server decide.

use std::sync::Arc;
use std::time::Duration;

use enrollgate_coap::est::{self, EstCoapsDecision, EstCoapsPath, EstRoute};
use enrollgate_coap::{Request, Response, ResponseType, cmp, discovery};
use enrollgate_model::Protocol;

use super::session::PeerInfo;
use crate::server::{AppState, ConnInfo};

/// Answers one complete request.
pub(super) async fn handle(state: &Arc<AppState>, info: &PeerInfo, request: Request) -> Response {
    let deadline = Duration::from_secs(state.config.limits.request_timeout_secs);
    let path = request.path_string();
    let response = match tokio::time::timeout(deadline, route(state, info, &request)).await {
        Ok(r) => r,
        Err(_) => Response::diagnostic(ResponseType::ServiceUnavailable, "timed out").max_age(30),
    };
    tracing::debug!(
        peer = %info.peer, method = ?request.method, path = %path,
        code = ?response.code, "coaps request"
    );
    response
}

async fn route(state: &Arc<AppState>, info: &PeerInfo, request: &Request) -> Response {
    if discovery::is_discovery(&request.path) {
        return discovery::discovery(request);
    }
    if let Some(parsed) = est::parse_est_path(&request.path) {
        return match parsed {
            Ok(path) => est_request(state, info, &path, request).await,
            Err(response) => refused(state, "est-coaps", "not_found", response),
        };
    }
    if let Some(label) = cmp::parse_cmp_path(&request.path) {
        return match label {
            Ok(label) => cmp_request(state, info, &label, request).await,
            Err(response) => refused(state, "cmp-coaps", "not_found", response),
        };
    }
    Response::diagnostic(ResponseType::NotFound, "not found")
}

async fn est_request(
    state: &Arc<AppState>,
    info: &PeerInfo,
    path: &EstCoapsPath,
    request: &Request,
) -> Response {
    let Some(route) = state.config.route(&path.label) else {
        let response = Response::diagnostic(ResponseType::NotFound, "unknown route");
        return refused(state, "est-coaps", "unknown_route", response);
    };
    let chain = state.registrar.ca_chain(&path.label);
    let attrs = crate::server::est::csr_attrs(&state.config, &route.profile);
    let est_route = EstRoute {
        ca_chain: &chain,
        csr_attrs: &attrs,
    };
    let peer = Some(info.peer.to_string());
    match est::est_request(path, request, &est_route, info.credential.clone(), peer) {
        EstCoapsDecision::Respond(r) if is_error(&r) => {
            refused(state, "est-coaps", code_kind(&r), r)
        }
        EstCoapsDecision::Respond(r) => r,
        EstCoapsDecision::Issue(mut issuance) => {
            // EST has no transaction id: a resend after 5.03 is recognised as EST over
            // HTTPS recognises one after 202 (RFC 9148 5.7, RFC 7030 4.2.3).
            if crate::server::est::may_be_held(&state.config, &path.label) {
                issuance.transaction_id = Some(crate::server::est::resend_key(&issuance));
            }
            let outcome = state.registrar.issue(issuance).await;
            est::est_outcome(path.operation, request.accept, &outcome)
        }
    }
}

async fn cmp_request(
    state: &Arc<AppState>,
    info: &PeerInfo,
    label: &str,
    request: &Request,
) -> Response {
    let Some(server) = state.cmp.server(label) else {
        let response = Response::diagnostic(ResponseType::NotFound, "unknown route");
        return refused(state, "cmp-coaps", "unknown_route", response);
    };
    if let Err(response) = cmp::check_cmp_request(request) {
        return refused(state, "cmp-coaps", code_kind(&response), response);
    }
    let conn = ConnInfo {
        peer: Some(info.peer),
        tls: true,
        client_chain: info.chain.clone(),
        tls_exporter: None,
    };
    match crate::server::cmp::exchange(state, server, &conn, &request.payload, Protocol::CmpCoaps)
        .await
    {
        Ok(der) => cmp::cmp_response(der),
        Err(http) => {
            // Not a CMP message at all, or our own failure: no CMP reply can be made.
            let code = match http.status().as_u16() {
                400..=499 => ResponseType::BadRequest,
                _ => ResponseType::InternalServerError,
            };
            Response::diagnostic(code, "not a CMP message")
        }
    }
}

/// Counts a refusal before the registrar and logs it at debug.
fn refused(state: &AppState, protocol: &str, kind: &str, response: Response) -> Response {
    state
        .metrics
        .bad_input
        .with_label_values(&[protocol, kind])
        .inc();
    tracing::debug!(protocol, kind, code = ?response.code, "coaps request refused");
    response
}

fn is_error(r: &Response) -> bool {
    r.code.is_error()
}

fn code_kind(r: &Response) -> &'static str {
    match r.code {
        ResponseType::BadRequest => "bad_request",
        ResponseType::Unauthorized => "unauthorized",
        ResponseType::NotFound => "not_found",
        ResponseType::MethodNotAllowed => "method_not_allowed",
        ResponseType::NotAcceptable => "not_acceptable",
        ResponseType::UnsupportedContentFormat => "unsupported_content_format",
        _ => "other",
    }
}
