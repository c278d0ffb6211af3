//! Finalization (RFC 8555 section 7.4): from a ready order and a CSR to one
//! [`IssuanceRequest`], then the registrar's verdict back onto the order.
//!
//! [`finalize`] is the only way an order reaches `processing`, and it returns the request the
//! gateway hands to the registrar. The gateway stores the order (now `processing`, with the CSR)
//! before calling the registrar, then reports with [`order_issued`] or [`order_failed`]. A
//! registrar answer of `Pending` leaves the order `processing`; the client polls it, and the
//! gateway re-drives issuance with [`Order::issuance_request`] (same transaction id).

use enrollgate_model::{
    Credential, IssuanceRequest, Issued, KeySource, Operation, Protocol, Requester,
};
use enrollgate_pkix::{Csr, San};
use serde::Deserialize;

use crate::account::Account;
use crate::b64;
use crate::cert::CertRecord;
use crate::challenge::Authorization;
use crate::ids::{Rng, new_id};
use crate::jws::VerifiedJws;
use crate::order::{Order, OrderStatus};
use crate::problem::{Problem, ProblemType};
use crate::resources::{Identifier, Urls};

/// Seconds a client should wait before polling a `processing` order.
pub const PROCESSING_RETRY_AFTER: u32 = 3;

#[derive(Deserialize)]
struct FinalizePayload {
    csr: String,
}

/// Finalize `order` with the CSR in the request. `authzs` are the order's authorizations;
/// `route` is the route label for the issuance request. On success the order is `processing`.
pub fn finalize(
    order: &mut Order,
    account: &Account,
    jws: &VerifiedJws,
    authzs: &[Authorization],
    urls: &Urls,
    route: &str,
    now: i64,
) -> Result<IssuanceRequest, Problem> {
    account.check_signer(jws, urls)?;
    account.check_valid()?;
    order.check_owner(account)?;
    order.refresh(authzs, now);
    if order.status != OrderStatus::Ready {
        let why = format!("order is {:?}, not ready", order.status).to_lowercase();
        return Err(Problem::new(ProblemType::OrderNotReady, why));
    }
    let p: FinalizePayload = jws.payload_json()?;
    let der = b64::decode(&p.csr).map_err(|_| bad_csr("csr is not base64url"))?;
    check_csr(&der, &order.identifiers)?;

    order.csr = Some(p.csr);
    order.status = OrderStatus::Processing;
    order.issuance_request(account, route)
}

impl Order {
    /// The issuance request of a `processing` order, rebuilt from the stored CSR.
    pub fn issuance_request(
        &self,
        account: &Account,
        route: &str,
    ) -> Result<IssuanceRequest, Problem> {
        let csr = self.csr.as_deref().ok_or_else(Problem::internal)?;
        let der = b64::decode(csr).map_err(|_| Problem::internal())?;
        let credential = match &account.eab_kid {
            Some(kid) => Credential::TokenProven { id: kid.clone() },
            None => Credential::Anonymous,
        };
        let operation = if self.replaces.is_some() {
            Operation::Renew
        } else {
            Operation::Enroll
        };
        Ok(IssuanceRequest {
            protocol: Protocol::Acme,
            route: route.into(),
            operation,
            requester: Requester {
                credential,
                peer: None,
            },
            key: KeySource::Csr(der),
            transaction_id: Some(self.id.clone()),
        })
    }
}

/// The registrar issued: the order becomes `valid` and points at the returned record, which
/// the gateway stores (with its fingerprint and CertID indexes).
pub fn order_issued(
    order: &mut Order,
    issued: &Issued,
    rng: &mut Rng<'_>,
) -> Result<CertRecord, Problem> {
    if order.status != OrderStatus::Processing {
        return Err(Problem::internal());
    }
    let record = CertRecord::new(new_id(rng), order, &issued.certificate, &issued.chain)?;
    order.certificate = Some(record.id.clone());
    order.status = OrderStatus::Valid;
    Ok(record)
}

/// The registrar refused or failed: the order becomes `invalid` with `problem` (from
/// [`Problem::from_reject`]).
pub fn order_failed(order: &mut Order, problem: Problem) {
    order.fail(problem);
}

fn bad_csr(why: impl Into<String>) -> Problem {
    Problem::new(ProblemType::BadCsr, why)
}

/// Decodes the CSR, checks its signature, and compares its names to the order's identifiers:
/// the set of subjectAltNames plus the commonName must equal the identifier set exactly.
fn check_csr(der: &[u8], identifiers: &[Identifier]) -> Result<(), Problem> {
    let csr = Csr::from_der(der).map_err(|e| bad_csr(format!("CSR does not decode: {e}")))?;
    csr.verify_signature()
        .map_err(|_| bad_csr("CSR signature does not verify"))?;
    let sans = csr
        .subject_alt_names()
        .map_err(|e| bad_csr(format!("CSR names: {e}")))?;
    let mut names = Vec::with_capacity(sans.len() + 1);
    for san in sans {
        names.push(match san {
            San::Dns(d) => Identifier::dns(d),
            San::Ip(ip) => Identifier::ip(ip.to_string()),
            other => {
                return Err(bad_csr(format!(
                    "CSR requests {other}, which the order lacks"
                )));
            }
        });
    }
    if let Some(cn) = csr.common_name() {
        let id = if cn.parse::<std::net::IpAddr>().is_ok() {
            Identifier::ip(cn)
        } else {
            Identifier::dns(cn)
        };
        names.push(id);
    }
    let mut got: Vec<Identifier> = names
        .iter()
        .map(Identifier::normalized)
        .collect::<Result<_, _>>()
        .map_err(|p| bad_csr(p.detail))?;
    got.sort();
    got.dedup();
    if got != identifiers {
        return Err(bad_csr("CSR names differ from the order's identifiers"));
    }
    Ok(())
}
