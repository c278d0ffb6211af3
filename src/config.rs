//! Typed configuration, read from TOML and validated once at start.
//!
//! Every field has a default, so an empty file (or none at all) is the embedded default:
//! one profile `device`, one default route that accepts enrollment tokens and client
//! certificates, loopback listeners, and a data directory `./enrollgate-data`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::crypto::KeyAlgorithm;

mod coaps;
pub use coaps::Coaps;

mod acme;
pub use acme::{Acme, AcmeProfile, AcmeRateLimits, AcmeRoute, AcmeValidation};

mod store;
pub use store::StoreConfig;

/// The whole configuration.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the database, CA keys and TLS certificate live.
    pub data_dir: PathBuf,
    /// Listener addresses.
    pub listen: Listen,
    /// Logging.
    pub log: Log,
    /// The built-in CA.
    pub ca: Ca,
    /// Request limits.
    pub limits: Limits,
    /// Issuance profiles by name.
    pub profiles: BTreeMap<String, Profile>,
    /// Routes: a label selects a profile, an authentication policy and a backend.
    pub routes: Vec<Route>,
    /// The CoAPs (DTLS) listener's limits.
    pub coaps: Coaps,
    /// Named CA backends (`[backends.NAME]`); `builtin` always exists. See
    /// [`crate::backends::config`].
    pub backends: BTreeMap<String, crate::backends::BackendDef>,
    /// The ACME server.
    pub acme: Acme,
    /// The store: SQLite in the data directory, or a shared PostgreSQL database.
    pub store: StoreConfig,
    /// CMP settings shared by every route.
    pub cmp: CmpSettings,
}

/// CMP settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CmpSettings {
    /// Seconds a requester has to send certConf; a certificate still unconfirmed then is
    /// revoked (RFC 9810 5.3.18), unless implicit confirmation was granted.
    pub confirm_wait_secs: u64,
}

impl Default for CmpSettings {
    fn default() -> Self {
        Self {
            confirm_wait_secs: 300,
        }
    }
}

/// Listener addresses. Without a `[listen]` table the embedded default's four listeners open
/// on loopback; with one, only the listeners it names open (a missing one is not opened, so
/// a deployment never gets a listener it did not ask for).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// HTTPS (EST, SCEP, CMP, ACME).
    #[serde(default)]
    pub https: Option<SocketAddr>,
    /// Plain HTTP (SCEP, CMP).
    #[serde(default)]
    pub http: Option<SocketAddr>,
    /// Admin: metrics, health, admin API. Keep it on loopback.
    #[serde(default)]
    pub admin: Option<SocketAddr>,
    /// CoAPs over UDP (EST-coaps, CMP over CoAP), DTLS 1.2.
    #[serde(default)]
    pub coaps: Option<SocketAddr>,
}

/// Log output.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// `human` or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `enrollgate=debug`.
    pub level: String,
}

/// Log output format.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// The built-in CA's parameters, used when it is first created.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ca {
    /// Key algorithm of the root and issuing CA.
    pub key_algorithm: KeyAlgorithm,
    /// Common name prefix for the CA certificates.
    pub name: String,
    /// Root lifetime in days.
    pub root_validity_days: u32,
    /// Issuing CA lifetime in days.
    pub issuing_validity_days: u32,
    /// Hours a CRL is valid.
    pub crl_validity_hours: u32,
}

/// Limits on what peers may send.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Seconds a client has to send its request headers.
    pub header_timeout_secs: u64,
    /// Seconds a kept-alive connection may sit idle (also the whole-request deadline).
    pub request_timeout_secs: u64,
    /// Concurrent connections per listener.
    pub max_connections: usize,
    /// Seconds to let requests finish on shutdown.
    pub shutdown_grace_secs: u64,
}

/// What a certificate issued under this profile may say.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Profile {
    /// Glob (`*` wildcard) the RFC 4514 subject must match, e.g. `CN=*,O=Acme`.
    pub subject_pattern: String,
    /// Globs a DNS SAN must match; empty means DNS SANs are refused.
    pub san_dns: Vec<String>,
    /// Whether IP address SANs are allowed.
    pub san_ip: bool,
    /// Globs an email SAN must match; empty means refused.
    pub san_email: Vec<String>,
    /// Globs a URI SAN must match; empty means refused.
    pub san_uri: Vec<String>,
    /// Accepted key types: `rsa`, `p256`, `p384`, `p521`, `ed25519`.
    pub key_types: Vec<String>,
    /// Smallest RSA modulus accepted.
    pub min_rsa_bits: u32,
    /// Validity given to certificates (clamped to the issuing CA's).
    pub validity_days: u32,
    /// Key usage bits by RFC 5280 name (`digitalSignature`, `keyEncipherment`, ...).
    pub key_usage: Vec<String>,
    /// Extended key usages: `clientAuth`, `serverAuth`, `codeSigning`, `emailProtection`,
    /// or a dotted OID.
    pub extended_key_usage: Vec<String>,
    /// On renewal, the CSR must repeat the subject of the certificate being renewed.
    pub renewal_same_subject: bool,
    /// Key algorithm for keys the gateway generates (EST serverkeygen).
    pub generated_key: KeyAlgorithm,
}

