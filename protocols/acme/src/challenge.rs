//! Authorizations and challenges (RFC 8555 sections 7.1.4, 7.5, 8), their state machine, and
//! the pure pieces of validation: key authorizations and what each challenge type expects.
//!
//! The gateway stores an [`Authorization`] as one row keyed by its id, with its challenges
//! inside. When a client responds to a challenge, [`Authorization::respond`] moves it to
//! `processing` and hands back a [`ValidationTask`]; the gateway runs it off the request path
//! (HTTP fetch, DNS query, TLS handshake), checks what it got with the helpers of
//! [`crate::validation`], and reports with [`Authorization::challenge_validated`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::account::Account;
use crate::ids::{Rng, new_id};
use crate::problem::Problem;
use crate::resources::{Identifier, IdentifierType, Urls, rfc3339};
use crate::validation::key_authorization;

/// A challenge type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChallengeType {
    /// RFC 8555 section 8.3.
    #[serde(rename = "http-01")]
    Http01,
    /// RFC 8555 section 8.4.
    #[serde(rename = "dns-01")]
    Dns01,
    /// RFC 8737.
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

impl ChallengeType {
    /// Whether this type can prove control of `id` (wildcards need dns-01; IP addresses
    /// cannot use dns-01, RFC 8738 section 7).
    pub fn fits(self, id: &Identifier, wildcard: bool) -> bool {
        match (self, id.kind) {
            (Self::Dns01, IdentifierType::Dns) => true,
            (_, IdentifierType::Dns) => !wildcard,
            (Self::Dns01, IdentifierType::Ip) => false,
            (_, IdentifierType::Ip) => true,
        }
    }
}

/// The status of a challenge (RFC 8555 section 7.1.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChallengeStatus {
    /// Waiting for the client's response.
    Pending,
    /// The client responded; validation runs.
    Processing,
    /// Validation succeeded.
    Valid,
    /// Validation failed.
    Invalid,
}

/// The status of an authorization (RFC 8555 section 7.1.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthzStatus {
    /// No challenge has succeeded yet.
    Pending,
    /// A challenge succeeded.
    Valid,
    /// A challenge failed.
    Invalid,
    /// Deactivated by the client.
    Deactivated,
    /// Passed its expiry.
    Expired,
    /// Revoked by the server.
    Revoked,
}

/// One challenge inside an authorization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// The type.
    #[serde(rename = "type")]
    pub kind: ChallengeType,
    /// The status.
    pub status: ChallengeStatus,
    /// The random token (128 bits, base64url).
    pub token: String,
    /// When it became valid, unix seconds.
    pub validated: Option<i64>,
    /// Why it became invalid.
    pub error: Option<Problem>,
}

/// An authorization record, stored by the gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorization {
    /// Random id.
    pub id: String,
    /// The order it was made for (authorizations are not shared between orders).
    pub order_id: String,
    /// The account that owns it.
    pub account_id: String,
    /// The identifier, without the `*.` of a wildcard.
    pub identifier: Identifier,
    /// Whether the order asked for `*.` plus the identifier.
    pub wildcard: bool,
    /// Status.
    pub status: AuthzStatus,
    /// Expiry, unix seconds.
    pub expires: i64,
    /// The challenges, addressed by index.
    pub challenges: Vec<Challenge>,
}

/// Work for the gateway's validator: prove `identifier` with `kind`, expecting
/// `key_authorization`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationTask {
    /// The authorization.
    pub authz_id: String,
    /// The challenge's index in it.
    pub index: usize,
    /// The challenge type.
    pub kind: ChallengeType,
    /// What to validate (for a wildcard, the base name: dns-01 queries `_acme-challenge.` it).
    pub identifier: Identifier,
    /// The challenge token.
    pub token: String,
    /// token "." thumbprint: what the client must provision.
    pub key_authorization: String,
}

#[derive(Deserialize)]
struct AuthzUpdate {
    status: String,
}

impl Authorization {
    /// A pending authorization for `identifier` (normalised, possibly a wildcard) with one
    /// challenge of each offered type that fits it.
    pub fn new(
        identifier: &Identifier,
        offered: &[ChallengeType],
        owner: (&str, &str),
        expires: i64,
        rng: &mut Rng<'_>,
    ) -> Self {
        let wildcard = identifier.is_wildcard();
        let value = identifier
            .value
            .strip_prefix("*.")
            .unwrap_or(&identifier.value);
        let base = Identifier {
            kind: identifier.kind,
            value: value.to_string(),
        };
        let challenges = offered
            .iter()
            .filter(|t| t.fits(&base, wildcard))
            .map(|&kind| Challenge {
                kind,
                status: ChallengeStatus::Pending,
                token: new_id(rng),
                validated: None,
                error: None,
            })
            .collect();
        Self {
            id: new_id(rng),
            order_id: owner.0.into(),
            account_id: owner.1.into(),
            identifier: base,
            wildcard,
            status: AuthzStatus::Pending,
            expires,
            challenges,
        }
    }

