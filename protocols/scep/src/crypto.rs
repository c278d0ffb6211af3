//! Digests, signature checks and content ciphers, over aws-lc-rs (and RustCrypto `des` for
//! the DES family, which aws-lc-rs only offers behind a feature that needs bindgen).

use aws_lc_rs::cipher::{
    AES_128, AES_192, AES_256, DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey,
    PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::digest;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use const_oid::ObjectIdentifier as Oid;
use der::asn1::{Null, OctetString};
use der::{Any, Decode, Encode};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::ScepError;

const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");
pub(crate) const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
const SHA1_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.5");
pub(crate) const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
const ECDSA_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
const AES128_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.2");
const AES192_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.22");
const AES256_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.42");
const DES_EDE3_CBC: Oid = Oid::new_unwrap("1.2.840.113549.3.7");
const DES_CBC: Oid = Oid::new_unwrap("1.3.14.3.2.7");

/// A digest algorithm of a SignerInfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DigestAlg {
    /// SHA-1: legacy, still what micromdm's scepclient and old devices use.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl DigestAlg {
    /// The algorithm for `alg`, whose parameters must be absent or NULL.
    pub(crate) fn from_alg(alg: &AlgorithmIdentifierOwned) -> Result<Self, ScepError> {
        require_null_or_absent(alg, "digest")?;
        match alg.oid {
            o if o == SHA1 => Ok(Self::Sha1),
            o if o == SHA256 => Ok(Self::Sha256),
            o if o == SHA384 => Ok(Self::Sha384),
            o if o == SHA512 => Ok(Self::Sha512),
            o => Err(ScepError::unsupported("digest", &o)),
        }
    }

    /// The digest's OID.
    pub fn oid(self) -> Oid {
        match self {
            Self::Sha1 => SHA1,
            Self::Sha256 => SHA256,
            Self::Sha384 => SHA384,
            Self::Sha512 => SHA512,
        }
    }

    /// The AlgorithmIdentifier, parameters absent (RFC 5754).
    pub(crate) fn identifier(self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: self.oid(),
            parameters: None,
        }
    }

    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            Self::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }

    /// The X.509-style signature algorithm for this digest with a key of type `key_oid`; CMS
    /// signers may name only the key type (rsaEncryption) and leave the hash to this digest.
    fn signature_oid(self, key_oid: Oid) -> Option<Oid> {
        if key_oid == RSA_ENCRYPTION {
            return Some(match self {
                Self::Sha1 => SHA1_WITH_RSA,
                Self::Sha256 => SHA256_WITH_RSA,
                Self::Sha384 => SHA384_WITH_RSA,
                Self::Sha512 => SHA512_WITH_RSA,
            });
        }
        match self {
            Self::Sha256 => Some(ECDSA_SHA256),
            Self::Sha384 => Some(ECDSA_SHA384),
            Self::Sha512 => Some(ECDSA_SHA512),
            Self::Sha1 => None,
        }
    }
}

/// Verifies a SignerInfo signature over `message`.
///
/// `sig_alg` may be a full signature algorithm (sha256WithRSAEncryption, ecdsa-with-SHA256)
/// or, as RFC 5652 allows, the bare key algorithm (rsaEncryption, id-ecPublicKey), in which
/// case `digest` picks the hash.
pub(crate) fn verify_signer(
    spki: &SubjectPublicKeyInfoOwned,
    digest: DigestAlg,
    sig_alg: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
    allow_sha1: bool,
) -> Result<(), ScepError> {
    let alg = normalise_signature_alg(digest, sig_alg)?;
    let result = if allow_sha1 {
        enrollgate_pkix::verify_signature_allowing_sha1(spki, &alg, message, signature)
    } else {
        enrollgate_pkix::verify_signature(spki, &alg, message, signature)
    };
    result.map_err(|e| {
        use enrollgate_pkix::PkixError as P;
        match e {
            P::BadSignature => ScepError::BadSignature,
            // The algorithm, the key type or their pairing is one we do not verify: badAlg.
            P::UnsupportedAlgorithm(what)
            | P::UnsupportedKey(what)
            | P::KeyAlgorithmMismatch(what) => ScepError::UnsupportedAlgorithm {
                what: "signature",
                oid: what,
            },
            other => ScepError::invalid("signer key", other.to_string()),
        }
    })
}

