//! The RA's certificate and RSA key: it signs every CertRep and opens every request envelope.

use std::fmt;

use aws_lc_rs::hmac;
use aws_lc_rs::rsa::{Pkcs1PrivateDecryptingKey, PrivateDecryptingKey};
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use cms::cert::IssuerAndSerialNumber;
use cms::enveloped_data::RecipientIdentifier;
use der::asn1::Null;
use der::{Any, Decode};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectKeyIdentifier;

use crate::ScepError;
use crate::crypto::{DigestAlg, SHA256_WITH_RSA};

/// The SCEP RA (or CA acting as RA): an RSA certificate and its private key.
///
/// SCEP clients encrypt their requests to this certificate with RSA key transport, so it must
/// hold an RSA key; the same key signs CertRep replies with sha256WithRSAEncryption.
pub struct RaIdentity {
    cert: Certificate,
    cert_der: Vec<u8>,
    signer: RsaKeyPair,
    recipient: RecipientKey,
}

impl RaIdentity {
    /// Builds the identity from the RA certificate (DER) and its RSA key (PKCS#8 DER).
    /// Fails when the key is not RSA or does not match the certificate.
    pub fn new(cert_der: &[u8], key_pkcs8: &[u8]) -> Result<Self, ScepError> {
        let cert = Certificate::from_der(cert_der)
            .map_err(|e| ScepError::BadRaIdentity(format!("certificate: {e}")))?;
        let signer = RsaKeyPair::from_pkcs8(key_pkcs8)
            .map_err(|e| ScepError::BadRaIdentity(format!("RSA key: {e}")))?;
        let spki = cert.tbs_certificate().subject_public_key_info();
        if spki.subject_public_key.raw_bytes()
            != aws_lc_rs::signature::KeyPair::public_key(&signer).as_ref()
        {
            return Err(ScepError::BadRaIdentity(
                "key does not match the certificate".into(),
            ));
        }
        let recipient = RecipientKey::new(&cert, key_pkcs8)?;
        Ok(Self {
            cert,
            cert_der: cert_der.to_vec(),
            signer,
            recipient,
        })
    }

    /// The RA certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The RA certificate, decoded.
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    pub(crate) fn recipient(&self) -> &RecipientKey {
        &self.recipient
    }
}

impl fmt::Debug for RaIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RaIdentity")
            .field(
                "subject",
                &self.cert.tbs_certificate().subject().to_string(),
            )
            .field("key", &"..")
            .finish()
    }
}

/// Something that signs CMS SignerInfos: the RA here, a test client in [`crate::client`].
pub(crate) trait CmsSigner {
    /// The signer's certificate, named in the SignerInfo and carried in the SignedData.
    fn certificate(&self) -> &Certificate;
    /// The digest over content and signed attributes.
    fn digest(&self) -> DigestAlg;
    /// The SignerInfo signatureAlgorithm.
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned;
    /// Signs `message` (the DER of the signed attributes).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ScepError>;
}

impl CmsSigner for RaIdentity {
    fn certificate(&self) -> &Certificate {
        &self.cert
    }

    fn digest(&self) -> DigestAlg {
        DigestAlg::Sha256
    }

    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: SHA256_WITH_RSA,
            parameters: Some(Any::from(Null)),
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ScepError> {
        let mut sig = vec![0; self.signer.public_modulus_len()];
        // PKCS#1 v1.5 signing is deterministic; aws-lc-rs ignores the generator it is given.
        let unused = aws_lc_rs::rand::SystemRandom::new();
        self.signer
            .sign(&RSA_PKCS1_SHA256, &unused, message, &mut sig)
            .map_err(|_| ScepError::Crypto("RSA signature"))?;
        Ok(sig)
    }
}

/// The private half of RSA key transport: opens the content-encryption key of an envelope.
pub(crate) struct RecipientKey {
    issuer_and_serial: IssuerAndSerialNumber,
    ski: Option<Vec<u8>>,
    key: Pkcs1PrivateDecryptingKey,
    /// Keys the stand-in CEK used when RSA decryption fails (implicit rejection), so that a
    /// bad padding and a bad content look alike to the peer.
    rejection_key: hmac::Key,
}

impl RecipientKey {
    pub(crate) fn new(cert: &Certificate, key_pkcs8: &[u8]) -> Result<Self, ScepError> {
        let tbs = cert.tbs_certificate();
        let ski = tbs
            .get_extension::<SubjectKeyIdentifier>()
            .ok()
            .flatten()
            .map(|(_, ski)| ski.0.as_bytes().to_vec());
        let private = PrivateDecryptingKey::from_pkcs8(key_pkcs8)
            .map_err(|e| ScepError::BadRaIdentity(format!("RSA key: {e}")))?;
        let key = Pkcs1PrivateDecryptingKey::new(private)
            .map_err(|_| ScepError::BadRaIdentity("RSA key refused for decryption".into()))?;
        let secret = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key_pkcs8);
        Ok(Self {
            issuer_and_serial: IssuerAndSerialNumber {
                issuer: tbs.issuer().clone(),
                serial_number: tbs.serial_number().clone(),
            },
            ski,
            key,
            rejection_key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_ref()),
        })
    }

    /// Whether a KeyTransRecipientInfo's rid names this key's certificate.
    pub(crate) fn matches(&self, rid: &RecipientIdentifier) -> bool {
        match rid {
            RecipientIdentifier::IssuerAndSerialNumber(isn) => *isn == self.issuer_and_serial,
            RecipientIdentifier::SubjectKeyIdentifier(ski) => {
                self.ski.as_deref() == Some(ski.0.as_bytes())
            }
        }
    }

    /// Decrypts a PKCS#1 v1.5 encrypted CEK of `key_len` bytes. On any failure it returns a
    /// stand-in key derived from the ciphertext, so the caller fails later, at the content,
    /// the same way as for a wrong key (no padding oracle).
    pub(crate) fn unwrap_cek(&self, encrypted: &[u8], key_len: usize) -> Vec<u8> {
        let mut out = vec![0; self.key.min_output_size()];
        match self.key.decrypt(encrypted, &mut out) {
            Ok(cek) if cek.len() == key_len => cek.to_vec(),
            _ => {
                let tag = hmac::sign(&self.rejection_key, encrypted);
                tag.as_ref().iter().cycle().take(key_len).copied().collect()
            }
        }
    }
}
