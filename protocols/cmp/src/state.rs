//! The transaction state the gateway stores between messages, keyed by transactionID.
//!
//! A transaction is in one of three phases: waiting for the client to poll a pending request,
//! waiting for its certConf, or finished (kept so that a reused transactionID is refused).
//! [`TransactionState::to_bytes`] gives a versioned DER record; nothing secret is in it.

use der::asn1::OctetString;
use der::{Decode, Encode, Sequence};

use crate::error::CmpError;

/// Version of the stored record layout.
const RECORD_VERSION: u8 = 1;

/// The request that opened a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// ir
    Ir,
    /// cr
    Cr,
    /// kur
    Kur,
    /// p10cr
    P10cr,
    /// rr
    Rr,
}

impl RequestKind {
    fn code(self) -> u8 {
        match self {
            Self::Ir => 0,
            Self::Cr => 2,
            Self::P10cr => 4,
            Self::Kur => 7,
            Self::Rr => 11,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Ir,
            2 => Self::Cr,
            4 => Self::P10cr,
            7 => Self::Kur,
            11 => Self::Rr,
            _ => return None,
        })
    }
}

/// What every phase knows about its transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Common {
    pub(crate) transaction_id: Vec<u8>,
    /// Our last senderNonce: the client's next recipNonce must repeat it.
    pub(crate) last_nonce: Vec<u8>,
    /// Who opened the transaction (MAC: "kid:" + senderKID, signature: "cert:" + SHA-256 of
    /// the protection certificate); later messages must come from the same requester.
    pub(crate) requester: Vec<u8>,
    pub(crate) request: RequestKind,
    pub(crate) cert_req_id: i64,
    pub(crate) pvno: u8,
    /// Whether implicit confirmation was asked for and is allowed: granted when issued.
    pub(crate) implicit_confirm: bool,
}

/// The phase of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The registrar answered Pending; the client polls with pollReq.
    AwaitingPoll { pending_id: String },
    /// A certificate went out; its certConf is due by `deadline` (unix seconds).
    AwaitingConfirm {
        cert: Vec<u8>,
        serial: String,
        issuer: Vec<u8>,
        deadline: u64,
    },
    /// Nothing more is expected.
    Done,
}

/// The stored state of one CMP transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionState {
    pub(crate) common: Common,
    pub(crate) phase: Phase,
}

/// Something the gateway must act on besides sending the reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The client confirmed the certificate with this serial (lower-case hex).
    Confirmed {
        /// The serial number, lower-case hex.
        serial: String,
    },
    /// The client rejected the certificate in certConf: revoke it (RFC 9810 section 5.3.18).
    RevokeRejected {
        /// The issuer's DER `Name`.
        issuer_der: Vec<u8>,
        /// The serial number, lower-case hex.
        serial: String,
    },
    /// No valid certConf came before the deadline, or the client aborted with an error:
    /// revoke the certificate.
    RevokeUnconfirmed {
        /// The issuer's DER `Name`.
        issuer_der: Vec<u8>,
        /// The serial number, lower-case hex.
        serial: String,
    },
}

impl TransactionState {
    /// A short name of the phase, for logs and metrics.
    pub fn phase_name(&self) -> &'static str {
        match self.phase {
            Phase::AwaitingPoll { .. } => "awaiting_poll",
            Phase::AwaitingConfirm { .. } => "awaiting_confirm",
            Phase::Done => "done",
        }
    }

    /// The request that opened the transaction.
    pub fn request_kind(&self) -> RequestKind {
        self.common.request
    }

    /// Whether the transaction expects nothing more (the record only guards the id).
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Done
    }

    /// When the certConf is due (unix seconds), while one is awaited.
    pub fn confirm_deadline(&self) -> Option<u64> {
        match self.phase {
            Phase::AwaitingConfirm { deadline, .. } => Some(deadline),
            _ => None,
        }
    }

    /// The registrar's pending id, while the client polls.
    pub fn pending_id(&self) -> Option<&str> {
        match &self.phase {
            Phase::AwaitingPoll { pending_id } => Some(pending_id),
            _ => None,
        }
    }

    /// For a sweeper: when the certConf deadline has passed at `now`, the finished state to
    /// store and the revocation the gateway must carry out.
    pub fn expire(&self, now: u64) -> Option<(Self, Event)> {
        match &self.phase {
            Phase::AwaitingConfirm {
                serial,
                issuer,
                deadline,
                ..
            } if now > *deadline => {
                let event = Event::RevokeUnconfirmed {
                    issuer_der: issuer.clone(),
                    serial: serial.clone(),
                };
                Some((self.clone().finish(), event))
            }
            _ => None,
        }
    }

    pub(crate) fn finish(self) -> Self {
        Self {
            common: self.common,
            phase: Phase::Done,
        }
    }

    /// The versioned DER record to store.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CmpError> {
        Ok(Record::from_state(self)?.to_der()?)
    }

    /// Reads a record made by [`TransactionState::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CmpError> {
        Record::from_der(bytes)?.into_state()
    }
}