    /// Moves a pending or valid authorization past its expiry to `expired`.
    pub fn refresh(&mut self, now: i64) {
        let live = matches!(self.status, AuthzStatus::Pending | AuthzStatus::Valid);
        if live && now >= self.expires {
            self.status = AuthzStatus::Expired;
        }
    }

    /// Fails with `unauthorized` unless `account` owns this authorization.
    pub fn check_owner(&self, account: &Account) -> Result<(), Problem> {
        if self.account_id == account.id {
            Ok(())
        } else {
            Err(Problem::unauthorized(
                "authorization belongs to another account",
            ))
        }
    }

    /// The authorization object (RFC 8555 section 7.1.4).
    pub fn to_json(&self, urls: &Urls) -> Value {
        let challenges: Vec<Value> = (0..self.challenges.len())
            .filter_map(|i| self.challenge_json(i, urls))
            .collect();
        let mut v = json!({
            "identifier": self.identifier,
            "status": self.status,
            "expires": rfc3339(self.expires),
            "challenges": challenges,
        });
        if self.wildcard {
            v["wildcard"] = true.into();
        }
        v
    }

    /// One challenge object (RFC 8555 section 7.1.5), or `None` for an index out of range.
    pub fn challenge_json(&self, index: usize, urls: &Urls) -> Option<Value> {
        let c = self.challenges.get(index)?;
        let mut m = Map::new();
        m.insert("type".into(), json!(c.kind));
        m.insert("url".into(), urls.challenge(&self.id, index).into());
        m.insert("status".into(), json!(c.status));
        m.insert("token".into(), c.token.clone().into());
        if let Some(t) = c.validated {
            m.insert("validated".into(), rfc3339(t).into());
        }
        if let Some(e) = &c.error {
            m.insert("error".into(), e.to_json());
        }
        Some(Value::Object(m))
    }

    /// POST to the authorization: POST-as-GET, or `{"status": "deactivated"}` (RFC 8555
    /// section 7.5.2). The gateway refreshes the order afterwards.
    pub fn update(&mut self, payload: &[u8], now: i64) -> Result<(), Problem> {
        self.refresh(now);
        if payload.is_empty() {
            return Ok(());
        }
        let u: AuthzUpdate = serde_json::from_slice(payload).map_err(|_| {
            Problem::malformed("authorization update must be {\"status\":\"deactivated\"}")
        })?;
        if u.status != "deactivated" {
            return Err(Problem::malformed(
                "only status \"deactivated\" may be requested",
            ));
        }
        if !matches!(self.status, AuthzStatus::Pending | AuthzStatus::Valid) {
            return Err(Problem::malformed(
                "authorization is no longer pending or valid",
            ));
        }
        self.status = AuthzStatus::Deactivated;
        Ok(())
    }

    /// The client's response to challenge `index` (RFC 8555 section 7.5.1). A pending
    /// challenge of a pending authorization moves to `processing` and yields the task to run;
    /// a challenge already processing or done yields `None` (answer with its current state).
    pub fn respond(
        &mut self,
        index: usize,
        account: &Account,
        now: i64,
    ) -> Result<Option<ValidationTask>, Problem> {
        self.check_owner(account)?;
        self.refresh(now);
        let status = self.status;
        let c = self
            .challenges
            .get_mut(index)
            .ok_or_else(|| Problem::malformed("no such challenge"))?;
        if c.status != ChallengeStatus::Pending {
            return Ok(None);
        }
        if status != AuthzStatus::Pending {
            return Err(Problem::malformed("authorization is not pending"));
        }
        c.status = ChallengeStatus::Processing;
        Ok(Some(ValidationTask {
            authz_id: self.id.clone(),
            index,
            kind: c.kind,
            identifier: self.identifier.clone(),
            token: c.token.clone(),
            key_authorization: key_authorization(&c.token, &account.thumbprint),
        }))
    }

    /// The validator's verdict on challenge `index`: `Ok` makes the challenge and the
    /// authorization valid, a problem (type connection, dns, tls, incorrectResponse, ...)
    /// makes both invalid. The gateway then refreshes the order ([`crate::order::Order::refresh`]).
    pub fn challenge_validated(
        &mut self,
        index: usize,
        result: Result<(), Problem>,
        now: i64,
    ) -> Result<(), Problem> {
        self.refresh(now);
        let pending = self.status == AuthzStatus::Pending;
        let c = self
            .challenges
            .get_mut(index)
            .ok_or_else(Problem::internal)?;
        if c.status != ChallengeStatus::Processing {
            return Err(Problem::internal());
        }
        match result {
            Ok(()) => {
                c.status = ChallengeStatus::Valid;
                c.validated = Some(now);
            }
            Err(p) => {
                c.status = ChallengeStatus::Invalid;
                c.error = Some(p);
            }
        }
        if pending {
            let ok = c.status == ChallengeStatus::Valid;
            self.status = if ok {
                AuthzStatus::Valid
            } else {
                AuthzStatus::Invalid
            };
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "challenge_tests.rs"]
mod tests;
