//! Orders (RFC 8555 section 7.4): newOrder with the identifier policy, rate limits, profiles
//! and ARI `replaces`; reading an order; finalize; certificate download.

use enrollgate_acme::Problem;
use enrollgate_acme::ari::CertId;
use enrollgate_acme::cert::{CertRecord, PEM_CHAIN_CONTENT_TYPE};
use enrollgate_acme::finalize::{self, PROCESSING_RETRY_AFTER};
use enrollgate_acme::order::{self, NewOrderContext, Order, OrderSettings, OrderStatus};
use hyper::StatusCode;
use serde_json::Value;

use super::auth::Signed;
use super::reply::{Refusal, Reply};
use super::{Ctx, issue, limits};

/// newOrder.
pub(crate) async fn new_order(ctx: &Ctx<'_>, signed: &Signed) -> Result<Reply, Refusal> {
    let account = signed.account()?;
    let payload: Value = signed.jws.payload_json()?;
    let profile = payload.get("profile").and_then(Value::as_str);
    let route = limits::issuing_route(ctx, profile);
    let policy = limits::identifier_policy(&ctx.state.config, &route);
    let replaced = replaced_cert(ctx, &payload).await?;
    let settings = settings(ctx);
    let made = {
        let order_ctx = NewOrderContext {
            urls: &ctx.urls,
            meta: &ctx.meta,
            settings: &settings,
            policy: &policy,
        };
        let replaced = move |_: &CertId| replaced;
        let rng = &mut super::fill_random;
        order::new_order(&signed.jws, account, &order_ctx, replaced, rng, ctx.now)?
    };
    limits::check_rates(ctx, account, &made.order.identifiers).await?;

    for a in &made.authorizations {
        ctx.records.put_authz(a).await?;
    }
    if let Some(cert) = &made.replaced {
        ctx.records.put_cert(cert).await?;
    }
    ctx.records.put_order(&made.order).await?;
    ctx.records.list_order(&account.id, &made.order.id).await?;
    limits::count_order(ctx, account, &made.order.identifiers).await?;
    tracing::debug!(order = %made.order.id, account = %account.id, route = %ctx.label, "acme order created");
    Ok(
        Reply::json(StatusCode::CREATED, &made.order.to_json(&ctx.urls))
            .location(ctx.urls.order(&made.order.id)),
    )
}

/// POST-as-GET of an order: its status derived from its authorizations; a `processing`
/// order is driven again (the registrar answers a retried transaction from the store).
pub(crate) async fn read(ctx: &Ctx<'_>, signed: &Signed, id: &str) -> Result<Reply, Refusal> {
    let account = signed.account()?;
    signed.jws.expect_post_as_get()?;
    let mut order = load(ctx, id).await?;
    order.check_owner(account)?;
    if order.status == OrderStatus::Processing {
        let route = limits::issuing_route(ctx, order.profile.as_deref());
        issue::drive(ctx, &mut order, account, &route).await?;
    } else {
        let authzs = ctx.records.authzs_of(&order).await?;
        order.refresh(&authzs, ctx.now);
    }
    Ok(order_reply(ctx, &order, StatusCode::OK))
}

/// finalize: checks the CSR against the order, then hands the request to the registrar.
pub(crate) async fn finalize(ctx: &Ctx<'_>, signed: &Signed, id: &str) -> Result<Reply, Refusal> {
    let account = signed.account()?;
    let mut order = load(ctx, id).await?;
    let authzs = ctx.records.authzs_of(&order).await?;
    let route = limits::issuing_route(ctx, order.profile.as_deref());
    finalize::finalize(
        &mut order,
        account,
        &signed.jws,
        &authzs,
        &ctx.urls,
        &route,
        ctx.now,
    )?;
    ctx.records.put_order(&order).await?;
    issue::drive(ctx, &mut order, account, &route).await?;
    Ok(order_reply(ctx, &order, StatusCode::OK))
}

/// Certificate download (RFC 8555 section 7.4.2): the PEM chain, leaf first.
pub(crate) async fn certificate(
    ctx: &Ctx<'_>,
    signed: &Signed,
    id: &str,
) -> Result<Reply, Refusal> {
    let account = signed.account()?;
    signed.jws.expect_post_as_get()?;
    let record: CertRecord = ctx
        .records
        .cert(id)
        .await?
        .ok_or_else(|| Problem::malformed("no such certificate").with_status(404))?;
    record.check_owner(&account.id)?;
    Ok(Reply::bytes(
        record.chain_pem.into_bytes(),
        PEM_CHAIN_CONTENT_TYPE,
    ))
}

fn order_reply(ctx: &Ctx<'_>, order: &Order, status: StatusCode) -> Reply {
    let reply = Reply::json(status, &order.to_json(&ctx.urls)).location(ctx.urls.order(&order.id));
    if order.status == OrderStatus::Processing {
        reply.retry_after(PROCESSING_RETRY_AFTER)
    } else {
        reply
    }
}

async fn load(ctx: &Ctx<'_>, id: &str) -> Result<Order, Problem> {
    ctx.records
        .order(id)
        .await?
        .ok_or_else(|| Problem::malformed("no such order").with_status(404))
}

/// The record `replaces` names, looked up before the crate checks it.
async fn replaced_cert(ctx: &Ctx<'_>, payload: &Value) -> Result<Option<CertRecord>, Problem> {
    let Some(text) = payload.get("replaces").and_then(Value::as_str) else {
        return Ok(None);
    };
    match CertId::parse(text) {
        Ok(id) => ctx.records.cert_by_ari(&id.to_string()).await,
        // The crate refuses the malformed CertID itself.
        Err(_) => Ok(None),
    }
}

fn settings(ctx: &Ctx<'_>) -> OrderSettings {
    let acme = &ctx.state.config.acme;
    OrderSettings {
        order_lifetime: acme.order_lifetime_secs,
        authz_lifetime: acme.authz_lifetime_secs,
        ..OrderSettings::default()
    }
}
