//! The registrar: the one path from a protocol's request to a signature.
//!
//! For every [`IssuanceRequest`] it (1) decodes and checks the key material, (2) authenticates
//! the requester on the route, (3) applies the route's profile policy, which alone can make an
//! [`Approved`] request, (4) claims the transaction id so that a retry gets the same answer and
//! never a second certificate, (5) holds the request when the route wants manual approval,
//! (6) writes an audit record, calls the backend, records the certificate and audits again.
//! Every refusal is audited too, with its reason, and leaves nothing half-stored.

mod authn;
mod policy;
mod webhook;

pub use authn::{Authenticated, Authenticator};
pub use policy::{Approved, glob};

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use der::{Decode, Encode};
use enrollgate_model::{
    IssuanceRequest, Issued, KeySource, Operation, Outcome, RejectReason, Secret,
};
use enrollgate_pkix::{Csr, San};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;
use x509_cert::name::Name;

use crate::backends::{BackendAnswer, BackendError, CaBackend};
use crate::config::{Config, Profile, Route};
use crate::crypto::{SigningKey, sha256_hex};
use crate::metrics::Metrics;
use crate::store::{AuditRecord, CertificateRecord, PendingRecord, Store, TransactionState};

/// Seconds a client is asked to wait before polling a held request.
const RETRY_AFTER: u32 = 5;

// Backend-pending requests (added with the pluggable backends): when the backend answers
// `Pending`, `sign` stores a `PendingRecord` with status "backend" whose JSON holds the key,
// the transaction and the router's `backend_reference` ("name:reference"). `poll` asks the
// backend again for such records and, once it issues, checks the certificate against the
// stored request (policy runs again) and records it like any issuance. A backend that is
// down during a poll leaves the request pending: nothing is lost. Revocation hands the
// stored certificate to the backend (`revoke_certificate`) so that the issuing one is found;
// a backend without revocation leaves it to the store and our CRL.

/// Decides every request. Shared by all listeners.
pub struct Registrar {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    backend: Arc<dyn CaBackend>,
    authn: Authenticator,
    metrics: Arc<Metrics>,
    ca_not_after: SystemTime,
    webhooks: webhook::Webhooks,
}

/// The key material of a request after decoding and the proof-of-possession check.
struct Material {
    subject: Name,
    subject_text: String,
    public_key: SubjectPublicKeyInfoOwned,
    sans: Vec<San>,
    /// The PKCS#10 signed by `public_key`, when there is one (backends may forward it).
    csr: Option<Vec<u8>>,
    /// What identifies the request for idempotency.
    fingerprint_input: Vec<u8>,
    /// A key the gateway generated, PKCS#8.
    generated: Option<Secret>,
}

