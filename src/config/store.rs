//! `[store]`: where the gateway keeps its state.
//!
//! Without a `url` or `url_env` the store is SQLite in the data directory (the embedded
//! default). Either of them selects PostgreSQL, which several gateway nodes can share. The
//! password never appears in the configuration: `url_env` names an environment variable
//! holding the whole URL, or `password_env` one holding only the password.

use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use tokio_postgres::config::SslMode;

use super::ConfigError;

/// The store section.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// A PostgreSQL URL without a password, e.g. `postgres://enrollgate@db:5432/enrollgate`.
    pub url: Option<String>,
    /// The environment variable holding the PostgreSQL URL (which may carry a password).
    pub url_env: Option<String>,
    /// The environment variable holding the password for `url`.
    pub password_env: Option<String>,
    /// PEM file of the CAs the database server's certificate must chain to; setting it
    /// makes TLS required (and the server's name checked against the URL's host).
    pub tls_ca_file: Option<PathBuf>,
    /// Connections each node keeps open at most.
    pub pool_size: usize,
    /// Seconds to connect (TCP, startup and authentication) before giving up.
    pub connect_timeout_secs: u64,
    /// Seconds one query may take, waiting for a free connection included.
    pub query_timeout_secs: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: None,
            url_env: None,
            password_env: None,
            tls_ca_file: None,
            pool_size: 16,
            connect_timeout_secs: 5,
            query_timeout_secs: 10,
        }
    }
}

/// Where the PostgreSQL URL of a [`StoreConfig`] comes from, for messages that never show it.
const URL_SOURCE: &str = "store.url";

impl StoreConfig {
    /// Whether this selects PostgreSQL (otherwise SQLite in the data directory).
    pub fn is_postgres(&self) -> bool {
        self.url.is_some() || self.url_env.is_some()
    }

    /// Checks the section without reading the environment.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(format!("[store] {m}")));
        if self.url.is_some() && self.url_env.is_some() {
            return bad("set url or url_env, not both".into());
        }
        if self.password_env.is_some() && !self.is_postgres() {
            return bad("password_env needs url (or url_env)".into());
        }
        if self.tls_ca_file.is_some() && !self.is_postgres() {
            return bad("tls_ca_file needs url (or url_env)".into());
        }
        for (field, name) in [
            ("url_env", &self.url_env),
            ("password_env", &self.password_env),
        ] {
            if let Some(name) = name {
                if !is_env_name(name) {
                    return bad(format!(
                        "{field} {name:?} is not an environment variable name \
                         (letters, digits and _, not starting with a digit)"
                    ));
                }
            }
        }
        if let Some(url) = &self.url {
            let parsed = self
                .parse_url(url, URL_SOURCE)
                .map_err(ConfigError::Invalid)?;
            if parsed.get_password().is_some() {
                return bad(
                    "url carries a password: keep the whole URL in the environment \
                     variable named by url_env, or only the password in the one named by \
                     password_env"
                        .into(),
                );
            }
        }
        if self.pool_size == 0 || self.pool_size > 1024 {
            return bad("pool_size must be between 1 and 1024".into());
        }
        for (field, secs) in [
            ("connect_timeout_secs", self.connect_timeout_secs),
            ("query_timeout_secs", self.query_timeout_secs),
        ] {
            if secs == 0 || secs > 3600 {
                return bad(format!("{field} must be between 1 and 3600"));
            }
        }
        Ok(())
    }

    /// The PostgreSQL connection settings, reading `url_env` and `password_env` now;
    /// `None` when the store is SQLite. Messages name the variables, never their values.
    pub fn postgres(&self) -> Result<Option<tokio_postgres::Config>, String> {
        let mut config = match (&self.url, &self.url_env) {
            (Some(url), _) => self.parse_url(url, URL_SOURCE)?,
            (None, Some(var)) => {
                let url = read_env(var, "store.url_env")?;
                self.parse_url(&url, &format!("the URL in ${var}"))?
            }
            (None, None) => return Ok(None),
        };
        if let Some(var) = &self.password_env {
            config.password(read_env(var, "store.password_env")?);
        }
        if self.tls_ca_file.is_some() {
            config.ssl_mode(SslMode::Require);
        }
        Ok(Some(config))
    }

    /// Parses a PostgreSQL URL or key=value string. The parser's message is dropped (it may
    /// quote the text); the TLS mode must fit `tls_ca_file`.
    fn parse_url(&self, url: &str, source: &str) -> Result<tokio_postgres::Config, String> {
        let config = tokio_postgres::Config::from_str(url).map_err(|_| {
            format!(
                "{source} is not a PostgreSQL connection URL \
                 (postgres://USER@HOST:PORT/DATABASE?connect_timeout=..)"
            )
        })?;
        let tls = self.tls_ca_file.is_some();
        match config.get_ssl_mode() {
            SslMode::Disable if tls => Err(format!(
                "{source} says sslmode=disable, but [store] tls_ca_file asks for TLS"
            )),
            SslMode::Disable | SslMode::Prefer => Ok(config),
            _ if tls => Ok(config),
            _ => Err(format!(
                "{source} asks for TLS: set [store] tls_ca_file to the CA file the \
                 server's certificate chains to"
            )),
        }
    }
}

