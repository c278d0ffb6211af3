//! The server: configuration, the three calls the gateway makes per message (decode, verify,
//! step) and the replies to the registrar's answers.

use aws_lc_rs::digest;
use der::asn1::OctetString;
use der::{Decode, Encode};
use enrollgate_model::{IssuanceRequest, Outcome, RejectReason, Requester, Secret};
use x509_cert::Certificate;
use x509_cert::ext::pkix::name::GeneralName;

use crate::error::{CmpError, FailInfo};
use crate::incoming::{self, Incoming, Limits, Proof, Verified};
use crate::oid;
use crate::reply::ReplyTo;
use crate::signature::SigningKey;
use crate::state::{Common, Event, TransactionState};
use crate::types::{BodyKind, ErrorMsgContent, PkiBody, PkiStatus, PkiStatusInfo};

/// Per-route settings, fixed when the gateway starts.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The route label put into every [`IssuanceRequest`] ("" for the default route).
    pub route: String,
    /// Size and iteration limits.
    pub limits: Limits,
    /// Whether a client's request for implicit confirmation is granted.
    pub allow_implicit_confirm: bool,
    /// Seconds a client has to send certConf before the certificate is to be revoked.
    pub confirm_wait_secs: u64,
    /// The CA certificates returned for `id-it-caCerts` (DER).
    pub ca_certs: Vec<Vec<u8>>,
    /// The DER `CertReqTemplateContent` returned for `id-it-certReqTemplate`, if any.
    pub cert_req_template: Option<Vec<u8>>,
}

impl ServerConfig {
    /// Defaults for `route`: 256 KiB messages, 10 000 MAC iterations, implicit confirmation
    /// allowed, 300 s to confirm, no CA certificates, no template.
    pub fn new(route: impl Into<String>) -> Self {
        Self {
            route: route.into(),
            limits: Limits::default(),
            allow_implicit_confirm: true,
            confirm_wait_secs: 300,
            ca_certs: Vec::new(),
            cert_req_template: None,
        }
    }
}

/// What the gateway does next with a verified message.
#[derive(Debug)]
pub enum Step {
    /// Send this reply; nothing else to ask.
    Reply(Reply),
    /// Ask the registrar, then call [`CmpServer::reply_for_outcome`] with `pending`.
    Issue {
        /// The request for the registrar (set `requester.peer` before passing it on).
        request: IssuanceRequest,
        /// The reply context; holds the MAC secret, so keep it in memory only.
        pending: PendingReply,
    },
    /// The client polls: ask the registrar about `pending_id`, then call
    /// [`CmpServer::reply_for_outcome`] with `pending`.
    Poll {
        /// The registrar's pending id from the earlier [`Outcome::Pending`].
        pending_id: String,
        /// The reply context.
        pending: PendingReply,
    },
    /// Revoke a certificate (after checking that `requester` may), then call
    /// [`CmpServer::reply_for_revocation`] with `pending`.
    Revoke {
        /// The issuer's DER `Name`.
        issuer_der: Vec<u8>,
        /// The serial number, lower-case hex without leading zeros.
        serial: String,
        /// The CRL reason code, when the request gave one.
        reason: Option<u8>,
        /// Who asks, as proven by the message protection.
        requester: Requester,
        /// The reply context.
        pending: PendingReply,
    },
}

/// A reply to send, with what to store and what to do.
#[derive(Debug)]
pub struct Reply {
    /// The DER `PKIMessage`; send it with [`crate::http_content_type`].
    pub der: Vec<u8>,
    /// The transaction state to store under the transactionID (replacing the old one);
    /// `None`: store nothing.
    pub state: Option<TransactionState>,
    /// An action for the gateway (revoke, record confirmation).
    pub event: Option<Event>,
    /// Set when the reply refuses the request, for logs and metrics.
    pub failure: Option<FailInfo>,
}

/// The context of a reply that waits for the registrar. It holds the MAC secret when the
/// request was MAC protected: keep it in memory, do not store it. `Debug` hides the secret.
#[derive(Debug)]
pub struct PendingReply {
    pub(crate) to: ReplyTo,
    pub(crate) common: Common,
    pub(crate) first: bool,
}

/// A CMP server for one route: our protection key and chain plus the route's settings.
pub struct CmpServer {
    pub(crate) config: ServerConfig,
    pub(crate) key: SigningKey,
    pub(crate) chain: Vec<Vec<u8>>,
    pub(crate) name: GeneralName,
    pub(crate) kid: Option<OctetString>,
}

