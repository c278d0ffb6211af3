//! Signature verification over SubjectPublicKeyInfo keys, with aws-lc-rs.
//!
//! One function serves every check in the gateway: a CSR's proof of possession, a CMS
//! SignerInfo (SCEP), a CMP message signature. The algorithm identifier decides the padding and
//! hash; the key's own type and curve must agree with it.

use std::fmt;

use aws_lc_rs::signature::{self as sig, RsaParameters, UnparsedPublicKey, VerificationAlgorithm};
use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5912, rfc8410};
use der::{Sequence, asn1::Null};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::PkixError;

/// The type and size of a subject public key, as policy sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// RSA with a modulus of `bits` bits.
    Rsa {
        /// The modulus length in bits.
        bits: u32,
    },
    /// ECDSA on NIST P-256 (secp256r1).
    EcP256,
    /// ECDSA on NIST P-384 (secp384r1).
    EcP384,
    /// ECDSA on NIST P-521 (secp521r1).
    EcP521,
    /// Ed25519 (RFC 8410).
    Ed25519,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rsa { bits } => write!(f, "RSA-{bits}"),
            Self::EcP256 => f.write_str("P-256"),
            Self::EcP384 => f.write_str("P-384"),
            Self::EcP521 => f.write_str("P-521"),
            Self::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

impl KeyKind {
    /// The kind of key in `spki`; an error for key types and curves this crate does not verify.
    pub fn of(spki: &SubjectPublicKeyInfoOwned) -> Result<Self, PkixError> {
        let oid = spki.algorithm.oid;
        if oid == rfc5912::RSA_ENCRYPTION || oid == rfc5912::ID_RSASSA_PSS {
            let bits = RsaParameters::public_modulus_len(key_bytes(spki)?)
                .map_err(|_| PkixError::UnsupportedKey("RSA key does not decode".into()))?;
            return Ok(Self::Rsa { bits });
        }
        if oid == rfc8410::ID_ED_25519 {
            return Ok(Self::Ed25519);
        }
        if oid != rfc5912::ID_EC_PUBLIC_KEY {
            return Err(PkixError::UnsupportedKey(oid_name(&oid)));
        }
        match ec_curve(spki)? {
            c if c == rfc5912::SECP_256_R_1 => Ok(Self::EcP256),
            c if c == rfc5912::SECP_384_R_1 => Ok(Self::EcP384),
            c if c == rfc5912::SECP_521_R_1 => Ok(Self::EcP521),
            c => Err(PkixError::UnsupportedKey(format!("curve {}", oid_name(&c)))),
        }
    }
}

/// Verifies `signature` over `message`, made by the key in `spki` with algorithm `alg`.
///
/// Supported: sha256/384/512WithRSAEncryption (RSA keys of 1024 to 8192 bits; SHA-384 needs
/// 2048 bits or more), RSASSA-PSS with SHA-256/384/512, MGF1 with the same hash and a salt as
/// long as the hash, ecdsa-with-SHA256/384/512 on P-256, P-384 and P-521, and Ed25519.
/// SHA-1 is refused here; see [`verify_signature_allowing_sha1`].
/// Key size is not policy's business here: a weak key verifies, [`KeyKind`] tells its size.
pub fn verify_signature(
    spki: &SubjectPublicKeyInfoOwned,
    alg: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), PkixError> {
    verify_with(spki, algorithm_for(spki, alg, false)?, message, signature)
}

/// As [`verify_signature`], but also accepts sha1WithRSAEncryption, which legacy SCEP clients
/// still use. Callers must decide per route that SHA-1 is acceptable.
pub fn verify_signature_allowing_sha1(
    spki: &SubjectPublicKeyInfoOwned,
    alg: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), PkixError> {
    verify_with(spki, algorithm_for(spki, alg, true)?, message, signature)
}

fn verify_with(
    spki: &SubjectPublicKeyInfoOwned,
    algorithm: &'static dyn VerificationAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<(), PkixError> {
    UnparsedPublicKey::new(algorithm, key_bytes(spki)?)
        .verify(message, signature)
        .map_err(|_| PkixError::BadSignature)
}

/// Picks the aws-lc-rs algorithm for the pair (signature algorithm, key).
fn algorithm_for(
    spki: &SubjectPublicKeyInfoOwned,
    alg: &AlgorithmIdentifierOwned,
    allow_sha1: bool,
) -> Result<&'static dyn VerificationAlgorithm, PkixError> {
    let oid = alg.oid;
    if oid == rfc5912::ID_RSASSA_PSS {
        return rsa_pss(spki, alg);
    }
    if let Some(hash) = rsa_pkcs1_hash(&oid, allow_sha1) {
        require_null_or_absent(alg)?;
        return rsa_pkcs1(spki, hash);
    }
    if let Some(hash) = ecdsa_hash(&oid) {
        require_absent(alg)?;
        return ecdsa(spki, hash);
    }
    if oid == rfc8410::ID_ED_25519 {
        require_absent(alg)?;
        require_key(spki, KeyKind::of(spki)? == KeyKind::Ed25519, "Ed25519")?;
        return Ok(&sig::ED25519);
    }
    Err(PkixError::UnsupportedAlgorithm(oid_name(&oid)))
}