impl Registrar {
    /// Assembles the registrar.
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        backend: Arc<dyn CaBackend>,
        authn: Authenticator,
        metrics: Arc<Metrics>,
        ca_not_after: SystemTime,
    ) -> Self {
        Self {
            webhooks: webhook::Webhooks::from_config(&config),
            config,
            store,
            backend,
            authn,
            metrics,
            ca_not_after,
        }
    }

    /// The CA chain of the backend serving `route` (issuing CA first).
    pub fn ca_chain(&self, route: &str) -> Vec<Vec<u8>> {
        self.backend.route_ca_chain(route)
    }

    /// The backend (the router), for health reports.
    pub fn backend(&self) -> &Arc<dyn CaBackend> {
        &self.backend
    }

    /// The store, for protocol layers that keep their own state in it.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The route with this label.
    pub fn route(&self, label: &str) -> Option<&Route> {
        self.config.route(label)
    }

    /// Authenticates a credential on route `label` the way [`Registrar::issue`] does first,
    /// for protocol layers that must know who speaks before any request (a CMP signer).
    pub async fn authenticate(
        &self,
        label: &str,
        credential: &enrollgate_model::Credential,
    ) -> Result<Authenticated, RejectReason> {
        let route = self.config.route(label).ok_or(RejectReason::UnknownRoute)?;
        self.authn.authenticate(route, credential).await
    }

    /// Decides one request.
    pub async fn issue(&self, request: IssuanceRequest) -> Outcome {
        let started = Instant::now();
        let outcome = match self.decide(&request).await {
            Ok(outcome) => outcome,
            Err(reason) => {
                self.denied(&request, &reason).await;
                Outcome::Rejected(reason)
            }
        };
        let protocol = request.protocol.as_str();
        let operation = request.operation.as_str();
        self.metrics
            .requests
            .with_label_values(&[protocol, operation, outcome.kind()])
            .inc();
        self.metrics
            .request_seconds
            .with_label_values(&[protocol, operation])
            .observe(started.elapsed().as_secs_f64());
        outcome
    }

    async fn decide(&self, req: &IssuanceRequest) -> Result<Outcome, RejectReason> {
        let route = self
            .config
            .route(&req.route)
            .ok_or(RejectReason::UnknownRoute)?;
        let profile = self.profile(route)?;
        let material = decode_material(&req.key, profile)?;
        let fingerprint =
            sha256_hex(&[req.route.as_bytes(), b"\0", &material.fingerprint_input].concat());
        if let Some(outcome) = self.resent(req, &fingerprint).await? {
            return Ok(outcome);
        }
        let who = self
            .authn
            .authenticate(route, &req.requester.credential)
            .await?;
        check_renewal(req.operation, &who, &material.subject, profile)?;

        let approved = self.approve(route, profile, &material, &who)?;
        self.ask_webhook(req, &material, &who).await?;
        if let Some(tid) = &req.transaction_id {
            let existing = self
                .store
                .claim_transaction(req.protocol.as_str(), tid, &fingerprint)
                .await
                .map_err(internal)?;
            if let Some(existing) = existing {
                if existing.fingerprint != fingerprint {
                    return Err(RejectReason::TransactionConflict);
                }
                return self.replay(tid, &existing.state).await;
            }
        }
        // A token use is spent by the request, held or not: a one-use token cannot queue a
        // second request for the operator.
        if let Authenticated::Token(t) = &who
            && !self
                .store
                .take_token_use(&t.id, crate::clock::now())
                .await
                .map_err(internal)?
        {
            self.release(req).await;
            return Err(RejectReason::Unauthenticated);
        }
        if route.manual_approval {
            let held = self.hold(req, &material, &who).await;
            if held.is_err()
                && let Authenticated::Token(t) = &who
            {
                let _ = self.store.return_token_use(&t.id).await;
            }
            return held;
        }
        let result = self.sign(req, &approved, &who, material.generated).await;
        if result.is_err() {
            self.release(req).await;
            if let Authenticated::Token(t) = &who {
                let _ = self.store.return_token_use(&t.id).await;
            }
        }
        result
    }

    /// The route's approval webhook, when it has one; a `webhook`-authenticated requester
    /// needs one that allows it.
    async fn ask_webhook(
        &self,
        req: &IssuanceRequest,
        m: &Material,
        who: &Authenticated,
    ) -> Result<(), RejectReason> {
        let challenge = match who {
            Authenticated::Webhook(secret) => Some(secret),
            _ => None,
        };
        if !self.webhooks.has(&req.route) {
            // `Config::validate` makes a webhook-authenticated route name one.
            return match challenge {
                Some(_) => Err(RejectReason::Unauthenticated),
                None => Ok(()),
            };
        }
        let ask = webhook::Ask {
            protocol: req.protocol.as_str(),
            route: &req.route,
            operation: req.operation.as_str(),
            requester: who.label(),
            subject: &m.subject_text,
            sans: m.sans.iter().map(ToString::to_string).collect(),
            csr: m.csr.as_deref(),
            challenge,
        };
        let verdict = self.webhooks.check(&ask).await;
        if verdict.is_err() {
            self.metrics
                .bad_input
                .with_label_values(&["webhook", "refused"])
                .inc();
        }
        verdict
    }

    fn profile(&self, route: &Route) -> Result<&Profile, RejectReason> {
        // `Config::validate` guarantees the name resolves; a miss is our bug.
        self.config
            .profiles
            .get(&route.profile)
            .ok_or(RejectReason::Internal)
    }

    fn approve(
        &self,
        route: &Route,
        profile: &Profile,
        m: &Material,
        who: &Authenticated,
    ) -> Result<Approved, RejectReason> {
        let token_pattern = match who {
            Authenticated::Token(t) => t.subject_pattern.as_deref(),
            _ => None,
        };
        let candidate = policy::Candidate {
            subject: &m.subject,
            public_key: &m.public_key,
            sans: &m.sans,
            csr: m.csr.as_deref(),
        };
        policy::check(
            &route.label,
            &route.profile,
            profile,
            &candidate,
            token_pattern,
            self.ca_not_after,
        )
    }

    /// Calls the backend for an approved request and records the result.
    async fn sign(
        &self,
        req: &IssuanceRequest,
        approved: &Approved,
        who: &Authenticated,
        private_key: Option<Secret>,
    ) -> Result<Outcome, RejectReason> {
        let subject = enrollgate_pkix::name_to_string(approved.subject());
        let mut audit = AuditRecord {
            event: "requested".into(),
            protocol: req.protocol.as_str().into(),
            route: req.route.clone(),
            profile: approved.profile().into(),
            requester: who.label(),
            subject: subject.clone(),
            ..AuditRecord::default()
        };
        self.store.audit(&audit).await.map_err(internal)?;

        let started = Instant::now();
        let answer = self.backend.issue(approved).await;
        let result = if answer.is_ok() { "ok" } else { "error" };
        self.metrics
            .backend_seconds
            .with_label_values(&[self.backend.name(), result])
            .observe(started.elapsed().as_secs_f64());

        let cert = match answer {
            Ok(BackendAnswer::Issued(cert)) => cert,
            Ok(BackendAnswer::Pending {
                reference,
                retry_after,
            }) => {
                if private_key.is_some() {
                    // A generated key would have to wait in the store: not offered.
                    tracing::warn!(reference = %reference, "backend held a server-keygen request");
                    return Err(RejectReason::BackendUnavailable);
                }
                return self
                    .hold_backend(req, approved, who, &reference, retry_after)
                    .await;
            }
            Err(e) => {
                audit.event = "failed".into();
                audit.detail = e.to_string();
                let _ = self.store.audit(&audit).await;
                tracing::warn!(backend = self.backend.name(), error = %e, "backend failed");
                return Err(match e {
                    BackendError::Refused(_) => RejectReason::Refused,
                    _ => RejectReason::BackendUnavailable,
                });
            }
        };
        let serial = check_issued(&cert.certificate, approved)?;
        let backend_name = if cert.issued_by.is_empty() {
            self.backend.name().to_owned()
        } else {
            cert.issued_by.clone()
        };
        let record = CertificateRecord {
            serial: serial.clone(),
            route: req.route.clone(),
            profile: approved.profile().into(),
            subject: subject.clone(),
            not_after: crate::clock::to_unix(approved.not_after()),
            der: cert.certificate.clone(),
            revoked: None,
        };
        self.store
            .insert_certificate(&record)
            .await
            .map_err(internal)?;
        if let Some(tid) = &req.transaction_id {
            let state = TransactionState::Issued(serial.clone());
            self.store
                .set_transaction_state(req.protocol.as_str(), tid, &state)
                .await
                .map_err(internal)?;
        }
        audit.event = "issued".into();
        audit.serial = serial.clone();
        audit.detail = backend_name.clone();
        self.store.audit(&audit).await.map_err(internal)?;
        self.metrics
            .issued
            .with_label_values(&[approved.profile(), &backend_name])
            .inc();
        tracing::info!(
            protocol = req.protocol.as_str(), route = %req.route, profile = approved.profile(),
            backend = %backend_name, requester = %who.label(), subject = %subject, serial = %serial,
            "certificate issued"
        );
        Ok(Outcome::Issued(Issued {
            certificate: cert.certificate,
            chain: cert.chain,
            serial,
            private_key,
        }))
    }

    /// The stored answer when this exact request (same transaction id, same fingerprint) was
    /// decided before. It comes before authentication: the first attempt may have spent a
    /// one-use token, and a client that lost the reply must still get its certificate. The
    /// fingerprint covers the whole CSR (for SCEP with its challengePassword), so only the
    /// original request matches; anything else falls through to the full checks.
    async fn resent(
        &self,
        req: &IssuanceRequest,
        fingerprint: &str,
    ) -> Result<Option<Outcome>, RejectReason> {
        let Some(tid) = &req.transaction_id else {
            return Ok(None);
        };
        let existing = self
            .store
            .transaction(req.protocol.as_str(), tid)
            .await
            .map_err(internal)?;
        match existing {
            Some(t) if t.fingerprint == fingerprint => self.replay(tid, &t.state).await.map(Some),
            _ => Ok(None),
        }
    }

    /// Answers a retried transaction from what the store says about it.
    async fn replay(&self, tid: &str, state: &TransactionState) -> Result<Outcome, RejectReason> {
        match state {
            TransactionState::Issued(serial) => {
                let record = self
                    .store
                    .certificate(serial)
                    .await
                    .map_err(internal)?
                    .ok_or(RejectReason::Internal)?;
                Ok(Outcome::Issued(Issued {
                    certificate: record.der,
                    chain: self.backend.ca_chain(),
                    serial: serial.clone(),
                    private_key: None,
                }))
            }
            TransactionState::Pending(id) => Ok(self.poll(id).await),
            TransactionState::InProgress => Ok(Outcome::Pending {
                id: tid.to_owned(),
                retry_after: 1,
            }),
            TransactionState::Rejected(_) => Err(RejectReason::Refused),
        }
    }

    /// Stores a request for an operator's decision.
    async fn hold(
        &self,
        req: &IssuanceRequest,
        m: &Material,
        who: &Authenticated,
    ) -> Result<Outcome, RejectReason> {
        if m.generated.is_some() {
            // The generated key would have to wait in the store: not offered.
            self.release(req).await;
            return Err(RejectReason::PolicyDenied(
                "server-generated keys need a route without manual approval".into(),
            ));
        }
        let held = Held {
            subject: m.subject_text.clone(),
            profile: String::new(),
            status: "pending",
            extra: (
                "token",
                serde_json::json!(match who {
                    Authenticated::Token(t) => Some(t.id.clone()),
                    _ => None,
                }),
            ),
        };
        let id = self.park(req, who, held).await?;
        tracing::info!(protocol = req.protocol.as_str(), route = %req.route, pending = %id, "request held for approval");
        Ok(Outcome::Pending {
            id,
            retry_after: RETRY_AFTER,
        })
    }

    /// Stores a request that the backend holds, so that polls reach the backend again.
    async fn hold_backend(
        &self,
        req: &IssuanceRequest,
        approved: &Approved,
        who: &Authenticated,
        reference: &str,
        retry_after: u32,
    ) -> Result<Outcome, RejectReason> {
        let held = Held {
            subject: enrollgate_pkix::name_to_string(approved.subject()),
            profile: approved.profile().into(),
            status: "backend",
            extra: ("backend_reference", serde_json::json!(reference)),
        };
        let id = self.park(req, who, held).await?;
        tracing::info!(protocol = req.protocol.as_str(), route = %req.route, pending = %id, reference, "request held by the backend");
        Ok(Outcome::Pending { id, retry_after })
    }

    /// Writes a held request, its transaction state and its audit record; returns its id.
    async fn park(
        &self,
        req: &IssuanceRequest,
        who: &Authenticated,
        held: Held,
    ) -> Result<String, RejectReason> {
        let id = hex::encode(crate::crypto::random_bytes::<12>());
        let mut body = serde_json::json!({
            "operation": req.operation.as_str(),
            "key": key_to_json(&req.key),
            "requester": who.label(),
            "transaction": req.transaction_id,
        });
        body[held.extra.0] = held.extra.1;
        let record = PendingRecord {
            id: id.clone(),
            protocol: req.protocol.as_str().into(),
            route: req.route.clone(),
            subject: held.subject,
            request: body.to_string(),
            status: held.status.into(),
            serial: None,
            created_at: crate::clock::now(),
        };
        self.store.insert_pending(&record).await.map_err(internal)?;
        if let Some(tid) = &req.transaction_id {
            let state = TransactionState::Pending(id.clone());
            self.store
                .set_transaction_state(req.protocol.as_str(), tid, &state)
                .await
                .map_err(internal)?;
        }
        let detail = match held.status {
            "backend" => format!(
                "{id} held by backend {}",
                body["backend_reference"].as_str().unwrap_or_default()
            ),
            _ => id.clone(),
        };
        let audit = AuditRecord {
            event: "pending".into(),
            protocol: record.protocol,
            route: record.route,
            profile: held.profile,
            requester: who.label(),
            subject: record.subject,
            detail,
            ..AuditRecord::default()
        };
        self.store.audit(&audit).await.map_err(internal)?;
        Ok(id)
    }

    /// Asks the backend again about a request it holds.
    async fn poll_backend(&self, record: PendingRecord) -> Outcome {
        let body: serde_json::Value = serde_json::from_str(&record.request).unwrap_or_default();
        let Some(reference) = body["backend_reference"].as_str() else {
            return Outcome::Rejected(RejectReason::Internal);
        };
        let pending = |retry_after| Outcome::Pending {
            id: record.id.clone(),
            retry_after,
        };
        match self.backend.poll(reference).await {
            Ok(BackendAnswer::Pending { retry_after, .. }) => pending(retry_after),
            Ok(BackendAnswer::Issued(cert)) => self
                .finish_backend(&record, &body, cert)
                .await
                .unwrap_or_else(Outcome::Rejected),
            Err(BackendError::Refused(why)) => {
                let _ = self
                    .store
                    .update_pending(&record.id, "backend", "rejected", None)
                    .await;
                if let Some(tid) = body["transaction"].as_str() {
                    let state = TransactionState::Rejected("refused".into());
                    let _ = self
                        .store
                        .set_transaction_state(&record.protocol, tid, &state)
                        .await;
                }
                let audit = AuditRecord {
                    event: "rejected".into(),
                    protocol: record.protocol.clone(),
                    route: record.route.clone(),
                    subject: record.subject.clone(),
                    detail: format!("{} refused by backend: {why}", record.id),
                    ..AuditRecord::default()
                };
                let _ = self.store.audit(&audit).await;
                Outcome::Rejected(RejectReason::Refused)
            }
            Err(e) => {
                // Down or unsure: the request stays stored and the client asks again later.
                tracing::warn!(pending = %record.id, error = %e, "backend poll failed");
                pending(RETRY_AFTER)
            }
        }
    }

    /// Records the certificate a backend issued for a held request, after the same checks as
    /// a direct issuance.
    async fn finish_backend(
        &self,
        record: &PendingRecord,
        body: &serde_json::Value,
        cert: crate::backends::BackendCert,
    ) -> Result<Outcome, RejectReason> {
        let key = key_from_json(&body["key"]).ok_or(RejectReason::Internal)?;
        let route = self
            .config
            .route(&record.route)
            .ok_or(RejectReason::UnknownRoute)?;
        let profile = self.profile(route)?;
        let material = decode_material(&key, profile)?;
        let approved = self.approve(route, profile, &material, &Authenticated::Anonymous)?;
        let serial = check_issued(&cert.certificate, &approved)?;
        if !self
            .store
            .update_pending(&record.id, "backend", "issued", Some(&serial))
            .await
            .map_err(internal)?
        {
            // Another poll recorded it meanwhile.
            return Ok(Box::pin(self.poll(&record.id)).await);
        }
        let cert_record = CertificateRecord {
            serial: serial.clone(),
            route: record.route.clone(),
            profile: approved.profile().into(),
            subject: record.subject.clone(),
            not_after: not_after_of(&cert.certificate).unwrap_or(0),
            der: cert.certificate.clone(),
            revoked: None,
        };
        if let Err(e) = self.store.insert_certificate(&cert_record).await {
            let _ = self
                .store
                .update_pending(&record.id, "issued", "backend", None)
                .await;
            return Err(internal(e));
        }
        if let Some(tid) = body["transaction"].as_str() {
            let state = TransactionState::Issued(serial.clone());
            self.store
                .set_transaction_state(&record.protocol, tid, &state)
                .await
                .map_err(internal)?;
        }
        let audit = AuditRecord {
            event: "issued".into(),
            protocol: record.protocol.clone(),
            route: record.route.clone(),
            profile: approved.profile().into(),
            subject: record.subject.clone(),
            serial: serial.clone(),
            detail: cert.issued_by.clone(),
            ..AuditRecord::default()
        };
        self.store.audit(&audit).await.map_err(internal)?;
        self.metrics
            .issued
            .with_label_values(&[approved.profile(), &cert.issued_by])
            .inc();
        tracing::info!(protocol = %record.protocol, route = %record.route, backend = %cert.issued_by, serial = %serial, pending = %record.id, "held certificate issued");
        Ok(Outcome::Issued(Issued {
            certificate: cert.certificate,
            chain: cert.chain,
            serial,
            private_key: None,
        }))
    }

    /// What became of a held request.
    pub async fn poll(&self, id: &str) -> Outcome {
        let record = match self.store.pending(id).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                return Outcome::Rejected(RejectReason::Malformed("unknown request".into()));
            }
            Err(e) => return Outcome::Rejected(internal(e)),
        };
        if record.status == "backend" {
            return self.poll_backend(record).await;
        }
        let chain = self.backend.route_ca_chain(&record.route);
        match (record.status.as_str(), record.serial) {
            ("issued", Some(serial)) => match self.store.certificate(&serial).await {
                Ok(Some(cert)) => Outcome::Issued(Issued {
                    certificate: cert.der,
                    chain,
                    serial,
                    private_key: None,
                }),
                _ => Outcome::Rejected(RejectReason::Internal),
            },
            ("rejected", _) => Outcome::Rejected(RejectReason::Refused),
            _ => Outcome::Pending {
                id: id.to_owned(),
                retry_after: RETRY_AFTER,
            },
        }
    }

    /// What became of a protocol transaction (SCEP CertPoll, CMP pollReq).
    pub async fn poll_transaction(&self, protocol: &str, tid: &str) -> Outcome {
        match self.store.claim_transaction(protocol, tid, "").await {
            Ok(Some(existing)) => self
                .replay(tid, &existing.state)
                .await
                .unwrap_or_else(Outcome::Rejected),
            Ok(None) => {
                // Nothing was ever asked under this id; undo the claim we just made.
                let _ = self.store.release_transaction(protocol, tid).await;
                Outcome::Rejected(RejectReason::Malformed("unknown transaction".into()))
            }
            Err(e) => Outcome::Rejected(internal(e)),
        }
    }

    /// An operator approves a held request: policy runs again, then the backend signs.
    pub async fn approve_pending(&self, id: &str) -> Result<Outcome, RejectReason> {
        let record = self
            .store
            .pending(id)
            .await
            .map_err(internal)?
            .ok_or(RejectReason::Malformed("unknown request".into()))?;
        if record.status != "pending" {
            return Err(RejectReason::Malformed(format!(
                "request is {}",
                record.status
            )));
        }
        let body: serde_json::Value =
            serde_json::from_str(&record.request).map_err(|_| RejectReason::Internal)?;
        let key = key_from_json(&body["key"]).ok_or(RejectReason::Internal)?;
        let route = self
            .config
            .route(&record.route)
            .ok_or(RejectReason::UnknownRoute)?;
        let profile = self.profile(route)?;
        let material = decode_material(&key, profile)?;
        let approved = self.approve(route, profile, &material, &Authenticated::Anonymous)?;
        if !self
            .store
            .update_pending(id, "pending", "approved", None)
            .await
            .map_err(internal)?
        {
            return Err(RejectReason::Malformed(
                "request was decided meanwhile".into(),
            ));
        }
        let protocol = protocol_from(&record.protocol);
        let req = IssuanceRequest {
            protocol,
            route: record.route.clone(),
            operation: Operation::Enroll,
            requester: enrollgate_model::Requester {
                credential: enrollgate_model::Credential::Anonymous,
                peer: None,
            },
            key,
            transaction_id: body["transaction"].as_str().map(str::to_owned),
        };
        let who = Authenticated::Anonymous;
        let outcome = self.sign(&req, &approved, &who, None).await;
        match &outcome {
            Ok(Outcome::Issued(issued)) => {
                self.store
                    .update_pending(id, "approved", "issued", Some(&issued.serial))
                    .await
                    .map_err(internal)?;
            }
            _ => {
                self.store
                    .update_pending(id, "approved", "pending", None)
                    .await
                    .map_err(internal)?;
            }
        }
        outcome
    }

    /// An operator refuses a held request.
    pub async fn reject_pending(&self, id: &str) -> Result<(), RejectReason> {
        let record = self
            .store
            .pending(id)
            .await
            .map_err(internal)?
            .ok_or(RejectReason::Malformed("unknown request".into()))?;
        if !self
            .store
            .update_pending(id, "pending", "rejected", None)
            .await
            .map_err(internal)?
        {
            return Err(RejectReason::Malformed(format!(
                "request is {}",
                record.status
            )));
        }
        let body: serde_json::Value = serde_json::from_str(&record.request).unwrap_or_default();
        if let Some(tid) = body["transaction"].as_str() {
            let state = TransactionState::Rejected("refused".into());
            self.store
                .set_transaction_state(&record.protocol, tid, &state)
                .await
                .map_err(internal)?;
        }
        let audit = AuditRecord {
            event: "rejected".into(),
            protocol: record.protocol,
            route: record.route,
            subject: record.subject,
            detail: id.to_owned(),
            ..AuditRecord::default()
        };
        self.store.audit(&audit).await.map_err(internal)?;
        Ok(())
    }

    /// Revokes a certificate we issued.
    pub async fn revoke(&self, serial: &str, reason: u8) -> Result<bool, RejectReason> {
        let answer = match self.store.certificate(serial).await.map_err(internal)? {
            Some(record) => self.backend.revoke_certificate(&record.der, reason).await,
            None => self.backend.revoke(serial, reason).await,
        };
        match answer {
            // A backend without revocation leaves it to the store and our CRL.
            Ok(()) | Err(BackendError::Unsupported) => {}
            Err(e) => {
                tracing::warn!(serial, error = %e, "backend revocation failed");
                return Err(RejectReason::BackendUnavailable);
            }
        }
        let done = self
            .store
            .revoke(serial, crate::clock::now(), reason)
            .await
            .map_err(internal)?;
        if done {
            let audit = AuditRecord {
                event: "revoked".into(),
                serial: serial.into(),
                detail: format!("reason {reason}"),
                ..AuditRecord::default()
            };
            self.store.audit(&audit).await.map_err(internal)?;
            tracing::info!(serial, reason, "certificate revoked");
        }
        Ok(done)
    }

    async fn release(&self, req: &IssuanceRequest) {
        if let Some(tid) = &req.transaction_id {
            let _ = self
                .store
                .release_transaction(req.protocol.as_str(), tid)
                .await;
        }
    }

    async fn denied(&self, req: &IssuanceRequest, reason: &RejectReason) {
        self.metrics
            .rejected
            .with_label_values(&[req.protocol.as_str(), reason.kind()])
            .inc();
        tracing::info!(protocol = req.protocol.as_str(), route = %req.route, reason = reason.kind(), detail = %reason.public_text(), "request denied");
        let audit = AuditRecord {
            event: "denied".into(),
            protocol: req.protocol.as_str().into(),
            route: req.route.clone(),
            requester: requester_hint(&req.requester.credential),
            detail: reason.public_text(),
            ..AuditRecord::default()
        };
        if let Err(e) = self.store.audit(&audit).await {
            tracing::error!(error = %e, "audit write failed");
        }
    }
}