/// The stored layout.
#[derive(Sequence)]
#[asn1(tag_mode = "IMPLICIT")]
struct Record {
    version: u8,
    phase: u8,
    request: u8,
    pvno: u8,
    implicit_confirm: bool,
    cert_req_id: i64,
    transaction_id: OctetString,
    last_nonce: OctetString,
    requester: OctetString,
    #[asn1(context_specific = "0", optional = "true")]
    pending_id: Option<String>,
    #[asn1(context_specific = "1", optional = "true")]
    cert: Option<OctetString>,
    #[asn1(context_specific = "2", optional = "true")]
    serial: Option<String>,
    #[asn1(context_specific = "3", optional = "true")]
    issuer: Option<OctetString>,
    #[asn1(context_specific = "4", optional = "true")]
    deadline: Option<u64>,
}

impl Record {
    fn from_state(state: &TransactionState) -> Result<Self, CmpError> {
        let c = &state.common;
        let mut record = Self {
            version: RECORD_VERSION,
            phase: 0,
            request: c.request.code(),
            pvno: c.pvno,
            implicit_confirm: c.implicit_confirm,
            cert_req_id: c.cert_req_id,
            transaction_id: OctetString::new(c.transaction_id.clone())?,
            last_nonce: OctetString::new(c.last_nonce.clone())?,
            requester: OctetString::new(c.requester.clone())?,
            pending_id: None,
            cert: None,
            serial: None,
            issuer: None,
            deadline: None,
        };
        match &state.phase {
            Phase::AwaitingPoll { pending_id } => {
                record.phase = 1;
                record.pending_id = Some(pending_id.clone());
            }
            Phase::AwaitingConfirm {
                cert,
                serial,
                issuer,
                deadline,
            } => {
                record.phase = 2;
                record.cert = Some(OctetString::new(cert.clone())?);
                record.serial = Some(serial.clone());
                record.issuer = Some(OctetString::new(issuer.clone())?);
                record.deadline = Some(*deadline);
            }
            Phase::Done => record.phase = 3,
        }
        Ok(record)
    }

    fn into_state(self) -> Result<TransactionState, CmpError> {
        let bad = |why: &str| CmpError::Internal(format!("stored transaction state: {why}"));
        if self.version != RECORD_VERSION {
            return Err(bad("unknown version"));
        }
        let phase = match (
            self.phase,
            self.pending_id,
            self.cert,
            self.serial,
            self.issuer,
        ) {
            (1, Some(pending_id), ..) => Phase::AwaitingPoll { pending_id },
            (2, _, Some(cert), Some(serial), Some(issuer)) => Phase::AwaitingConfirm {
                cert: cert.into_bytes().into(),
                serial,
                issuer: issuer.into_bytes().into(),
                deadline: self.deadline.ok_or_else(|| bad("missing deadline"))?,
            },
            (3, ..) => Phase::Done,
            _ => return Err(bad("inconsistent phase")),
        };
        let common = Common {
            transaction_id: self.transaction_id.into_bytes().into(),
            last_nonce: self.last_nonce.into_bytes().into(),
            requester: self.requester.into_bytes().into(),
            request: RequestKind::from_code(self.request).ok_or_else(|| bad("request kind"))?,
            cert_req_id: self.cert_req_id,
            pvno: self.pvno,
            implicit_confirm: self.implicit_confirm,
        };
        Ok(TransactionState { common, phase })
    }
}
