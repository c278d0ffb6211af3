//! ACME Renewal Information (RFC 9773): CertIDs, the suggested renewal window, and the
//! `replaces` check of newOrder.
//!
//! renewalInfo is fetched with a plain GET of `renewalInfo "/" CertID` and needs no account.
//! The gateway looks the CertID up in its certificate records and answers with
//! [`renewal_info`], setting `Retry-After` from [`RenewalInfo::retry_after`].

use std::fmt;

use serde_json::{Value, json};

use crate::b64;
use crate::cert::CertRecord;
use crate::problem::{Problem, ProblemType};
use crate::resources::rfc3339;

/// How long clients should wait before asking again, in seconds (RFC 9773 section 4.3).
pub const RETRY_AFTER_SECS: u32 = 6 * 3600;

/// The longest serial accepted in a CertID, in bytes (RFC 5280 allows 20, plus a sign byte).
const MAX_SERIAL_LEN: usize = 21;
/// The longest key identifier accepted, in bytes.
const MAX_KEY_ID_LEN: usize = 64;

/// A certificate identifier: the issuer's key identifier and the serial (RFC 9773 4.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CertId {
    /// The keyIdentifier of the certificate's authority key identifier extension.
    pub key_identifier: Vec<u8>,
    /// The DER content octets of the serial number (including a leading zero when the high
    /// bit of the first octet would otherwise be set).
    pub serial: Vec<u8>,
}

impl CertId {
    /// Parses `base64url(keyIdentifier) "." base64url(serial)`; `malformed` when it is not one.
    pub fn parse(text: &str) -> Result<Self, Problem> {
        let bad = || Problem::malformed("not a CertID: base64url(AKI) \".\" base64url(serial)");
        let (aki, serial) = text.split_once('.').ok_or_else(bad)?;
        let key_identifier = b64::decode(aki).map_err(|_| bad())?;
        let serial = b64::decode(serial).map_err(|_| bad())?;
        if key_identifier.is_empty()
            || key_identifier.len() > MAX_KEY_ID_LEN
            || !is_der_positive_int(&serial)
        {
            return Err(bad());
        }
        Ok(Self {
            key_identifier,
            serial,
        })
    }
}

impl fmt::Display for CertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}",
            b64::encode(&self.key_identifier),
            b64::encode(&self.serial)
        )
    }
}

/// A suggested renewal window (RFC 9773 section 4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenewalInfo {
    /// Window start, unix seconds.
    pub start: i64,
    /// Window end, unix seconds.
    pub end: i64,
    /// A page explaining the window, when the operator has one.
    pub explanation_url: Option<String>,
    /// Seconds for the `Retry-After` header.
    pub retry_after: u32,
}

impl RenewalInfo {
    /// The renewalInfo object.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "suggestedWindow": {"start": rfc3339(self.start), "end": rfc3339(self.end)},
        });
        if let Some(url) = &self.explanation_url {
            v["explanationURL"] = url.clone().into();
        }
        v
    }
}

/// The window for `cert`: from two thirds to five sixths of its lifetime, which leaves the
/// last sixth for retries; a revoked certificate gets a window in the past (renew now).
pub fn renewal_info(cert: &CertRecord, now: i64, explanation_url: Option<&str>) -> RenewalInfo {
    let (start, end) = if cert.revoked.is_some() {
        (now - 2 * 3600, now - 3600)
    } else {
        let life = (cert.not_after - cert.not_before).max(0);
        (
            cert.not_before + life * 2 / 3,
            cert.not_before + life * 5 / 6,
        )
    };
    RenewalInfo {
        start,
        end,
        explanation_url: explanation_url.map(Into::into),
        retry_after: RETRY_AFTER_SECS,
    }
}

/// Checks the `replaces` field of newOrder (RFC 9773 section 5): the certificate exists
/// (`cert` is what the gateway found for the CertID), belongs to `account_id`, shares an
/// identifier with the new order, and has not been replaced yet. On success the returned
/// record is marked as replaced by `order_id`; the gateway stores it with the order.
pub fn check_replaces(
    cert: Option<CertRecord>,
    account_id: &str,
    order_id: &str,
    identifiers: &[crate::resources::Identifier],
) -> Result<CertRecord, Problem> {
    let mut cert =
        cert.ok_or_else(|| Problem::malformed("replaces names an unknown certificate"))?;
    cert.check_owner(account_id)?;
    if !cert.identifiers.iter().any(|i| identifiers.contains(i)) {
        return Err(Problem::malformed(
            "replacement shares no identifier with the certificate",
        ));
    }
    if cert.replaced_by.is_some() {
        let why = "the certificate was already replaced by another order";
        return Err(Problem::new(ProblemType::AlreadyReplaced, why));
    }
    cert.replaced_by = Some(order_id.into());
    Ok(cert)
}

