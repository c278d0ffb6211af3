//! Shared resource pieces: the URL layout, identifiers, the directory (RFC 8555 section 7.1.1)
//! and RFC 3339 times.
//!
//! Every URL the server hands out is built by [`Urls`] from the base URL the gateway passes
//! (scheme, host and the route's prefix, e.g. `https://gw.example/acme/lab`), and
//! [`crate::router::route`] parses the same layout back.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::problem::{Problem, ProblemType};

/// Builds absolute resource URLs under one ACME base URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Urls {
    base: String,
}

impl Urls {
    /// `base` is the absolute URL of the ACME root, without a trailing slash (one is removed).
    pub fn new(base: impl Into<String>) -> Self {
        let mut base = base.into();
        while base.ends_with('/') {
            base.pop();
        }
        Self { base }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The absolute URL of a path relative to the base (which starts with `/`).
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The directory.
    pub fn directory(&self) -> String {
        self.join("/directory")
    }

    /// newNonce.
    pub fn new_nonce(&self) -> String {
        self.join("/new-nonce")
    }

    /// newAccount.
    pub fn new_account(&self) -> String {
        self.join("/new-account")
    }

    /// newOrder.
    pub fn new_order(&self) -> String {
        self.join("/new-order")
    }

    /// revokeCert.
    pub fn revoke_cert(&self) -> String {
        self.join("/revoke-cert")
    }

    /// keyChange.
    pub fn key_change(&self) -> String {
        self.join("/key-change")
    }

    /// renewalInfo (RFC 9773); a certificate's URL appends `/` and its CertID.
    pub fn renewal_info(&self) -> String {
        self.join("/renewal-info")
    }

    /// An account; this is also the account's `kid`.
    pub fn account(&self, id: &str) -> String {
        self.join(&format!("/acct/{id}"))
    }

    /// An account's orders list.
    pub fn orders(&self, account_id: &str) -> String {
        self.join(&format!("/orders/{account_id}"))
    }

    /// An order.
    pub fn order(&self, id: &str) -> String {
        self.join(&format!("/order/{id}"))
    }

    /// An order's finalize URL.
    pub fn finalize(&self, order_id: &str) -> String {
        self.join(&format!("/order/{order_id}/finalize"))
    }

    /// An authorization.
    pub fn authz(&self, id: &str) -> String {
        self.join(&format!("/authz/{id}"))
    }

    /// A challenge: its authorization's id and its index there.
    pub fn challenge(&self, authz_id: &str, index: usize) -> String {
        self.join(&format!("/chall/{authz_id}/{index}"))
    }

    /// An issued certificate chain.
    pub fn certificate(&self, id: &str) -> String {
        self.join(&format!("/cert/{id}"))
    }

    /// The account id in a `kid` that is one of our account URLs.
    pub fn account_id_from_kid<'a>(&self, kid: &'a str) -> Option<&'a str> {
        let id = kid.strip_prefix(&self.base)?.strip_prefix("/acct/")?;
        crate::router::is_id(id).then_some(id)
    }
}

/// The type of an identifier (RFC 8555 section 9.7.7, RFC 8738).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentifierType {
    /// A DNS name.
    Dns,
    /// An IP address (RFC 8738).
    Ip,
}

/// An identifier an order asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identifier {
    /// The type.
    #[serde(rename = "type")]
    pub kind: IdentifierType,
    /// The value: a lower-case DNS name (possibly `*.` wildcard) or a canonical IP address.
    pub value: String,
}

impl Identifier {
    /// A DNS identifier (not normalised; see [`Identifier::normalized`]).
    pub fn dns(value: impl Into<String>) -> Self {
        Self {
            kind: IdentifierType::Dns,
            value: value.into(),
        }
    }

    /// An IP identifier (not normalised).
    pub fn ip(value: impl Into<String>) -> Self {
        Self {
            kind: IdentifierType::Ip,
            value: value.into(),
        }
    }

    /// Whether this is a `*.` DNS wildcard.
    pub fn is_wildcard(&self) -> bool {
        self.kind == IdentifierType::Dns && self.value.starts_with("*.")
    }

    /// Checks the syntax and returns the canonical form: DNS names lower-cased without a
    /// trailing dot, IP addresses in their standard text form.
    pub fn normalized(&self) -> Result<Self, Problem> {
        let value = match self.kind {
            IdentifierType::Dns => normalize_dns(&self.value)?,
            IdentifierType::Ip => normalize_ip(&self.value)?,
        };
        Ok(Self {
            kind: self.kind,
            value,
        })
    }
}

fn normalize_dns(name: &str) -> Result<String, Problem> {
    let lower = name.to_ascii_lowercase();
    let lower = lower.strip_suffix('.').unwrap_or(&lower);
    let rest = lower.strip_prefix("*.").unwrap_or(lower);
    let labels_ok = rest.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !labels_ok || lower.len() > 253 || !rest.contains('.') {
        let why = format!("{name:?} is not a valid fully qualified DNS name");
        return Err(Problem::new(ProblemType::RejectedIdentifier, why));
    }
    Ok(lower.to_string())
}

