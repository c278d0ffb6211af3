//! `PKIMessage` and `ProtectedPart` (RFC 9810 sections 5.1 and 5.1.3).

use der::asn1::{Any, BitString};
use der::{Encode, Sequence};

use super::body::PkiBody;
use super::header::PkiHeader;

/// `PKIMessage` (RFC 9810 section 5.1).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct PkiMessage {
    /// `header`.
    pub header: PkiHeader,
    /// `body`.
    pub body: PkiBody,
    /// `protection [0]`: the MAC or signature over [`ProtectedPart`].
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub protection: Option<BitString>,
    /// `extraCerts [1]`: certificates, raw; with signature protection the first one is the
    /// protection certificate.
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub extra_certs: Option<Vec<Any>>,
}

/// `ProtectedPart` (RFC 9810 section 5.1.3): what the protection covers.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct ProtectedPart {
    /// `header`.
    pub header: PkiHeader,
    /// `body`.
    pub body: PkiBody,
}

impl PkiMessage {
    /// The DER of the `ProtectedPart` of this message.
    pub fn protected_part_der(&self) -> der::Result<Vec<u8>> {
        ProtectedPart {
            header: self.header.clone(),
            body: self.body.clone(),
        }
        .to_der()
    }
}
