//! The checks every POST passes (RFC 8555 section 6): media type, size, JWS shape and URL,
//! the single-use nonce, then the signature with the embedded key or the account's key.

use enrollgate_acme::account::Account;
use enrollgate_acme::jws::{Jws, MAX_JWS_BYTES, VerifiedJws};
use enrollgate_acme::router::Resource;
use enrollgate_acme::{Problem, ProblemType};
use http_body_util::{BodyExt, Limited};
use hyper::Request;
use hyper::body::Incoming;

use super::Ctx;
use super::reply::Refusal;

/// The media type of every ACME POST body.
const JOSE_JSON: &str = "application/jose+json";

/// A POST whose signature verified, with the account that signed it (for `kid` requests).
pub(crate) struct Signed {
    /// The verified request.
    pub(crate) jws: VerifiedJws,
    /// The signing account; `None` when the request carried its own `jwk`.
    pub(crate) account: Option<Account>,
}

impl Signed {
    /// The signing account, for resources that need one (the key rule already demands `kid`).
    pub(crate) fn account(&self) -> Result<&Account, Problem> {
        self.account
            .as_ref()
            .ok_or_else(|| Problem::malformed("this resource needs a kid"))
    }
}

/// Reads and checks one POST.
pub(crate) async fn authenticate(
    ctx: &Ctx<'_>,
    resource: &Resource,
    req: Request<Incoming>,
) -> Result<Signed, Refusal> {
    let media = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !media.starts_with(JOSE_JSON) {
        let why = format!("Content-Type must be {JOSE_JSON}");
        return Err(Problem::malformed(why).with_status(415).into());
    }
    let url = format!("{}{}", ctx.origin, req.uri().path());
    let body = read_body(ctx, req.into_body()).await?;
    let rule = resource
        .key_rule()
        .ok_or_else(|| Problem::malformed("this resource is fetched with GET"))?;
    let jws = Jws::parse(&body, &url, rule)?;

    let nonce = jws.nonce().unwrap_or_default();
    if !ctx.records.take_nonce(nonce).await? {
        let why = "nonce is unknown, already used or expired";
        return Err(Problem::new(ProblemType::BadNonce, why).into());
    }

    let Some(kid) = jws.kid() else {
        let jws = jws.verify_embedded()?;
        return Ok(Signed { jws, account: None });
    };
    let missing = || Problem::new(ProblemType::AccountDoesNotExist, "no such account");
    let id = ctx.urls.account_id_from_kid(kid).ok_or_else(missing)?;
    let account = ctx.records.account(id).await?.ok_or_else(missing)?;
    account.check_valid()?;
    let jws = jws.verify(&account.jwk)?;
    Ok(Signed {
        jws,
        account: Some(account),
    })
}

/// Reads the body up to the JWS limit (and never past the gateway's own limit).
async fn read_body(ctx: &Ctx<'_>, body: Incoming) -> Result<bytes::Bytes, Problem> {
    let limit = MAX_JWS_BYTES.min(ctx.state.config.limits.max_body_bytes);
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(Problem::malformed("request body too large").with_status(413))
        }
        Err(_) => Err(Problem::malformed("could not read the request body")),
    }
}
