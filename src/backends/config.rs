//! Backend definitions: the `[backends.NAME]` tables of the configuration.
//!
//! Each definition names its `kind`, the common settings (URL, TLS towards the CA, timeout,
//! concurrency cap, retries, circuit breaker) and one sub-table with the kind's own settings,
//! named after the kind: `[backends.NAME.cfssl]`, `[backends.NAME.ejbca]`, ... Secrets are
//! never written in the file: a [`SecretRef`] names an environment variable or a file.
//!
//! A backend called `builtin` always exists (the embedded signer); a route without a
//! `backends` list uses it alone.

use std::path::PathBuf;

use enrollgate_model::Secret;
use serde::{Deserialize, Serialize};

/// The name of the always-present built-in signer.
pub const BUILTIN: &str = "builtin";

/// What kind of CA a backend is.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// The embedded signer.
    Builtin,
    /// A `cfssl serve` instance (remote signing, optionally HMAC-authenticated).
    Cfssl,
    /// EJBCA's REST API v1.
    Ejbca,
    /// DigiCert CertCentral Services API v2.
    Digicert,
    /// Another EST server, reached as an EST client.
    Est,
    /// Another CMP server, reached as a CMP client (RA mode, p10cr).
    Cmp,
}

impl BackendKind {
    /// The lower-case name used in configuration and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Builtin => "builtin",
            Self::Cfssl => "cfssl",
            Self::Ejbca => "ejbca",
            Self::Digicert => "digicert",
            Self::Est => "est",
            Self::Cmp => "cmp",
        }
    }
}

/// One named backend.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackendDef {
    /// The kind of CA.
    pub kind: BackendKind,
    /// Base URL of the CA's API (not for `builtin`).
    #[serde(default)]
    pub url: Option<String>,
    /// TLS towards the CA.
    #[serde(default)]
    pub tls: ClientTls,
    /// PEM file with the CA chain (issuing CA first) served to clients for this backend's
    /// routes; when absent it is fetched from the CA at start.
    #[serde(default)]
    pub ca_chain_file: Option<PathBuf>,
    /// Seconds one call may take before the client is answered; an enrollment that times out
    /// after it was sent is ambiguous and is never sent to another backend.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Calls in flight at once; further calls wait up to the timeout, then fail over.
    #[serde(default = "default_concurrency")]
    pub max_concurrent: usize,
    /// Extra attempts for calls that are safe to repeat (polls, chain reads, and any call
    /// that surely did not reach the CA).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// First backoff between attempts, doubled each time.
    #[serde(default = "default_backoff")]
    pub backoff_ms: u64,
    /// Consecutive failures that open the circuit breaker (0 disables it).
    #[serde(default = "default_breaker")]
    pub breaker_failures: u32,
    /// Seconds the breaker stays open before one trial call is let through.
    #[serde(default = "default_cooldown")]
    pub breaker_cooldown_secs: u64,
    /// Settings of a `cfssl` backend.
    #[serde(default)]
    pub cfssl: Option<CfsslSettings>,
    /// Settings of an `ejbca` backend.
    #[serde(default)]
    pub ejbca: Option<EjbcaSettings>,
    /// Settings of a `digicert` backend.
    #[serde(default)]
    pub digicert: Option<DigicertSettings>,
    /// Settings of an `est` backend.
    #[serde(default)]
    pub est: Option<EstSettings>,
    /// Settings of a `cmp` backend.
    #[serde(default)]
    pub cmp: Option<CmpSettings>,
}

fn default_timeout() -> u64 {
    10
}
fn default_concurrency() -> usize {
    64
}
fn default_retries() -> u32 {
    2
}
fn default_backoff() -> u64 {
    200
}
fn default_breaker() -> u32 {
    5
}
fn default_cooldown() -> u64 {
    30
}

/// Where a secret comes from: exactly one of an environment variable or a file.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// Environment variable holding the secret.
    #[serde(default)]
    pub env: Option<String>,
    /// File holding the secret (trailing newlines are ignored).
    #[serde(default)]
    pub file: Option<PathBuf>,
}

impl SecretRef {
    /// Reads the secret now.
    pub fn load(&self) -> Result<Secret, String> {
        let raw = match (&self.env, &self.file) {
            (Some(var), None) => std::env::var(var)
                .map_err(|_| format!("environment variable {var} is not set"))?
                .into_bytes(),
            (None, Some(path)) => std::fs::read(path)
                .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?,
            _ => return Err("a secret names exactly one of env or file".into()),
        };
        let end = raw
            .iter()
            .rposition(|b| !matches!(b, b'\n' | b'\r'))
            .map_or(0, |i| i + 1);
        Ok(Secret::new(raw[..end].to_vec()))
    }

