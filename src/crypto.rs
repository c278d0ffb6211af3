//! Private keys the gateway signs with (CA, RA, TLS, CMP protection), over `aws-lc-rs`.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5912, rfc8410};
use der::asn1::{AnyRef, BitString};
use der::{Decode, Encode};
use serde::{Deserialize, Serialize};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

/// The key algorithms the gateway can generate and sign with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256 (the default: fast and universally supported).
    #[default]
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384,
    /// RSA 2048 with PKCS#1 v1.5 and SHA-256.
    Rsa2048,
    /// RSA 3072 with PKCS#1 v1.5 and SHA-256.
    Rsa3072,
    /// Ed25519.
    Ed25519,
}

/// Failure to make, load or use a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The PKCS#8 document did not hold a key of the expected algorithm.
    #[error("key rejected: {0}")]
    Rejected(String),
    /// The crypto library failed (key generation, signing).
    #[error("crypto operation failed")]
    Crypto,
    /// DER encoding failed.
    #[error("encoding: {0}")]
    Der(#[from] der::Error),
}

enum Inner {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private key with its algorithm, able to sign and to describe itself in X.509 terms.
pub struct SigningKey {
    algorithm: KeyAlgorithm,
    inner: Inner,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({:?}, ..)", self.algorithm)
    }
}

impl SigningKey {
    /// Generates a fresh key; returns it with its PKCS#8 encoding for storage.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<(Self, Vec<u8>), KeyError> {
        let pkcs8 = match algorithm {
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => {
                let pair =
                    EcdsaKeyPair::generate(ecdsa_alg(algorithm)).map_err(|_| KeyError::Crypto)?;
                pair.to_pkcs8v1()
                    .map_err(|_| KeyError::Crypto)?
                    .as_ref()
                    .to_vec()
            }
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 => {
                let size = if algorithm == KeyAlgorithm::Rsa2048 {
                    KeySize::Rsa2048
                } else {
                    KeySize::Rsa3072
                };
                let pair = RsaKeyPair::generate(size).map_err(|_| KeyError::Crypto)?;
                let der: Pkcs8V1Der<'static> = pair.as_der().map_err(|_| KeyError::Crypto)?;
                der.as_ref().to_vec()
            }
            KeyAlgorithm::Ed25519 => {
                let pair = Ed25519KeyPair::generate().map_err(|_| KeyError::Crypto)?;
                pair.to_pkcs8v1()
                    .map_err(|_| KeyError::Crypto)?
                    .as_ref()
                    .to_vec()
            }
        };
        Ok((Self::from_pkcs8(algorithm, &pkcs8)?, pkcs8))
    }

    /// Loads a key from PKCS#8 DER.
    pub fn from_pkcs8(algorithm: KeyAlgorithm, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let rejected = |e: aws_lc_rs::error::KeyRejected| KeyError::Rejected(e.to_string());
        let inner = match algorithm {
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => Inner::Ecdsa(
                EcdsaKeyPair::from_pkcs8(ecdsa_alg(algorithm), pkcs8).map_err(rejected)?,
            ),
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 => {
                Inner::Rsa(RsaKeyPair::from_pkcs8(pkcs8).map_err(rejected)?)
            }
            KeyAlgorithm::Ed25519 => {
                Inner::Ed25519(Ed25519KeyPair::from_pkcs8(pkcs8).map_err(rejected)?)
            }
        };
        Ok(Self {
            algorithm,
            inner,
            rng: SystemRandom::new(),
        })
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// Signs `message` with the algorithm's hash.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.inner {
            Inner::Ecdsa(k) => Ok(k
                .sign(&self.rng, message)
                .map_err(|_| KeyError::Crypto)?
                .as_ref()
                .to_vec()),
            Inner::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
                    .map_err(|_| KeyError::Crypto)?;
                Ok(sig)
            }
            Inner::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
        }
    }

    /// The X.509 signature algorithm identifier for what [`Self::sign`] produces.
    pub fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        match self.algorithm {
            KeyAlgorithm::EcdsaP256 => bare(rfc5912::ECDSA_WITH_SHA_256),
            KeyAlgorithm::EcdsaP384 => bare(rfc5912::ECDSA_WITH_SHA_384),
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 => AlgorithmIdentifierOwned {
                oid: rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
                parameters: Some(AnyRef::NULL.into()),
            },
            KeyAlgorithm::Ed25519 => bare(rfc8410::ID_ED_25519),
        }
    }

    /// The public key as a SubjectPublicKeyInfo.
    pub fn public_key_info(&self) -> Result<SubjectPublicKeyInfoOwned, KeyError> {
        Ok(SubjectPublicKeyInfoOwned::from_der(
            &self.public_key_der()?,
        )?)
    }

    /// The public key as SubjectPublicKeyInfo DER.
    pub fn public_key_der(&self) -> Result<Vec<u8>, KeyError> {
        match &self.inner {
            Inner::Ecdsa(k) => {
                let der = k.public_key().as_der().map_err(|_| KeyError::Crypto)?;
                Ok(der.as_ref().to_vec())
            }
            Inner::Rsa(k) => {
                let der = k.public_key().as_der().map_err(|_| KeyError::Crypto)?;
                Ok(der.as_ref().to_vec())
            }
            Inner::Ed25519(k) => {
                let spki = SubjectPublicKeyInfoOwned {
                    algorithm: bare(rfc8410::ID_ED_25519),
                    subject_public_key: BitString::from_bytes(k.public_key().as_ref())?,
                };
                Ok(spki.to_der()?)
            }
        }
    }
}

/// Fills a buffer from the operating system's random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // The system RNG only fails when the OS cannot provide entropy; nothing is safe then.
    SystemRandom::new()
        .fill(&mut out)
        .expect("operating system random source failed");
    out
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data))
}

fn ecdsa_alg(a: KeyAlgorithm) -> &'static aws_lc_rs::signature::EcdsaSigningAlgorithm {
    if a == KeyAlgorithm::EcdsaP384 {
        &ECDSA_P384_SHA384_ASN1_SIGNING
    } else {
        &ECDSA_P256_SHA256_ASN1_SIGNING
    }
}

fn bare(oid: ObjectIdentifier) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        parameters: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_generates_signs_and_reloads() {
        for alg in [
            KeyAlgorithm::EcdsaP256,
            KeyAlgorithm::EcdsaP384,
            KeyAlgorithm::Ed25519,
        ] {
            let (key, pkcs8) = SigningKey::generate(alg).unwrap();
            let again = SigningKey::from_pkcs8(alg, &pkcs8).unwrap();
            assert_eq!(
                key.public_key_der().unwrap(),
                again.public_key_der().unwrap()
            );
            assert!(!key.sign(b"hello").unwrap().is_empty());
            key.public_key_info().unwrap();
        }
    }
}
