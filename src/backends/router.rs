//! The router: one [`CaBackend`] for the registrar that picks backends per route and fails
//! over in order, only where the previous backend surely did not issue.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use der::Decode;
use x509_cert::Certificate;

use super::config::{BUILTIN, BackendKind};
use super::{
    BackendAnswer, BackendError, BackendHealth, BuiltinBackend, CaBackend, Guarded, Resilience,
    cfssl, cmp, digicert, ejbca, est, verify,
};
use crate::ca::BuiltinCa;
use crate::config::Config;
use crate::issuance::Approved;
use crate::metrics::Metrics;

/// Separates the backend name from the backend's own reference in pending references.
const REFERENCE_SEPARATOR: char = ':';

/// Routes each request to its route's backends.
pub struct Router {
    backends: BTreeMap<String, Arc<Guarded>>,
    routes: HashMap<String, Vec<String>>,
}

impl Router {
    /// Builds every configured backend (reading their secrets now) and the route table.
    pub fn from_config(
        config: &Config,
        ca: Arc<BuiltinCa>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, String> {
        let mut backends = BTreeMap::new();
        let builtin: Arc<dyn CaBackend> = Arc::new(BuiltinBackend::new(ca));
        let guarded = Guarded::new(
            BUILTIN,
            builtin,
            Resilience::builtin(),
            Vec::new(),
            metrics.clone(),
        );
        backends.insert(BUILTIN.to_owned(), Arc::new(guarded));
        for (name, def) in &config.backends {
            if def.kind == BackendKind::Builtin {
                continue;
            }
            let inner = build(def).map_err(|e| format!("backend {name:?}: {e}"))?;
            let chain = match &def.ca_chain_file {
                Some(path) => {
                    let pem = std::fs::read(path).map_err(|e| {
                        format!("backend {name:?}: reading {}: {e}", path.display())
                    })?;
                    verify::pem_certificates(&pem).map_err(|e| {
                        format!("backend {name:?}: {}: {}", path.display(), e.detail)
                    })?
                }
                None => Vec::new(),
            };
            let guarded = Guarded::new(
                name,
                inner,
                Resilience::from_def(def),
                chain,
                metrics.clone(),
            );
            backends.insert(name.clone(), Arc::new(guarded));
        }
        let routes = config
            .routes
            .iter()
            .map(|r| {
                let list = if r.backends.is_empty() {
                    vec![BUILTIN.to_owned()]
                } else {
                    r.backends.clone()
                };
                (r.label.clone(), list)
            })
            .collect();
        Ok(Self { backends, routes })
    }

    /// Reads the CA chains the configuration did not give, each within its timeout.
    pub async fn fetch_chains(&self) {
        for b in self.backends.values() {
            if !b.ensure_chain().await {
                tracing::warn!(backend = b.name(), "CA chain not known yet; will retry");
            }
        }
    }

    /// Keeps trying to learn unknown chains in the background, every `every`.
    pub fn spawn_chain_refresh(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let router = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                for b in router.backends.values() {
                    let _ = b.ensure_chain().await;
                }
            }
        })
    }

    /// Whether every route has a backend whose circuit breaker is not open.
    fn routes_ready(&self) -> bool {
        self.routes.values().all(|names| {
            names.iter().any(|n| {
                self.backends
                    .get(n)
                    .is_some_and(|b| b.health_entry().breaker != "open")
            })
        })
    }

    fn route_backends(&self, route: &str) -> Vec<&Arc<Guarded>> {
        let builtin = [BUILTIN.to_owned()];
        let names = self.routes.get(route).map_or(&builtin[..], Vec::as_slice);
        names.iter().filter_map(|n| self.backends.get(n)).collect()
    }
}

