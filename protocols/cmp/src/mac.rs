//! MAC-based protection: PasswordBasedMac (RFC 9810 section 5.1.3.1) and PBMAC1 (RFC 9481
//! section 6.1.2, RFC 8018 section 7.1).

use std::num::NonZeroU32;

use aws_lc_rs::{digest, hmac, pbkdf2};
use der::asn1::{Any, ObjectIdentifier, OctetString};
use der::{Decode, Encode, Sequence};
use spki::AlgorithmIdentifierOwned;

use crate::error::CmpError;
use crate::oid;

/// `PBMParameter` (RFC 9810 section 5.1.3.1).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub(crate) struct PbmParameter {
    salt: OctetString,
    owf: AlgorithmIdentifierOwned,
    iteration_count: u64,
    mac: AlgorithmIdentifierOwned,
}

/// `PBMAC1-params` (RFC 8018 appendix A.5).
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub(crate) struct Pbmac1Params {
    key_derivation_func: AlgorithmIdentifierOwned,
    message_auth_scheme: AlgorithmIdentifierOwned,
}

/// `PBKDF2-params` (RFC 8018 appendix A.2), with the `specified` salt only.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub(crate) struct Pbkdf2Params {
    salt: OctetString,
    iteration_count: u64,
    #[asn1(optional = "true")]
    key_length: Option<u64>,
    #[asn1(optional = "true")]
    prf: Option<AlgorithmIdentifierOwned>,
}

/// A parsed MAC protection algorithm with its parameters.
#[derive(Clone, Debug)]
pub(crate) enum MacParams {
    /// PasswordBasedMac.
    Pbm(PbmParameter),
    /// PBMAC1 with PBKDF2.
    Pbmac1(Pbmac1Params, Pbkdf2Params),
}

/// Whether an algorithm identifier names a MAC protection (as opposed to a signature).
pub(crate) fn is_mac_algorithm(alg: &AlgorithmIdentifierOwned) -> bool {
    alg.oid == oid::PASSWORD_BASED_MAC || alg.oid == oid::PBMAC1
}

impl MacParams {
    /// Parses `protectionAlg`, refusing unknown algorithms and iteration counts above `max`.
    pub(crate) fn parse(alg: &AlgorithmIdentifierOwned, max: u64) -> Result<Self, CmpError> {
        let params = alg
            .parameters
            .as_ref()
            .ok_or_else(|| unsupported("MAC without parameters"))?;
        let params = params.to_der()?;
        let parsed = if alg.oid == oid::PASSWORD_BASED_MAC {
            let p = PbmParameter::from_der(&params)?;
            check_iterations(p.iteration_count, max)?;
            digest_alg(&p.owf.oid)?;
            hmac_alg(&p.mac.oid)?;
            Self::Pbm(p)
        } else if alg.oid == oid::PBMAC1 {
            let p = Pbmac1Params::from_der(&params)?;
            let kdf = pbkdf2_params(&p.key_derivation_func)?;
            check_iterations(kdf.iteration_count, max)?;
            pbkdf2_alg(kdf.prf.as_ref())?;
            hmac_alg(&p.message_auth_scheme.oid)?;
            Self::Pbmac1(p, kdf)
        } else {
            return Err(unsupported(&alg.oid.to_string()));
        };
        Ok(parsed)
    }

    /// The same algorithm and parameters with a new salt, for a reply.
    pub(crate) fn with_salt(&self, salt: &[u8]) -> Result<Self, CmpError> {
        let salt = OctetString::new(salt)?;
        Ok(match self {
            Self::Pbm(p) => Self::Pbm(PbmParameter { salt, ..p.clone() }),
            Self::Pbmac1(p, kdf) => {
                let kdf = Pbkdf2Params {
                    salt,
                    ..kdf.clone()
                };
                let mut p = p.clone();
                p.key_derivation_func.parameters = Some(Any::encode_from(&kdf)?);
                Self::Pbmac1(p, kdf)
            }
        })
    }

