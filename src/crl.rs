//! The built-in CA's certificate revocation list, built from the store on demand.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::ca::x509::{self, Revoked};
use crate::server::AppState;

/// Signs a fresh CRL listing every revoked, unexpired certificate.
pub async fn current(state: &AppState) -> anyhow::Result<Vec<u8>> {
    let store = state.registrar.store();
    let now = SystemTime::now();
    let revoked = store
        .revoked_certificates(crate::clock::now())
        .await?
        .into_iter()
        .filter_map(|c| {
            let (at, reason) = c.revoked?;
            let serial = hex::decode(&c.serial).ok()?;
            let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(at).ok()?);
            Some(Revoked { serial, at, reason })
        })
        .collect::<Vec<_>>();
    let number = u64::try_from(store.next_counter("crl").await?).unwrap_or(0);
    let hours = u64::from(state.config.ca.crl_validity_hours);
    let next = now + Duration::from_secs(hours * 3600);
    Ok(x509::sign_crl(
        &state.ca.issuing.issuer(),
        now,
        next,
        number,
        &revoked,
    )?)
}
