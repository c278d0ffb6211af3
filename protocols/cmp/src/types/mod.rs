//! CMP and CRMF wire types, mirroring the ASN.1 modules of RFC 9810 (appendix F,
//! `PKIXCMP-2023`, EXPLICIT TAGS) and RFC 4211 (`PKIXCRMF-2005`, IMPLICIT TAGS).
//!
//! Fields whose inner structure we never read (names, certificates, encrypted keys) are kept
//! as raw [`Any`](der::asn1::Any) values so that decoding and re-encoding reproduces the input
//! byte for byte, which message protection depends on.

mod body;
mod content;
mod crmf;
mod header;
mod message;

pub use body::{BodyKind, PkiBody};
pub use content::{
    CertConfirmContent, CertOrEncCert, CertRepMessage, CertResponse, CertStatus, CertifiedKeyPair,
    ErrorMsgContent, PollRepEntry, PollReqEntry, RevDetails, RevRepContent,
};
pub use crmf::{
    AttributeTypeAndValue, CertId, CertReqMessages, CertReqMsg, CertRequest, CertTemplate,
    OptionalValidity, PopoSigningKey, PopoSigningKeyInput, ProofOfPossession,
};
pub use header::{InfoTypeAndValue, PkiFreeText, PkiHeader, PkiStatus, PkiStatusInfo};
pub use message::{PkiMessage, ProtectedPart};
