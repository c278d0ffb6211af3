//! SCEP (RFC 8894), server side, without I/O.
//!
//! The gateway's HTTP layer hands this crate the method, query string and body of a request
//! ([`parse_http_request`]); GetCACaps and GetCACert are answered from configuration
//! ([`ca_caps`], [`ca_cert_reply`], [`next_ca_cert_reply`]). A PKIOperation body goes to
//! [`decode_pki_message`], which checks, in order, the size, the CMS SignedData, the SCEP
//! signed attributes (transactionID, senderNonce, messageType), the signer's messageDigest
//! and signature, then opens the EnvelopedData with the RA key ([`RaIdentity`]) and decodes
//! the content: a PKCS#10 request (PKCSReq, RenewalReq), IssuerAndSubject (CertPoll) or
//! IssuerAndSerialNumber (GetCert, GetCRL). [`issuance_request`] turns an enrolment or renewal
//! into the shared [`enrollgate_model::IssuanceRequest`]; the registrar's
//! [`enrollgate_model::Outcome`] becomes a CertRep with [`cert_rep_for_outcome`] (or the
//! finer [`cert_rep_success`], [`cert_rep_pending`], [`cert_rep_failure`]).
//!
//! Errors come as a [`ScepFailure`]: once the transactionID and senderNonce are known, RFC
//! 8894 wants a signed CertRep FAILURE with a failInfo, and the failure carries what is
//! needed to build one; before that, the only answer is HTTP 400.
//!
//! Randomness comes from the caller as a `&mut dyn FnMut(&mut [u8])`: the CertRep's
//! senderNonce, content-encryption keys and IVs. aws-lc draws what it needs inside its own
//! primitives (RSA blinding, PKCS#1 v1.5 encryption padding) from its internal generator.
//! Signed attributes are verified over the bytes as received, not as re-encoded.
//! A failed RSA decryption of the content key is hidden behind a stand-in key (implicit
//! rejection), so that a padding error and a wrong key give the same badMessageCheck.
//!
//! The [`client`] module builds requests and opens replies, for tests and tooling.
//!
//! Not supported:
//! - BER indefinite-length encodings (messages must be DER, except that the encrypted
//!   content may be a constructed `[0]` of OCTET STRINGs, as Go's pkcs7 writes it);
//! - key transport other than RSA PKCS#1 v1.5 (no RSAES-OAEP, no key agreement), so the RA
//!   key must be RSA, and a SUCCESS can only be sent to a requester with an RSA certificate;
//! - content encryption other than AES-128/192/256-CBC, DES-EDE3-CBC and (decrypt only)
//!   DES-CBC; replies to DES-CBC requests use AES-128-CBC;
//! - RSASSA-PSS and Ed25519 signers are passed to `enrollgate-pkix` and work only as far as
//!   it verifies them; signingTime is not checked (no clock here), so badTime is never sent;
//! - the SCEP state (pending transactions, GetCert and GetCRL look-ups) is the caller's;
//! - a PKIOperation sent with GET is bounded by the gateway's HTTP layer (hyper takes request
//!   targets up to 64 KiB, about 47 KiB of message): larger messages must be POSTed.

#![forbid(unsafe_code)]

mod attributes;
pub mod client;
mod crypto;
mod envelope;
mod error;
mod http;
mod message;
mod model;
mod ra;
mod reply;
mod signed;

pub use attributes::{
    FailInfo, MAX_NONCE_LEN, MAX_TRANSACTION_ID_LEN, MessageType, PkiStatus, oid,
};
pub use crypto::{ContentCipher, DigestAlg};
pub use error::{FailureReply, ScepError, ScepFailure};
pub use http::{
    CA_CAPS_CONTENT_TYPE, CA_CERT_CONTENT_TYPE, CA_RA_CERT_CONTENT_TYPE, HttpReply,
    NEXT_CA_CERT_CONTENT_TYPE, PKI_MESSAGE_CONTENT_TYPE, ScepHttpRequest, ca_caps, ca_cert_reply,
    next_ca_cert_reply, parse_http_request, pki_operation_reply,
};
pub use message::{
    DecodeOptions, IssuerAndSubject, MAX_MESSAGE_LEN, PkiRequest, ReplyTo, RequestContent,
    decode_pki_message,
};
pub use model::{fail_info_for, issuance_request, transaction_key};
pub use ra::RaIdentity;
pub use reply::{
    CertRepPayload, cert_rep_failure, cert_rep_for_outcome, cert_rep_pending, cert_rep_success,
};

/// Re-exported so callers can name `IssuerAndSerialNumber` (GetCert, GetCRL) without a
/// direct dependency on `cms`.
pub use cms::cert::IssuerAndSerialNumber;

#[cfg(test)]
mod tests;