impl std::fmt::Debug for CmpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CmpServer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl CmpServer {
    /// A server signing with `key_pkcs8` (ECDSA P-256, PKCS#8 DER) whose certificate is the
    /// first of `chain` (DER, leaf first; sent in extraCerts of signed replies).
    pub fn new(
        config: ServerConfig,
        key_pkcs8: &[u8],
        chain: Vec<Vec<u8>>,
    ) -> Result<Self, CmpError> {
        let key = SigningKey::from_pkcs8(key_pkcs8)?;
        let leaf = chain
            .first()
            .ok_or_else(|| CmpError::Internal("empty chain".into()))?;
        let cert = Certificate::from_der(leaf)?;
        let tbs = cert.tbs_certificate();
        if tbs.subject_public_key_info().subject_public_key.as_bytes() != Some(key.public_key()) {
            return Err(CmpError::Internal(
                "protection key does not match its certificate".into(),
            ));
        }
        let kid = subject_key_id(&cert);
        let name = GeneralName::DirectoryName(tbs.subject().clone());
        Ok(Self {
            config,
            key,
            chain,
            name,
            kid,
        })
    }

    /// The route's settings.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Step 1: decodes a request body (size-limited). On error answer HTTP 400 with no body
    /// (see [`CmpError::needs_bare_http_error`]).
    pub fn decode(&self, der: &[u8]) -> Result<Incoming, CmpError> {
        incoming::decode(der, &self.config.limits)
    }

    /// Step 2, MAC: checks the protection with the secret of the token named by `senderKID`.
    /// On error send [`CmpServer::error_reply`].
    pub fn verify_mac(&self, msg: &Incoming, secret: &Secret) -> Result<Verified, CmpError> {
        incoming::verify_mac(msg, secret, &self.config.limits)
    }

    /// Step 2, signature: checks the protection with the first extraCert. The caller must
    /// still validate `facts().extra_certs` against the route's trust anchors (the registrar
    /// does so for the `Credential::Certificate` it receives).
    pub fn verify_signature(&self, msg: &Incoming) -> Result<Verified, CmpError> {
        incoming::verify_signature(msg)
    }

    /// A signed error message answering `msg` (whose protection failed or was not checked).
    pub fn error_reply(
        &self,
        msg: &Incoming,
        error: &CmpError,
        now: u64,
        rng: &mut dyn FnMut(&mut [u8]),
    ) -> Result<Vec<u8>, CmpError> {
        let to = ReplyTo::new(&msg.msg, None);
        Ok(self
            .build(&to, error_body(error), Default::default(), now, rng)?
            .der)
    }

    /// Step 3: advances the transaction. `prior` is the state stored under the message's
    /// transactionID, `now` unix seconds, `rng` fills nonces and salts. Protocol failures
    /// come back as a [`Step::Reply`] carrying a protected error message; `Err` only when
    /// not even that could be built.
    pub fn step(
        &self,
        msg: Verified,
        prior: Option<TransactionState>,
        now: u64,
        rng: &mut dyn FnMut(&mut [u8]),
    ) -> Result<Step, CmpError> {
        match self.dispatch(&msg, prior.as_ref(), now, rng) {
            Ok(step) => Ok(step),
            Err(error) => {
                tracing::debug!(error = %error, body = msg.facts.body.name(), "cmp request refused");
                Ok(Step::Reply(self.refuse(&msg, &error, prior, now, rng)?))
            }
        }
    }

    /// The reply to an issuance request or poll once the registrar answered.
    pub fn reply_for_outcome(
        &self,
        pending: PendingReply,
        outcome: &Outcome,
        now: u64,
        rng: &mut dyn FnMut(&mut [u8]),
    ) -> Result<Reply, CmpError> {
        crate::exchange::reply_for_outcome(self, pending, outcome, now, rng)
    }

    /// The rp once the gateway revoked (or refused to).
    pub fn reply_for_revocation(
        &self,
        pending: PendingReply,
        result: Result<(), RejectReason>,
        now: u64,
        rng: &mut dyn FnMut(&mut [u8]),
    ) -> Result<Reply, CmpError> {
        crate::general::reply_for_revocation(self, pending, result, now, rng)
    }

