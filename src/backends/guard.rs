//! Resilience around one backend: deadline, concurrency cap, retries, circuit breaker,
//! metrics, a warn line per failure, and the checks on every certificate it returns.
//!
//! Retries are made only where repeating cannot issue twice: for every call whose failure
//! says the request surely never reached the CA ([`BackendError::Unavailable`]), and for
//! reads (polls, chain reads) whatever the failure. An enrollment whose outcome is unknown
//! ([`BackendError::Ambiguous`], a timeout after sending) is never repeated here.

use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Semaphore;

use super::verify::{self, Unusable};
use super::{BackendAnswer, BackendDef, BackendError, BackendHealth, CaBackend};
use crate::issuance::Approved;
use crate::metrics::Metrics;

/// The resilience settings of one backend.
#[derive(Clone, Debug)]
pub struct Resilience {
    /// Deadline of one call, retries included.
    pub timeout: Duration,
    /// Calls in flight at once.
    pub max_concurrent: usize,
    /// Extra attempts for repeatable calls.
    pub retries: u32,
    /// First backoff, doubled per attempt.
    pub backoff: Duration,
    /// Consecutive failures that open the breaker; 0 disables it.
    pub breaker_failures: u32,
    /// How long the breaker stays open.
    pub breaker_cooldown: Duration,
}

impl Resilience {
    /// The settings a definition asks for.
    pub fn from_def(def: &BackendDef) -> Self {
        Self {
            timeout: Duration::from_secs(def.timeout_secs),
            max_concurrent: def.max_concurrent,
            retries: def.retries,
            backoff: Duration::from_millis(def.backoff_ms),
            breaker_failures: def.breaker_failures,
            breaker_cooldown: Duration::from_secs(def.breaker_cooldown_secs),
        }
    }

    /// Settings for the in-process signer: generous, no breaker.
    pub fn builtin() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            max_concurrent: 4096,
            retries: 0,
            backoff: Duration::ZERO,
            breaker_failures: 0,
            breaker_cooldown: Duration::ZERO,
        }
    }
}

#[derive(Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
    trial_in_flight: bool,
    last_error: Option<String>,
}

/// A backend with its resilience wrapper. Implements [`CaBackend`] itself.
pub struct Guarded {
    name: String,
    inner: Arc<dyn CaBackend>,
    settings: Resilience,
    permits: Semaphore,
    breaker: Mutex<Breaker>,
    chain: RwLock<Vec<Vec<u8>>>,
    metrics: Arc<Metrics>,
}

impl Guarded {
    /// Wraps `inner` under `name`; `chain` is the configured CA chain, if any.
    pub fn new(
        name: &str,
        inner: Arc<dyn CaBackend>,
        settings: Resilience,
        chain: Vec<Vec<u8>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let chain = if chain.is_empty() {
            inner.ca_chain()
        } else {
            chain
        };
        Self {
            name: name.to_owned(),
            permits: Semaphore::new(settings.max_concurrent),
            inner,
            settings,
            breaker: Mutex::new(Breaker::default()),
            chain: RwLock::new(chain),
            metrics,
        }
    }

    /// Fetches the CA chain from the CA unless it is already known; returns whether known.
    pub async fn ensure_chain(&self) -> bool {
        if !self.ca_chain().is_empty() {
            return true;
        }
        let inner = self.inner.clone();
        match self
            .call("chain", true, || {
                let inner = inner.clone();
                async move { inner.fetch_ca_chain().await }
            })
            .await
        {
            Ok(chain) if !chain.is_empty() => {
                *self.chain.write().unwrap_or_else(|p| p.into_inner()) = chain;
                true
            }
            _ => false,
        }
    }

