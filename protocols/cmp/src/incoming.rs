//! Step one and two of handling a request: decode it, read its header facts, verify its
//! protection with what the caller looked up.

use der::Decode;
use der::asn1::OctetString;
use enrollgate_model::Secret;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;

use crate::error::CmpError;
use crate::mac::{MacParams, is_mac_algorithm};
use crate::oid;
use crate::signature;
use crate::types::{BodyKind, PkiMessage};

/// Limits applied to every incoming message.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The largest message accepted, in bytes (default 256 KiB).
    pub max_message_len: usize,
    /// The largest PasswordBasedMac or PBKDF2 iteration count accepted (default 10 000);
    /// more is refused with `badAlg` before any hashing.
    pub max_mac_iterations: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_len: 256 * 1024,
            max_mac_iterations: 10_000,
        }
    }
}

/// How a message says it is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtectionKind {
    /// No `protection` or no `protectionAlg`.
    None,
    /// PasswordBasedMac or PBMAC1: the caller looks up the secret by `senderKID`.
    Mac,
    /// A signature: the protection certificate is the first of `extraCerts`.
    Signature,
}

/// What the caller needs from the header before verifying: which secret or chain to use,
/// which stored transaction to load.
#[derive(Clone, Debug)]
pub struct HeaderFacts {
    /// `pvno` (2 or 3 are supported; checked by [`crate::CmpServer::step`]).
    pub pvno: u8,
    /// The body type.
    pub body: BodyKind,
    /// `transactionID`, the store's key for the transaction state.
    pub transaction_id: Option<Vec<u8>>,
    /// `senderKID`: with MAC protection, the reference of the shared secret (token id).
    pub sender_kid: Option<Vec<u8>>,
    /// `senderNonce`.
    pub sender_nonce: Option<Vec<u8>>,
    /// `recipNonce`.
    pub recip_nonce: Option<Vec<u8>>,
    /// The protection kind.
    pub protection: ProtectionKind,
    /// `extraCerts`, DER; with signature protection the first is the protection certificate
    /// and the rest may help build its chain. The caller validates trust.
    pub extra_certs: Vec<Vec<u8>>,
    /// Whether the header's `generalInfo` asks for implicit confirmation.
    pub implicit_confirm_requested: bool,
}

impl HeaderFacts {
    /// `transactionID` as lower-case hex, convenient as a store key.
    pub fn transaction_id_hex(&self) -> Option<String> {
        self.transaction_id.as_deref().map(hex::encode)
    }

    /// `senderKID` as text: UTF-8 when it is, else lower-case hex.
    pub fn sender_kid_text(&self) -> Option<String> {
        self.sender_kid.as_deref().map(kid_text)
    }
}

/// A decoded message whose protection is not yet checked.
#[derive(Clone, Debug)]
pub struct Incoming {
    pub(crate) msg: PkiMessage,
    pub(crate) facts: HeaderFacts,
}

impl Incoming {
    /// The header facts.
    pub fn facts(&self) -> &HeaderFacts {
        &self.facts
    }

    /// The decoded message.
    pub fn message(&self) -> &PkiMessage {
        &self.msg
    }
}

/// How the message was proven; kept so that replies are protected the same way.
#[derive(Clone, Debug)]
pub(crate) enum Proof {
    /// MAC with the caller's secret; replies use the same secret and parameters.
    Mac {
        params: Box<MacParams>,
        secret: Secret,
    },
    /// Signature by the first extraCert; replies are signed with our key.
    Signature { chain: Vec<Vec<u8>> },
}

/// A message whose protection verified. Its `Debug` output never shows the MAC secret.
#[derive(Clone, Debug)]
pub struct Verified {
    pub(crate) msg: PkiMessage,
    pub(crate) facts: HeaderFacts,
    pub(crate) proof: Proof,
}

impl Verified {
    /// The header facts.
    pub fn facts(&self) -> &HeaderFacts {
        &self.facts
    }

    /// The decoded message.
    pub fn message(&self) -> &PkiMessage {
        &self.msg
    }
}

