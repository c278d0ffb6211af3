//! Maps a path below the ACME base URL to the resource it names, and says how each resource
//! is to be requested. The HTTP layer strips the base (e.g. `/acme/lab`) and the query, then
//! calls [`route`].

use crate::jws::KeyRule;

/// The longest resource id accepted in a path.
const MAX_ID_LEN: usize = 128;

/// A resource of the server, as named by a request path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resource {
    /// `/directory` (GET).
    Directory,
    /// `/new-nonce` (HEAD or GET).
    NewNonce,
    /// `/new-account`.
    NewAccount,
    /// `/new-order`.
    NewOrder,
    /// `/revoke-cert`.
    RevokeCert,
    /// `/key-change`.
    KeyChange,
    /// `/renewal-info/<certid>` (GET, RFC 9773); the CertID is not parsed yet.
    RenewalInfo(String),
    /// `/acct/<id>`.
    Account(String),
    /// `/orders/<account id>`.
    Orders(String),
    /// `/order/<id>`.
    Order(String),
    /// `/order/<id>/finalize`.
    Finalize(String),
    /// `/authz/<id>`.
    Authorization(String),
    /// `/chall/<authz id>/<index>`.
    Challenge {
        /// The authorization holding the challenge.
        authz_id: String,
        /// The challenge's index in it.
        index: usize,
    },
    /// `/cert/<id>`.
    Certificate(String),
}

impl Resource {
    /// The key reference a POST to this resource must use; `None` for resources that are only
    /// fetched with GET (directory, newNonce, renewalInfo).
    pub fn key_rule(&self) -> Option<KeyRule> {
        match self {
            Self::Directory | Self::NewNonce | Self::RenewalInfo(_) => None,
            Self::NewAccount => Some(KeyRule::Jwk),
            Self::RevokeCert => Some(KeyRule::Either),
            _ => Some(KeyRule::Kid),
        }
    }

    /// Whether a plain GET (or HEAD) is answered; everything else needs a signed POST.
    pub fn allows_get(&self) -> bool {
        self.key_rule().is_none()
    }
}

/// The resource at `path` (relative to the ACME base, starting with `/`), or `None` for a 404.
pub fn route(path: &str) -> Option<Resource> {
    let rest = path.strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    let resource = match parts.as_slice() {
        ["directory"] => Resource::Directory,
        ["new-nonce"] => Resource::NewNonce,
        ["new-account"] => Resource::NewAccount,
        ["new-order"] => Resource::NewOrder,
        ["revoke-cert"] => Resource::RevokeCert,
        ["key-change"] => Resource::KeyChange,
        ["renewal-info", cert_id] if is_cert_id_text(cert_id) => {
            Resource::RenewalInfo((*cert_id).into())
        }
        ["acct", id] if is_id(id) => Resource::Account((*id).into()),
        ["orders", id] if is_id(id) => Resource::Orders((*id).into()),
        ["order", id] if is_id(id) => Resource::Order((*id).into()),
        ["order", id, "finalize"] if is_id(id) => Resource::Finalize((*id).into()),
        ["authz", id] if is_id(id) => Resource::Authorization((*id).into()),
        ["chall", id, index] if is_id(id) => {
            let index = parse_index(index)?;
            Resource::Challenge {
                authz_id: (*id).into(),
                index,
            }
        }
        ["cert", id] if is_id(id) => Resource::Certificate((*id).into()),
        _ => return None,
    };
    Some(resource)
}

/// Whether `s` can be a resource id: 1 to 128 base64url characters.
pub(crate) fn is_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_ID_LEN && s.bytes().all(is_b64url)
}

fn is_cert_id_text(s: &str) -> bool {
    !s.is_empty() && s.len() <= 2 * MAX_ID_LEN && s.bytes().all(|b| is_b64url(b) || b == b'.')
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn parse_index(s: &str) -> Option<usize> {
    if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_every_resource() {
        assert_eq!(route("/directory"), Some(Resource::Directory));
        assert_eq!(route("/new-nonce"), Some(Resource::NewNonce));
        assert_eq!(route("/acct/abc"), Some(Resource::Account("abc".into())));
        assert_eq!(route("/orders/abc"), Some(Resource::Orders("abc".into())));
        assert_eq!(
            route("/order/o-1/finalize"),
            Some(Resource::Finalize("o-1".into()))
        );
        assert_eq!(
            route("/authz/z_1"),
            Some(Resource::Authorization("z_1".into()))
        );
        assert_eq!(
            route("/chall/z1/2"),
            Some(Resource::Challenge {
                authz_id: "z1".into(),
                index: 2
            })
        );
        assert_eq!(route("/cert/c1"), Some(Resource::Certificate("c1".into())));
        assert_eq!(
            route("/renewal-info/aYhb.AIdl"),
            Some(Resource::RenewalInfo("aYhb.AIdl".into()))
        );
        assert_eq!(
            route("/revoke-cert").and_then(|r| r.key_rule()),
            Some(KeyRule::Either)
        );
        assert_eq!(
            route("/new-account").and_then(|r| r.key_rule()),
            Some(KeyRule::Jwk)
        );
        assert!(route("/directory").is_some_and(|r| r.allows_get()));
    }

    #[test]
    fn refuses_unknown_paths() {
        for p in [
            "",
            "directory",
            "/",
            "/acct/",
            "/acct/a/b",
            "/acct/a%2F",
            "/chall/z/x",
            "/chall/z/123",
            "/order/../x",
        ] {
            assert_eq!(route(p), None, "{p}");
        }
    }
}