/// The hash functions this module pairs with signature schemes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

fn rsa_pkcs1_hash(oid: &ObjectIdentifier, allow_sha1: bool) -> Option<Hash> {
    match *oid {
        o if o == rfc5912::SHA_256_WITH_RSA_ENCRYPTION => Some(Hash::Sha256),
        o if o == rfc5912::SHA_384_WITH_RSA_ENCRYPTION => Some(Hash::Sha384),
        o if o == rfc5912::SHA_512_WITH_RSA_ENCRYPTION => Some(Hash::Sha512),
        o if o == rfc5912::SHA_1_WITH_RSA_ENCRYPTION && allow_sha1 => Some(Hash::Sha1),
        _ => None,
    }
}

fn ecdsa_hash(oid: &ObjectIdentifier) -> Option<Hash> {
    match *oid {
        o if o == rfc5912::ECDSA_WITH_SHA_256 => Some(Hash::Sha256),
        o if o == rfc5912::ECDSA_WITH_SHA_384 => Some(Hash::Sha384),
        o if o == rfc5912::ECDSA_WITH_SHA_512 => Some(Hash::Sha512),
        _ => None,
    }
}

fn rsa_pkcs1(
    spki: &SubjectPublicKeyInfoOwned,
    hash: Hash,
) -> Result<&'static dyn VerificationAlgorithm, PkixError> {
    require_key(
        spki,
        matches!(KeyKind::of(spki)?, KeyKind::Rsa { .. }),
        "RSA",
    )?;
    // The 1024-bit floor lets policy, which knows the key size, refuse weak keys with a
    // clear reason instead of this check failing as a "bad signature".
    Ok(match hash {
        Hash::Sha1 => &sig::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
        Hash::Sha256 => &sig::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        Hash::Sha384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Hash::Sha512 => &sig::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
    })
}

fn ecdsa(
    spki: &SubjectPublicKeyInfoOwned,
    hash: Hash,
) -> Result<&'static dyn VerificationAlgorithm, PkixError> {
    let kind = KeyKind::of(spki)?;
    Ok(match (kind, hash) {
        (KeyKind::EcP256, Hash::Sha256) => &sig::ECDSA_P256_SHA256_ASN1,
        (KeyKind::EcP256, Hash::Sha384) => &sig::ECDSA_P256_SHA384_ASN1,
        (KeyKind::EcP256, Hash::Sha512) => &sig::ECDSA_P256_SHA512_ASN1,
        (KeyKind::EcP384, Hash::Sha256) => &sig::ECDSA_P384_SHA256_ASN1,
        (KeyKind::EcP384, Hash::Sha384) => &sig::ECDSA_P384_SHA384_ASN1,
        (KeyKind::EcP384, Hash::Sha512) => &sig::ECDSA_P384_SHA512_ASN1,
        (KeyKind::EcP521, Hash::Sha256) => &sig::ECDSA_P521_SHA256_ASN1,
        (KeyKind::EcP521, Hash::Sha384) => &sig::ECDSA_P521_SHA384_ASN1,
        (KeyKind::EcP521, Hash::Sha512) => &sig::ECDSA_P521_SHA512_ASN1,
        (kind, _) => {
            return Err(PkixError::KeyAlgorithmMismatch(format!(
                "ECDSA signature with a {kind} key"
            )));
        }
    })
}

/// RSASSA-PSS-params (RFC 4055 section 3.1); absent fields take the RFC's SHA-1 defaults,
/// which this crate does not support.
#[derive(Sequence)]
struct PssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_length: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer_field: Option<u32>,
}

