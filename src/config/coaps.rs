//! The `[coaps]` section: the DTLS 1.2 listener for EST-coaps (RFC 9148) and CMP over CoAP
//! (RFC 9482). Its address is `listen.coaps`.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// CoAPs listener limits.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Coaps {
    /// DTLS sessions kept at once; a new peer beyond it is not answered.
    pub max_sessions: usize,
    /// Handshakes in progress at once (after the cookie exchange, which costs no state).
    pub max_handshakes: usize,
    /// Seconds a handshake may take before the peer is dropped.
    pub handshake_timeout_secs: u64,
    /// Seconds a session may stay silent before it is closed.
    pub idle_timeout_secs: u64,
    /// Accept PSK-AES128-CCM8 with enrollment tokens (identity = token id, key = secret).
    pub psk: bool,
    /// Path MTU in bytes (IP packet size); records and CoAP blocks are sized to fit it.
    pub mtu: u16,
    /// Largest request body reassembled from blocks, and largest response served.
    pub max_body_bytes: usize,
    /// DTLS 1.2 suites offered besides RFC 7925's CCM-8 ones, by OpenSSL name; only AEAD
    /// suites with ECDHE or PSK key exchange (`ECDHE-ECDSA-AES128-GCM-SHA256`,
    /// `ECDHE-ECDSA-CHACHA20-POLY1305`, `PSK-AES128-GCM-SHA256`, ...).
    pub extra_ciphers: Vec<String>,
}

impl Default for Coaps {
    fn default() -> Self {
        Self {
            max_sessions: 1000,
            max_handshakes: 64,
            handshake_timeout_secs: 10,
            idle_timeout_secs: 120,
            psk: true,
            mtu: 1280,
            max_body_bytes: 16 * 1024,
            extra_ciphers: Vec::new(),
        }
    }
}

impl Coaps {
    /// Checks value ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(format!("coaps.{m}")));
        if self.max_sessions == 0 || self.max_handshakes == 0 {
            return bad("max_sessions and max_handshakes must be at least 1");
        }
        if self.handshake_timeout_secs == 0 || self.idle_timeout_secs == 0 {
            return bad("handshake_timeout_secs and idle_timeout_secs must be at least 1");
        }
        if !(576..=9000).contains(&self.mtu) {
            return bad("mtu must be between 576 and 9000");
        }
        if self.max_body_bytes < 1024 || self.max_body_bytes > 1024 * 1024 {
            return bad("max_body_bytes must be between 1 KiB and 1 MiB");
        }
        if let Some(suite) = self.extra_ciphers.iter().find(|c| !is_modern_aead(c)) {
            return bad(&format!(
                "extra_ciphers: {suite} is not an ECDHE-ECDSA or PSK AEAD suite (GCM, CCM, \
                 CHACHA20-POLY1305)"
            ));
        }
        Ok(())
    }
}

/// Whether an OpenSSL suite name is an AEAD suite with ECDHE-ECDSA or PSK key exchange; RSA
/// suites are left out since the gateway's DTLS identity is an ECDSA key.
fn is_modern_aead(name: &str) -> bool {
    let kx = ["ECDHE-ECDSA-", "PSK-", "ECDHE-PSK-"]
        .iter()
        .any(|p| name.starts_with(p));
    let aead = ["-GCM-", "-CCM", "CHACHA20-POLY1305"]
        .iter()
        .any(|m| name.contains(m));
    kx && aead && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_modern_aead_suites_may_be_added() {
        for ok in [
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            "PSK-AES256-CCM8",
            "ECDHE-PSK-CHACHA20-POLY1305",
        ] {
            assert!(is_modern_aead(ok), "{ok}");
        }
        for bad in [
            "ECDHE-RSA-AES128-GCM-SHA256",
            "ECDHE-ECDSA-AES128-SHA",
            "PSK-AES128-CBC-SHA",
            "ALL",
            "ECDHE-ECDSA-AES128-GCM-SHA256:NULL",
        ] {
            assert!(!is_modern_aead(bad), "{bad}");
        }
        let c = Coaps {
            extra_ciphers: vec!["AES128-SHA".into()],
            ..Coaps::default()
        };
        assert!(c.validate().is_err());
    }
}
