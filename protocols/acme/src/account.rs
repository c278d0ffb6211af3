//! Accounts (RFC 8555 section 7.3): creation, update, deactivation and key rollover.
//!
//! The gateway stores an [`Account`] as one row keyed by [`Account::id`], with a unique index
//! on [`Account::thumbprint`] (RFC 8555 allows one account per key).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::eab::verify_eab;
use crate::ids::{Rng, new_id};
use crate::jwk::Jwk;
use crate::jws::{Jws, KeyRef, KeyRule, NonceRule, VerifiedJws};
use crate::problem::{Problem, ProblemType};
use crate::resources::{DirectoryMeta, Urls};

/// The most contact URLs one account may list.
pub const MAX_CONTACTS: usize = 8;
/// The longest contact URL accepted.
const MAX_CONTACT_LEN: usize = 320;

/// The status of an account (RFC 8555 section 7.1.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    /// Usable.
    Valid,
    /// Deactivated by its holder.
    Deactivated,
    /// Revoked by the server.
    Revoked,
}

/// An account record, stored by the gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Random id; the account URL (and `kid`) is `Urls::account(id)`.
    pub id: String,
    /// Status.
    pub status: AccountStatus,
    /// `mailto:` contact URLs.
    pub contact: Vec<String>,
    /// The account's public key.
    pub jwk: Jwk,
    /// The key's RFC 7638 thumbprint: the unique lookup key for newAccount.
    pub thumbprint: String,
    /// Whether the client agreed to the terms of service.
    pub terms_of_service_agreed: bool,
    /// The EAB key id (enrollment token id) the account was bound with, if any.
    pub eab_kid: Option<String>,
    /// Creation time, unix seconds.
    pub created_at: i64,
}

/// What newAccount did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewAccountOutcome {
    /// A new account: store it, answer 201 with `Location: Urls::account(id)`.
    Created(Account),
    /// The key already has this account: answer 200 with its `Location`.
    Existing(Account),
}

/// The newAccount payload (RFC 8555 section 7.3).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct NewAccountPayload {
    contact: Option<Vec<String>>,
    terms_of_service_agreed: Option<bool>,
    only_return_existing: Option<bool>,
    external_account_binding: Option<Value>,
}

/// An account update payload (RFC 8555 sections 7.3.2 and 7.3.6).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdatePayload {
    contact: Option<Vec<String>>,
    status: Option<String>,
    terms_of_service_agreed: Option<bool>,
}

/// The inner keyChange payload (RFC 8555 section 7.3.5).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyChangePayload {
    account: String,
    old_key: Value,
}

/// A new account key whose inner JWS verified; apply it with [`Account::apply_key_change`]
/// after checking no other account holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewKey {
    /// The new key.
    pub jwk: Jwk,
    /// Its thumbprint: the gateway looks it up; if another account has it, answer
    /// 409 Conflict with that account's URL in `Location`.
    pub thumbprint: String,
}

/// newAccount. `existing` is the account the gateway found for the request key's thumbprint;
/// `eab_key` looks up an EAB MAC key by key id.
pub fn new_account(
    jws: &VerifiedJws,
    existing: Option<Account>,
    meta: &DirectoryMeta,
    urls: &Urls,
    eab_key: impl FnOnce(&str) -> Option<enrollgate_model::Secret>,
    rng: &mut Rng<'_>,
    now: i64,
) -> Result<NewAccountOutcome, Problem> {
    if !matches!(jws.header().key, KeyRef::Jwk(_)) {
        return Err(Problem::malformed("newAccount must be signed with a jwk"));
    }
    let p: NewAccountPayload = jws.payload_json()?;
    if let Some(acct) = existing {
        return Ok(NewAccountOutcome::Existing(acct));
    }
    if p.only_return_existing == Some(true) {
        return Err(Problem::new(
            ProblemType::AccountDoesNotExist,
            "no account for this key",
        ));
    }
    if meta.terms_of_service.is_some() && p.terms_of_service_agreed != Some(true) {
        return Err(Problem::malformed("the terms of service must be agreed to"));
    }
    let contact = check_contacts(p.contact.unwrap_or_default())?;
    let eab_kid = match (&p.external_account_binding, meta.external_account_required) {
        (Some(eab), _) => Some(verify_eab(eab, jws.key(), &urls.new_account(), eab_key)?),
        (None, true) => {
            let why = "this server requires external account binding";
            return Err(Problem::new(ProblemType::ExternalAccountRequired, why));
        }
        (None, false) => None,
    };
    Ok(NewAccountOutcome::Created(Account {
        id: new_id(rng),
        status: AccountStatus::Valid,
        contact,
        jwk: jws.key().clone(),
        thumbprint: jws.key().thumbprint(),
        terms_of_service_agreed: p.terms_of_service_agreed == Some(true),
        eab_kid,
        created_at: now,
    }))
}

impl Account {
    /// The account object (RFC 8555 section 7.1.2).
    pub fn to_json(&self, urls: &Urls) -> Value {
        json!({
            "status": self.status,
            "contact": self.contact,
            "termsOfServiceAgreed": self.terms_of_service_agreed,
            "orders": urls.orders(&self.id),
        })
    }

