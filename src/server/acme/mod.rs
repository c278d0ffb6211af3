//! ACME (RFC 8555) over HTTPS at `/acme[/<label>]/...`: thin glue between hyper, the sans-I/O
//! `enrollgate-acme` crate, the store and the registrar.
//!
//! Nodes keep nothing: nonces, accounts, orders, authorizations and certificate records are
//! JSON blobs in the [`crate::store::Store`] ([`records`]), so any node answers any step.
//! Challenges are validated off the request path by a spawned task ([`validate`]) that writes
//! its verdict into the authorization; order status is derived from the authorizations each
//! time the order is read. Finalize hands the crate's one [`enrollgate_model::IssuanceRequest`]
//! to the registrar with the order id as transaction id, so a retried or concurrent finalize
//! never yields a second certificate.
//!
//! Every response carries a fresh `Replay-Nonce` and `Link: <directory>;rel="index"`; every
//! refusal is an RFC 7807 problem document, counted in `enrollgate_bad_input_total{protocol=
//! "acme", kind=<problem type>}` and logged at debug.
//!
//! Not supported here (beyond the crate's own list): http-01 redirects are not followed;
//! a validation interrupted by a node's death leaves its challenge `processing` until the
//! authorization expires; rate-limit counters and the one-account-per-key index are
//! read-then-write, so concurrent requests may overshoot a limit slightly.

mod account;
mod auth;
mod authz;
mod issue;
mod limits;
mod order;
mod records;
mod reply;
mod revoke;
pub mod validate;

use std::sync::Arc;

use enrollgate_acme::Problem;
use enrollgate_acme::resources::{DirectoryMeta, Urls, directory_json};
use enrollgate_acme::router::{self, Resource};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use super::{AppState, Body, ConnInfo};
use crate::config::{AcmeRoute, AcmeValidation, Config};
use crate::store::Store;
use records::Records;
use reply::{Refusal, Reply};

/// What the ACME server keeps for the life of the process: only the validator (resolver, TLS
/// client, concurrency permits); all protocol state is in the store.
pub struct AcmeService {
    validator: Arc<validate::Validator>,
}

impl AcmeService {
    /// Builds the validator from the `[acme]` configuration.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let unchecked = config
            .acme
            .routes
            .iter()
            .filter(|r| r.validation == AcmeValidation::AlwaysPass);
        for r in unchecked {
            tracing::warn!(
                route = %r.label,
                "acme: benchmark route issues without validating challenges \
                 (insecure_benchmark_validation)"
            );
        }
        Ok(Self {
            validator: Arc::new(validate::Validator::new(&config.acme)?),
        })
    }
}

/// Revokes an ACME account on an operator's order: every later request signed by its key is
/// refused with `unauthorized`, and its key cannot make a new account. `account` is the
/// account id or its URL. Returns false when the store holds no such account.
pub async fn revoke_account(store: &dyn Store, account: &str) -> anyhow::Result<bool> {
    let id = account.rsplit_once("/acct/").map_or(account, |(_, id)| id);
    let records = Records::new(store, crate::clock::now());
    let problem = |p: Problem| anyhow::anyhow!("acme account {id}: {}", p.detail);
    let Some(mut found) = records.account(id).await.map_err(problem)? else {
        return Ok(false);
    };
    if found.revoke() {
        records.put_account(&found).await.map_err(problem)?;
        tracing::info!(account = %found.id, "acme account revoked by the operator");
    }
    Ok(true)
}

/// The route label and the path below it if `path` is under `/acme`: `/acme/directory` is
/// the default route, `/acme/<label>/directory` a labelled one.
pub fn split_path<'a>(config: &Config, path: &'a str) -> Option<(&'a str, &'a str)> {
    let rest = path.strip_prefix("/acme")?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let after_slash = rest.strip_prefix('/').unwrap_or_default();
    if let Some(slash) = after_slash.find('/') {
        let (label, below) = after_slash.split_at(slash);
        if !label.is_empty() && config.route(label).is_some() {
            return Some((label, below));
        }
    }
    Some(("", rest))
}

/// One request's context: the route, its URLs and directory, the time, the store.
pub(crate) struct Ctx<'a> {
    state: &'a Arc<AppState>,
    label: String,
    settings: AcmeRoute,
    origin: String,
    urls: Urls,
    meta: DirectoryMeta,
    now: i64,
    records: Records<'a>,
}

/// Answers one ACME request.
pub async fn handle(
    state: &Arc<AppState>,
    conn: &ConnInfo,
    label: &str,
    below: &str,
    req: Request<Incoming>,
) -> Response<Body> {
    let Some(ctx) = context(state, label, &req) else {
        let refusal =
            Refusal::from(Problem::malformed("no ACME server at this path").with_status(404));
        return reply::refuse(state, None, refusal).await;
    };
    if !conn.tls {
        let p = Problem::unauthorized("ACME is served over HTTPS only");
        return ctx.refuse(p.into()).await;
    }
    let Some(resource) = router::route(below) else {
        return ctx
            .refuse(
                Problem::malformed("no such resource")
                    .with_status(404)
                    .into(),
            )
            .await;
    };
    let method = req.method().clone();
    let result = match method {
        Method::GET | Method::HEAD if resource.allows_get() => ctx.get(&resource, &method).await,
        Method::POST if !resource.allows_get() => ctx.post(resource, req).await,
        _ => Err(
            Problem::malformed("method not allowed here; use POST-as-GET")
                .with_status(405)
                .into(),
        ),
    };
    match result {
        Ok(reply) => ctx.answer(reply).await,
        Err(refusal) => ctx.refuse(refusal).await,
    }
}