fn read_env(var: &str, field: &str) -> Result<String, String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(format!("environment variable {var} ({field}) is not set")),
    }
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<StoreConfig, String> {
        let s: StoreConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        s.validate().map_err(|e| e.to_string())?;
        Ok(s)
    }

    #[test]
    fn empty_section_is_sqlite() {
        let s = check("").unwrap();
        assert!(!s.is_postgres());
        assert!(s.postgres().unwrap().is_none());
    }

    #[test]
    fn a_url_without_password_selects_postgres() {
        let s = check("url = \"postgres://eg@db.example:5433/eg\"").unwrap();
        assert!(s.is_postgres());
        let pg = s.postgres().unwrap().unwrap();
        assert_eq!(pg.get_user(), Some("eg"));
        assert_eq!(pg.get_ports(), [5433]);
    }

    #[test]
    fn mistakes_are_explained_without_echoing_the_url() {
        let e = check("url = \"postgres://eg:hunter2@db/eg\"").unwrap_err();
        assert!(e.contains("carries a password"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = check("url = \"postgres://eg:hunter2@db/eg?sslmode=nonsense\"").unwrap_err();
        assert!(e.contains("not a PostgreSQL connection URL"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = check("url = \"postgres://eg@db/eg?sslmode=require\"").unwrap_err();
        assert!(e.contains("tls_ca_file"), "{e}");
        let e = check("url = \"postgres://eg@db/eg?sslmode=disable\"\ntls_ca_file = \"ca.pem\"")
            .unwrap_err();
        assert!(e.contains("sslmode=disable"), "{e}");
        let e = check("tls_ca_file = \"ca.pem\"").unwrap_err();
        assert!(e.contains("needs url"), "{e}");
        let e = check("url = \"postgres://eg@db/eg\"\nurl_env = \"X\"").unwrap_err();
        assert!(e.contains("not both"), "{e}");
        let e = check("url_env = \"1DB\"").unwrap_err();
        assert!(e.contains("not an environment variable name"), "{e}");
        let e = check("password_env = \"PW\"").unwrap_err();
        assert!(e.contains("needs url"), "{e}");
        let e = check("url_env = \"DB\"\npool_size = 0").unwrap_err();
        assert!(e.contains("pool_size"), "{e}");
        let e = check("url_env = \"DB\"\nquery_timeout_secs = 0").unwrap_err();
        assert!(e.contains("query_timeout_secs"), "{e}");
        let e = check("uri = \"postgres://db\"").unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn a_missing_variable_is_named() {
        let s = check("url_env = \"ENROLLGATE_TEST_SURELY_UNSET_URL\"").unwrap();
        let e = s.postgres().unwrap_err();
        assert!(e.contains("ENROLLGATE_TEST_SURELY_UNSET_URL"), "{e}");
    }
}
