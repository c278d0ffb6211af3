//! Signature checks (message protection, CRMF proof of possession) and our own signing key.
//!
//! Verification itself is `enrollgate_pkix::verify_signature`; this module maps its errors
//! to CMP's and holds our ECDSA P-256 signing key.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair};
use enrollgate_pkix::PkixError;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::error::CmpError;
use crate::oid;

/// Verifies `sig` over `msg` with `spki` under the signature algorithm `alg`; a signature that
/// does not verify becomes `bad`, an algorithm we cannot check becomes `badAlg`.
pub(crate) fn verify(
    spki: &SubjectPublicKeyInfoOwned,
    alg: &AlgorithmIdentifierOwned,
    msg: &[u8],
    sig: &[u8],
    bad: impl FnOnce() -> CmpError,
) -> Result<(), CmpError> {
    match enrollgate_pkix::verify_signature(spki, alg, msg, sig) {
        Ok(()) => Ok(()),
        Err(PkixError::UnsupportedAlgorithm(what) | PkixError::UnsupportedKey(what)) => {
            Err(CmpError::UnsupportedAlgorithm(what))
        }
        Err(_) => Err(bad()),
    }
}

/// Our ECDSA P-256 protection key (RFC 9483 section 3.2: signature-based protection).
pub(crate) struct SigningKey {
    key: EcdsaKeyPair,
}

impl SigningKey {
    /// Loads a PKCS#8 ECDSA P-256 private key.
    pub(crate) fn from_pkcs8(der: &[u8]) -> Result<Self, CmpError> {
        let key = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, der)
            .map_err(|e| CmpError::Internal(format!("protection key: {e}")))?;
        Ok(Self { key })
    }

    /// The `protectionAlg` of our signatures: ecdsa-with-SHA256 (parameters absent).
    pub(crate) fn algorithm_identifier(&self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: oid::ECDSA_SHA256,
            parameters: None,
        }
    }

    /// The public key's raw point, to match it against the protection certificate.
    pub(crate) fn public_key(&self) -> &[u8] {
        use aws_lc_rs::signature::KeyPair;
        self.key.public_key().as_ref()
    }

    /// Signs `msg`. (aws-lc-rs draws the ECDSA nonce itself; no caller randomness is needed.)
    pub(crate) fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CmpError> {
        let sig = self
            .key
            .sign(&SystemRandom::new(), msg)
            .map_err(|_| CmpError::Internal("signing failed".into()))?;
        Ok(sig.as_ref().to_vec())
    }
}