    /// The salt's length, so a reply can use a fresh salt of the same size.
    pub(crate) fn salt_len(&self) -> usize {
        match self {
            Self::Pbm(p) => p.salt.as_bytes().len(),
            Self::Pbmac1(_, kdf) => kdf.salt.as_bytes().len(),
        }
    }

    /// The `protectionAlg` value for these parameters.
    pub(crate) fn algorithm_identifier(&self) -> Result<AlgorithmIdentifierOwned, CmpError> {
        let (oid, params) = match self {
            Self::Pbm(p) => (oid::PASSWORD_BASED_MAC, Any::encode_from(p)?),
            Self::Pbmac1(p, _) => (oid::PBMAC1, Any::encode_from(p)?),
        };
        Ok(AlgorithmIdentifierOwned {
            oid,
            parameters: Some(params),
        })
    }

    /// Computes the MAC over `data` with the shared secret.
    pub(crate) fn compute(&self, secret: &[u8], data: &[u8]) -> Result<Vec<u8>, CmpError> {
        let key = self.derive_key(secret)?;
        Ok(hmac::sign(&key, data).as_ref().to_vec())
    }

    /// Checks `tag` against the MAC over `data`, in constant time.
    pub(crate) fn verify(&self, secret: &[u8], data: &[u8], tag: &[u8]) -> Result<(), CmpError> {
        let key = self.derive_key(secret)?;
        hmac::verify(&key, data, tag).map_err(|_| CmpError::BadMessageCheck)
    }

    fn derive_key(&self, secret: &[u8]) -> Result<hmac::Key, CmpError> {
        match self {
            Self::Pbm(p) => {
                let owf = digest_alg(&p.owf.oid)?;
                let mut ctx = digest::Context::new(owf);
                ctx.update(secret);
                ctx.update(p.salt.as_bytes());
                let mut key = ctx.finish();
                // RFC 9810 5.1.3.1: the OWF is applied iterationCount times in all.
                for _ in 1..p.iteration_count {
                    key = digest::digest(owf, key.as_ref());
                }
                Ok(hmac::Key::new(hmac_alg(&p.mac.oid)?, key.as_ref()))
            }
            Self::Pbmac1(p, kdf) => {
                let mac = hmac_alg(&p.message_auth_scheme.oid)?;
                let len = match kdf.key_length {
                    Some(len) if (1..=64).contains(&len) => len as usize,
                    Some(_) => return Err(unsupported("PBKDF2 key length")),
                    None => mac.digest_algorithm().output_len(),
                };
                let iterations = u32::try_from(kdf.iteration_count)
                    .ok()
                    .and_then(NonZeroU32::new)
                    .ok_or_else(|| unsupported("PBKDF2 iteration count"))?;
                let mut key = vec![0u8; len];
                let prf = pbkdf2_alg(kdf.prf.as_ref())?;
                pbkdf2::derive(prf, iterations, kdf.salt.as_bytes(), secret, &mut key);
                Ok(hmac::Key::new(mac, &key))
            }
        }
    }
}

fn pbkdf2_params(kdf: &AlgorithmIdentifierOwned) -> Result<Pbkdf2Params, CmpError> {
    if kdf.oid != oid::PBKDF2 {
        return Err(unsupported("PBMAC1 key derivation other than PBKDF2"));
    }
    let params = kdf
        .parameters
        .as_ref()
        .ok_or_else(|| unsupported("PBKDF2 parameters"))?;
    Ok(Pbkdf2Params::from_der(&params.to_der()?)?)
}

fn check_iterations(count: u64, max: u64) -> Result<(), CmpError> {
    if count == 0 {
        return Err(unsupported("iteration count 0"));
    }
    if count > max {
        return Err(CmpError::IterationCountTooHigh { count, max });
    }
    Ok(())
}

fn unsupported(what: &str) -> CmpError {
    CmpError::UnsupportedAlgorithm(what.to_owned())
}