    /// Runs one call under the deadline, the cap, the breaker and the retry rule.
    async fn call<T, F, Fut>(
        &self,
        op: &'static str,
        repeatable: bool,
        f: F,
    ) -> Result<T, BackendError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, BackendError>>,
    {
        if !self.breaker_allows() {
            let e = BackendError::Unavailable("circuit breaker open".into());
            self.count_error(op, "circuit_open", &e);
            return Err(e);
        }
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started + self.settings.timeout);
        let mut attempt = 0;
        let result = loop {
            let result = self.attempt(deadline, repeatable, &f).await;
            let again = match &result {
                Err(BackendError::Unavailable(_)) => true,
                Err(BackendError::Ambiguous(_) | BackendError::Invalid(_)) => repeatable,
                _ => false,
            };
            let pause = self.settings.backoff * 2u32.saturating_pow(attempt);
            if !again
                || attempt >= self.settings.retries
                || tokio::time::Instant::now() + pause >= deadline
            {
                break result;
            }
            tokio::time::sleep(pause).await;
            attempt += 1;
        };
        let label = if result.is_ok() { "ok" } else { "error" };
        self.metrics
            .backend_seconds
            .with_label_values(&[&self.name, label])
            .observe(started.elapsed().as_secs_f64());
        match &result {
            Ok(_) | Err(BackendError::Unsupported) => self.breaker_success(),
            // The CA answered: it is up, whatever it thought of the request.
            Err(e @ BackendError::Refused(_)) => {
                self.count_error(op, e.kind(), e);
                self.breaker_success();
            }
            Err(e) => {
                self.count_error(op, e.kind(), e);
                self.breaker_failure(e);
            }
        }
        result
    }

    async fn attempt<T, F, Fut>(
        &self,
        deadline: tokio::time::Instant,
        repeatable: bool,
        f: &F,
    ) -> Result<T, BackendError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, BackendError>>,
    {
        let Ok(Ok(_permit)) = tokio::time::timeout_at(deadline, self.permits.acquire()).await
        else {
            return Err(BackendError::Unavailable(
                "concurrency limit reached".into(),
            ));
        };
        match tokio::time::timeout_at(deadline, f()).await {
            Ok(r) => r,
            Err(_) if repeatable => Err(BackendError::Ambiguous("read timed out".into())),
            Err(_) => Err(BackendError::Ambiguous(format!(
                "no answer within {} s",
                self.settings.timeout.as_secs_f32()
            ))),
        }
    }

    fn breaker_allows(&self) -> bool {
        if self.settings.breaker_failures == 0 {
            return true;
        }
        let mut b = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        match b.open_until {
            Some(until) if Instant::now() < until => false,
            Some(_) if b.trial_in_flight => false,
            Some(_) => {
                b.trial_in_flight = true;
                true
            }
            None => true,
        }
    }

    fn breaker_success(&self) {
        let mut b = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        if b.open_until.is_some() {
            tracing::info!(backend = %self.name, "circuit breaker closed");
        }
        *b = Breaker::default();
    }

    fn breaker_failure(&self, e: &BackendError) {
        let mut b = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        b.failures = b.failures.saturating_add(1);
        b.last_error = Some(e.to_string());
        let threshold = self.settings.breaker_failures;
        if threshold > 0 && (b.trial_in_flight || b.failures >= threshold) {
            if !b.trial_in_flight {
                tracing::warn!(backend = %self.name, failures = b.failures, "circuit breaker opened");
            }
            b.open_until = Some(Instant::now() + self.settings.breaker_cooldown);
            b.trial_in_flight = false;
        }
    }

    fn count_error(&self, op: &str, kind: &str, e: &BackendError) {
        self.metrics
            .backend_errors
            .with_label_values(&[&self.name, kind])
            .inc();
        tracing::warn!(backend = %self.name, op, kind, error = %e, "backend call failed");
    }

    fn unusable(&self, u: Unusable) -> BackendError {
        self.metrics
            .backend_errors
            .with_label_values(&[&self.name, u.kind])
            .inc();
        tracing::warn!(backend = %self.name, kind = u.kind, detail = %u.detail, "backend answer refused");
        u.into()
    }

    /// Checks an answer's certificate; fills in the chain when the CA sent none.
    fn checked(
        &self,
        answer: BackendAnswer,
        approved: &Approved,
    ) -> Result<BackendAnswer, BackendError> {
        let BackendAnswer::Issued(mut cert) = answer else {
            return Ok(answer);
        };
        if cert.chain.is_empty() {
            cert.chain = self.ca_chain();
        }
        verify::check_answer(&cert, approved, !self.inner.signs_in_process())
            .map_err(|u| self.unusable(u))?;
        cert.issued_by = self.name.clone();
        Ok(BackendAnswer::Issued(cert))
    }

    /// Health for `/readyz`.
    pub fn health_entry(&self) -> BackendHealth {
        let b = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        let breaker = match b.open_until {
            None => "closed",
            Some(until) if Instant::now() < until => "open",
            Some(_) => "half-open",
        };
        BackendHealth {
            name: self.name.clone(),
            breaker,
            chain_known: !self.ca_chain().is_empty(),
            last_error: b.last_error.clone(),
        }
    }
}

#[async_trait]
impl CaBackend for Guarded {
    fn name(&self) -> &str {
        &self.name
    }

    async fn issue(&self, request: &Approved) -> Result<BackendAnswer, BackendError> {
        let inner = &self.inner;
        let answer = self.call("issue", false, || inner.issue(request)).await?;
        if matches!(&answer, BackendAnswer::Issued(c) if c.chain.is_empty()) {
            self.ensure_chain().await;
        }
        self.checked(answer, request)
    }

    async fn revoke(&self, serial: &str, reason: u8) -> Result<(), BackendError> {
        let inner = &self.inner;
        self.call("revoke", false, || inner.revoke(serial, reason))
            .await
    }

    fn ca_chain(&self) -> Vec<Vec<u8>> {
        self.chain.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn poll(&self, reference: &str) -> Result<BackendAnswer, BackendError> {
        let inner = &self.inner;
        let answer = self.call("poll", true, || inner.poll(reference)).await?;
        // The registrar checks the key against the stored request; the chain is checked here.
        let BackendAnswer::Issued(mut cert) = answer else {
            return Ok(answer);
        };
        if cert.chain.is_empty() {
            cert.chain = self.ca_chain();
        }
        let leaf = verify::decode(&cert.certificate).map_err(|u| self.unusable(u))?;
        verify::check_chain(&leaf, &cert.chain, !self.inner.signs_in_process())
            .map_err(|u| self.unusable(u))?;
        cert.issued_by = self.name.clone();
        Ok(BackendAnswer::Issued(cert))
    }

    async fn revoke_certificate(&self, certificate: &[u8], reason: u8) -> Result<(), BackendError> {
        let inner = &self.inner;
        self.call("revoke", false, || {
            inner.revoke_certificate(certificate, reason)
        })
        .await
    }

    async fn fetch_ca_chain(&self) -> Result<Vec<Vec<u8>>, BackendError> {
        let inner = &self.inner;
        self.call("chain", true, || inner.fetch_ca_chain()).await
    }

    fn health(&self) -> Vec<BackendHealth> {
        vec![self.health_entry()]
    }
}
