//! Approval by an HTTP webhook: a route may name a URL that sees every request after policy
//! and answers whether it may proceed (the dynamic-challenge validation some device managers
//! run for SCEP). On a route whose `auth` holds `webhook`, the challenge password itself is
//! checked there and nowhere else.
//!
//! The gateway POSTs JSON:
//! `{"protocol", "route", "operation", "requester", "subject", "sans": [..], "csr": base64 or
//! null, "challenge": text or null}` (the challenge only on a `webhook`-authenticated route),
//! and expects `200` with `{"allow": true}` or `{"allow": false, "reason": "..."}`. Anything
//! else (another status, a body that is not that JSON, no answer within the timeout) refuses
//! the request: the webhook fails closed.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use enrollgate_model::{RejectReason, Secret};
use hyper::Method;

use crate::backends::config::ClientTls;
use crate::backends::http::HttpClient;
use crate::config::Config;

/// Longest refusal reason passed on to the client.
const MAX_REASON: usize = 200;

/// What the webhook is asked about.
pub struct Ask<'a> {
    pub protocol: &'a str,
    pub route: &'a str,
    pub operation: &'a str,
    pub requester: String,
    pub subject: &'a str,
    pub sans: Vec<String>,
    pub csr: Option<&'a [u8]>,
    pub challenge: Option<&'a Secret>,
}

struct Hook {
    client: Result<HttpClient, String>,
    timeout: Duration,
}

/// The webhooks of all routes that have one.
pub struct Webhooks {
    by_route: HashMap<String, Hook>,
}

impl Webhooks {
    /// Builds a client per route with a webhook. A client that cannot be built refuses every
    /// request of its route (and `enrollgate check` reports the URL).
    pub fn from_config(config: &Config) -> Self {
        let by_route = config
            .routes
            .iter()
            .filter_map(|r| {
                let w = r.webhook.as_ref()?;
                let tls = ClientTls {
                    ca_file: w.ca_file.clone(),
                    client_cert: None,
                    client_key: None,
                };
                let timeout = Duration::from_secs(w.timeout_secs.max(1));
                let client = HttpClient::new(&w.url, &tls, timeout).map_err(|e| e.to_string());
                Some((r.label.clone(), Hook { client, timeout }))
            })
            .collect();
        Self { by_route }
    }

    /// Whether `route` has a webhook.
    pub fn has(&self, route: &str) -> bool {
        self.by_route.contains_key(route)
    }

    /// Asks the route's webhook; `Ok` when there is none or it allows the request.
    pub async fn check(&self, ask: &Ask<'_>) -> Result<(), RejectReason> {
        let Some(hook) = self.by_route.get(ask.route) else {
            return Ok(());
        };
        let client = hook.client.as_ref().map_err(|e| {
            tracing::warn!(route = ask.route, error = %e, "webhook client not usable; request refused");
            RejectReason::Refused
        })?;
        let body = serde_json::json!({
            "protocol": ask.protocol,
            "route": ask.route,
            "operation": ask.operation,
            "requester": ask.requester,
            "subject": ask.subject,
            "sans": ask.sans,
            "csr": ask.csr.map(|d| STANDARD.encode(d)),
            "challenge": ask.challenge.map(|s| String::from_utf8_lossy(s.expose()).into_owned()),
        });
        let headers = [("content-type", "application/json".to_owned())];
        let sent = client.send(
            Method::POST,
            "",
            &headers,
            Some(Bytes::from(body.to_string())),
        );
        let reply = match tokio::time::timeout(hook.timeout, sent).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                tracing::warn!(route = ask.route, error = %e, "webhook failed; request refused");
                return Err(RejectReason::Refused);
            }
            Err(_) => {
                tracing::warn!(route = ask.route, "webhook timed out; request refused");
                return Err(RejectReason::Refused);
            }
        };
        let verdict: Option<serde_json::Value> = serde_json::from_slice(&reply.body).ok();
        match (reply.status.as_u16(), verdict.as_ref().map(|v| &v["allow"])) {
            (200, Some(serde_json::Value::Bool(true))) => Ok(()),
            (200, Some(serde_json::Value::Bool(false))) => {
                let reason: String = verdict
                    .as_ref()
                    .and_then(|v| v["reason"].as_str())
                    .unwrap_or("refused by the approval webhook")
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_REASON)
                    .collect();
                tracing::debug!(route = ask.route, reason = %reason, "webhook refused the request");
                Err(match ask.challenge {
                    Some(_) => RejectReason::Unauthenticated,
                    None => RejectReason::PolicyDenied(reason),
                })
            }
            (status, _) => {
                tracing::warn!(
                    route = ask.route,
                    status,
                    "webhook answer not understood; request refused"
                );
                Err(RejectReason::Refused)
            }
        }
    }
}
