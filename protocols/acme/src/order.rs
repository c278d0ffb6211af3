//! Orders (RFC 8555 sections 7.1.3, 7.4): creation with the identifier policy, profiles and
//! ARI `replaces`, and the status the order takes from its authorizations.
//!
//! States: `pending` (authorizations outstanding) -> `ready` (all valid) -> `processing`
//! (finalized, waiting for the registrar) -> `valid` (certificate issued); any step may go to
//! `invalid`. `ready` and `pending` are derived with [`Order::refresh`] from the
//! authorizations; `processing`, `valid` and `invalid` are reached only through the transitions
//! in [`crate::finalize`].

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::account::Account;
use crate::ari::{CertId, check_replaces};
use crate::cert::CertRecord;
use crate::challenge::{Authorization, AuthzStatus, ChallengeType};
use crate::ids::{Rng, new_id};
use crate::jws::VerifiedJws;
use crate::problem::{Problem, ProblemType, Subproblem};
use crate::resources::{DirectoryMeta, Identifier, IdentifierType, Urls, parse_rfc3339, rfc3339};

/// The status of an order (RFC 8555 section 7.1.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Authorizations outstanding.
    Pending,
    /// All authorizations valid; finalize may be called.
    Ready,
    /// Finalized; the certificate is being issued.
    Processing,
    /// Issued.
    Valid,
    /// Failed or expired.
    Invalid,
}

/// An order record, stored by the gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Random id; also the issuance transaction id.
    pub id: String,
    /// The account that placed it.
    pub account_id: String,
    /// Status.
    pub status: OrderStatus,
    /// Expiry of a not yet valid order, unix seconds.
    pub expires: i64,
    /// The identifiers, normalised, sorted and distinct.
    pub identifiers: Vec<Identifier>,
    /// The requested profile (profiles draft), if any.
    pub profile: Option<String>,
    /// Requested notBefore, unix seconds.
    pub not_before: Option<i64>,
    /// Requested notAfter, unix seconds.
    pub not_after: Option<i64>,
    /// Authorization ids, in identifier order.
    pub authorizations: Vec<String>,
    /// The issued certificate's record id.
    pub certificate: Option<String>,
    /// The CertID text of the certificate this order replaces (RFC 9773).
    pub replaces: Option<String>,
    /// Why the order became invalid.
    pub error: Option<Problem>,
    /// The finalize CSR, base64url DER, kept so issuance can be re-driven after a restart.
    pub csr: Option<String>,
}

/// Limits and offers for new orders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderSettings {
    /// Seconds an order stays usable.
    pub order_lifetime: i64,
    /// Seconds an authorization stays usable.
    pub authz_lifetime: i64,
    /// The most identifiers in one order.
    pub max_identifiers: usize,
    /// The challenge types offered, in the order listed to clients.
    pub challenge_types: Vec<ChallengeType>,
    /// Whether requested notBefore/notAfter are accepted (else `malformed`).
    pub allow_validity_request: bool,
}

impl Default for OrderSettings {
    fn default() -> Self {
        Self {
            order_lifetime: 7 * 86400,
            authz_lifetime: 7 * 86400,
            max_identifiers: 100,
            challenge_types: vec![
                ChallengeType::Http01,
                ChallengeType::Dns01,
                ChallengeType::TlsAlpn01,
            ],
            allow_validity_request: false,
        }
    }
}

/// Decides, before any validation work, whether an identifier may be ordered.
pub trait IdentifierPolicy {
    /// `Ok` to accept; otherwise a problem, normally `rejectedIdentifier` or
    /// `unsupportedIdentifier`, that becomes the identifier's subproblem.
    fn check(&self, account: &Account, identifier: &Identifier) -> Result<(), Problem>;
}

impl<F: Fn(&Account, &Identifier) -> Result<(), Problem>> IdentifierPolicy for F {
    fn check(&self, account: &Account, identifier: &Identifier) -> Result<(), Problem> {
        self(account, identifier)
    }
}

/// A policy that accepts every syntactically valid identifier.
#[derive(Clone, Copy, Debug, Default)]
pub struct AcceptAll;

impl IdentifierPolicy for AcceptAll {
    fn check(&self, _: &Account, _: &Identifier) -> Result<(), Problem> {
        Ok(())
    }
}

/// What newOrder made: store all of it in one transaction, then answer 201 with
/// `Location: Urls::order(order.id)` and `order.to_json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOrder {
    /// The order.
    pub order: Order,
    /// Its new authorizations.
    pub authorizations: Vec<Authorization>,
    /// The certificate named by `replaces`, now marked as replaced by this order.
    pub replaced: Option<CertRecord>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewOrderPayload {
    identifiers: Vec<RawIdentifier>,
    not_before: Option<String>,
    not_after: Option<String>,
    profile: Option<String>,
    replaces: Option<String>,
}