fn normalise_signature_alg(
    digest: DigestAlg,
    sig_alg: &AlgorithmIdentifierOwned,
) -> Result<AlgorithmIdentifierOwned, ScepError> {
    if sig_alg.oid != RSA_ENCRYPTION && sig_alg.oid != EC_PUBLIC_KEY {
        return Ok(sig_alg.clone());
    }
    let oid = digest
        .signature_oid(sig_alg.oid)
        .ok_or_else(|| ScepError::unsupported("signature", &sig_alg.oid))?;
    let parameters = (sig_alg.oid == RSA_ENCRYPTION)
        .then(|| Any::encode_from(&Null))
        .transpose()
        .map_err(ScepError::malformed("algorithm parameters"))?;
    Ok(AlgorithmIdentifierOwned { oid, parameters })
}

/// A CMS content-encryption algorithm (all CBC with PKCS#7 padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContentCipher {
    /// AES-128-CBC.
    Aes128Cbc,
    /// AES-192-CBC.
    Aes192Cbc,
    /// AES-256-CBC.
    Aes256Cbc,
    /// DES-EDE3-CBC (3DES), legacy.
    DesEde3Cbc,
    /// DES-CBC, legacy; micromdm's scepclient still encrypts with it. We decrypt it, but
    /// never encrypt with it (see [`ContentCipher::for_reply`]).
    DesCbc,
}

impl ContentCipher {
    /// The cipher and IV named by `alg`.
    pub(crate) fn from_alg(alg: &AlgorithmIdentifierOwned) -> Result<(Self, Vec<u8>), ScepError> {
        let cipher = match alg.oid {
            o if o == AES128_CBC => Self::Aes128Cbc,
            o if o == AES192_CBC => Self::Aes192Cbc,
            o if o == AES256_CBC => Self::Aes256Cbc,
            o if o == DES_EDE3_CBC => Self::DesEde3Cbc,
            o if o == DES_CBC => Self::DesCbc,
            o => return Err(ScepError::unsupported("content encryption", &o)),
        };
        let params = alg
            .parameters
            .as_ref()
            .ok_or_else(|| ScepError::invalid("content encryption", "no IV"))?;
        let iv = OctetString::from_der(&params.to_der().map_err(ScepError::malformed("IV"))?)
            .map_err(ScepError::malformed("IV"))?;
        if iv.as_bytes().len() != cipher.block_len() {
            return Err(ScepError::invalid("content encryption", "IV length"));
        }
        Ok((cipher, iv.as_bytes().to_vec()))
    }

    /// The AlgorithmIdentifier with `iv` as its parameter.
    pub(crate) fn identifier(self, iv: &[u8]) -> Result<AlgorithmIdentifierOwned, ScepError> {
        let iv = OctetString::new(iv).map_err(ScepError::malformed("IV"))?;
        let parameters = Some(Any::encode_from(&iv).map_err(ScepError::malformed("IV"))?);
        Ok(AlgorithmIdentifierOwned {
            oid: self.oid(),
            parameters,
        })
    }