/// Whether `b` is the minimal content of a positive DER INTEGER.
fn is_der_positive_int(b: &[u8]) -> bool {
    match b {
        [] => false,
        _ if b.len() > MAX_SERIAL_LEN => false,
        [first, ..] if *first >= 0x80 => false,
        [0, second, ..] => *second >= 0x80,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Identifier;

    #[test]
    fn rfc9773_example_cert_id() {
        let id = CertId {
            key_identifier: vec![
                0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3, 0x7B, 0x84, 0x7B, 0xA0,
                0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4,
            ],
            serial: vec![0x00, 0x87, 0x65, 0x43, 0x21],
        };
        assert_eq!(id.to_string(), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
        assert_eq!(
            CertId::parse("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE").unwrap(),
            id
        );
    }

    #[test]
    fn bad_cert_ids_are_malformed() {
        for s in [
            "",
            "abc",
            "aYhb.",
            ".AIdl",
            "aYhb.gA",
            "aYhb.AAE",
            "aYhb=.AQ",
            "a!.AQ",
            "aYhb.AQ.AQ",
        ] {
            assert_eq!(
                CertId::parse(s).unwrap_err().kind,
                ProblemType::Malformed,
                "{s}"
            );
        }
        assert!(CertId::parse("aYhb.AQ").is_ok());
    }

    pub(crate) fn record(not_before: i64, not_after: i64) -> CertRecord {
        CertRecord {
            id: "c1".into(),
            account_id: "a1".into(),
            order_id: "o1".into(),
            fingerprint: "00".into(),
            serial: "01".into(),
            ari_id: Some("aYhb.AQ".into()),
            not_before,
            not_after,
            identifiers: vec![Identifier::dns("a.example.org")],
            chain_pem: String::new(),
            revoked: None,
            replaced_by: None,
        }
    }

    #[test]
    fn window_is_in_the_last_third() {
        let nb = 1_700_000_000;
        let na = nb + 90 * 86400;
        let info = renewal_info(&record(nb, na), nb + 10, Some("https://gw.example/why"));
        assert_eq!(info.start, nb + 60 * 86400);
        assert_eq!(info.end, nb + 75 * 86400);
        let j = info.to_json();
        assert_eq!(j["suggestedWindow"]["start"], rfc3339(nb + 60 * 86400));
        assert_eq!(j["explanationURL"], "https://gw.example/why");

        let mut revoked = record(nb, na);
        revoked.revoked = Some(crate::cert::RevokedAt {
            reason: 1,
            at: nb + 5,
        });
        let now = nb + 100;
        let info = renewal_info(&revoked, now, None);
        assert!(info.end < now && info.start < info.end);
    }

    #[test]
    fn replaces_is_accepted_once() {
        let ids = [Identifier::dns("a.example.org")];
        let first = check_replaces(Some(record(0, 10)), "a1", "o2", &ids).unwrap();
        assert_eq!(first.replaced_by.as_deref(), Some("o2"));
        let again = check_replaces(Some(first.clone()), "a1", "o3", &ids).unwrap_err();
        assert_eq!(
            (again.kind, again.status),
            (ProblemType::AlreadyReplaced, 409)
        );

        let mut freed = first;
        freed.release_replacement("o2");
        assert!(check_replaces(Some(freed), "a1", "o3", &ids).is_ok());

        assert_eq!(
            check_replaces(Some(record(0, 10)), "a2", "o2", &ids)
                .unwrap_err()
                .kind,
            ProblemType::Unauthorized
        );
        assert!(check_replaces(None, "a1", "o2", &ids).is_err());
        let other = [Identifier::dns("b.example.org")];
        assert!(check_replaces(Some(record(0, 10)), "a1", "o2", &other).is_err());
    }
}