/// An identifier as sent, before its type is known to be supported.
#[derive(Deserialize)]
struct RawIdentifier {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

impl RawIdentifier {
    /// The typed identifier, or an `unsupportedIdentifier` subproblem.
    fn typed(&self) -> Result<Identifier, Subproblem> {
        let kind = match self.kind.as_str() {
            "dns" => IdentifierType::Dns,
            "ip" => IdentifierType::Ip,
            other => {
                return Err(Subproblem {
                    kind: ProblemType::UnsupportedIdentifier,
                    detail: format!("identifier type {other:?} is not supported"),
                    identifier: Identifier::dns(self.value.clone()),
                });
            }
        };
        Ok(Identifier {
            kind,
            value: self.value.clone(),
        })
    }
}

/// The inputs of newOrder besides the request.
pub struct NewOrderContext<'a> {
    /// The URL layout.
    pub urls: &'a Urls,
    /// The directory meta (its `profiles` are the ones accepted).
    pub meta: &'a DirectoryMeta,
    /// Limits and challenge offers.
    pub settings: &'a OrderSettings,
    /// The identifier policy.
    pub policy: &'a dyn IdentifierPolicy,
}

/// newOrder (RFC 8555 section 7.4). `replaced_cert` looks up a certificate record by the
/// CertID of `replaces`.
pub fn new_order(
    jws: &VerifiedJws,
    account: &Account,
    ctx: &NewOrderContext<'_>,
    replaced_cert: impl FnOnce(&CertId) -> Option<CertRecord>,
    rng: &mut Rng<'_>,
    now: i64,
) -> Result<NewOrder, Problem> {
    account.check_signer(jws, ctx.urls)?;
    account.check_valid()?;
    let p: NewOrderPayload = jws.payload_json()?;
    let identifiers = check_identifiers(&p.identifiers, account, ctx)?;
    check_profile(p.profile.as_deref(), ctx.meta)?;
    let (not_before, not_after) = validity_request(&p, ctx.settings)?;

    let order_id = new_id(rng);
    let replaced = match &p.replaces {
        Some(text) => {
            let cert_id = CertId::parse(text)?;
            Some(check_replaces(
                replaced_cert(&cert_id),
                &account.id,
                &order_id,
                &identifiers,
            )?)
        }
        None => None,
    };
    let expires = now + ctx.settings.order_lifetime;
    let authz_expires = (now + ctx.settings.authz_lifetime).min(expires);
    let authorizations: Vec<Authorization> = identifiers
        .iter()
        .map(|id| {
            Authorization::new(
                id,
                &ctx.settings.challenge_types,
                (&order_id, &account.id),
                authz_expires,
                rng,
            )
        })
        .collect();
    let order = Order {
        id: order_id,
        account_id: account.id.clone(),
        status: OrderStatus::Pending,
        expires,
        identifiers,
        profile: p.profile,
        not_before,
        not_after,
        authorizations: authorizations.iter().map(|a| a.id.clone()).collect(),
        certificate: None,
        replaces: p.replaces,
        error: None,
        csr: None,
    };
    Ok(NewOrder {
        order,
        authorizations,
        replaced,
    })
}

impl Order {
    /// Fails with `unauthorized` unless `account` placed this order.
    pub fn check_owner(&self, account: &Account) -> Result<(), Problem> {
        if self.account_id == account.id {
            Ok(())
        } else {
            Err(Problem::unauthorized("order belongs to another account"))
        }
    }

    /// Recomputes a pending or ready order's status from its authorizations (all of them, in
    /// any order) and the time: expired or any failed authorization gives `invalid`, all
    /// valid gives `ready`. Call before answering for the order and before finalizing.
    pub fn refresh(&mut self, authzs: &[Authorization], now: i64) {
        if !matches!(self.status, OrderStatus::Pending | OrderStatus::Ready) {
            return;
        }
        if now >= self.expires {
            self.fail(Problem::malformed("order expired"));
            return;
        }
        let status_of = |id: &String| {
            authzs.iter().find(|a| &a.id == id).map(|a| {
                let mut a = a.clone();
                a.refresh(now);
                a.status
            })
        };
        let statuses: Vec<Option<AuthzStatus>> =
            self.authorizations.iter().map(status_of).collect();
        if statuses
            .iter()
            .any(|s| !matches!(s, Some(AuthzStatus::Pending | AuthzStatus::Valid)))
        {
            self.fail(Problem::unauthorized(
                "an authorization failed, expired or was deactivated",
            ));
        } else if statuses.iter().all(|s| *s == Some(AuthzStatus::Valid)) {
            self.status = OrderStatus::Ready;
        } else {
            self.status = OrderStatus::Pending;
        }
    }