fn normalize_ip(value: &str) -> Result<String, Problem> {
    value
        .parse::<IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| {
            Problem::new(
                ProblemType::Malformed,
                format!("{value:?} is not an IP address"),
            )
        })
}

/// The directory's `meta` object (RFC 8555 section 7.1.1, profiles draft).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryMeta {
    /// The current terms of service URL; when set, newAccount requires agreement.
    pub terms_of_service: Option<String>,
    /// A web page about this server.
    pub website: Option<String>,
    /// CAA issuer domains that refer to this server.
    pub caa_identities: Vec<String>,
    /// Whether newAccount requires external account binding.
    pub external_account_required: bool,
    /// Certificate profiles offered: name to human-readable description.
    pub profiles: BTreeMap<String, String>,
}

/// The directory object (RFC 8555 section 7.1.1 with ARI's `renewalInfo`).
pub fn directory_json(urls: &Urls, meta: &DirectoryMeta) -> Value {
    let mut m = Map::new();
    if let Some(tos) = &meta.terms_of_service {
        m.insert("termsOfService".into(), tos.clone().into());
    }
    if let Some(w) = &meta.website {
        m.insert("website".into(), w.clone().into());
    }
    if !meta.caa_identities.is_empty() {
        m.insert("caaIdentities".into(), meta.caa_identities.clone().into());
    }
    m.insert(
        "externalAccountRequired".into(),
        meta.external_account_required.into(),
    );
    if !meta.profiles.is_empty() {
        m.insert("profiles".into(), json!(meta.profiles));
    }
    json!({
        "newNonce": urls.new_nonce(),
        "newAccount": urls.new_account(),
        "newOrder": urls.new_order(),
        "revokeCert": urls.revoke_cert(),
        "keyChange": urls.key_change(),
        "renewalInfo": urls.renewal_info(),
        "meta": Value::Object(m),
    })
}

/// Unix seconds as an RFC 3339 UTC time (`2025-01-02T03:04:05Z`).
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

/// An RFC 3339 time as unix seconds (fractions dropped); `malformed` when it does not parse.
pub fn parse_rfc3339(s: &str) -> Result<i64, Problem> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map(OffsetDateTime::unix_timestamp)
        .map_err(|_| Problem::malformed(format!("{s:?} is not an RFC 3339 time")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_kid() {
        let u = Urls::new("https://gw.example/acme/");
        assert_eq!(
            u.finalize("o1"),
            "https://gw.example/acme/order/o1/finalize"
        );
        assert_eq!(
            u.account_id_from_kid("https://gw.example/acme/acct/a_b-1"),
            Some("a_b-1")
        );
        assert_eq!(
            u.account_id_from_kid("https://evil.example/acme/acct/a"),
            None
        );
        assert_eq!(
            u.account_id_from_kid("https://gw.example/acme/acct/a/b"),
            None
        );
    }

    #[test]
    fn identifiers_normalise() {
        let d = Identifier::dns("WWW.Example.COM.").normalized().unwrap();
        assert_eq!(d.value, "www.example.com");
        assert!(
            Identifier::dns("*.example.com")
                .normalized()
                .unwrap()
                .is_wildcard()
        );
        assert!(Identifier::dns("*.*.example.com").normalized().is_err());
        assert!(Identifier::dns("localhost").normalized().is_err());
        assert!(Identifier::dns("a..b").normalized().is_err());
        assert!(Identifier::dns("-a.example").normalized().is_err());
        assert_eq!(
            Identifier::ip("2001:DB8::1").normalized().unwrap().value,
            "2001:db8::1"
        );
        assert!(Identifier::ip("1.2.3").normalized().is_err());
    }

    #[test]
    fn directory_has_all_resources() {
        let mut meta = DirectoryMeta {
            external_account_required: true,
            ..Default::default()
        };
        meta.profiles
            .insert("tls".into(), "90-day TLS server".into());
        let d = directory_json(&Urls::new("https://gw.example/acme"), &meta);
        assert_eq!(d["renewalInfo"], "https://gw.example/acme/renewal-info");
        assert_eq!(d["meta"]["externalAccountRequired"], true);
        assert_eq!(d["meta"]["profiles"]["tls"], "90-day TLS server");
    }

    #[test]
    fn times_round_trip() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            parse_rfc3339("2025-03-01T12:00:00+01:00").unwrap(),
            rfc3339_back("2025-03-01T11:00:00Z")
        );
        assert!(parse_rfc3339("yesterday").is_err());
    }

    fn rfc3339_back(s: &str) -> i64 {
        parse_rfc3339(s).unwrap()
    }
}
