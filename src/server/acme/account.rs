//! Accounts (RFC 8555 section 7.3): newAccount with external account binding backed by
//! enrollment tokens, updates and deactivation, the orders list, and key rollover.

use enrollgate_acme::Problem;
use enrollgate_acme::account::{self, Account, NewAccountOutcome, orders_list_json};
use enrollgate_acme::eab::decode_eab_key;
use enrollgate_model::Secret;
use hyper::StatusCode;

use super::Ctx;
use super::auth::Signed;
use super::reply::{Refusal, Reply};

/// newAccount: returns the existing account for a known key, or creates one.
pub(crate) async fn new_account(ctx: &Ctx<'_>, signed: &Signed) -> Result<Reply, Refusal> {
    let key = signed.jws.key();
    let existing = ctx.records.account_by_thumbprint(&key.thumbprint()).await?;
    let tokens = &ctx.state.tokens;
    let eab_key = |kid: &str| eab_key(&tokens.secret_for(kid));
    let outcome = account::new_account(
        &signed.jws,
        existing,
        &ctx.meta,
        &ctx.urls,
        eab_key,
        &mut super::fill_random,
        ctx.now,
    )?;
    let (account, status) = match outcome {
        NewAccountOutcome::Existing(a) => (a, StatusCode::OK),
        NewAccountOutcome::Created(a) => {
            if let Some(kid) = &a.eab_kid {
                check_token(ctx, kid).await?;
            }
            ctx.records.put_account(&a).await?;
            tracing::info!(route = %ctx.label, account = %a.id, eab = ?a.eab_kid, "acme account created");
            (a, StatusCode::CREATED)
        }
    };
    Ok(Reply::json(status, &account.to_json(&ctx.urls)).location(ctx.urls.account(&account.id)))
}

/// POST to the account URL: read, update contacts, agree, or deactivate.
pub(crate) async fn update(ctx: &Ctx<'_>, signed: &Signed, id: &str) -> Result<Reply, Refusal> {
    let mut account = own_account(signed, id)?;
    let before = account.clone();
    account.update(&signed.jws, &ctx.urls)?;
    if account != before {
        ctx.records.put_account(&account).await?;
        tracing::info!(account = %account.id, status = ?account.status, "acme account updated");
    }
    Ok(Reply::json(StatusCode::OK, &account.to_json(&ctx.urls)))
}

/// The account's orders list (POST-as-GET).
pub(crate) async fn orders(ctx: &Ctx<'_>, signed: &Signed, id: &str) -> Result<Reply, Refusal> {
    let account = own_account(signed, id)?;
    signed.jws.expect_post_as_get()?;
    let ids = ctx.records.orders_of(&account.id).await?;
    Ok(Reply::json(
        StatusCode::OK,
        &orders_list_json(&ctx.urls, &ids),
    ))
}

/// keyChange: installs the new key unless another account holds it (409 with its URL).
pub(crate) async fn key_change(ctx: &Ctx<'_>, signed: &Signed) -> Result<Reply, Refusal> {
    let mut account = signed.account()?.clone();
    let new_key = account.key_change(&signed.jws, &ctx.urls)?;
    if let Some(other) = ctx
        .records
        .account_by_thumbprint(&new_key.thumbprint)
        .await?
    {
        let p = Problem::malformed("another account already uses the new key").with_status(409);
        return Err(Refusal::from(p).location(ctx.urls.account(&other.id)));
    }
    let old = account.thumbprint.clone();
    account.apply_key_change(new_key);
    ctx.records.put_account(&account).await?;
    ctx.records.drop_thumbprint(&old).await?;
    tracing::info!(account = %account.id, "acme account key changed");
    Ok(Reply::json(StatusCode::OK, &account.to_json(&ctx.urls)))
}

/// The signing account, which must be the one the URL names.
fn own_account(signed: &Signed, id: &str) -> Result<Account, Problem> {
    let account = signed.account()?;
    if account.id != id {
        return Err(Problem::unauthorized("request not signed by this account"));
    }
    Ok(account.clone())
}

/// The EAB MAC key of a token: its secret text, base64url-decoded as clients decode it.
fn eab_key(secret: &Secret) -> Option<Secret> {
    let text = std::str::from_utf8(secret.expose()).ok()?;
    decode_eab_key(text).ok()
}

/// The EAB key id must be a token of this route that is unexpired and has uses left; the
/// registrar checks it again at each issuance.
async fn check_token(ctx: &Ctx<'_>, kid: &str) -> Result<(), Problem> {
    let store = ctx.state.registrar.store();
    let token = store.token(kid).await.map_err(super::records::internal)?;
    let usable = token.is_some_and(|t| {
        t.route == ctx.label && t.expires_at > ctx.now && t.uses_left.is_none_or(|n| n > 0)
    });
    if usable {
        Ok(())
    } else {
        Err(Problem::unauthorized(
            "the EAB key id is not a usable enrollment token of this route",
        ))
    }
}