/// Ways a requester may authenticate on a route.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// Enrollment tokens (HTTP Basic, SCEP challenge, CMP MAC, ACME EAB).
    Token,
    /// Certificates chaining to the route's trust anchors or to our own CA.
    Certificate,
    /// The route's static password.
    Password,
    /// Anyone (ACME accounts prove control of identifiers instead; test routes).
    Anonymous,
    /// The challenge password is checked by the route's `webhook`, which sees it with the
    /// request (dynamic challenges issued by a device manager).
    Webhook,
}

/// An HTTP webhook that approves or refuses each request of a route (see
/// `src/issuance/webhook.rs` for the exchange).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// The URL the gateway POSTs each request to (http or https).
    pub url: String,
    /// Seconds to wait for the answer; no answer refuses the request.
    #[serde(default = "default_webhook_timeout")]
    pub timeout_secs: u64,
    /// PEM file of the CAs trusted for an https webhook's certificate; default: the system
    /// bundle.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_webhook_timeout() -> u64 {
    5
}

/// One route.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// URL label; empty for the default route.
    #[serde(default)]
    pub label: String,
    /// Profile name.
    pub profile: String,
    /// Accepted authentication methods.
    #[serde(default = "default_auth")]
    pub auth: Vec<AuthMethod>,
    /// PEM files of CAs whose certificates may authenticate here (device identity CAs).
    /// Certificates from our own issuing CA are always accepted for renewal.
    #[serde(default)]
    pub trust_anchors: Vec<PathBuf>,
    /// Environment variable holding the static password, for `password` authentication.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Hold every request for an operator's decision.
    #[serde(default)]
    pub manual_approval: bool,
    /// Backends to try in order (names from `[backends]`, or `builtin`); the next is tried
    /// only when one surely did not issue. Empty means `["builtin"]`.
    #[serde(default)]
    pub backends: Vec<String>,
    /// An HTTP webhook asked about every request after policy; it may refuse it.
    #[serde(default)]
    pub webhook: Option<Webhook>,
}

fn default_auth() -> Vec<AuthMethod> {
    vec![AuthMethod::Token, AuthMethod::Certificate]
}

impl Default for Config {
    fn default() -> Self {
        let mut profiles = BTreeMap::new();
        profiles.insert("device".to_owned(), Profile::default());
        Self {
            data_dir: PathBuf::from("./enrollgate-data"),
            listen: Listen::default(),
            log: Log::default(),
            ca: Ca::default(),
            limits: Limits::default(),
            coaps: Coaps::default(),
            profiles,
            routes: vec![Route {
                label: String::new(),
                profile: "device".into(),
                auth: default_auth(),
                trust_anchors: Vec::new(),
                password_env: None,
                manual_approval: false,
                backends: Vec::new(),
                webhook: None,
            }],
            backends: BTreeMap::new(),
            acme: Acme::default(),
            store: StoreConfig::default(),
            cmp: CmpSettings::default(),
        }
    }
}

