//! The issuance model that every enrollgate protocol speaks.
//!
//! Each protocol crate (EST, SCEP, CMP, ACME, and their CoAP mappings) decodes its own wire
//! format, checks its own wire-level protection, and then describes what the peer asks for as
//! one [`IssuanceRequest`]: who asks and how that was proven ([`Requester`], [`Credential`]),
//! which route (profile and backend) the request arrived on, and which key is to be certified
//! ([`KeySource`]). The gateway's registrar answers every request with one [`Outcome`], which the
//! protocol crate encodes back into its own reply.
//!
//! Nothing here performs I/O or cryptography; the types only carry data. Secret-bearing values
//! are wrapped in [`Secret`], whose `Debug` never prints the content.

#![forbid(unsafe_code)]

use std::fmt;

/// The protocol (and transport) a request arrived with; used in metrics, logs and audit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// RFC 7030 over HTTPS.
    Est,
    /// RFC 8894 over HTTP(S).
    Scep,
    /// RFC 9810 over HTTP(S) (RFC 9811).
    Cmp,
    /// RFC 8555.
    Acme,
    /// RFC 9148: EST over CoAP over DTLS.
    EstCoaps,
    /// RFC 9482: CMP over CoAP over DTLS.
    CmpCoaps,
}

impl Protocol {
    /// The lower-case name used as a metric label and in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Est => "est",
            Self::Scep => "scep",
            Self::Cmp => "cmp",
            Self::Acme => "acme",
            Self::EstCoaps => "est-coaps",
            Self::CmpCoaps => "cmp-coaps",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value that must never be printed: passwords, token secrets, private keys.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The secret bytes; callers must not log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Best effort: overwrite before the allocation is released.
        self.0.iter_mut().for_each(|b| *b = 0);
    }
}

/// How the requester proved who it is, as far as the protocol layer could check.
#[derive(Clone, Debug)]
pub enum Credential {
    /// No credential at all; only a route with open enrollment accepts it.
    Anonymous,
    /// An enrollment token presented in clear (HTTP Basic for EST, the SCEP challenge
    /// password): the registrar checks the secret against the store.
    Token {
        /// The token's public identifier.
        id: String,
        /// The secret as presented.
        secret: Secret,
    },
    /// An enrollment token whose secret the protocol has already proven by a MAC over the
    /// message (CMP PasswordBasedMac/PBMAC1, ACME external account binding). The registrar
    /// still checks that the token exists, fits the route and has uses left.
    TokenProven {
        /// The token's public identifier.
        id: String,
    },
    /// A static per-route password (the SCEP challenge on routes configured with one).
    Password(Secret),
    /// A certificate chain whose private key the peer has proven to hold: a TLS client
    /// certificate, or the signer of a SCEP renewal or a signature-protected CMP message.
    /// Leaf first, DER. The registrar validates the chain against the route's anchors.
    Certificate {
        /// The chain, leaf first, DER encoded.
        chain: Vec<Vec<u8>>,
    },
}

/// Who asks.
#[derive(Clone, Debug)]
pub struct Requester {
    /// The proof of identity.
    pub credential: Credential,
    /// The peer's network address, for audit only.
    pub peer: Option<String>,
}

/// What the requester wants done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// A first certificate.
    Enroll,
    /// A replacement for a certificate the requester holds and authenticated with; the
    /// profile may demand that the new subject repeat the old one.
    Renew,
}

impl Operation {
    /// The lower-case name used in metrics and audit.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enroll => "enroll",
            Self::Renew => "renew",
        }
    }
}

/// The key to certify.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// A PKCS#10 certification request, DER encoded; its signature proves possession.
    Csr(Vec<u8>),
    /// The gateway generates the key pair (EST serverkeygen, CMP central key generation).
    /// The request still carries a CSR that names the subject; its key is ignored.
    Generate {
        /// The subject-carrying request, DER encoded.
        template_csr: Vec<u8>,
    },
    /// A key whose possession the protocol already proved (CMP/CRMF proof of possession,
    /// RFC 4211 section 4), with the subject and extensions the requester asked for. There is
    /// no PKCS#10 to check: the protocol crate verified the POP signature itself.
    Verified {
        /// The requested subject, a DER `Name` (an empty SEQUENCE when none was asked for).
        subject_der: Vec<u8>,
        /// The public key, a DER `SubjectPublicKeyInfo`.
        public_key_der: Vec<u8>,
        /// The requested extensions, a DER `Extensions` SEQUENCE, when any were asked for.
        extensions_der: Option<Vec<u8>>,
    },
}

