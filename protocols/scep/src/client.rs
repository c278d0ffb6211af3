//! The client side, only as far as tests and tooling need it: build a pkiMessage the way a
//! SCEP client does, and open the CertRep that answers it.
//!
//! The gateway never runs this code on peer input; it exists so that the server side can be
//! tested end to end without a network and so that the integration tests can drive a gateway.

use std::fmt;

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use cms::content_info::ContentInfo;
use cms::revocation::RevocationInfoChoice;
use cms::signed_data::SignedData;
use der::asn1::Null;
use der::{Any, Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;

use crate::attributes::{self, FailInfo, MessageType, PkiStatus, oid};
use crate::crypto::{ContentCipher, DigestAlg, SHA256_WITH_RSA};
use crate::ra::{CmsSigner, RecipientKey};
use crate::signed::SignedMessage;
use crate::{ScepError, envelope};

const ECDSA_SHA256: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// A requester: its signing certificate and key (RSA or ECDSA P-256, PKCS#8).
pub struct ClientIdentity {
    cert: Certificate,
    key: ClientKey,
    /// Present for RSA keys, which can receive a SUCCESS envelope.
    recipient: Option<RecipientKey>,
}

enum ClientKey {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
}

impl ClientIdentity {
    /// Builds the identity from a certificate (DER) and its key (PKCS#8 DER).
    pub fn new(cert_der: &[u8], key_pkcs8: &[u8]) -> Result<Self, ScepError> {
        let cert = Certificate::from_der(cert_der).map_err(ScepError::malformed("certificate"))?;
        if let Ok(rsa) = RsaKeyPair::from_pkcs8(key_pkcs8) {
            let recipient = Some(RecipientKey::new(&cert, key_pkcs8)?);
            return Ok(Self {
                cert,
                key: ClientKey::Rsa(rsa),
                recipient,
            });
        }
        let ec = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, key_pkcs8)
            .map_err(|e| ScepError::invalid("client key", e.to_string()))?;
        Ok(Self {
            cert,
            key: ClientKey::Ecdsa(ec),
            recipient: None,
        })
    }
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field(
                "subject",
                &self.cert.tbs_certificate().subject().to_string(),
            )
            .finish_non_exhaustive()
    }
}

impl CmsSigner for ClientIdentity {
    fn certificate(&self) -> &Certificate {
        &self.cert
    }

    fn digest(&self) -> DigestAlg {
        DigestAlg::Sha256
    }

    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        match self.key {
            ClientKey::Rsa(_) => AlgorithmIdentifierOwned {
                oid: SHA256_WITH_RSA,
                parameters: Some(Any::from(Null)),
            },
            ClientKey::Ecdsa(_) => AlgorithmIdentifierOwned {
                oid: ECDSA_SHA256,
                parameters: None,
            },
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ScepError> {
        // aws-lc-rs ignores this generator: it draws ECDSA nonces from its own DRBG.
        let unused = aws_lc_rs::rand::SystemRandom::new();
        let failed = |_| ScepError::Crypto("client signature");
        match &self.key {
            ClientKey::Rsa(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &unused, message, &mut sig)
                    .map_err(failed)?;
                Ok(sig)
            }
            ClientKey::Ecdsa(k) => Ok(k.sign(&unused, message).map_err(failed)?.as_ref().to_vec()),
        }
    }
}

impl ClientIdentity {
    /// The public key bytes, for tests that compare keys.
    pub fn public_key(&self) -> Vec<u8> {
        match &self.key {
            ClientKey::Rsa(k) => k.public_key().as_ref().to_vec(),
            ClientKey::Ecdsa(k) => k.public_key().as_ref().to_vec(),
        }
    }
}

/// What a client request carries.
#[derive(Clone, Debug)]
pub struct RequestSpec<'a> {
    /// PKCSReq, RenewalReq, CertPoll, GetCert or GetCRL.
    pub message_type: MessageType,
    /// The transactionID.
    pub transaction_id: &'a str,
    /// The senderNonce.
    pub sender_nonce: &'a [u8],
    /// The DER content to encrypt (a CSR, IssuerAndSubject or IssuerAndSerialNumber).
    pub content: &'a [u8],
    /// The content-encryption algorithm.
    pub cipher: ContentCipher,
}

/// Builds a pkiMessage from `client` to the RA certificate `ra_cert_der`; `rng` gives the
/// content-encryption key and IV.
pub fn build_pki_message(
    client: &ClientIdentity,
    ra_cert_der: &[u8],
    spec: &RequestSpec<'_>,
    rng: &mut dyn FnMut(&mut [u8]),
) -> Result<Vec<u8>, ScepError> {
    let envelope = seal_for(ra_cert_der, spec.content, spec.cipher, rng)?;
    let message_type = spec.message_type.number().to_string();
    sign_envelope(
        client,
        &envelope,
        &message_type,
        spec.transaction_id,
        spec.sender_nonce,
    )
}