/// Decodes the key material, checks the CSR's proof of possession, and generates a key when
/// asked to.
fn decode_material(key: &KeySource, profile: &Profile) -> Result<Material, RejectReason> {
    let malformed = |e: &dyn std::fmt::Display| RejectReason::Malformed(e.to_string());
    let (KeySource::Csr(der) | KeySource::Generate { template_csr: der }) = key else {
        return decode_verified(key);
    };
    let csr = Csr::from_der(der).map_err(|e| malformed(&e))?;
    csr.verify_signature().map_err(|e| match e {
        enrollgate_pkix::PkixError::BadSignature => RejectReason::BadSignature,
        other => RejectReason::BadAlgorithm(other.to_string()),
    })?;
    let sans = csr.subject_alt_names().map_err(|e| malformed(&e))?;
    let (public_key, generated, forwardable) = match key {
        KeySource::Generate { .. } => {
            let (k, pkcs8) =
                SigningKey::generate(profile.generated_key).map_err(|_| RejectReason::Internal)?;
            (
                k.public_key_info().map_err(|_| RejectReason::Internal)?,
                Some(Secret::new(pkcs8)),
                None,
            )
        }
        _ => (csr.public_key().clone(), None, Some(der.clone())),
    };
    Ok(Material {
        subject: csr.subject().clone(),
        subject_text: csr.subject_string(),
        public_key,
        sans,
        csr: forwardable,
        fingerprint_input: der.clone(),
        generated,
    })
}

