//! Problem documents: the error replies of RFC 8555 section 6.7 (RFC 7807 format).
//!
//! Every fallible function of this crate returns a [`Problem`], so the gateway can send any
//! failure straight to the client: [`Problem::status`] is the HTTP status and
//! [`Problem::to_json`] the body, served as [`PROBLEM_CONTENT_TYPE`]. A problem about our own
//! side ([`ProblemType::ServerInternal`]) never carries internals in its detail.

use enrollgate_model::RejectReason;
use serde_json::{Map, Value, json};

use crate::resources::Identifier;

/// The media type of a problem document (RFC 7807 section 3).
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// The ACME error types of RFC 8555 section 6.7, with the ones that ARI (RFC 9773) and the
/// profiles draft add.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProblemType {
    /// The request specified an account that does not exist.
    AccountDoesNotExist,
    /// The request specified a certificate to be revoked that has already been revoked.
    AlreadyRevoked,
    /// The CSR is unacceptable (e.g. its names differ from the order's identifiers).
    BadCsr,
    /// The client sent an unacceptable anti-replay nonce.
    BadNonce,
    /// The JWS was signed by a public key the server does not support.
    BadPublicKey,
    /// The revocation reason provided is not allowed by the server.
    BadRevocationReason,
    /// The JWS was signed with an algorithm the server does not support.
    BadSignatureAlgorithm,
    /// Certification Authority Authorization (CAA) records forbid issuance.
    Caa,
    /// Specific error conditions are listed in the "subproblems" array.
    Compound,
    /// The server could not connect to the validation target.
    Connection,
    /// There was a problem with a DNS query during identifier validation.
    Dns,
    /// The request must include a value for the "externalAccountBinding" field.
    ExternalAccountRequired,
    /// Response received did not match the challenge's requirements.
    IncorrectResponse,
    /// A contact URL for an account was invalid.
    InvalidContact,
    /// The request message was malformed.
    Malformed,
    /// The request attempted to finalize an order that is not ready to be finalized.
    OrderNotReady,
    /// The request exceeds a rate limit.
    RateLimited,
    /// The server will not issue certificates for the identifier.
    RejectedIdentifier,
    /// The server experienced an internal error.
    ServerInternal,
    /// The server received a TLS error during validation.
    Tls,
    /// The client lacks sufficient authorization.
    Unauthorized,
    /// A contact URL for an account used an unsupported protocol scheme.
    UnsupportedContact,
    /// An identifier is of an unsupported type.
    UnsupportedIdentifier,
    /// Visit the "instance" URL and take actions specified there.
    UserActionRequired,
    /// RFC 9773: the certificate named in `replaces` was already replaced.
    AlreadyReplaced,
    /// draft-aaron-acme-profiles: the requested profile is not advertised.
    InvalidProfile,
}

impl ProblemType {
    /// The short name after `urn:ietf:params:acme:error:`.
    pub fn name(self) -> &'static str {
        match self {
            Self::AccountDoesNotExist => "accountDoesNotExist",
            Self::AlreadyRevoked => "alreadyRevoked",
            Self::BadCsr => "badCSR",
            Self::BadNonce => "badNonce",
            Self::BadPublicKey => "badPublicKey",
            Self::BadRevocationReason => "badRevocationReason",
            Self::BadSignatureAlgorithm => "badSignatureAlgorithm",
            Self::Caa => "caa",
            Self::Compound => "compound",
            Self::Connection => "connection",
            Self::Dns => "dns",
            Self::ExternalAccountRequired => "externalAccountRequired",
            Self::IncorrectResponse => "incorrectResponse",
            Self::InvalidContact => "invalidContact",
            Self::Malformed => "malformed",
            Self::OrderNotReady => "orderNotReady",
            Self::RateLimited => "rateLimited",
            Self::RejectedIdentifier => "rejectedIdentifier",
            Self::ServerInternal => "serverInternal",
            Self::Tls => "tls",
            Self::Unauthorized => "unauthorized",
            Self::UnsupportedContact => "unsupportedContact",
            Self::UnsupportedIdentifier => "unsupportedIdentifier",
            Self::UserActionRequired => "userActionRequired",
            Self::AlreadyReplaced => "alreadyReplaced",
            Self::InvalidProfile => "invalidProfile",
        }
    }

    /// The full URN, e.g. `urn:ietf:params:acme:error:badNonce`.
    pub fn urn(self) -> String {
        format!("urn:ietf:params:acme:error:{}", self.name())
    }

    /// The HTTP status this type is sent with unless a problem says otherwise.
    pub fn default_status(self) -> u16 {
        match self {
            Self::Unauthorized | Self::OrderNotReady | Self::UserActionRequired => 403,
            Self::RateLimited => 429,
            Self::ServerInternal => 500,
            Self::AlreadyReplaced => 409,
            _ => 400,
        }
    }
}

