//! Revocation (RFC 8555 section 7.6), by the ordering account's key or by the certificate's
//! own key, and renewal information (RFC 9773).

use enrollgate_acme::ari::{self, CertId};
use enrollgate_acme::revocation::{RevocationRequest, authorize_revocation};
use enrollgate_acme::{Problem, ProblemType};
use hyper::StatusCode;

use super::Ctx;
use super::auth::Signed;
use super::reply::{Refusal, Reply};

/// revokeCert: authorizes, revokes at the registrar (backend, store, audit), records.
pub(crate) async fn revoke(ctx: &Ctx<'_>, signed: &Signed) -> Result<Reply, Refusal> {
    let request = RevocationRequest::parse(&signed.jws)?;
    let mut record = ctx
        .records
        .cert_by_fingerprint(&request.fingerprint())
        .await?
        .ok_or_else(|| Problem::malformed("certificate is not one this server issued"))?;
    let revocation = authorize_revocation(
        &signed.jws,
        &request,
        signed.account.as_ref(),
        &mut record,
        ctx.now,
    )?;
    let done = ctx
        .state
        .registrar
        .revoke(&revocation.serial, revocation.reason)
        .await
        .map_err(|r| Problem::from_reject(&r))?;
    ctx.records.put_cert(&record).await?;
    if !done {
        let why = "certificate is already revoked";
        return Err(Problem::new(ProblemType::AlreadyRevoked, why).into());
    }
    tracing::info!(serial = %revocation.serial, reason = revocation.reason, by = if signed.account.is_some() { "account" } else { "certificate key" }, "acme certificate revoked");
    Ok(Reply::empty(StatusCode::OK))
}

/// GET renewalInfo/<CertID>: the suggested window, with `Retry-After`. A certificate the
/// operator revoked outside ACME gets the revoked (renew now) window too.
pub(crate) async fn renewal_info(ctx: &Ctx<'_>, text: &str) -> Result<Reply, Refusal> {
    let cert_id = CertId::parse(text)?;
    let mut record = ctx
        .records
        .cert_by_ari(&cert_id.to_string())
        .await?
        .ok_or_else(|| Problem::malformed("no certificate with this CertID").with_status(404))?;
    if record.revoked.is_none() {
        let store = ctx.state.registrar.store();
        let gateway = store
            .certificate(&record.serial)
            .await
            .map_err(super::records::internal)?;
        if let Some((at, reason)) = gateway.and_then(|c| c.revoked) {
            record.revoked = Some(enrollgate_acme::cert::RevokedAt { reason, at });
        }
    }
    let info = ari::renewal_info(&record, ctx.now, None);
    Ok(Reply::json(StatusCode::OK, &info.to_json()).retry_after(info.retry_after))
}