/// A key whose possession the protocol proved itself (CRMF): decode what it asks for.
fn decode_verified(key: &KeySource) -> Result<Material, RejectReason> {
    let KeySource::Verified {
        subject_der,
        public_key_der,
        extensions_der,
    } = key
    else {
        return Err(RejectReason::Internal);
    };
    let malformed = |e: der::Error| RejectReason::Malformed(e.to_string());
    let subject = Name::from_der(subject_der).map_err(malformed)?;
    let public_key = SubjectPublicKeyInfoOwned::from_der(public_key_der).map_err(malformed)?;
    let mut sans = Vec::new();
    if let Some(exts) = extensions_der {
        let exts = Vec::<x509_cert::ext::Extension>::from_der(exts).map_err(malformed)?;
        for ext in exts
            .iter()
            .filter(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME)
        {
            let names = x509_cert::ext::pkix::SubjectAltName::from_der(ext.extn_value.as_bytes())
                .map_err(malformed)?;
            for n in &names.0 {
                sans.push(
                    San::from_general_name(n)
                        .map_err(|e| RejectReason::Malformed(e.to_string()))?,
                );
            }
        }
    }
    let fingerprint_input = [
        subject_der.as_slice(),
        public_key_der,
        extensions_der.as_deref().unwrap_or_default(),
    ]
    .concat();
    Ok(Material {
        subject_text: enrollgate_pkix::name_to_string(&subject),
        subject,
        public_key,
        sans,
        csr: None,
        fingerprint_input,
        generated: None,
    })
}