impl Default for Listen {
    fn default() -> Self {
        Self {
            https: Some(SocketAddr::from(([127, 0, 0, 1], 8443))),
            http: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            admin: Some(SocketAddr::from(([127, 0, 0, 1], 9090))),
            coaps: Some(SocketAddr::from(([127, 0, 0, 1], 5684))),
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

impl Default for Ca {
    fn default() -> Self {
        Self {
            key_algorithm: KeyAlgorithm::EcdsaP256,
            name: "enrollgate".into(),
            root_validity_days: 3650 * 2,
            issuing_validity_days: 3650,
            crl_validity_hours: 24,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            header_timeout_secs: 10,
            request_timeout_secs: 30,
            max_connections: 4096,
            shutdown_grace_secs: 10,
        }
    }
}

impl Default for Profile {
    fn default() -> Self {
        Self {
            subject_pattern: "*".into(),
            san_dns: vec!["*".into()],
            san_ip: true,
            san_email: vec!["*".into()],
            san_uri: vec!["*".into()],
            key_types: ["p256", "p384", "p521", "ed25519", "rsa"]
                .map(String::from)
                .to_vec(),
            min_rsa_bits: 2048,
            validity_days: 365,
            key_usage: vec!["digitalSignature".into(), "keyEncipherment".into()],
            extended_key_usage: vec!["clientAuth".into()],
            renewal_same_subject: true,
            generated_key: KeyAlgorithm::EcdsaP256,
        }
    }
}

/// A configuration mistake, explained.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax or an unknown/mistyped field.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's explanation, with line and column.
        message: String,
    },
    /// The values do not fit together.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates TOML text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: references between sections and value ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let mut labels = std::collections::HashSet::new();
        if self.cmp.confirm_wait_secs == 0 {
            return bad("cmp.confirm_wait_secs must be at least 1".into());
        }
        for route in &self.routes {
            if !labels.insert(route.label.as_str()) {
                return bad(format!("route label {:?} appears twice", route.label));
            }
            if !route
                .label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return bad(format!(
                    "route label {:?}: use letters, digits, - and _",
                    route.label
                ));
            }
            if !self.profiles.contains_key(&route.profile) {
                return bad(format!(
                    "route {:?} names unknown profile {:?}",
                    route.label, route.profile
                ));
            }
            if route.auth.is_empty() {
                return bad(format!(
                    "route {:?} allows no authentication method",
                    route.label
                ));
            }
            if route.auth.contains(&AuthMethod::Webhook) && route.webhook.is_none() {
                return bad(format!(
                    "route {:?} allows webhook but sets no [routes.webhook]",
                    route.label
                ));
            }
            if let Some(w) = &route.webhook
                && !(w.url.starts_with("http://") || w.url.starts_with("https://"))
            {
                return bad(format!(
                    "route {:?}: webhook url {:?} is not http:// or https://",
                    route.label, w.url
                ));
            }
            if route.auth.contains(&AuthMethod::Password) && route.password_env.is_none() {
                return bad(format!(
                    "route {:?} allows password but sets no password_env",
                    route.label
                ));
            }
        }
        for (name, p) in &self.profiles {
            self.validate_profile(name, p)?;
        }
        self.validate_backends()?;
        if self.limits.max_body_bytes == 0 || self.limits.max_body_bytes > 16 * 1024 * 1024 {
            return bad("limits.max_body_bytes must be between 1 and 16 MiB".into());
        }
        self.coaps.validate()?;
        self.acme.validate(self)?;
        self.store.validate()?;
        Ok(())
    }

    fn validate_profile(&self, name: &str, p: &Profile) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(format!("profile {name:?}: {m}")));
        if p.validity_days == 0 {
            return bad("validity_days must be at least 1".into());
        }
        if p.key_types.is_empty() {
            return bad("key_types is empty: no CSR could be accepted".into());
        }
        for k in &p.key_types {
            if !["rsa", "p256", "p384", "p521", "ed25519"].contains(&k.as_str()) {
                return bad(format!(
                    "unknown key type {k:?} (rsa, p256, p384, p521, ed25519)"
                ));
            }
        }
        for ku in &p.key_usage {
            if crate::ca::key_usage_bit(ku).is_none() {
                return bad(format!("unknown key usage {ku:?}"));
            }
        }
        for eku in &p.extended_key_usage {
            if crate::ca::eku_oid(eku).is_none() {
                return bad(format!("unknown extended key usage {eku:?}"));
            }
        }
        Ok(())
    }

    fn validate_backends(&self) -> Result<(), ConfigError> {
        for (name, def) in &self.backends {
            def.validate(name).map_err(ConfigError::Invalid)?;
        }
        for route in &self.routes {
            for (i, name) in route.backends.iter().enumerate() {
                let known =
                    name == crate::backends::config::BUILTIN || self.backends.contains_key(name);
                if !known || route.backends[..i].contains(name) {
                    return Err(ConfigError::Invalid(format!(
                        "route {:?}: backend {name:?} is unknown or listed twice",
                        route.label
                    )));
                }
            }
        }
        Ok(())
    }

    /// The route with this label.
    pub fn route(&self, label: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.label == label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_embedded_default() {
        let c = Config::parse("", Path::new("x.toml")).unwrap();
        assert_eq!(c.routes.len(), 1);
        assert!(c.profiles.contains_key("device"));
    }

    #[test]
    fn shipped_examples_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                seen += 1;
            }
        }
        assert!(
            seen >= 3,
            "expected the example configurations in {}",
            dir.display()
        );
    }

    #[test]
    fn a_listen_table_opens_only_the_listeners_it_names() {
        let c = Config::parse("[listen]\nhttps = \"127.0.0.1:0\"\n", Path::new("x.toml")).unwrap();
        assert!(c.listen.https.is_some());
        assert!(c.listen.http.is_none() && c.listen.admin.is_none() && c.listen.coaps.is_none());
        let none = Config::parse("", Path::new("y.toml")).unwrap();
        assert!(none.listen.https.is_some() && none.listen.http.is_some());
        assert!(none.listen.admin.is_some() && none.listen.coaps.is_some());
    }

    #[test]
    fn written_default_equals_the_embedded_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/embedded-default.toml");
        let written = Config::load(&path).unwrap();
        let embedded = Config::default();
        assert_eq!(
            toml::to_string(&written).unwrap(),
            toml::to_string(&embedded).unwrap()
        );
    }

    #[test]
    fn mistakes_are_explained() {
        let e = Config::parse("bogus = 1", Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field"), "{e}");
        let e = Config::parse("[[routes]]\nprofile = \"nope\"\n", Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown profile"), "{e}");
        let text = "[profiles.p]\nkey_types = [\"dsa\"]\n[[routes]]\nprofile = \"p\"\n";
        let e = Config::parse(text, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key type"), "{e}");
    }
}
