//! Authorizations and challenges (RFC 8555 sections 7.5, 8): reading and deactivating an
//! authorization, and a challenge response, which starts validation in a spawned task.

use std::sync::Arc;

use enrollgate_acme::Problem;
use enrollgate_acme::challenge::{Authorization, ValidationTask};
use hyper::StatusCode;

use super::Ctx;
use super::auth::Signed;
use super::records::Records;
use super::reply::{Refusal, Reply};
use super::validate::Target;
use crate::config::AcmeValidation;
use crate::server::AppState;

/// POST to an authorization: POST-as-GET, or `{"status":"deactivated"}`.
pub(crate) async fn authorization(
    ctx: &Ctx<'_>,
    signed: &Signed,
    id: &str,
) -> Result<Reply, Refusal> {
    let account = signed.account()?;
    let mut authz = load(ctx, id).await?;
    authz.check_owner(account)?;
    authz.update(signed.jws.payload(), ctx.now)?;
    if !signed.jws.is_post_as_get() {
        ctx.records.put_authz(&authz).await?;
    }
    Ok(Reply::json(StatusCode::OK, &authz.to_json(&ctx.urls)))
}

/// POST to a challenge: POST-as-GET reads it; any JSON object (normally `{}`) asks for
/// validation, which runs off the request path.
pub(crate) async fn challenge(
    ctx: &Ctx<'_>,
    signed: &Signed,
    authz_id: &str,
    index: usize,
) -> Result<Reply, Refusal> {
    let account = signed.account()?;
    let mut authz = load(ctx, authz_id).await?;
    authz.check_owner(account)?;
    if !signed.jws.is_post_as_get() {
        let _: serde_json::Map<String, serde_json::Value> = signed.jws.payload_json()?;
        if let Some(task) = authz.respond(index, account, ctx.now)? {
            start_validation(ctx, &mut authz, task).await?;
        }
    }
    let body = authz
        .challenge_json(index, &ctx.urls)
        .ok_or_else(|| Problem::malformed("no such challenge").with_status(404))?;
    Ok(Reply::json(StatusCode::OK, &body).link(&ctx.urls.authz(&authz.id), "up"))
}

/// Stores the `processing` challenge and starts its validation; a benchmark route decides
/// at once.
async fn start_validation(
    ctx: &Ctx<'_>,
    authz: &mut Authorization,
    task: ValidationTask,
) -> Result<(), Problem> {
    if ctx.settings.validation == AcmeValidation::AlwaysPass {
        authz.challenge_validated(task.index, Ok(()), ctx.now)?;
        return ctx.records.put_authz(authz).await;
    }
    ctx.records.put_authz(authz).await?;
    let target = Target {
        http01_port: ctx.settings.http01_port,
        tls_alpn01_port: ctx.settings.tls_alpn01_port,
        resolve_to: ctx.settings.resolve_to,
    };
    tokio::spawn(validate_and_record(ctx.state.clone(), task, target));
    Ok(())
}

/// The spawned part: validate, then write the verdict into the authorization.
async fn validate_and_record(state: Arc<AppState>, task: ValidationTask, target: Target) {
    let result = state.acme.validator.validate(&task, &target).await;
    match &result {
        Ok(()) => tracing::info!(
            authz = %task.authz_id, kind = ?task.kind, identifier = %task.identifier.value,
            "acme challenge valid"
        ),
        Err(p) => {
            state
                .metrics
                .bad_input
                .with_label_values(&["acme", p.kind.name()])
                .inc();
            tracing::debug!(
                authz = %task.authz_id, kind = ?task.kind, identifier = %task.identifier.value,
                problem = p.kind.name(), detail = %p.detail, "acme challenge failed"
            );
        }
    }
    let now = crate::clock::now();
    let records = Records::new(state.registrar.store().as_ref(), now);
    let recorded = match records.authz(&task.authz_id).await {
        Ok(Some(mut authz)) => match authz.challenge_validated(task.index, result, now) {
            Ok(()) => records.put_authz(&authz).await,
            Err(p) => Err(p),
        },
        Ok(None) => Ok(()),
        Err(p) => Err(p),
    };
    if recorded.is_err() {
        tracing::warn!(authz = %task.authz_id, "acme: could not record a challenge verdict");
    }
}

async fn load(ctx: &Ctx<'_>, id: &str) -> Result<Authorization, Problem> {
    ctx.records
        .authz(id)
        .await?
        .ok_or_else(|| Problem::malformed("no such authorization").with_status(404))
}
