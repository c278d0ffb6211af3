//! The `[acme]` section: the ACME server's directory meta, validation, rate limits and the
//! per-route settings (EAB, validation target, profiles).
//!
//! Every field has a default, so a configuration without `[acme]` serves ACME on every route:
//! accounts need external account binding unless the route allows `anonymous`, challenges are
//! validated on the standard ports, and the system resolver answers dns-01 queries.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::{AuthMethod, Config, ConfigError, Route};

/// ACME server settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Acme {
    /// Serve `/acme[/label]/...` at all.
    pub enabled: bool,
    /// The externally visible `https://host[:port]` of the gateway; without it, URLs are built
    /// from the request's Host.
    pub base_url: Option<String>,
    /// Terms of service URL; when set, newAccount must agree to it.
    pub terms_of_service: Option<String>,
    /// A web page about this server, shown in the directory.
    pub website: Option<String>,
    /// CAA issuer domains that name this server.
    pub caa_identities: Vec<String>,
    /// The nameserver dns-01 queries go to (`ip:port`); the system resolver when absent.
    pub resolver: Option<SocketAddr>,
    /// Seconds one validation attempt may take.
    pub validation_timeout_secs: u64,
    /// Attempts per challenge before it is declared invalid.
    pub validation_attempts: u32,
    /// Seconds between attempts.
    pub validation_retry_secs: u64,
    /// Validations running at once; more wait their turn (off the request path).
    pub max_concurrent_validations: usize,
    /// Seconds an issued nonce stays usable.
    pub nonce_lifetime_secs: i64,
    /// Seconds an order stays usable.
    pub order_lifetime_secs: i64,
    /// Seconds an authorization stays usable.
    pub authz_lifetime_secs: i64,
    /// Rate limits.
    pub rate_limits: AcmeRateLimits,
    /// Lets routes use `validation = "always-pass"`, which issues for any name without a
    /// challenge check. For load benchmarks on a throw-away gateway only, never in production;
    /// without it a configuration naming such a route is refused at start.
    pub insecure_benchmark_validation: bool,
    /// Per-route settings; routes not listed use the defaults.
    pub routes: Vec<AcmeRoute>,
}

/// Fixed-window rate limits, answered with `rateLimited` and `Retry-After`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcmeRateLimits {
    /// Window length in seconds.
    pub window_secs: i64,
    /// New orders one account may place per window.
    pub orders_per_account: u32,
    /// New orders naming one identifier per window (over all accounts).
    pub orders_per_identifier: u32,
}

/// How a route validates challenges.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AcmeValidation {
    /// Real http-01, dns-01 and tls-alpn-01 checks over the network.
    #[default]
    Network,
    /// Every challenge passes without a check. Benchmarks only: needs
    /// `[acme] insecure_benchmark_validation = true`, and is refused on the default route.
    AlwaysPass,
}

/// The ACME settings of one route.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeRoute {
    /// The route label (`""` for the default route).
    #[serde(default)]
    pub label: String,
    /// Whether newAccount needs external account binding (an enrollment token of this route).
    /// Default: required unless the route allows `anonymous`.
    #[serde(default)]
    pub eab_required: Option<bool>,
    /// Validation mode.
    #[serde(default)]
    pub validation: AcmeValidation,
    /// Port the http-01 validator connects to.
    #[serde(default = "default_http01_port")]
    pub http01_port: u16,
    /// Port the tls-alpn-01 validator connects to.
    #[serde(default = "default_tls_alpn01_port")]
    pub tls_alpn01_port: u16,
    /// Connect to this address instead of resolving DNS identifiers (tests; loopback only).
    #[serde(default)]
    pub resolve_to: Option<IpAddr>,
    /// Certificate profiles offered (draft-aaron-acme-profiles): name to what it issues.
    #[serde(default)]
    pub profiles: BTreeMap<String, AcmeProfile>,
}

/// One ACME profile: orders that name it are issued on another route (its profile, backend
/// and policy).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeProfile {
    /// The route that issues for this profile.
    pub route: String,
    /// What clients see in the directory.
    #[serde(default)]
    pub description: String,
}

fn default_http01_port() -> u16 {
    80
}

fn default_tls_alpn01_port() -> u16 {
    443
}

impl Default for Acme {
    fn default() -> Self {
        Self {
            enabled: true,
            base_url: None,
            terms_of_service: None,
            website: None,
            caa_identities: Vec::new(),
            resolver: None,
            validation_timeout_secs: 10,
            validation_attempts: 3,
            validation_retry_secs: 2,
            max_concurrent_validations: 64,
            nonce_lifetime_secs: 3600,
            order_lifetime_secs: 7 * 86_400,
            authz_lifetime_secs: 7 * 86_400,
            rate_limits: AcmeRateLimits::default(),
            insecure_benchmark_validation: false,
            routes: Vec::new(),
        }
    }
}

