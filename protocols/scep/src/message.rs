//! Decoding a client's pkiMessage (RFC 8894 section 3): SignedData checks, the envelope,
//! and the message content.

use cms::cert::IssuerAndSerialNumber;
use der::{Decode, Encode, Sequence};
use x509_cert::Certificate;
use x509_cert::name::Name;

use crate::attributes::MessageType;
use crate::crypto::{ContentCipher, DigestAlg};
use crate::signed::SignedMessage;
use crate::{RaIdentity, ScepError, ScepFailure, envelope};

/// The largest pkiMessage we decode (RFC 8894 sets no limit; a PKCSReq is a few KiB).
pub const MAX_MESSAGE_LEN: usize = 256 * 1024;

/// How strict the decoder is.
#[derive(Clone, Debug)]
pub struct DecodeOptions {
    /// Largest message accepted, in bytes.
    pub max_len: usize,
    /// Accept SHA-1 digests and sha1WithRSAEncryption signatures. On by default: micromdm's
    /// scepclient and many devices sign SCEP messages with SHA-1 only.
    pub allow_sha1: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            max_len: MAX_MESSAGE_LEN,
            allow_sha1: true,
        }
    }
}

/// `IssuerAndSubject` (RFC 8894 section 3.3.3): the content of a CertPoll.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct IssuerAndSubject {
    /// The issuing CA's name.
    pub issuer: Name,
    /// The subject of the pending request.
    pub subject: Name,
}

/// What a request's envelope holds, by messageType.
#[derive(Clone, Debug)]
pub enum RequestContent {
    /// PKCSReq: a PKCS#10 request, DER.
    PkcsReq {
        /// The certification request, DER.
        csr: Vec<u8>,
    },
    /// RenewalReq: a PKCS#10 request, DER, for a key signed by the certificate it replaces.
    RenewalReq {
        /// The certification request, DER.
        csr: Vec<u8>,
    },
    /// CertPoll (GetCertInitial): which pending request is polled.
    CertPoll(IssuerAndSubject),
    /// GetCert: which certificate is wanted.
    GetCert(IssuerAndSerialNumber),
    /// GetCRL: the certificate whose CRL is wanted.
    GetCrl(IssuerAndSerialNumber),
}

impl RequestContent {
    /// The messageType that carries this content.
    pub fn message_type(&self) -> MessageType {
        match self {
            Self::PkcsReq { .. } => MessageType::PkcsReq,
            Self::RenewalReq { .. } => MessageType::RenewalReq,
            Self::CertPoll(_) => MessageType::CertPoll,
            Self::GetCert(_) => MessageType::GetCert,
            Self::GetCrl(_) => MessageType::GetCrl,
        }
    }
}

/// What a CertRep needs to know about the request it answers.
#[derive(Clone, Debug)]
pub struct ReplyTo {
    /// The request's transactionID, repeated in the reply.
    pub transaction_id: String,
    /// The request's senderNonce, returned as the reply's recipientNonce.
    pub sender_nonce: Vec<u8>,
    /// The certificate that signed the request, DER; a SUCCESS is encrypted to it. `None`
    /// when it could not be found (only a FAILURE can then be sent).
    pub requester_cert: Option<Vec<u8>>,
    /// The cipher the request was encrypted with, when known; the reply follows it
    /// ([`ContentCipher::for_reply`]), else uses AES-128-CBC.
    pub request_cipher: Option<ContentCipher>,
}

/// A pkiMessage whose signature verified and whose envelope opened.
#[derive(Clone, Debug)]
pub struct PkiRequest {
    /// transactionID, senderNonce, requester certificate and cipher, for the reply.
    pub reply_to: ReplyTo,
    /// The signer's certificate first, then the other certificates of the SignedData, DER.
    pub signer_chain: Vec<Vec<u8>>,
    /// The digest the signer used.
    pub digest: DigestAlg,
    /// The decrypted content.
    pub content: RequestContent,
}

impl PkiRequest {
    /// The request's transactionID.
    pub fn transaction_id(&self) -> &str {
        &self.reply_to.transaction_id
    }

    /// The request's messageType.
    pub fn message_type(&self) -> MessageType {
        self.content.message_type()
    }
}

