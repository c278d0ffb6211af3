//! `PKIHeader` and the small types it and the bodies share (RFC 9810 sections 5.1.1, 5.2.3).

use der::Sequence;
use der::asn1::{Any, BitString, GeneralizedTime, ObjectIdentifier, OctetString};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::name::GeneralName;

/// `PKIFreeText ::= SEQUENCE SIZE (1..MAX) OF UTF8String` (RFC 9810 section 5.1.1).
pub type PkiFreeText = Vec<String>;

/// `PKIHeader` (RFC 9810 section 5.1.1).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct PkiHeader {
    /// `pvno`: 2 (cmp2000) or 3 (cmp2021).
    pub pvno: u8,
    /// `sender`.
    pub sender: GeneralName,
    /// `recipient`.
    pub recipient: GeneralName,
    /// `messageTime [0]`.
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub message_time: Option<GeneralizedTime>,
    /// `protectionAlg [1]`.
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub protection_alg: Option<AlgorithmIdentifierOwned>,
    /// `senderKID [2]`: for MAC protection, the reference of the shared secret.
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    pub sender_kid: Option<OctetString>,
    /// `recipKID [3]`.
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    pub recip_kid: Option<OctetString>,
    /// `transactionID [4]`.
    #[asn1(context_specific = "4", tag_mode = "EXPLICIT", optional = "true")]
    pub transaction_id: Option<OctetString>,
    /// `senderNonce [5]`.
    #[asn1(context_specific = "5", tag_mode = "EXPLICIT", optional = "true")]
    pub sender_nonce: Option<OctetString>,
    /// `recipNonce [6]`.
    #[asn1(context_specific = "6", tag_mode = "EXPLICIT", optional = "true")]
    pub recip_nonce: Option<OctetString>,
    /// `freeText [7]`.
    #[asn1(context_specific = "7", tag_mode = "EXPLICIT", optional = "true")]
    pub free_text: Option<PkiFreeText>,
    /// `generalInfo [8]`.
    #[asn1(context_specific = "8", tag_mode = "EXPLICIT", optional = "true")]
    pub general_info: Option<Vec<InfoTypeAndValue>>,
}

/// `InfoTypeAndValue` (RFC 9810 section 5.3.19).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct InfoTypeAndValue {
    /// `infoType`.
    pub info_type: ObjectIdentifier,
    /// `infoValue`, kept raw.
    #[asn1(optional = "true")]
    pub info_value: Option<Any>,
}

/// `PKIStatus` values (RFC 9810 section 5.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PkiStatus {
    /// `accepted (0)`.
    Accepted = 0,
    /// `grantedWithMods (1)`.
    GrantedWithMods = 1,
    /// `rejection (2)`.
    Rejection = 2,
    /// `waiting (3)`.
    Waiting = 3,
    /// `revocationWarning (4)`.
    RevocationWarning = 4,
    /// `revocationNotification (5)`.
    RevocationNotification = 5,
    /// `keyUpdateWarning (6)`.
    KeyUpdateWarning = 6,
}

/// `PKIStatusInfo` (RFC 9810 section 5.2.3).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct PkiStatusInfo {
    /// `status`, a [`PkiStatus`] value as a number.
    pub status: u8,
    /// `statusString`.
    #[asn1(optional = "true")]
    pub status_string: Option<PkiFreeText>,
    /// `failInfo`: a `PKIFailureInfo` bit string, see [`crate::FailInfo`].
    #[asn1(optional = "true")]
    pub fail_info: Option<BitString>,
}

impl PkiStatusInfo {
    /// A status without text or failure bits.
    pub fn new(status: PkiStatus) -> Self {
        Self {
            status: status as u8,
            status_string: None,
            fail_info: None,
        }
    }

    /// Whether the status is `accepted` or `grantedWithMods`.
    pub fn is_positive(&self) -> bool {
        matches!(self.status, 0 | 1)
    }
}