/// The first half of [`build_pki_message`]: the pkcsPKIEnvelope, `content` encrypted to the
/// certificate `recipient_der` (normally the RA's). Tests alter it before signing.
pub fn seal_for(
    recipient_der: &[u8],
    content: &[u8],
    cipher: ContentCipher,
    rng: &mut dyn FnMut(&mut [u8]),
) -> Result<Vec<u8>, ScepError> {
    let recipient =
        Certificate::from_der(recipient_der).map_err(ScepError::malformed("RA certificate"))?;
    envelope::seal(content, &recipient, cipher, rng)
}

/// The second half of [`build_pki_message`]: signs `envelope` with the SCEP attributes.
/// `message_type` is the attribute's text, so that tests can send numbers a server refuses.
pub fn sign_envelope(
    client: &ClientIdentity,
    envelope: &[u8],
    message_type: &str,
    transaction_id: &str,
    sender_nonce: &[u8],
) -> Result<Vec<u8>, ScepError> {
    let attrs = vec![
        attributes::printable_attr(oid::MESSAGE_TYPE, message_type)?,
        attributes::printable_attr(oid::TRANSACTION_ID, transaction_id)?,
        attributes::octets_attr(oid::SENDER_NONCE, sender_nonce)?,
    ];
    crate::signed::sign(
        client,
        Some(envelope),
        attrs,
        std::slice::from_ref(&client.cert),
    )
}

/// A CertRep as the client reads it.
#[derive(Clone, Debug)]
pub struct CertRep {
    /// pkiStatus.
    pub status: PkiStatus,
    /// failInfo, on FAILURE.
    pub fail_info: Option<FailInfo>,
    /// failInfoText, when sent.
    pub fail_info_text: Option<String>,
    /// transactionID.
    pub transaction_id: String,
    /// The server's senderNonce.
    pub sender_nonce: Vec<u8>,
    /// recipientNonce: must equal the request's senderNonce.
    pub recipient_nonce: Vec<u8>,
    /// On SUCCESS, the certificates of the degenerate SignedData, DER.
    pub certificates: Vec<Vec<u8>>,
    /// On SUCCESS to GetCRL, the CRLs, DER.
    pub crls: Vec<Vec<u8>>,
}

/// Verifies a CertRep's signature with `ra_cert_der` and, on SUCCESS, opens its envelope with
/// the client's key.
pub fn open_cert_rep(
    client: &ClientIdentity,
    ra_cert_der: &[u8],
    der: &[u8],
) -> Result<CertRep, ScepError> {
    let ra = Certificate::from_der(ra_cert_der).map_err(ScepError::malformed("RA certificate"))?;
    let msg = SignedMessage::parse(der)?;
    msg.verify(&ra, false)?;
    let a = &msg.attrs;
    if a.message_type.as_deref() != Some("3") {
        return Err(ScepError::UnsupportedMessageType(
            a.message_type.clone().unwrap_or_default(),
        ));
    }
    let status = a.pki_status.as_deref().and_then(PkiStatus::from_text);
    let status = status.ok_or(ScepError::MissingAttribute("pkiStatus"))?;
    let mut rep = CertRep {
        status,
        fail_info: a.fail_info.as_deref().and_then(FailInfo::from_text),
        fail_info_text: a.fail_info_text.clone(),
        transaction_id: a.transaction_id.clone().unwrap_or_default(),
        sender_nonce: a.sender_nonce.clone().unwrap_or_default(),
        recipient_nonce: a.recipient_nonce.clone().unwrap_or_default(),
        certificates: Vec::new(),
        crls: Vec::new(),
    };
    if status == PkiStatus::Success {
        let key = client
            .recipient
            .as_ref()
            .ok_or(ScepError::Crypto("client key cannot decrypt"))?;
        let (plain, _) = envelope::open(&msg.content, key)?;
        (rep.certificates, rep.crls) = degenerate_contents(&plain)?;
    }
    Ok(rep)
}

/// Certificates and CRLs, DER.
type CertsAndCrls = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// The certificates and CRLs of a degenerate SignedData.
fn degenerate_contents(der: &[u8]) -> Result<CertsAndCrls, ScepError> {
    let ci = ContentInfo::from_der(der).map_err(ScepError::malformed("degenerate SignedData"))?;
    let sd: SignedData = ci
        .content
        .decode_as()
        .map_err(ScepError::malformed("SignedData"))?;
    let certs = sd
        .certificates
        .map(|set| set.0.into_vec())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| match c {
            cms::cert::CertificateChoices::Certificate(c) => c.to_der().ok(),
            cms::cert::CertificateChoices::Other(_) => None,
        })
        .collect();
    let crls = sd
        .crls
        .map(|set| set.0.into_vec())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| match c {
            RevocationInfoChoice::Crl(crl) => crl.to_der().ok(),
            RevocationInfoChoice::Other(_) => None,
        })
        .collect();
    Ok((certs, crls))
}