/// Decodes a `PKIMessage` of at most `limits.max_message_len` bytes.
pub(crate) fn decode(der: &[u8], limits: &Limits) -> Result<Incoming, CmpError> {
    if der.len() > limits.max_message_len {
        return Err(CmpError::TooLarge {
            len: der.len(),
            max: limits.max_message_len,
        });
    }
    let msg = PkiMessage::from_der(der)?;
    let facts = facts_of(&msg);
    Ok(Incoming { msg, facts })
}

/// Checks the MAC with `secret`.
pub(crate) fn verify_mac(
    incoming: &Incoming,
    secret: &Secret,
    limits: &Limits,
) -> Result<Verified, CmpError> {
    let (alg, tag) = protection_parts(incoming)?;
    if !is_mac_algorithm(alg) {
        return Err(CmpError::WrongProtection);
    }
    let params = MacParams::parse(alg, limits.max_mac_iterations)?;
    let data = incoming.msg.protected_part_der()?;
    params.verify(secret.expose(), &data, tag)?;
    let proof = Proof::Mac {
        params: Box::new(params),
        secret: secret.clone(),
    };
    Ok(Verified {
        msg: incoming.msg.clone(),
        facts: incoming.facts.clone(),
        proof,
    })
}

/// Checks the signature with the first certificate of `extraCerts`.
pub(crate) fn verify_signature(incoming: &Incoming) -> Result<Verified, CmpError> {
    let (alg, sig) = protection_parts(incoming)?;
    if is_mac_algorithm(alg) {
        return Err(CmpError::WrongProtection);
    }
    let chain = incoming.facts.extra_certs.clone();
    let leaf = chain.first().ok_or(CmpError::MissingSignerCertificate)?;
    let spki = signer_key(leaf)?;
    let data = incoming.msg.protected_part_der()?;
    signature::verify(&spki, alg, &data, sig, || CmpError::BadMessageCheck)?;
    let proof = Proof::Signature { chain };
    Ok(Verified {
        msg: incoming.msg.clone(),
        facts: incoming.facts.clone(),
        proof,
    })
}

fn protection_parts(
    incoming: &Incoming,
) -> Result<(&spki::AlgorithmIdentifierOwned, &[u8]), CmpError> {
    let alg = incoming.msg.header.protection_alg.as_ref();
    let bits = incoming.msg.protection.as_ref().and_then(|b| b.as_bytes());
    match (alg, bits) {
        (Some(alg), Some(bits)) => Ok((alg, bits)),
        _ => Err(CmpError::WrongProtection),
    }
}

fn signer_key(cert_der: &[u8]) -> Result<SubjectPublicKeyInfoOwned, CmpError> {
    let cert = Certificate::from_der(cert_der).map_err(|_| CmpError::MissingSignerCertificate)?;
    Ok(cert.tbs_certificate().subject_public_key_info().clone())
}

fn facts_of(msg: &PkiMessage) -> HeaderFacts {
    let h = &msg.header;
    let protection = match (&h.protection_alg, &msg.protection) {
        (Some(alg), Some(_)) if is_mac_algorithm(alg) => ProtectionKind::Mac,
        (Some(_), Some(_)) => ProtectionKind::Signature,
        _ => ProtectionKind::None,
    };
    let implicit_confirm_requested = h
        .general_info
        .iter()
        .flatten()
        .any(|itav| itav.info_type == oid::IT_IMPLICIT_CONFIRM);
    let extra_certs = msg
        .extra_certs
        .iter()
        .flatten()
        .filter_map(|c| der::Encode::to_der(c).ok());
    HeaderFacts {
        pvno: h.pvno,
        body: msg.body.kind(),
        transaction_id: octets(&h.transaction_id),
        sender_kid: octets(&h.sender_kid),
        sender_nonce: octets(&h.sender_nonce),
        recip_nonce: octets(&h.recip_nonce),
        protection,
        extra_certs: extra_certs.collect(),
        implicit_confirm_requested,
    }
}

fn octets(field: &Option<OctetString>) -> Option<Vec<u8>> {
    field.as_ref().map(|o| o.as_bytes().to_vec())
}

/// A key identifier as text: UTF-8 when it is, else lower-case hex.
pub(crate) fn kid_text(kid: &[u8]) -> String {
    match std::str::from_utf8(kid) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_owned(),
        _ => hex::encode(kid),
    }
}
