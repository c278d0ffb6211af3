//! CMP (RFC 9810, lightweight profile RFC 9483) over HTTP (RFC 9811): the protocol crate
//! decodes, checks protection and steps the transaction; the registrar decides; transaction
//! state lives in the store so that any node can answer the next message.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use enrollgate_cmp::{
    CmpError, CmpServer, Event, ProtectionKind, Reply, ServerConfig, Step, TransactionState,
};
use enrollgate_model::{Credential, Protocol, RejectReason, Requester};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use super::{AppState, Body, ConnInfo, read_body, text};

/// How long a finished or waiting transaction is remembered (reused ids are refused meanwhile).
const STATE_TTL_SECS: i64 = 7 * 86_400;
/// The store's blob kind for CMP transaction state.
const KIND: &str = "cmp";

/// One [`CmpServer`] per route, built at start.
pub struct CmpServers {
    by_route: HashMap<String, CmpServer>,
}

impl CmpServers {
    /// Builds a server for every configured route, signing with the CA's CMP identity.
    pub fn new(
        state_config: &crate::config::Config,
        ca: &crate::ca::BuiltinCa,
        key_pkcs8: &[u8],
    ) -> anyhow::Result<Self> {
        let chain = vec![
            ca.cmp.cert.clone(),
            ca.issuing.cert.clone(),
            ca.root.cert.clone(),
        ];
        let mut by_route = HashMap::new();
        for route in &state_config.routes {
            let mut config = ServerConfig::new(route.label.clone());
            config.confirm_wait_secs = state_config.cmp.confirm_wait_secs;
            config.ca_certs = ca.chain();
            let server = CmpServer::new(config, key_pkcs8, chain.clone())
                .map_err(|e| anyhow::anyhow!("CMP server for route {:?}: {e}", route.label))?;
            by_route.insert(route.label.clone(), server);
        }
        Ok(Self { by_route })
    }

    /// The server of route `label` (CMP over CoAP shares them).
    pub(crate) fn server(&self, label: &str) -> Option<&CmpServer> {
        self.by_route.get(label)
    }
}

/// The route label if `path` is a CMP path: `/.well-known/cmp` or `/.well-known/cmp/p/<label>`.
pub fn route_label(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/.well-known/cmp")?;
    match rest {
        "" | "/" => Some(""),
        _ => rest
            .strip_prefix("/p/")
            .map(|l| l.trim_end_matches('/'))
            .filter(|l| !l.is_empty() && !l.contains('/')),
    }
}

/// Answers one CMP request.
pub async fn handle(
    state: &Arc<AppState>,
    conn: &ConnInfo,
    label: &str,
    req: Request<Incoming>,
) -> Response<Body> {
    let Some(server) = state.cmp.by_route.get(label) else {
        state
            .metrics
            .bad_input
            .with_label_values(&["cmp", "unknown_route"])
            .inc();
        return text(StatusCode::NOT_FOUND, "unknown route");
    };
    if req.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "CMP messages are POSTed");
    }
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with(enrollgate_cmp::http_content_type()) {
        state
            .metrics
            .bad_input
            .with_label_values(&["cmp", "content_type"])
            .inc();
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected application/pkixcmp",
        );
    }
    let body = match read_body(state, req.into_body()).await {
        Ok(b) => b,
        Err(response) => {
            state
                .metrics
                .bad_input
                .with_label_values(&["cmp", "body"])
                .inc();
            return *response;
        }
    };
    match exchange(state, server, conn, &body, Protocol::Cmp).await {
        Ok(der) => pkixcmp(der),
        Err(response) => *response,
    }
}

