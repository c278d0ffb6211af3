//! What a route lets an account order: the identifier policy (the route profile's SAN rules,
//! checked before any validation work) and the per-account and per-identifier rate limits.

use enrollgate_acme::account::Account;
use enrollgate_acme::resources::{Identifier, IdentifierType};
use enrollgate_acme::{Problem, ProblemType};

use super::Ctx;
use super::reply::Refusal;
use crate::config::{Config, Profile};
use crate::issuance::glob;

/// The route that issues for an order: the one its ACME profile names, else the request's.
pub(crate) fn issuing_route(ctx: &Ctx<'_>, profile: Option<&str>) -> String {
    profile
        .and_then(|p| ctx.settings.profiles.get(p))
        .map_or_else(|| ctx.label.clone(), |p| p.route.clone())
}

/// The identifier policy of `route`: DNS names must match one of its profile's `san_dns`
/// globs, IP addresses need `san_ip`.
pub(crate) fn identifier_policy(
    config: &Config,
    route: &str,
) -> impl Fn(&Account, &Identifier) -> Result<(), Problem> + use<> {
    let profile: Option<Profile> = config
        .route(route)
        .and_then(|r| config.profiles.get(&r.profile))
        .cloned();
    move |_: &Account, id: &Identifier| {
        let allowed = profile.as_ref().is_some_and(|p| match id.kind {
            IdentifierType::Dns => p.san_dns.iter().any(|g| glob(g, &id.value)),
            IdentifierType::Ip => p.san_ip,
        });
        if allowed {
            Ok(())
        } else {
            let why = format!("this route does not issue for {}", id.value);
            Err(Problem::new(ProblemType::RejectedIdentifier, why))
        }
    }
}

/// Refuses with `rateLimited` and `Retry-After` when the account or any identifier has used
/// up its new orders for the current window.
pub(crate) async fn check_rates(
    ctx: &Ctx<'_>,
    account: &Account,
    identifiers: &[Identifier],
) -> Result<(), Refusal> {
    let limits = &ctx.state.config.acme.rate_limits;
    let window = limits.window_secs;
    let (used, end) = ctx.records.counter(&account_key(account), window).await?;
    if used >= limits.orders_per_account {
        let why = format!(
            "this account may place {} orders per window",
            limits.orders_per_account
        );
        return Err(limited(ctx, why, end));
    }
    for id in identifiers {
        let (used, end) = ctx.records.counter(&identifier_key(id), window).await?;
        if used >= limits.orders_per_identifier {
            let why = format!("too many recent orders for {}", id.value);
            return Err(limited(ctx, why, end));
        }
    }
    Ok(())
}

/// Counts a new order against the account and each identifier.
pub(crate) async fn count_order(
    ctx: &Ctx<'_>,
    account: &Account,
    identifiers: &[Identifier],
) -> Result<(), Problem> {
    let window = ctx.state.config.acme.rate_limits.window_secs;
    ctx.records.bump(&account_key(account), window).await?;
    for id in identifiers {
        ctx.records.bump(&identifier_key(id), window).await?;
    }
    Ok(())
}

fn limited(ctx: &Ctx<'_>, why: String, window_end: i64) -> Refusal {
    let wait = u32::try_from((window_end - ctx.now).max(1)).unwrap_or(u32::MAX);
    Refusal::from(Problem::new(ProblemType::RateLimited, why)).retry_after(wait)
}

fn account_key(account: &Account) -> String {
    format!("acct:{}", account.id)
}

fn identifier_key(id: &Identifier) -> String {
    let kind = match id.kind {
        IdentifierType::Dns => "dns",
        IdentifierType::Ip => "ip",
    };
    format!("{kind}:{}", id.value)
}