    /// The algorithm's OID.
    pub fn oid(self) -> Oid {
        match self {
            Self::Aes128Cbc => AES128_CBC,
            Self::Aes192Cbc => AES192_CBC,
            Self::Aes256Cbc => AES256_CBC,
            Self::DesEde3Cbc => DES_EDE3_CBC,
            Self::DesCbc => DES_CBC,
        }
    }

    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::Aes128Cbc => 16,
            Self::Aes192Cbc => 24,
            Self::Aes256Cbc => 32,
            Self::DesEde3Cbc => 24,
            Self::DesCbc => 8,
        }
    }

    /// Block (and IV) length in bytes.
    pub fn block_len(self) -> usize {
        match self {
            Self::Aes128Cbc | Self::Aes192Cbc | Self::Aes256Cbc => 16,
            Self::DesEde3Cbc | Self::DesCbc => 8,
        }
    }

    /// The cipher for a reply to a request encrypted with `self`: the same one, except that
    /// single DES is answered with AES-128-CBC (every client that still sends DES, notably
    /// micromdm's scepclient, decrypts AES).
    pub fn for_reply(self) -> Self {
        match self {
            Self::DesCbc => Self::Aes128Cbc,
            other => other,
        }
    }

    /// Encrypts `data` with PKCS#7 padding.
    pub(crate) fn encrypt(self, key: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>, ScepError> {
        const FAILED: ScepError = ScepError::Crypto("content encryption");
        match self {
            Self::DesEde3Cbc => Ok(cbc::Encryptor::<des::TdesEde3>::new_from_slices(key, iv)
                .map_err(|_| FAILED)?
                .encrypt_padded_vec_mut::<Pkcs7>(data)),
            Self::DesCbc => Ok(cbc::Encryptor::<des::Des>::new_from_slices(key, iv)
                .map_err(|_| FAILED)?
                .encrypt_padded_vec_mut::<Pkcs7>(data)),
            aes => {
                let iv: [u8; 16] = iv.try_into().map_err(|_| FAILED)?;
                let key = UnboundCipherKey::new(aes.aws_alg(), key).map_err(|_| FAILED)?;
                let key = PaddedBlockEncryptingKey::cbc_pkcs7(key).map_err(|_| FAILED)?;
                let mut out = data.to_vec();
                key.less_safe_encrypt(&mut out, EncryptionContext::Iv128(iv.into()))
                    .map_err(|_| FAILED)?;
                Ok(out)
            }
        }
    }

    /// Decrypts `data` and strips the PKCS#7 padding; any failure is `DecryptFailed`.
    pub(crate) fn decrypt(self, key: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>, ScepError> {
        const FAILED: ScepError = ScepError::DecryptFailed;
        match self {
            Self::DesEde3Cbc => cbc::Decryptor::<des::TdesEde3>::new_from_slices(key, iv)
                .map_err(|_| FAILED)?
                .decrypt_padded_vec_mut::<Pkcs7>(data)
                .map_err(|_| FAILED),
            Self::DesCbc => cbc::Decryptor::<des::Des>::new_from_slices(key, iv)
                .map_err(|_| FAILED)?
                .decrypt_padded_vec_mut::<Pkcs7>(data)
                .map_err(|_| FAILED),
            aes => {
                let iv: [u8; 16] = iv.try_into().map_err(|_| FAILED)?;
                let key = UnboundCipherKey::new(aes.aws_alg(), key).map_err(|_| FAILED)?;
                let key = PaddedBlockDecryptingKey::cbc_pkcs7(key).map_err(|_| FAILED)?;
                let mut buf = data.to_vec();
                let len = key
                    .decrypt(&mut buf, DecryptionContext::Iv128(iv.into()))
                    .map_err(|_| FAILED)?
                    .len();
                buf.truncate(len);
                Ok(buf)
            }
        }
    }

    fn aws_alg(self) -> &'static aws_lc_rs::cipher::Algorithm {
        match self {
            Self::Aes192Cbc => &AES_192,
            Self::Aes256Cbc => &AES_256,
            _ => &AES_128,
        }
    }
}

fn require_null_or_absent(
    alg: &AlgorithmIdentifierOwned,
    what: &'static str,
) -> Result<(), ScepError> {
    match &alg.parameters {
        None => Ok(()),
        Some(p) if p.is_null() => Ok(()),
        Some(_) => Err(ScepError::invalid(what, "unexpected algorithm parameters")),
    }
}