/// Decode, verify, step, decide, store: one request message in, one reply message out.
/// `protocol` names the transport in audit and metrics (CMP over HTTP or over CoAP).
pub(crate) async fn exchange(
    state: &AppState,
    server: &CmpServer,
    conn: &ConnInfo,
    body: &[u8],
    protocol: Protocol,
) -> Result<Vec<u8>, Box<Response<Body>>> {
    let now = now();
    let incoming = server.decode(body).map_err(|e| {
        state
            .metrics
            .bad_input
            .with_label_values(&["cmp", "decode"])
            .inc();
        tracing::debug!(error = %e, "CMP message refused");
        Box::new(text(StatusCode::BAD_REQUEST, "not a CMP message"))
    })?;
    let facts = incoming.facts();
    let tid = facts.transaction_id_hex().unwrap_or_default();
    let refuse = |e: CmpError| {
        state
            .metrics
            .bad_input
            .with_label_values(&["cmp", e.fail_info().name()])
            .inc();
        tracing::debug!(error = %e, transaction = %tid, "CMP message refused");
        server
            .error_reply(&incoming, &e, now, &mut rng)
            .map_err(|_| Box::new(text(StatusCode::BAD_REQUEST, &e.public_text())))
    };
    let verified = match facts.protection {
        _ if tid.is_empty() => Err(CmpError::BadRequest("transactionID missing".into())),
        ProtectionKind::Mac => match facts.sender_kid_text() {
            Some(kid) => match server.verify_mac(&incoming, &state.tokens.secret_for(&kid)) {
                Ok(v) => live_token(state, &server.config().route, &kid, now)
                    .await
                    .map(|()| v),
                Err(e) => Err(e),
            },
            None => Err(CmpError::BadMessageCheck),
        },
        ProtectionKind::Signature => match server.verify_signature(&incoming) {
            Ok(v) => trusted_signer(state, server, v).await,
            Err(e) => Err(e),
        },
        ProtectionKind::None => Err(CmpError::WrongProtection),
    };
    let verified = match verified {
        Ok(v) => v,
        Err(e) => return refuse(e),
    };
    let store = state.registrar.store();
    let prior = match store
        .blob(KIND, &tid, i64::try_from(now).unwrap_or(i64::MAX))
        .await
    {
        Ok(Some(bytes)) => TransactionState::from_bytes(&bytes).ok(),
        Ok(None) => None,
        Err(e) => {
            tracing::error!(error = %e, "store failed reading CMP state");
            return Err(Box::new(text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
            )));
        }
    };
    let step = match server.step(verified, prior, now, &mut rng) {
        Ok(step) => step,
        Err(e) => return refuse(e),
    };
    if let Step::Reply(Reply {
        failure: Some(fail),
        ..
    }) = &step
    {
        // The crate refused the message itself (version, nonces, sequence, certConf).
        state
            .metrics
            .bad_input
            .with_label_values(&["cmp", fail.name()])
            .inc();
        tracing::debug!(fail = fail.name(), transaction = %tid, "CMP message refused");
    }
    let reply = match run_step(state, server, conn, step, now, protocol).await {
        Ok(reply) => reply,
        Err(e) => return refuse(e),
    };
    finish(state, &tid, &reply).await;
    Ok(reply.der)
}

/// RFC 9483 section 3.5: the protection certificate must chain to the route's anchors (or our
/// own CA, unrevoked) before anything in the message counts, genm and certConf included.
async fn trusted_signer(
    state: &AppState,
    server: &CmpServer,
    verified: enrollgate_cmp::Verified,
) -> Result<enrollgate_cmp::Verified, CmpError> {
    let chain = verified.facts().extra_certs.clone();
    let credential = Credential::Certificate { chain };
    match state
        .registrar
        .authenticate(&server.config().route, &credential)
        .await
    {
        Ok(_) => Ok(verified),
        Err(RejectReason::Internal) => Err(CmpError::Internal("authentication failed".into())),
        Err(_) => Err(CmpError::UntrustedSigner),
    }
}

async fn run_step(
    state: &AppState,
    server: &CmpServer,
    conn: &ConnInfo,
    step: Step,
    now: u64,
    protocol: Protocol,
) -> Result<Reply, CmpError> {
    match step {
        Step::Reply(reply) => Ok(reply),
        Step::Issue {
            mut request,
            pending,
        } => {
            request.requester.peer = conn.peer.map(|p| p.to_string());
            request.protocol = protocol;
            let outcome = state.registrar.issue(request).await;
            server.reply_for_outcome(pending, &outcome, now, &mut rng)
        }
        Step::Poll {
            pending_id,
            pending,
        } => {
            let outcome = state.registrar.poll(&pending_id).await;
            server.reply_for_outcome(pending, &outcome, now, &mut rng)
        }
        Step::Revoke {
            serial,
            reason,
            requester,
            pending,
            ..
        } => {
            let serial = even_hex(&serial);
            let result = revoke(state, &serial, reason.unwrap_or(0), &requester).await;
            server.reply_for_revocation(pending, result, now, &mut rng)
        }
    }
}

/// A revocation request must be signed by the certificate it revokes, and that certificate
/// must be one we issued.
async fn revoke(
    state: &AppState,
    serial: &str,
    reason: u8,
    requester: &Requester,
) -> Result<(), RejectReason> {
    let Credential::Certificate { chain } = &requester.credential else {
        return Err(RejectReason::Unauthenticated);
    };
    let record = state
        .registrar
        .store()
        .certificate(serial)
        .await
        .map_err(|_| RejectReason::Internal)?;
    match record {
        Some(r) if chain.first() == Some(&r.der) => {}
        _ => return Err(RejectReason::Unauthenticated),
    }
    match state.registrar.revoke(serial, reason).await? {
        true => Ok(()),
        false => Err(RejectReason::PolicyDenied(
            "certificate already revoked".into(),
        )),
    }
}