/// A renewal must be authenticated by a certificate we issued, and may have to keep its subject.
fn check_renewal(
    op: Operation,
    who: &Authenticated,
    requested: &Name,
    profile: &Profile,
) -> Result<(), RejectReason> {
    if op != Operation::Renew {
        return Ok(());
    }
    match who {
        Authenticated::Certificate {
            subject,
            ours: true,
            ..
        } => {
            if profile.renewal_same_subject && subject != requested {
                return Err(RejectReason::PolicyDenied(
                    "renewal must keep the subject of the current certificate".into(),
                ));
            }
            Ok(())
        }
        _ => Err(RejectReason::Unauthenticated),
    }
}

/// What differs between a request held for an operator and one held by the backend.
struct Held {
    subject: String,
    profile: String,
    /// `pending` (operator) or `backend`.
    status: &'static str,
    /// The one field of the stored request that only this kind carries.
    extra: (&'static str, serde_json::Value),
}

/// The key source as JSON, for a held request.
fn key_to_json(key: &KeySource) -> serde_json::Value {
    match key {
        KeySource::Csr(d) => serde_json::json!({"csr": STANDARD.encode(d)}),
        KeySource::Generate { template_csr } => {
            serde_json::json!({"generate": STANDARD.encode(template_csr)})
        }
        KeySource::Verified {
            subject_der,
            public_key_der,
            extensions_der,
        } => serde_json::json!({
            "subject": STANDARD.encode(subject_der),
            "spki": STANDARD.encode(public_key_der),
            "extensions": extensions_der.as_ref().map(|e| STANDARD.encode(e)),
        }),
    }
}

fn key_from_json(v: &serde_json::Value) -> Option<KeySource> {
    let field = |name: &str| v[name].as_str().and_then(|s| STANDARD.decode(s).ok());
    if let Some(csr) = field("csr") {
        return Some(KeySource::Csr(csr));
    }
    if let Some(template_csr) = field("generate") {
        return Some(KeySource::Generate { template_csr });
    }
    Some(KeySource::Verified {
        subject_der: field("subject")?,
        public_key_der: field("spki")?,
        extensions_der: field("extensions"),
    })
}

/// Checks that a backend's certificate certifies the approved key; returns its serial.
fn check_issued(der: &[u8], approved: &Approved) -> Result<String, RejectReason> {
    let cert = Certificate::from_der(der).map_err(|e| {
        tracing::warn!(error = %e, "backend returned an undecodable certificate");
        RejectReason::BackendUnavailable
    })?;
    let tbs = cert.tbs_certificate();
    let same_key =
        tbs.subject_public_key_info().to_der().ok() == approved.public_key().to_der().ok();
    if !same_key {
        tracing::warn!("backend returned a certificate for another key");
        return Err(RejectReason::BackendUnavailable);
    }
    Ok(hex::encode(tbs.serial_number().as_bytes()))
}

/// A certificate's notAfter as unix time.
fn not_after_of(der: &[u8]) -> Option<i64> {
    let cert = Certificate::from_der(der).ok()?;
    let t = cert
        .tbs_certificate()
        .validity()
        .not_after
        .to_unix_duration();
    i64::try_from(t.as_secs()).ok()
}

fn requester_hint(c: &enrollgate_model::Credential) -> String {
    use enrollgate_model::Credential as C;
    match c {
        C::Anonymous => "anonymous".into(),
        C::Token { id, .. } if id.is_empty() => "token:(by secret)".into(),
        C::Token { id, .. } | C::TokenProven { id } => format!("token:{id}"),
        C::Password(_) => "password".into(),
        C::Certificate { chain } => chain
            .first()
            .and_then(|c| Certificate::from_der(c).ok())
            .map(|c| {
                format!(
                    "cert:{}",
                    enrollgate_pkix::name_to_string(c.tbs_certificate().subject())
                )
            })
            .unwrap_or_else(|| "cert:(undecodable)".into()),
    }
}

fn protocol_from(name: &str) -> enrollgate_model::Protocol {
    use enrollgate_model::Protocol as P;
    [P::Est, P::Scep, P::Cmp, P::Acme, P::EstCoaps, P::CmpCoaps]
        .into_iter()
        .find(|p| p.as_str() == name)
        .unwrap_or(P::Est)
}

fn internal(e: crate::store::StoreError) -> RejectReason {
    tracing::error!(error = %e, "store failed");
    RejectReason::Internal
}