/// A subproblem (RFC 8555 section 6.7.1): one identifier's own failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subproblem {
    /// The error type.
    pub kind: ProblemType,
    /// A human-readable explanation.
    pub detail: String,
    /// The identifier the subproblem is about.
    pub identifier: Identifier,
}

/// An ACME problem document; the error type of every fallible function in this crate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", kind.name())]
pub struct Problem {
    /// The error type.
    pub kind: ProblemType,
    /// A human-readable explanation, safe to show the client.
    pub detail: String,
    /// The HTTP status code.
    pub status: u16,
    /// Per-identifier failures (RFC 8555 section 6.7.1).
    pub subproblems: Vec<Subproblem>,
    /// For `badSignatureAlgorithm`: the algorithms the server accepts.
    pub algorithms: Vec<String>,
}

impl Problem {
    /// A problem of `kind` with its default status.
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            status: kind.default_status(),
            subproblems: Vec::new(),
            algorithms: Vec::new(),
        }
    }

    /// `malformed`: the request could not be understood.
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::Malformed, detail)
    }

    /// `unauthorized`: the client may not do this.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::Unauthorized, detail)
    }

    /// `serverInternal` with a fixed, generic detail; log the cause on the gateway's side.
    pub fn internal() -> Self {
        Self::new(ProblemType::ServerInternal, "internal error")
    }

    /// `badSignatureAlgorithm` listing the algorithms that are accepted.
    pub fn bad_signature_algorithm(detail: impl Into<String>) -> Self {
        let mut p = Self::new(ProblemType::BadSignatureAlgorithm, detail);
        p.algorithms = crate::jws::SUPPORTED_ALGORITHMS
            .iter()
            .map(|a| (*a).into())
            .collect();
        p
    }

    /// A problem that stands for several per-identifier failures: the top-level type is the
    /// subproblems' type when they all share one, `malformed` otherwise (RFC 8555 6.7.1).
    pub fn with_subproblems(detail: impl Into<String>, subproblems: Vec<Subproblem>) -> Self {
        let first = subproblems.first().map(|s| s.kind);
        let kind = match first {
            Some(k) if subproblems.iter().all(|s| s.kind == k) => k,
            _ => ProblemType::Malformed,
        };
        let mut p = Self::new(kind, detail);
        p.subproblems = subproblems;
        p
    }

    /// Replaces the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// The problem document as JSON (send with [`PROBLEM_CONTENT_TYPE`]).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), self.kind.urn().into());
        m.insert("detail".into(), self.detail.clone().into());
        m.insert("status".into(), self.status.into());
        if !self.subproblems.is_empty() {
            let subs = self.subproblems.iter().map(subproblem_json).collect();
            m.insert("subproblems".into(), Value::Array(subs));
        }
        if !self.algorithms.is_empty() {
            m.insert("algorithms".into(), self.algorithms.clone().into());
        }
        Value::Object(m)
    }

    /// The problem document serialised to bytes.
    pub fn to_body(&self) -> Vec<u8> {
        self.to_json().to_string().into_bytes()
    }

    /// The problem for a registrar refusal, sent when an order fails at finalization.
    pub fn from_reject(reason: &RejectReason) -> Self {
        let text = reason.public_text();
        match reason {
            RejectReason::Malformed(_)
            | RejectReason::BadSignature
            | RejectReason::BadAlgorithm(_) => Self::new(ProblemType::BadCsr, text),
            RejectReason::Unauthenticated
            | RejectReason::PolicyDenied(_)
            | RejectReason::Refused => Self::unauthorized(text),
            RejectReason::UnknownRoute => Self::malformed(text).with_status(404),
            RejectReason::TransactionConflict => Self::malformed(text).with_status(409),
            RejectReason::BackendUnavailable => {
                Self::new(ProblemType::ServerInternal, text).with_status(503)
            }
            RejectReason::Internal => Self::internal(),
        }
    }

    /// Rebuilds a problem from its JSON form (as stored in a challenge or order record).
    pub fn from_json(v: &Value) -> Option<Self> {
        let urn = v.get("type")?.as_str()?;
        let kind = kind_from_urn(urn)?;
        let detail = v.get("detail").and_then(Value::as_str).unwrap_or_default();
        let mut p = Self::new(kind, detail);
        if let Some(s) = v.get("status").and_then(Value::as_u64) {
            p.status = u16::try_from(s).unwrap_or(500);
        }
        if let Some(subs) = v.get("subproblems").and_then(Value::as_array) {
            p.subproblems = subs.iter().filter_map(subproblem_from_json).collect();
        }
        Some(p)
    }
}