/// Stores the new transaction state and acts on the reply's event.
async fn finish(state: &AppState, tid: &str, reply: &Reply) {
    if let Some(next) = &reply.state {
        match next.to_bytes() {
            Ok(bytes) => {
                let expires = crate::clock::now() + STATE_TTL_SECS;
                if let Err(e) = state
                    .registrar
                    .store()
                    .put_blob(KIND, tid, &bytes, expires)
                    .await
                {
                    tracing::error!(error = %e, "store failed writing CMP state");
                }
            }
            Err(e) => tracing::error!(error = %e, "encoding CMP state failed"),
        }
    }
    if let Some(event) = &reply.event {
        on_event(state, event).await;
    }
}

async fn on_event(state: &AppState, event: &Event) {
    match event {
        Event::Confirmed { serial } => {
            tracing::debug!(serial = %serial, "CMP certificate confirmed")
        }
        Event::RevokeRejected { serial, .. } | Event::RevokeUnconfirmed { serial, .. } => {
            let serial = even_hex(serial);
            // RFC 9810 5.3.18: a certificate the requester rejected or never confirmed is revoked;
            // reason 0 (unspecified), as the RFC names none.
            match state.registrar.revoke(&serial, 0).await {
                Ok(_) => tracing::info!(serial = %serial, "revoked unconfirmed CMP certificate"),
                Err(r) => {
                    tracing::warn!(serial = %serial, reason = r.kind(), "revoking an unconfirmed certificate failed")
                }
            }
        }
    }
}

/// A MAC proves the token's secret; the token must also still exist, belong to this route
/// and not have expired, for every message (genm included). Spent uses do not matter here:
/// the registrar counts them when a certificate is asked for, and a started transaction may
/// still confirm or poll.
async fn live_token(state: &AppState, label: &str, kid: &str, now: u64) -> Result<(), CmpError> {
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    match state.registrar.store().token(kid).await {
        Ok(Some(t)) if t.route == label && t.expires_at > now => Ok(()),
        Ok(_) => Err(CmpError::NotAuthorized(
            "the MAC's token is unknown, expired or of another route".into(),
        )),
        Err(e) => Err(CmpError::Internal(format!("token lookup: {e}"))),
    }
}

/// Revokes certificates whose certConf never came: runs until the process ends.
pub async fn sweep_unconfirmed(state: Arc<AppState>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let store = state.registrar.store();
        let Ok(blobs) = store.blobs_of_kind(KIND, crate::clock::now()).await else {
            continue;
        };
        for (tid, bytes) in blobs {
            let Ok(current) = TransactionState::from_bytes(&bytes) else {
                continue;
            };
            if let Some((next, event)) = current.expire(now()) {
                if let Ok(b) = next.to_bytes() {
                    let _ = store
                        .put_blob(KIND, &tid, &b, crate::clock::now() + STATE_TTL_SECS)
                        .await;
                }
                on_event(&state, &event).await;
            }
        }
    }
}

fn even_hex(serial: &str) -> String {
    if serial.len() % 2 == 1 {
        format!("0{serial}")
    } else {
        serial.to_owned()
    }
}

fn now() -> u64 {
    u64::try_from(crate::clock::now()).unwrap_or(0)
}

fn rng(buf: &mut [u8]) {
    use aws_lc_rs::rand::SecureRandom;
    // The system RNG only fails when the OS cannot provide entropy; nothing is safe then.
    aws_lc_rs::rand::SystemRandom::new()
        .fill(buf)
        .expect("operating system random source failed");
}

fn pkixcmp(der: Vec<u8>) -> Response<Body> {
    Response::builder()
        .header("content-type", enrollgate_cmp::http_content_type())
        .body(Body::from(der))
        .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
}

#[cfg(test)]
mod tests {
    use super::route_label;

    #[test]
    fn cmp_paths_select_routes() {
        assert_eq!(route_label("/.well-known/cmp"), Some(""));
        assert_eq!(route_label("/.well-known/cmp/p/iot"), Some("iot"));
        assert_eq!(route_label("/.well-known/cmp/p/"), None);
        assert_eq!(route_label("/.well-known/cmpx"), None);
        assert_eq!(route_label("/.well-known/est"), None);
    }
}