/// Decodes and checks a pkiMessage sent to `ra`.
///
/// Order of checks: size, SignedData structure, the transactionID, senderNonce and
/// messageType attributes (from here on a failure can be answered with a CertRep), the
/// signer certificate, messageDigest and signature, then the envelope and its content.
pub fn decode_pki_message(
    der: &[u8],
    ra: &RaIdentity,
    options: &DecodeOptions,
) -> Result<PkiRequest, ScepFailure> {
    if der.len() > options.max_len {
        return Err(ScepFailure::http_only(ScepError::TooLarge {
            len: der.len(),
            limit: options.max_len,
        }));
    }
    let msg = SignedMessage::parse(der).map_err(ScepFailure::http_only)?;
    let mut reply_to = reply_to(&msg).map_err(ScepFailure::http_only)?;
    let fail = |e: ScepError, r: &ReplyTo| ScepFailure::with_reply(e, r.clone());

    let index = msg.signer_index().map_err(|e| fail(e, &reply_to))?;
    let signer = msg.certificates.get(index).ok_or(ScepError::SignerNotFound);
    let signer = signer.map_err(|e| fail(e, &reply_to))?;
    reply_to.requester_cert = signer.to_der().ok();
    let message_type = message_type(&msg).map_err(|e| fail(e, &reply_to))?;
    msg.verify(signer, options.allow_sha1)
        .map_err(|e| fail(e, &reply_to))?;
    let digest = msg.digest_alg().map_err(|e| fail(e, &reply_to))?;

    let (plain, cipher) =
        envelope::open(&msg.content, ra.recipient()).map_err(|e| fail(e, &reply_to))?;
    reply_to.request_cipher = Some(cipher);
    let content = decode_content(message_type, &plain).map_err(|e| fail(e, &reply_to))?;
    tracing::debug!(
        transaction_id = %reply_to.transaction_id,
        message_type = message_type.number(),
        ?cipher,
        "scep request decoded"
    );
    Ok(PkiRequest {
        reply_to,
        signer_chain: chain(&msg.certificates, index),
        digest,
        content,
    })
}

fn reply_to(msg: &SignedMessage) -> Result<ReplyTo, ScepError> {
    let attrs = &msg.attrs;
    let transaction_id = attrs
        .transaction_id
        .clone()
        .ok_or(ScepError::MissingAttribute("transactionID"))?;
    if transaction_id.is_empty() {
        return Err(ScepError::invalid("transactionID", "empty"));
    }
    let sender_nonce = attrs
        .sender_nonce
        .clone()
        .ok_or(ScepError::MissingAttribute("senderNonce"))?;
    Ok(ReplyTo {
        transaction_id,
        sender_nonce,
        requester_cert: None,
        request_cipher: None,
    })
}

fn message_type(msg: &SignedMessage) -> Result<MessageType, ScepError> {
    let text = msg
        .attrs
        .message_type
        .as_deref()
        .ok_or(ScepError::MissingAttribute("messageType"))?;
    match MessageType::from_text(text) {
        Some(MessageType::CertRep) | None => {
            Err(ScepError::UnsupportedMessageType(text.to_owned()))
        }
        Some(t) => Ok(t),
    }
}

fn decode_content(message_type: MessageType, plain: &[u8]) -> Result<RequestContent, ScepError> {
    Ok(match message_type {
        MessageType::PkcsReq => RequestContent::PkcsReq { csr: csr(plain)? },
        MessageType::RenewalReq => RequestContent::RenewalReq { csr: csr(plain)? },
        MessageType::CertPoll => RequestContent::CertPoll(
            IssuerAndSubject::from_der(plain).map_err(ScepError::malformed("IssuerAndSubject"))?,
        ),
        MessageType::GetCert => RequestContent::GetCert(issuer_and_serial(plain)?),
        MessageType::GetCrl => RequestContent::GetCrl(issuer_and_serial(plain)?),
        MessageType::CertRep => return Err(ScepError::UnsupportedMessageType("3".into())),
    })
}

/// Checks that the content is one DER CertificationRequest; the registrar checks the rest.
fn csr(plain: &[u8]) -> Result<Vec<u8>, ScepError> {
    enrollgate_pkix::Csr::from_der(plain)
        .map_err(|e| ScepError::invalid("PKCS#10 request", e.to_string()))?;
    Ok(plain.to_vec())
}

fn issuer_and_serial(plain: &[u8]) -> Result<IssuerAndSerialNumber, ScepError> {
    IssuerAndSerialNumber::from_der(plain).map_err(ScepError::malformed("IssuerAndSerialNumber"))
}

/// The signer's certificate, then the others, DER.
fn chain(certs: &[Certificate], signer: usize) -> Vec<Vec<u8>> {
    let first = certs.get(signer).into_iter();
    let rest = certs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != signer)
        .map(|(_, c)| c);
    first.chain(rest).filter_map(|c| c.to_der().ok()).collect()
}