fn context<'a>(state: &'a Arc<AppState>, label: &str, req: &Request<Incoming>) -> Option<Ctx<'a>> {
    let config = &state.config;
    let route = config.route(label).filter(|_| config.acme.enabled)?;
    let settings = config.acme.route(label);
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| header(req, "host"))?;
    let origin = config
        .acme
        .base_url
        .clone()
        .unwrap_or(format!("https://{host}"));
    let base = match label {
        "" => format!("{origin}/acme"),
        l => format!("{origin}/acme/{l}"),
    };
    let meta = DirectoryMeta {
        terms_of_service: config.acme.terms_of_service.clone(),
        website: config.acme.website.clone(),
        caa_identities: config.acme.caa_identities.clone(),
        external_account_required: settings.requires_eab(route),
        profiles: settings
            .profiles
            .iter()
            .map(|(name, p)| (name.clone(), p.description.clone()))
            .collect(),
    };
    let now = crate::clock::now();
    Some(Ctx {
        state,
        label: label.to_owned(),
        settings,
        origin,
        urls: Urls::new(base),
        meta,
        now,
        records: Records::new(state.registrar.store().as_ref(), now),
    })
}

fn header(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl Ctx<'_> {
    async fn get(&self, resource: &Resource, method: &Method) -> Result<Reply, Refusal> {
        match resource {
            Resource::Directory => Ok(Reply::json(
                StatusCode::OK,
                &directory_json(&self.urls, &self.meta),
            )),
            Resource::NewNonce if method == Method::HEAD => {
                Ok(Reply::empty(StatusCode::OK).no_store())
            }
            Resource::NewNonce => Ok(Reply::empty(StatusCode::NO_CONTENT).no_store()),
            Resource::RenewalInfo(cert_id) => revoke::renewal_info(self, cert_id).await,
            _ => Err(Problem::malformed("use POST-as-GET")
                .with_status(405)
                .into()),
        }
    }

    async fn post(&self, resource: Resource, req: Request<Incoming>) -> Result<Reply, Refusal> {
        let signed = auth::authenticate(self, &resource, req).await?;
        match resource {
            Resource::NewAccount => account::new_account(self, &signed).await,
            Resource::Account(id) => account::update(self, &signed, &id).await,
            Resource::Orders(id) => account::orders(self, &signed, &id).await,
            Resource::KeyChange => account::key_change(self, &signed).await,
            Resource::NewOrder => order::new_order(self, &signed).await,
            Resource::Order(id) => order::read(self, &signed, &id).await,
            Resource::Finalize(id) => order::finalize(self, &signed, &id).await,
            Resource::Authorization(id) => authz::authorization(self, &signed, &id).await,
            Resource::Challenge { authz_id, index } => {
                authz::challenge(self, &signed, &authz_id, index).await
            }
            Resource::Certificate(id) => order::certificate(self, &signed, &id).await,
            Resource::RevokeCert => revoke::revoke(self, &signed).await,
            Resource::Directory | Resource::NewNonce | Resource::RenewalInfo(_) => {
                Err(Problem::malformed("this resource is fetched with GET").into())
            }
        }
    }

    async fn answer(&self, reply: Reply) -> Response<Body> {
        let nonce = self.records.mint_nonce(self.nonce_lifetime()).await;
        reply.into_response(nonce, Some(&self.urls.directory()))
    }

    async fn refuse(&self, refusal: Refusal) -> Response<Body> {
        reply::refuse(self.state, Some(self), refusal).await
    }

    fn nonce_lifetime(&self) -> i64 {
        self.state.config.acme.nonce_lifetime_secs
    }
}

/// Fills a buffer from the operating system's random source: the crate's `Rng`.
fn fill_random(buf: &mut [u8]) {
    aws_lc_rs::rand::fill(buf).expect("operating system random source failed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_route_and_resource() {
        let text = "[[routes]]\nlabel = \"\"\nprofile = \"device\"\n\
                    [[routes]]\nlabel = \"lab\"\nprofile = \"device\"\n";
        let config = Config::parse(text, std::path::Path::new("t.toml")).unwrap();
        assert_eq!(
            split_path(&config, "/acme/directory"),
            Some(("", "/directory"))
        );
        assert_eq!(
            split_path(&config, "/acme/lab/directory"),
            Some(("lab", "/directory"))
        );
        assert_eq!(
            split_path(&config, "/acme/lab/acct/x"),
            Some(("lab", "/acct/x"))
        );
        assert_eq!(split_path(&config, "/acme/other/x"), Some(("", "/other/x")));
        assert_eq!(split_path(&config, "/acme"), Some(("", "")));
        assert_eq!(split_path(&config, "/acmex/directory"), None);
        assert_eq!(split_path(&config, "/est"), None);
    }
}