    fn check(&self, what: &str) -> Result<(), String> {
        match (&self.env, &self.file) {
            (Some(_), None) | (None, Some(_)) => Ok(()),
            _ => Err(format!("{what}: name exactly one of env or file")),
        }
    }
}

/// TLS towards the CA.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTls {
    /// PEM file of the CAs trusted for the CA's server certificate; default: the system
    /// bundle (`/etc/ssl/certs/ca-certificates.crt`).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM file with our client certificate chain (mutual TLS), leaf first.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// Our client key, PKCS#8 or SEC1 PEM.
    #[serde(default)]
    pub client_key: Option<SecretRef>,
}

/// `cfssl serve` remote signing.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CfsslSettings {
    /// The signing profile.
    #[serde(default)]
    pub profile: Option<String>,
    /// The signer label (multi-root cfssl).
    #[serde(default)]
    pub label: Option<String>,
    /// Hex HMAC key: when set, requests go to `authsign` with a token.
    #[serde(default)]
    pub auth_key: Option<SecretRef>,
}

/// EJBCA REST API v1.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EjbcaSettings {
    /// Certificate profile name.
    pub certificate_profile: String,
    /// End entity profile name.
    pub end_entity_profile: String,
    /// CA name as EJBCA knows it.
    pub ca_name: String,
    /// The CA's subject DN, for revocation and chain retrieval (as EJBCA prints it).
    pub ca_subject_dn: String,
    /// End entity user name: `cn` (the subject's common name) or a fixed prefix followed by
    /// the common name, e.g. `gw-{cn}`.
    #[serde(default = "default_username")]
    pub username: String,
    /// End entity enrollment password.
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// Ask EJBCA to add the chain to the answer.
    #[serde(default = "yes")]
    pub include_chain: bool,
    /// Seconds a request held for approval asks the client to wait.
    #[serde(default = "default_retry_after")]
    pub retry_after_secs: u32,
}

fn default_username() -> String {
    "{cn}".into()
}
fn yes() -> bool {
    true
}

/// DigiCert CertCentral Services API v2.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DigicertSettings {
    /// API key, sent as `X-DC-DEVKEY`.
    pub api_key: SecretRef,
    /// Product name id in the order path, e.g. `private_ssl_plus` or `client_premium`.
    pub product: String,
    /// Organization id the certificates are ordered for.
    pub organization_id: u64,
    /// Order validity in years.
    #[serde(default = "one")]
    pub validity_years: u32,
    /// Signature hash asked for.
    #[serde(default = "default_hash")]
    pub signature_hash: String,
    /// Seconds a pending order asks the client to wait.
    #[serde(default = "default_retry_after")]
    pub retry_after_secs: u32,
    /// Ask DigiCert to skip its approval step (`skip_approval`); when false, orders wait for
    /// an approver and are answered pending.
    #[serde(default)]
    pub skip_approval: bool,
    /// Intermediate to issue from (`ca_cert_id`), when the account has several.
    #[serde(default)]
    pub ca_cert_id: Option<String>,
}

fn one() -> u32 {
    1
}
fn default_hash() -> String {
    "sha256".into()
}
fn default_retry_after() -> u32 {
    60
}

/// Another EST server.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EstSettings {
    /// HTTP Basic user name.
    #[serde(default)]
    pub username: Option<String>,
    /// HTTP Basic password.
    #[serde(default)]
    pub password: Option<SecretRef>,
}

/// How our CMP requests are protected.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum CmpProtection {
    /// PasswordBasedMac with a shared secret.
    #[default]
    Mac,
    /// A signature with our own key and certificate.
    Signature,
}

/// Another CMP server.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CmpSettings {
    /// Protection of our requests.
    #[serde(default)]
    pub protection: CmpProtection,
    /// senderKID for MAC protection (the reference the server knows the secret by).
    #[serde(default)]
    pub reference: Option<String>,
    /// The shared MAC secret.
    #[serde(default)]
    pub secret: Option<SecretRef>,
    /// Our signer certificate chain (PEM, leaf first) for signature protection.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// Our signer key (PKCS#8 PEM) for signature protection.
    #[serde(default)]
    pub key: Option<SecretRef>,
    /// PEM file of the server's signer certificate(s) whose signatures we accept on replies
    /// that are signature-protected.
    #[serde(default)]
    pub server_cert: Option<PathBuf>,
    /// Recipient name, RFC 4514 text (default: empty).
    #[serde(default)]
    pub recipient: Option<String>,
}