    /// Moves the order to `invalid` with `error`. When it had `replaces`, the gateway calls
    /// [`CertRecord::release_replacement`] on that certificate.
    pub fn fail(&mut self, error: Problem) {
        self.status = OrderStatus::Invalid;
        self.error = Some(error);
    }

    /// The order object (RFC 8555 section 7.1.3).
    pub fn to_json(&self, urls: &Urls) -> Value {
        let authz: Vec<String> = self
            .authorizations
            .iter()
            .map(|id| urls.authz(id))
            .collect();
        let mut m = Map::new();
        m.insert("status".into(), json!(self.status));
        m.insert("expires".into(), rfc3339(self.expires).into());
        m.insert("identifiers".into(), json!(self.identifiers));
        m.insert("authorizations".into(), json!(authz));
        m.insert("finalize".into(), urls.finalize(&self.id).into());
        let optional = [
            ("notBefore", self.not_before.map(|t| rfc3339(t).into())),
            ("notAfter", self.not_after.map(|t| rfc3339(t).into())),
            ("profile", self.profile.clone().map(Value::from)),
            ("replaces", self.replaces.clone().map(Value::from)),
            (
                "certificate",
                self.certificate
                    .as_ref()
                    .map(|c| urls.certificate(c).into()),
            ),
            ("error", self.error.as_ref().map(Problem::to_json)),
        ];
        for (k, v) in optional {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        }
        Value::Object(m)
    }
}

/// Normalises the identifiers and runs the policy on each; failures are collected as
/// subproblems so the client learns about all of them at once.
fn check_identifiers(
    ids: &[RawIdentifier],
    account: &Account,
    ctx: &NewOrderContext<'_>,
) -> Result<Vec<Identifier>, Problem> {
    if ids.is_empty() {
        return Err(Problem::malformed("an order needs at least one identifier"));
    }
    if ids.len() > ctx.settings.max_identifiers {
        let why = format!(
            "at most {} identifiers per order",
            ctx.settings.max_identifiers
        );
        return Err(Problem::new(ProblemType::RejectedIdentifier, why));
    }
    let mut accepted = BTreeSet::new();
    let mut subproblems = Vec::new();
    for raw in ids {
        match check_one(raw, account, ctx) {
            Ok(n) => {
                accepted.insert(n);
            }
            Err(sub) => subproblems.push(sub),
        }
    }
    if !subproblems.is_empty() {
        return Err(Problem::with_subproblems(
            "some identifiers were refused",
            subproblems,
        ));
    }
    Ok(accepted.into_iter().collect())
}

fn check_one(
    raw: &RawIdentifier,
    account: &Account,
    ctx: &NewOrderContext<'_>,
) -> Result<Identifier, Subproblem> {
    let id = raw.typed()?;
    let checked = id
        .normalized()
        .and_then(|n| ctx.policy.check(account, &n).map(|()| n));
    checked.map_err(|p| Subproblem {
        kind: p.kind,
        detail: p.detail,
        identifier: id,
    })
}

fn check_profile(profile: Option<&str>, meta: &DirectoryMeta) -> Result<(), Problem> {
    match profile {
        Some(name) if !meta.profiles.contains_key(name) => {
            let why = format!("profile {name:?} is not offered by this server");
            Err(Problem::new(ProblemType::InvalidProfile, why))
        }
        _ => Ok(()),
    }
}

fn validity_request(
    p: &NewOrderPayload,
    s: &OrderSettings,
) -> Result<(Option<i64>, Option<i64>), Problem> {
    if (p.not_before.is_some() || p.not_after.is_some()) && !s.allow_validity_request {
        return Err(Problem::malformed(
            "notBefore and notAfter are not supported",
        ));
    }
    let nb = p.not_before.as_deref().map(parse_rfc3339).transpose()?;
    let na = p.not_after.as_deref().map(parse_rfc3339).transpose()?;
    if let (Some(nb), Some(na)) = (nb, na) {
        if nb >= na {
            return Err(Problem::malformed("notBefore must precede notAfter"));
        }
    }
    Ok((nb, na))
}

#[cfg(test)]
#[path = "order_tests.rs"]
mod tests;