/// One normalised request for a certificate.
#[derive(Clone, Debug)]
pub struct IssuanceRequest {
    /// The protocol it arrived with.
    pub protocol: Protocol,
    /// The route label ("" for the default route).
    pub route: String,
    /// Enroll or renew.
    pub operation: Operation,
    /// Who asks.
    pub requester: Requester,
    /// The key to certify.
    pub key: KeySource,
    /// The protocol's transaction identifier, when it has one (SCEP transactionID, CMP
    /// transactionID, ACME order). One transaction gives at most one certificate, ever.
    pub transaction_id: Option<String>,
}

/// A certificate the backend issued.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The end-entity certificate, DER.
    pub certificate: Vec<u8>,
    /// The issuing chain above it (issuing CA first, root last), DER.
    pub chain: Vec<Vec<u8>>,
    /// The serial number as lower-case hex.
    pub serial: String,
    /// The private key in PKCS#8 DER, only for [`KeySource::Generate`].
    pub private_key: Option<Secret>,
}

/// Why a request was refused. Each protocol maps each variant to its own wire form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// The request could not be decoded (a CSR that is not DER, a missing field).
    Malformed(String),
    /// A signature did not verify (CSR proof of possession, message signature).
    BadSignature,
    /// The credential is wrong, spent, expired or of the wrong kind for the route.
    Unauthenticated,
    /// The requester is known but may not have this (subject, SAN or key outside policy).
    PolicyDenied(String),
    /// The algorithm or key is not accepted by the profile.
    BadAlgorithm(String),
    /// No route has that label.
    UnknownRoute,
    /// The transaction id was used before with a different request.
    TransactionConflict,
    /// A person or webhook refused the request.
    Refused,
    /// The backend CA failed or is unreachable; the request may be retried later.
    BackendUnavailable,
    /// Our own bug; details are in the server log, never in the reply.
    Internal,
}

impl RejectReason {
    /// A short reason that is safe to show the peer.
    pub fn public_text(&self) -> String {
        match self {
            Self::Malformed(why) => format!("malformed request: {why}"),
            Self::BadSignature => "signature does not verify".into(),
            Self::Unauthenticated => "authentication failed".into(),
            Self::PolicyDenied(why) => format!("refused by policy: {why}"),
            Self::BadAlgorithm(why) => format!("algorithm not accepted: {why}"),
            Self::UnknownRoute => "unknown route".into(),
            Self::TransactionConflict => "transaction id already used for another request".into(),
            Self::Refused => "request refused".into(),
            Self::BackendUnavailable => "certificate authority unavailable".into(),
            Self::Internal => "internal error".into(),
        }
    }

    /// A stable lower-case name for metrics labels and audit.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::BadSignature => "bad_signature",
            Self::Unauthenticated => "unauthenticated",
            Self::PolicyDenied(_) => "policy",
            Self::BadAlgorithm(_) => "bad_algorithm",
            Self::UnknownRoute => "unknown_route",
            Self::TransactionConflict => "transaction_conflict",
            Self::Refused => "refused",
            Self::BackendUnavailable => "backend_unavailable",
            Self::Internal => "internal",
        }
    }
}

/// The registrar's answer to one request.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// A certificate.
    Issued(Issued),
    /// Not decided yet (manual approval, a slow backend): ask again later.
    Pending {
        /// The identifier under which the request waits.
        id: String,
        /// Seconds the client should wait before polling.
        retry_after: u32,
    },
    /// Refused, for this reason.
    Rejected(RejectReason),
}

impl Outcome {
    /// A stable lower-case name for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Issued(_) => "issued",
            Self::Pending { .. } => "pending",
            Self::Rejected(_) => "rejected",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new(b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "Secret(..)");
        let c = Credential::Token {
            id: "abc".into(),
            secret: s,
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn reject_texts_hide_internals() {
        assert_eq!(RejectReason::Internal.public_text(), "internal error");
        assert_eq!(RejectReason::UnknownRoute.kind(), "unknown_route");
    }
}