fn rsa_pss(
    spki: &SubjectPublicKeyInfoOwned,
    alg: &AlgorithmIdentifierOwned,
) -> Result<&'static dyn VerificationAlgorithm, PkixError> {
    require_key(
        spki,
        matches!(KeyKind::of(spki)?, KeyKind::Rsa { .. }),
        "RSA",
    )?;
    let unsupported = |why: &str| PkixError::UnsupportedAlgorithm(format!("RSASSA-PSS {why}"));
    let params = alg
        .parameters
        .as_ref()
        .ok_or_else(|| unsupported("with default (SHA-1) parameters"))?
        .decode_as::<PssParams>()
        .map_err(PkixError::malformed("RSASSA-PSS parameters"))?;

    let hash = params.hash.as_ref().map(hash_of).transpose()?;
    let mgf_hash = params.mask_gen.as_ref().map(mgf1_hash).transpose()?;
    let (Some(hash), Some(mgf_hash)) = (hash, mgf_hash) else {
        return Err(unsupported("with SHA-1"));
    };
    let hash_len = match hash {
        Hash::Sha256 => 32,
        Hash::Sha384 => 48,
        Hash::Sha512 => 64,
        Hash::Sha1 => return Err(unsupported("with SHA-1")),
    };
    if mgf_hash != hash {
        return Err(unsupported("with an MGF1 hash unlike the message hash"));
    }
    if params.salt_length != Some(hash_len) || params.trailer_field.unwrap_or(1) != 1 {
        return Err(unsupported("with a salt length other than the hash length"));
    }
    Ok(match hash {
        Hash::Sha384 => &sig::RSA_PSS_2048_8192_SHA384,
        Hash::Sha512 => &sig::RSA_PSS_2048_8192_SHA512,
        _ => &sig::RSA_PSS_2048_8192_SHA256,
    })
}

/// The hash named by a digest AlgorithmIdentifier (parameters NULL or absent).
fn hash_of(alg: &AlgorithmIdentifierOwned) -> Result<Hash, PkixError> {
    require_null_or_absent(alg)?;
    match alg.oid {
        o if o == rfc5912::ID_SHA_1 => Ok(Hash::Sha1),
        o if o == rfc5912::ID_SHA_256 => Ok(Hash::Sha256),
        o if o == rfc5912::ID_SHA_384 => Ok(Hash::Sha384),
        o if o == rfc5912::ID_SHA_512 => Ok(Hash::Sha512),
        o => Err(PkixError::UnsupportedAlgorithm(format!(
            "hash {}",
            oid_name(&o)
        ))),
    }
}

/// The hash inside an MGF1 AlgorithmIdentifier.
fn mgf1_hash(alg: &AlgorithmIdentifierOwned) -> Result<Hash, PkixError> {
    if alg.oid != rfc5912::ID_MGF_1 {
        return Err(PkixError::UnsupportedAlgorithm(format!(
            "mask generation {}",
            oid_name(&alg.oid)
        )));
    }
    let inner = alg
        .parameters
        .as_ref()
        .ok_or_else(|| PkixError::invalid("MGF1 parameters", "absent"))?
        .decode_as::<AlgorithmIdentifierOwned>()
        .map_err(PkixError::malformed("MGF1 parameters"))?;
    hash_of(&inner)
}

fn require_key(spki: &SubjectPublicKeyInfoOwned, ok: bool, want: &str) -> Result<(), PkixError> {
    if ok {
        return Ok(());
    }
    Err(PkixError::KeyAlgorithmMismatch(format!(
        "{want} signature with a {} key",
        oid_name(&spki.algorithm.oid)
    )))
}

fn require_absent(alg: &AlgorithmIdentifierOwned) -> Result<(), PkixError> {
    match alg.parameters {
        None => Ok(()),
        Some(_) => Err(PkixError::UnsupportedAlgorithm(format!(
            "{} with parameters",
            oid_name(&alg.oid)
        ))),
    }
}

fn require_null_or_absent(alg: &AlgorithmIdentifierOwned) -> Result<(), PkixError> {
    match &alg.parameters {
        None => Ok(()),
        Some(p) if p.decode_as::<Null>().is_ok() => Ok(()),
        Some(_) => Err(PkixError::UnsupportedAlgorithm(format!(
            "{} with parameters",
            oid_name(&alg.oid)
        ))),
    }
}

/// The subjectPublicKey bits, which must be whole bytes.
fn key_bytes(spki: &SubjectPublicKeyInfoOwned) -> Result<&[u8], PkixError> {
    spki.subject_public_key
        .as_bytes()
        .ok_or_else(|| PkixError::invalid("subject public key", "not a whole number of bytes"))
}

/// The named curve of an id-ecPublicKey key (RFC 5480: namedCurve only).
fn ec_curve(spki: &SubjectPublicKeyInfoOwned) -> Result<ObjectIdentifier, PkixError> {
    let params = spki
        .algorithm
        .parameters
        .as_ref()
        .ok_or_else(|| PkixError::UnsupportedKey("EC key without a named curve".into()))?;
    params
        .decode_as::<ObjectIdentifier>()
        .map_err(|_| PkixError::UnsupportedKey("EC key without a named curve".into()))
}

/// A readable name for an OID: its registered name, else dotted decimal.
pub(crate) fn oid_name(oid: &ObjectIdentifier) -> String {
    const_oid::db::DB
        .by_oid(oid)
        .map_or_else(|| oid.to_string(), str::to_owned)
}