impl serde::Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Problem {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Self::from_json(&v).ok_or_else(|| serde::de::Error::custom("not an ACME problem document"))
    }
}

/// All types, for reverse lookup from a URN.
const ALL_TYPES: [ProblemType; 26] = [
    ProblemType::AccountDoesNotExist,
    ProblemType::AlreadyRevoked,
    ProblemType::BadCsr,
    ProblemType::BadNonce,
    ProblemType::BadPublicKey,
    ProblemType::BadRevocationReason,
    ProblemType::BadSignatureAlgorithm,
    ProblemType::Caa,
    ProblemType::Compound,
    ProblemType::Connection,
    ProblemType::Dns,
    ProblemType::ExternalAccountRequired,
    ProblemType::IncorrectResponse,
    ProblemType::InvalidContact,
    ProblemType::Malformed,
    ProblemType::OrderNotReady,
    ProblemType::RateLimited,
    ProblemType::RejectedIdentifier,
    ProblemType::ServerInternal,
    ProblemType::Tls,
    ProblemType::Unauthorized,
    ProblemType::UnsupportedContact,
    ProblemType::UnsupportedIdentifier,
    ProblemType::UserActionRequired,
    ProblemType::AlreadyReplaced,
    ProblemType::InvalidProfile,
];

fn kind_from_urn(urn: &str) -> Option<ProblemType> {
    let name = urn.strip_prefix("urn:ietf:params:acme:error:")?;
    ALL_TYPES.iter().copied().find(|k| k.name() == name)
}

fn subproblem_json(s: &Subproblem) -> Value {
    json!({
        "type": s.kind.urn(),
        "detail": s.detail,
        "identifier": s.identifier,
    })
}

fn subproblem_from_json(v: &Value) -> Option<Subproblem> {
    Some(Subproblem {
        kind: kind_from_urn(v.get("type")?.as_str()?)?,
        detail: v.get("detail")?.as_str()?.into(),
        identifier: serde_json::from_value(v.get("identifier")?.clone()).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Identifier;

    #[test]
    fn renders_type_status_and_subproblems() {
        let sub = Subproblem {
            kind: ProblemType::RejectedIdentifier,
            detail: "no".into(),
            identifier: Identifier::dns("bad.example"),
        };
        let p = Problem::with_subproblems("refused", vec![sub]);
        let j = p.to_json();
        assert_eq!(j["type"], "urn:ietf:params:acme:error:rejectedIdentifier");
        assert_eq!(j["status"], 400);
        assert_eq!(j["subproblems"][0]["identifier"]["value"], "bad.example");
        assert_eq!(Problem::from_json(&j), Some(p));
    }

    #[test]
    fn mixed_subproblems_are_malformed() {
        let a = Subproblem {
            kind: ProblemType::RejectedIdentifier,
            detail: "no".into(),
            identifier: Identifier::dns("a.example"),
        };
        let mut b = a.clone();
        b.kind = ProblemType::UnsupportedIdentifier;
        assert_eq!(
            Problem::with_subproblems("x", vec![a, b]).kind,
            ProblemType::Malformed
        );
    }

    #[test]
    fn bad_signature_algorithm_lists_algorithms() {
        let j = Problem::bad_signature_algorithm("HS256").to_json();
        assert!(
            j["algorithms"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "ES256"))
        );
    }

    #[test]
    fn reject_reasons_map_without_internals() {
        let p = Problem::from_reject(&RejectReason::Internal);
        assert_eq!(
            (p.kind, p.status, p.detail.as_str()),
            (ProblemType::ServerInternal, 500, "internal error")
        );
        assert_eq!(
            Problem::from_reject(&RejectReason::BadSignature).kind,
            ProblemType::BadCsr
        );
        assert_eq!(Problem::from_reject(&RejectReason::Refused).status, 403);
    }
}