/// Makes the backend a definition describes.
fn build(def: &super::BackendDef) -> Result<Arc<dyn CaBackend>, String> {
    Ok(match def.kind {
        BackendKind::Builtin => return Err("builtin is always present".into()),
        BackendKind::Cfssl => Arc::new(cfssl::CfsslBackend::new(def)?),
        BackendKind::Ejbca => Arc::new(ejbca::EjbcaBackend::new(def)?),
        BackendKind::Digicert => Arc::new(digicert::DigicertBackend::new(def)?),
        BackendKind::Est => Arc::new(est::EstBackend::new(def)?),
        BackendKind::Cmp => Arc::new(cmp::CmpBackend::new(def)?),
    })
}

#[async_trait]
impl CaBackend for Router {
    fn name(&self) -> &str {
        "router"
    }

    async fn issue(&self, request: &Approved) -> Result<BackendAnswer, BackendError> {
        let candidates = self.route_backends(request.route());
        let mut last = BackendError::Unavailable("no backend configured for the route".into());
        for (i, backend) in candidates.iter().enumerate() {
            match backend.issue(request).await {
                Err(BackendError::Unavailable(why)) => {
                    if let Some(next) = candidates.get(i + 1) {
                        tracing::warn!(
                            backend = backend.name(), next = next.name(), reason = %why,
                            "backend did not take the request; failing over"
                        );
                    }
                    last = BackendError::Unavailable(why);
                }
                Ok(BackendAnswer::Pending {
                    reference,
                    retry_after,
                }) => {
                    return Ok(BackendAnswer::Pending {
                        reference: format!("{}{REFERENCE_SEPARATOR}{reference}", backend.name()),
                        retry_after,
                    });
                }
                other => return other,
            }
        }
        Err(last)
    }

    async fn poll(&self, reference: &str) -> Result<BackendAnswer, BackendError> {
        let (name, own) = reference
            .split_once(REFERENCE_SEPARATOR)
            .ok_or_else(|| BackendError::Invalid("pending reference names no backend".into()))?;
        let backend = self.backends.get(name).ok_or_else(|| {
            BackendError::Refused(format!("backend {name:?} is no longer configured"))
        })?;
        match backend.poll(own).await? {
            BackendAnswer::Pending {
                reference,
                retry_after,
            } => Ok(BackendAnswer::Pending {
                reference: format!("{name}{REFERENCE_SEPARATOR}{reference}"),
                retry_after,
            }),
            issued => Ok(issued),
        }
    }

    async fn revoke(&self, serial: &str, reason: u8) -> Result<(), BackendError> {
        // Without the certificate the issuer is unknown: only the store-backed builtin applies.
        match self.backends.get(BUILTIN) {
            Some(b) => b.revoke(serial, reason).await,
            None => Err(BackendError::Unsupported),
        }
    }

    async fn revoke_certificate(&self, certificate: &[u8], reason: u8) -> Result<(), BackendError> {
        let cert =
            Certificate::from_der(certificate).map_err(|e| BackendError::Invalid(e.to_string()))?;
        for backend in self.backends.values() {
            // Admin verbs open the gateway without reading chains: read this one now.
            backend.ensure_chain().await;
            let chain = backend.ca_chain();
            let Some(issuer) = chain.first().and_then(|c| verify::decode(c).ok()) else {
                continue;
            };
            if issuer.tbs_certificate().subject() == cert.tbs_certificate().issuer()
                && verify::verify_signed_by(&cert, &issuer).is_ok()
            {
                return backend.revoke_certificate(certificate, reason).await;
            }
        }
        // Issued by a backend no longer configured: the store and our CRL keep the revocation.
        Err(BackendError::Unsupported)
    }

    fn ca_chain(&self) -> Vec<Vec<u8>> {
        self.route_ca_chain("")
    }

    fn route_ca_chain(&self, route: &str) -> Vec<Vec<u8>> {
        self.route_backends(route)
            .iter()
            .map(|b| b.ca_chain())
            .find(|c| !c.is_empty())
            .unwrap_or_default()
    }

    fn health(&self) -> Vec<BackendHealth> {
        self.backends.values().map(|b| b.health_entry()).collect()
    }

    fn ready(&self) -> bool {
        self.routes_ready()
    }
}