    fn dispatch(
        &self,
        msg: &Verified,
        prior: Option<&TransactionState>,
        now: u64,
        rng: &mut dyn FnMut(&mut [u8]),
    ) -> Result<Step, CmpError> {
        let facts = &msg.facts;
        if !matches!(facts.pvno, 2 | 3) {
            return Err(CmpError::UnsupportedVersion(facts.pvno));
        }
        if facts.transaction_id.as_ref().is_none_or(|t| t.is_empty()) {
            return Err(CmpError::BadRequest("transactionID missing".into()));
        }
        if facts.sender_nonce.as_ref().is_none_or(|n| n.len() < 16) {
            return Err(CmpError::BadSenderNonce);
        }
        use BodyKind as K;
        match (facts.body, prior) {
            (K::Ir | K::Cr | K::Kur | K::P10cr | K::Rr | K::Genm, Some(_)) => {
                Err(CmpError::TransactionIdInUse)
            }
            (K::Ir | K::Cr | K::Kur | K::P10cr, None) => crate::exchange::start(self, msg),
            (K::Rr, None) => crate::general::revocation(self, msg),
            (K::Genm, None) => crate::general::general_message(self, msg, now, rng),
            (K::CertConf | K::PollReq | K::Error, Some(state)) => {
                check_continuation(msg, state)?;
                crate::exchange::continue_with(self, msg, state, now, rng)
            }
            (K::CertConf | K::PollReq | K::Error, None) => {
                Err(CmpError::OutOfSequence("no such transaction"))
            }
            _ => Err(CmpError::BadRequest(format!(
                "{} is not supported",
                facts.body.name()
            ))),
        }
    }

    /// The protected error reply for a refused step; the stored state stays as it was.
    fn refuse(
        &self,
        msg: &Verified,
        error: &CmpError,
        prior: Option<TransactionState>,
        now: u64,
        rng: &mut dyn FnMut(&mut [u8]),
    ) -> Result<Reply, CmpError> {
        let to = ReplyTo::of_verified(msg);
        let built = self.build(&to, error_body(error), Default::default(), now, rng)?;
        Ok(Reply {
            der: built.der,
            state: prior,
            event: None,
            failure: Some(error.fail_info()),
        })
    }
}

/// Who sent a verified message, as stored in the transaction state.
pub(crate) fn requester_id(msg: &Verified) -> Vec<u8> {
    match &msg.proof {
        Proof::Mac { .. } => {
            let mut id = b"kid:".to_vec();
            id.extend_from_slice(msg.facts.sender_kid.as_deref().unwrap_or_default());
            id
        }
        Proof::Signature { chain } => {
            let mut id = b"cert:".to_vec();
            let leaf = chain.first().map(Vec::as_slice).unwrap_or_default();
            id.extend_from_slice(digest::digest(&digest::SHA256, leaf).as_ref());
            id
        }
    }
}

/// A later message of a transaction must answer our last nonce and come from the same party.
fn check_continuation(msg: &Verified, state: &TransactionState) -> Result<(), CmpError> {
    if state.is_finished() {
        return Err(CmpError::OutOfSequence("transaction already finished"));
    }
    if msg.facts.recip_nonce.as_deref() != Some(state.common.last_nonce.as_slice()) {
        return Err(CmpError::BadRecipientNonce);
    }
    if requester_id(msg) != state.common.requester {
        return Err(CmpError::NotAuthorized(
            "transaction belongs to another requester".into(),
        ));
    }
    Ok(())
}

/// An `error` body: rejection, one failure bit, and safe text.
pub(crate) fn error_body(error: &CmpError) -> PkiBody {
    PkiBody::Error(ErrorMsgContent {
        pki_status_info: rejection(error.fail_info(), error.public_text()),
        error_code: None,
        error_details: None,
    })
}

/// A rejection `PKIStatusInfo`.
pub(crate) fn rejection(fail: FailInfo, text: String) -> PkiStatusInfo {
    PkiStatusInfo {
        status: PkiStatus::Rejection as u8,
        status_string: Some(vec![text]),
        fail_info: Some(fail.to_bit_string()),
    }
}

fn subject_key_id(cert: &Certificate) -> Option<OctetString> {
    let ext = cert
        .tbs_certificate()
        .extensions()?
        .iter()
        .find(|e| e.extn_id == oid::SUBJECT_KEY_IDENTIFIER)?;
    OctetString::from_der(ext.extn_value.as_bytes()).ok()
}

/// Re-encodes for callers that need the DER of a decoded value.
pub(crate) fn der_of<T: Encode>(value: &T) -> Result<Vec<u8>, CmpError> {
    Ok(value.to_der()?)
}