/// The digest for a hash OID (the PBM one-way function, certConf hashes).
pub(crate) fn digest_alg(oid: &ObjectIdentifier) -> Result<&'static digest::Algorithm, CmpError> {
    match *oid {
        oid::SHA1 => Ok(&digest::SHA1_FOR_LEGACY_USE_ONLY),
        oid::SHA224 => Ok(&digest::SHA224),
        oid::SHA256 => Ok(&digest::SHA256),
        oid::SHA384 => Ok(&digest::SHA384),
        oid::SHA512 => Ok(&digest::SHA512),
        _ => Err(unsupported(&format!("hash {oid}"))),
    }
}

fn hmac_alg(oid: &ObjectIdentifier) -> Result<hmac::Algorithm, CmpError> {
    match *oid {
        oid::HMAC_SHA1 | oid::HMAC_WITH_SHA1 => Ok(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
        oid::HMAC_WITH_SHA224 => Ok(hmac::HMAC_SHA224),
        oid::HMAC_WITH_SHA256 => Ok(hmac::HMAC_SHA256),
        oid::HMAC_WITH_SHA384 => Ok(hmac::HMAC_SHA384),
        oid::HMAC_WITH_SHA512 => Ok(hmac::HMAC_SHA512),
        _ => Err(unsupported(&format!("MAC {oid}"))),
    }
}

fn pbkdf2_alg(prf: Option<&AlgorithmIdentifierOwned>) -> Result<pbkdf2::Algorithm, CmpError> {
    // RFC 8018: the PRF defaults to hmacWithSHA1.
    match prf.map(|p| p.oid) {
        None | Some(oid::HMAC_WITH_SHA1) => Ok(pbkdf2::PBKDF2_HMAC_SHA1),
        Some(oid::HMAC_WITH_SHA256) => Ok(pbkdf2::PBKDF2_HMAC_SHA256),
        Some(oid::HMAC_WITH_SHA384) => Ok(pbkdf2::PBKDF2_HMAC_SHA384),
        Some(oid::HMAC_WITH_SHA512) => Ok(pbkdf2::PBKDF2_HMAC_SHA512),
        Some(other) => Err(unsupported(&format!("PBKDF2 PRF {other}"))),
    }
}

#[cfg(test)]
/// Builds PBMAC1 parameters (PBKDF2 with HMAC-SHA256, HMAC-SHA256 MAC), for tests and for
/// callers that protect their own messages.
pub(crate) fn pbmac1_sha256(salt: &[u8], iterations: u64) -> Result<MacParams, CmpError> {
    let kdf = Pbkdf2Params {
        salt: OctetString::new(salt)?,
        iteration_count: iterations,
        key_length: Some(32),
        prf: Some(AlgorithmIdentifierOwned {
            oid: oid::HMAC_WITH_SHA256,
            parameters: Some(Any::null()),
        }),
    };
    let params = Pbmac1Params {
        key_derivation_func: AlgorithmIdentifierOwned {
            oid: oid::PBKDF2,
            parameters: Some(Any::encode_from(&kdf)?),
        },
        message_auth_scheme: AlgorithmIdentifierOwned {
            oid: oid::HMAC_WITH_SHA256,
            parameters: Some(Any::null()),
        },
    };
    Ok(MacParams::Pbmac1(params, kdf))
}

#[cfg(test)]
/// Builds PasswordBasedMac parameters (SHA-256 OWF, HMAC-SHA256), for tests.
pub(crate) fn pbm_sha256(salt: &[u8], iterations: u64) -> Result<MacParams, CmpError> {
    Ok(MacParams::Pbm(PbmParameter {
        salt: OctetString::new(salt)?,
        owf: AlgorithmIdentifierOwned {
            oid: oid::SHA256,
            parameters: None,
        },
        iteration_count: iterations,
        mac: AlgorithmIdentifierOwned {
            oid: oid::HMAC_WITH_SHA256,
            parameters: Some(Any::null()),
        },
    }))
}