impl BackendDef {
    /// Checks what serde cannot: the kind's sub-table and the secret references.
    pub fn validate(&self, name: &str) -> Result<(), String> {
        let bad = |m: &str| Err(format!("backend {name:?}: {m}"));
        let tables = [
            (BackendKind::Cfssl, self.cfssl.is_some()),
            (BackendKind::Ejbca, self.ejbca.is_some()),
            (BackendKind::Digicert, self.digicert.is_some()),
            (BackendKind::Est, self.est.is_some()),
            (BackendKind::Cmp, self.cmp.is_some()),
        ];
        for (kind, present) in tables {
            if present && kind != self.kind {
                return bad(&format!(
                    "a [{}] table does not fit kind {:?}",
                    kind.as_str(),
                    self.kind.as_str()
                ));
            }
        }
        if self.kind == BackendKind::Builtin {
            return Ok(());
        }
        let Some(url) = &self.url else {
            return bad("url is required");
        };
        if !(url.starts_with("http://") || url.starts_with("https://"))
            || url.parse::<hyper::Uri>().is_err()
        {
            return bad("url must be an http:// or https:// URL");
        }
        if self.timeout_secs == 0 || self.max_concurrent == 0 {
            return bad("timeout_secs and max_concurrent must be at least 1");
        }
        if self.tls.client_cert.is_some() != self.tls.client_key.is_some() {
            return bad("tls.client_cert and tls.client_key go together");
        }
        if let Some(k) = &self.tls.client_key {
            k.check("tls.client_key").or_else(|m| bad(&m))?;
        }
        self.validate_kind().or_else(|m| bad(&m))
    }

    fn validate_kind(&self) -> Result<(), String> {
        match self.kind {
            BackendKind::Builtin => Ok(()),
            BackendKind::Cfssl => match &self.cfssl {
                Some(CfsslSettings {
                    auth_key: Some(k), ..
                }) => k.check("cfssl.auth_key"),
                _ => Ok(()),
            },
            BackendKind::Ejbca => match &self.ejbca {
                None => Err("kind ejbca needs an [ejbca] table".into()),
                Some(e) => e
                    .password
                    .as_ref()
                    .map_or(Ok(()), |p| p.check("ejbca.password")),
            },
            BackendKind::Digicert => match &self.digicert {
                None => Err("kind digicert needs a [digicert] table".into()),
                Some(d) => d.api_key.check("digicert.api_key"),
            },
            BackendKind::Est => match &self.est {
                Some(EstSettings {
                    password: Some(p), ..
                }) => p.check("est.password"),
                _ => Ok(()),
            },
            BackendKind::Cmp => self.validate_cmp(),
        }
    }

    fn validate_cmp(&self) -> Result<(), String> {
        let Some(c) = &self.cmp else {
            return Err("kind cmp needs a [cmp] table".into());
        };
        match c.protection {
            CmpProtection::Mac => match (&c.reference, &c.secret) {
                (Some(_), Some(s)) => s.check("cmp.secret"),
                _ => Err("MAC protection needs cmp.reference and cmp.secret".into()),
            },
            CmpProtection::Signature => match (&c.cert, &c.key) {
                (Some(_), Some(k)) => k.check("cmp.key"),
                _ => Err("signature protection needs cmp.cert and cmp.key".into()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_from_file_drops_trailing_newlines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, b"abc\r\n\n").unwrap();
        let s = SecretRef {
            env: None,
            file: Some(path),
        };
        assert_eq!(s.load().unwrap().expose(), b"abc");
        assert!(SecretRef::default().load().is_err());
    }

    #[test]
    fn kind_tables_must_fit() {
        let text = "kind = \"cfssl\"\nurl = \"http://127.0.0.1:1\"\n[ejbca]\ncertificate_profile=\"a\"\nend_entity_profile=\"b\"\nca_name=\"c\"\nca_subject_dn=\"CN=c\"\n";
        let def: BackendDef = toml::from_str(text).unwrap();
        assert!(def.validate("x").unwrap_err().contains("does not fit"));
        let def: BackendDef = toml::from_str("kind = \"cfssl\"\n").unwrap();
        assert!(def.validate("x").unwrap_err().contains("url"));
    }
}