impl Default for AcmeRateLimits {
    fn default() -> Self {
        Self {
            window_secs: 3600,
            orders_per_account: 300,
            orders_per_identifier: 50,
        }
    }
}

impl AcmeRoute {
    /// The defaults for a route that `[acme]` does not list.
    pub fn default_for(label: &str) -> Self {
        Self {
            label: label.to_owned(),
            eab_required: None,
            validation: AcmeValidation::Network,
            http01_port: default_http01_port(),
            tls_alpn01_port: default_tls_alpn01_port(),
            resolve_to: None,
            profiles: BTreeMap::new(),
        }
    }

    /// Whether newAccount needs external account binding on `route`.
    pub fn requires_eab(&self, route: &Route) -> bool {
        self.eab_required
            .unwrap_or_else(|| !route.auth.contains(&AuthMethod::Anonymous))
    }
}

impl Acme {
    /// The ACME settings of route `label` (listed or default).
    pub fn route(&self, label: &str) -> AcmeRoute {
        self.routes
            .iter()
            .find(|r| r.label == label)
            .cloned()
            .unwrap_or_else(|| AcmeRoute::default_for(label))
    }

    /// Checks what serde cannot.
    pub(super) fn validate(&self, config: &Config) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(format!("acme: {m}")));
        if self.validation_timeout_secs == 0 || self.validation_attempts == 0 {
            return bad(
                "validation_timeout_secs and validation_attempts must be at least 1".into(),
            );
        }
        if self.max_concurrent_validations == 0 || self.nonce_lifetime_secs <= 0 {
            return bad(
                "max_concurrent_validations and nonce_lifetime_secs must be positive".into(),
            );
        }
        if self.order_lifetime_secs <= 0 || self.authz_lifetime_secs <= 0 {
            return bad("order and authorization lifetimes must be positive".into());
        }
        let rl = &self.rate_limits;
        if rl.window_secs <= 0 || rl.orders_per_account == 0 || rl.orders_per_identifier == 0 {
            return bad("rate limits must be positive".into());
        }
        if let Some(url) = &self.base_url
            && !url.starts_with("https://")
        {
            return bad(format!("base_url {url:?} must start with https://"));
        }
        let mut seen = std::collections::HashSet::new();
        for r in &self.routes {
            if !seen.insert(r.label.as_str()) {
                return bad(format!("route {:?} is listed twice", r.label));
            }
            validate_route(r, config).or_else(|m| bad(format!("route {:?}: {m}", r.label)))?;
            if r.validation == AcmeValidation::AlwaysPass && !self.insecure_benchmark_validation {
                return bad(format!(
                    "route {:?}: validation = \"always-pass\" issues without any challenge \
                     check; it is for benchmarks only and needs \
                     insecure_benchmark_validation = true in [acme]",
                    r.label
                ));
            }
        }
        Ok(())
    }
}

fn validate_route(r: &AcmeRoute, config: &Config) -> Result<(), String> {
    if config.route(&r.label).is_none() {
        return Err("no [[routes]] entry has this label".into());
    }
    if r.validation == AcmeValidation::AlwaysPass && r.label.is_empty() {
        return Err(
            "validation = \"always-pass\" is for a dedicated benchmark route, \
                    never the default route"
                .into(),
        );
    }
    if let Some(ip) = r.resolve_to
        && !ip.is_loopback()
    {
        return Err(format!("resolve_to {ip} must be a loopback address"));
    }
    for (name, p) in &r.profiles {
        if config.route(&p.route).is_none() {
            return Err(format!(
                "profile {name:?} names unknown route {:?}",
                p.route
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::Config;

    const ROUTES: &str = "[[routes]]\nlabel = \"\"\nprofile = \"device\"\n\
                          [[routes]]\nlabel = \"bench\"\nprofile = \"device\"\n";

    fn parse(acme: &str) -> Result<Config, String> {
        let text = format!("{ROUTES}{acme}");
        Config::parse(&text, Path::new("t.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn always_pass_needs_the_explicit_benchmark_flag() {
        let route = "[[acme.routes]]\nlabel = \"bench\"\nvalidation = \"always-pass\"\n";
        let refused = parse(route).expect_err("always-pass without the flag");
        assert!(
            refused.contains("insecure_benchmark_validation"),
            "{refused}"
        );

        let flagged = format!("[acme]\ninsecure_benchmark_validation = true\n{route}");
        let config = parse(&flagged).expect("always-pass with the flag");
        assert!(config.acme.insecure_benchmark_validation);
    }

    #[test]
    fn always_pass_is_refused_on_the_default_route_even_with_the_flag() {
        let text = "[acme]\ninsecure_benchmark_validation = true\n\
                    [[acme.routes]]\nlabel = \"\"\nvalidation = \"always-pass\"\n";
        let refused = parse(text).expect_err("always-pass on the default route");
        assert!(refused.contains("benchmark route"), "{refused}");
    }
}
