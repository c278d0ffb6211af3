//! Requester authentication: tokens, certificates, static passwords.

use std::collections::HashMap;
use std::sync::Arc;

use der::Decode;
use enrollgate_model::{Credential, RejectReason, Secret};
use rustls::pki_types::{CertificateDer, TrustAnchor, UnixTime};
use subtle::ConstantTimeEq;
use x509_cert::Certificate;
use x509_cert::name::Name;

use crate::config::{AuthMethod, Config, Route};
use crate::store::{Store, TokenRecord};
use crate::tokens::Tokens;

/// Who the requester turned out to be.
#[derive(Clone, Debug)]
pub enum Authenticated {
    /// A valid enrollment token (a use is taken only when issuance proceeds).
    Token(TokenRecord),
    /// A certificate that chains to the route's anchors or to our own CA.
    Certificate {
        /// Its subject.
        subject: Name,
        /// Its serial, lower-case hex.
        serial: String,
        /// Whether our own CA issued it (renewal needs that).
        ours: bool,
    },
    /// The route's static password.
    Password,
    /// Nobody in particular, on a route that allows that.
    Anonymous,
    /// A challenge password that the route's webhook checks (it is asked before issuance).
    Webhook(Secret),
}

impl Authenticated {
    /// A description for audit and logs; never a secret.
    pub fn label(&self) -> String {
        match self {
            Self::Token(t) => format!("token:{}", t.id),
            Self::Certificate {
                subject, serial, ..
            } => {
                format!(
                    "cert:{} serial={serial}",
                    enrollgate_pkix::name_to_string(subject)
                )
            }
            Self::Password => "password".into(),
            Self::Anonymous => "anonymous".into(),
            Self::Webhook(_) => "webhook".into(),
        }
    }
}

/// Checks credentials against the store, the token key and the trust anchors.
pub struct Authenticator {
    tokens: Arc<Tokens>,
    store: Arc<dyn Store>,
    own_root: Vec<u8>,
    own_chain: Vec<Vec<u8>>,
    anchors: HashMap<String, Vec<Vec<u8>>>,
    passwords: HashMap<String, Vec<u8>>,
}

impl Authenticator {
    /// Prepares anchors and passwords for every route.
    pub fn new(
        config: &Config,
        tokens: Arc<Tokens>,
        store: Arc<dyn Store>,
        own_chain: Vec<Vec<u8>>,
    ) -> Result<Self, String> {
        let mut anchors = HashMap::new();
        let mut passwords = HashMap::new();
        for route in &config.routes {
            let mut certs = Vec::new();
            for path in &route.trust_anchors {
                certs.extend(crate::ca::read_pem_certs(path).map_err(|e| e.to_string())?);
            }
            anchors.insert(route.label.clone(), certs);
            if let Some(var) = &route.password_env {
                let value = std::env::var(var).map_err(|_| {
                    format!(
                        "route {:?}: environment variable {var} is not set",
                        route.label
                    )
                })?;
                passwords.insert(route.label.clone(), value.into_bytes());
            }
        }
        let own_root = own_chain.last().cloned().unwrap_or_default();
        Ok(Self {
            tokens,
            store,
            own_root,
            own_chain,
            anchors,
            passwords,
        })
    }