    /// Fails with `unauthorized` unless the account is valid: every `kid` request checks this.
    pub fn check_valid(&self) -> Result<(), Problem> {
        match self.status {
            AccountStatus::Valid => Ok(()),
            _ => Err(Problem::unauthorized("account is deactivated or revoked")),
        }
    }

    /// Fails with `unauthorized` unless `jws` was signed for this account (its `kid` is this
    /// account's URL).
    pub fn check_signer(&self, jws: &VerifiedJws, urls: &Urls) -> Result<(), Problem> {
        match &jws.header().key {
            KeyRef::Kid(kid) if *kid == urls.account(&self.id) => Ok(()),
            _ => Err(Problem::unauthorized("request not signed by this account")),
        }
    }

    /// POST to the account URL: POST-as-GET, a contact or agreement update, or
    /// deactivation (RFC 8555 sections 7.3.2, 7.3.6). Store the account afterwards; on
    /// deactivation the gateway should also refuse the account's pending orders.
    pub fn update(&mut self, jws: &VerifiedJws, urls: &Urls) -> Result<(), Problem> {
        self.check_signer(jws, urls)?;
        self.check_valid()?;
        if jws.is_post_as_get() {
            return Ok(());
        }
        let p: UpdatePayload = jws.payload_json()?;
        if let Some(status) = p.status.as_deref() {
            if status != "deactivated" {
                return Err(Problem::malformed(
                    "only status \"deactivated\" may be requested",
                ));
            }
        }
        if let Some(contact) = p.contact {
            self.contact = check_contacts(contact)?;
        }
        if p.terms_of_service_agreed == Some(true) {
            self.terms_of_service_agreed = true;
        }
        if p.status.is_some() {
            self.status = AccountStatus::Deactivated;
        }
        Ok(())
    }

    /// Checks a keyChange request (RFC 8555 section 7.3.5) signed by this account: the inner
    /// JWS is signed by the new key given as `jwk`, has the outer `url`, and its payload
    /// names this account and its current key.
    pub fn key_change(&self, outer: &VerifiedJws, urls: &Urls) -> Result<NewKey, Problem> {
        self.check_signer(outer, urls)?;
        self.check_valid()?;
        let inner: Value = outer.payload_json()?;
        let inner = Jws::from_value(
            &inner,
            &outer.header().url,
            KeyRule::Jwk,
            NonceRule::Optional,
        )?;
        let inner = inner.verify_embedded()?;
        let p: KeyChangePayload = inner.payload_json()?;
        if p.account != urls.account(&self.id) {
            return Err(Problem::unauthorized("keyChange names another account"));
        }
        if Jwk::from_json(&p.old_key)? != self.jwk {
            return Err(Problem::unauthorized(
                "keyChange oldKey is not the account key",
            ));
        }
        if *inner.key() == self.jwk {
            return Err(Problem::malformed("the new key is the current key"));
        }
        Ok(NewKey {
            thumbprint: inner.key().thumbprint(),
            jwk: inner.key().clone(),
        })
    }

    /// Revokes the account (RFC 8555 section 7.1.6: the server may revoke an account, for
    /// example on an operator's order). Every later request it signs fails
    /// [`Account::check_valid`]. Returns whether the status changed.
    pub fn revoke(&mut self) -> bool {
        let changed = self.status != AccountStatus::Revoked;
        self.status = AccountStatus::Revoked;
        changed
    }

    /// Installs a checked new key (the gateway re-indexes the thumbprint in the same
    /// transaction).
    pub fn apply_key_change(&mut self, key: NewKey) {
        self.jwk = key.jwk;
        self.thumbprint = key.thumbprint;
    }
}

/// The orders list of an account (RFC 8555 section 7.1.2.1); no pagination.
pub fn orders_list_json(urls: &Urls, order_ids: &[String]) -> Value {
    let orders: Vec<String> = order_ids.iter().map(|id| urls.order(id)).collect();
    json!({ "orders": orders })
}

fn check_contacts(contact: Vec<String>) -> Result<Vec<String>, Problem> {
    if contact.len() > MAX_CONTACTS {
        let why = format!("at most {MAX_CONTACTS} contacts are accepted");
        return Err(Problem::new(ProblemType::InvalidContact, why));
    }
    contact.iter().try_for_each(|c| check_contact(c))?;
    Ok(contact)
}

fn check_contact(c: &str) -> Result<(), Problem> {
    let Some(addr) = c.strip_prefix("mailto:") else {
        let why = "only mailto: contacts are supported";
        return Err(Problem::new(ProblemType::UnsupportedContact, why));
    };
    let invalid = |why: &str| Err(Problem::new(ProblemType::InvalidContact, why));
    if c.len() > MAX_CONTACT_LEN || addr.contains(['?', ',', ' ', '<', '>']) {
        return invalid("contact must be a single mailto: address without header fields");
    }
    match addr.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && domain.contains('.') && !domain.contains('@') =>
        {
            Ok(())
        }
        _ => invalid("contact is not an email address"),
    }
}

#[cfg(test)]
#[path = "account_tests.rs"]
pub(crate) mod tests;