    /// Authenticates a credential on a route.
    pub async fn authenticate(
        &self,
        route: &Route,
        credential: &Credential,
    ) -> Result<Authenticated, RejectReason> {
        let allows = |m: AuthMethod| route.auth.contains(&m);
        match credential {
            Credential::Token { id, secret } if allows(AuthMethod::Token) => {
                let record = self
                    .tokens
                    .check(self.store.as_ref(), id, secret)
                    .await
                    .map_err(internal)?;
                self.usable_token(route, record)
            }
            Credential::TokenProven { id } if allows(AuthMethod::Token) => {
                let record = self.store.token(id).await.map_err(internal)?;
                self.usable_token(route, record)
            }
            Credential::Certificate { chain } if allows(AuthMethod::Certificate) => {
                self.certificate(route, chain).await
            }
            Credential::Password(secret) if allows(AuthMethod::Password) => {
                let expected = self
                    .passwords
                    .get(&route.label)
                    .ok_or(RejectReason::Unauthenticated)?;
                if bool::from(expected.as_slice().ct_eq(secret.expose())) {
                    Ok(Authenticated::Password)
                } else {
                    Err(RejectReason::Unauthenticated)
                }
            }
            Credential::Token { secret, .. } | Credential::Password(secret)
                if allows(AuthMethod::Webhook) && !secret.expose().is_empty() =>
            {
                Ok(Authenticated::Webhook(secret.clone()))
            }
            Credential::Anonymous if allows(AuthMethod::Anonymous) => Ok(Authenticated::Anonymous),
            _ => Err(RejectReason::Unauthenticated),
        }
    }

    fn usable_token(
        &self,
        route: &Route,
        record: Option<TokenRecord>,
    ) -> Result<Authenticated, RejectReason> {
        let record = record.ok_or(RejectReason::Unauthenticated)?;
        let spent = record.uses_left.is_some_and(|n| n <= 0);
        if record.route != route.label || record.expires_at <= crate::clock::now() || spent {
            return Err(RejectReason::Unauthenticated);
        }
        Ok(Authenticated::Token(record))
    }

    async fn certificate(
        &self,
        route: &Route,
        chain: &[Vec<u8>],
    ) -> Result<Authenticated, RejectReason> {
        let leaf = chain.first().ok_or(RejectReason::Unauthenticated)?;
        let ours = verify_chain(
            leaf,
            &chain[1..],
            std::slice::from_ref(&self.own_root),
            &self.own_chain,
        );
        let theirs = || {
            let anchors = self
                .anchors
                .get(&route.label)
                .map(Vec::as_slice)
                .unwrap_or_default();
            !anchors.is_empty() && verify_chain(leaf, &chain[1..], anchors, &[])
        };
        if !ours && !theirs() {
            return Err(RejectReason::Unauthenticated);
        }
        let cert = Certificate::from_der(leaf).map_err(|_| RejectReason::Unauthenticated)?;
        let tbs = cert.tbs_certificate();
        let serial = hex::encode(tbs.serial_number().as_bytes());
        if ours {
            // A certificate we issued and later revoked authenticates nothing.
            let record = self.store.certificate(&serial).await.map_err(internal)?;
            if record.is_none_or(|r| r.revoked.is_some()) {
                return Err(RejectReason::Unauthenticated);
            }
        }
        Ok(Authenticated::Certificate {
            subject: tbs.subject().clone(),
            serial,
            ours,
        })
    }
}

/// Whether `leaf` chains to one of `anchors` through `presented` and `extra` intermediates,
/// is valid now, and may be used for client authentication.
fn verify_chain(
    leaf: &[u8],
    presented: &[Vec<u8>],
    anchors: &[Vec<u8>],
    extra: &[Vec<u8>],
) -> bool {
    let anchor_ders: Vec<CertificateDer<'_>> = anchors
        .iter()
        .map(|a| CertificateDer::from(a.as_slice()))
        .collect();
    let anchors: Vec<TrustAnchor<'_>> = anchor_ders
        .iter()
        .filter_map(|a| webpki::anchor_from_trusted_cert(a).ok())
        .collect();
    let intermediates: Vec<CertificateDer<'_>> = presented
        .iter()
        .chain(extra)
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let leaf = CertificateDer::from(leaf);
    let Ok(ee) = webpki::EndEntityCert::try_from(&leaf) else {
        return false;
    };
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &intermediates,
        UnixTime::now(),
        webpki::KeyUsage::client_auth(),
        None,
        None,
    )
    .is_ok()
}

fn internal(e: crate::store::StoreError) -> RejectReason {
    tracing::error!(error = %e, "store failed during authentication");
    RejectReason::Internal
}
