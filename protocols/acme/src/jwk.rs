//! JSON Web Keys (RFC 7517/7518) for the account keys ACME accepts, their RFC 7638
//! thumbprints, and signature verification with aws-lc-rs.
//!
//! Only public keys are handled. Accepted: EC P-256 and P-384, RSA 2048 to 8192 bits, and OKP
//! Ed25519. A key is normalised on parsing (no leading zero bytes in RSA integers), so two
//! spellings of one key compare equal and have one thumbprint.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5912, rfc8410};
use der::Decode;
use der::asn1::UintRef;
use serde_json::{Value, json};
use spki::SubjectPublicKeyInfoOwned;

use crate::b64;
use crate::problem::{Problem, ProblemType};

/// Smallest RSA modulus accepted, in bits.
const RSA_MIN_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits.
const RSA_MAX_BITS: usize = 8192;

/// A JWS signature algorithm that ACME account keys may use (RFC 7518 section 3.1, RFC 8037).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// ECDSA P-384 with SHA-384.
    Es384,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PSS with SHA-256 and MGF1 with SHA-256.
    Ps256,
    /// Ed25519 (RFC 8037).
    EdDsa,
}

impl Algorithm {
    /// Parses the `alg` header value; `None` for anything not supported.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Self::Es256),
            "ES384" => Some(Self::Es384),
            "RS256" => Some(Self::Rs256),
            "PS256" => Some(Self::Ps256),
            "EdDSA" => Some(Self::EdDsa),
            _ => None,
        }
    }

    /// The `alg` header value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::EdDsa => "EdDSA",
        }
    }
}

/// An elliptic curve for `kty: EC` keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EcCurve {
    /// NIST P-256.
    P256,
    /// NIST P-384.
    P384,
}

impl EcCurve {
    fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
        }
    }

    fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
        }
    }
}

/// A public JSON Web Key.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub enum Jwk {
    /// `kty: EC`.
    Ec {
        /// The curve.
        curve: EcCurve,
        /// The x coordinate, big-endian, full length.
        x: Vec<u8>,
        /// The y coordinate, big-endian, full length.
        y: Vec<u8>,
    },
    /// `kty: RSA`.
    Rsa {
        /// The modulus, big-endian, no leading zeros.
        n: Vec<u8>,
        /// The public exponent, big-endian, no leading zeros.
        e: Vec<u8>,
    },
    /// `kty: OKP, crv: Ed25519`.
    Ed25519 {
        /// The 32-byte public key.
        x: Vec<u8>,
    },
}

impl Jwk {
    /// Parses a JWK object, keeping only the public members that define the key.
    pub fn from_json(v: &Value) -> Result<Self, Problem> {
        let member = |name: &str| -> Result<&str, Problem> {
            v.get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| bad_key(format!("jwk lacks the string member {name:?}")))
        };
        match member("kty")? {
            "EC" => ec_from_json(member("crv")?, member("x")?, member("y")?),
            "RSA" => rsa_from_parts(b64_member(member("n")?)?, b64_member(member("e")?)?),
            "OKP" if member("crv")? == "Ed25519" => ed25519_from_parts(b64_member(member("x")?)?),
            other => Err(bad_key(format!("key type {other:?} is not supported"))),
        }
    }

    /// The key as a JWK object holding only its required public members.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Ec { curve, x, y } => {
                json!({"crv": curve.name(), "kty": "EC", "x": b64::encode(x), "y": b64::encode(y)})
            }
            Self::Rsa { n, e } => json!({"e": b64::encode(e), "kty": "RSA", "n": b64::encode(n)}),
            Self::Ed25519 { x } => json!({"crv": "Ed25519", "kty": "OKP", "x": b64::encode(x)}),
        }
    }

    /// The RFC 7638 thumbprint: base64url of SHA-256 over the required members in
    /// lexicographic order, without whitespace.
    pub fn thumbprint(&self) -> String {
        // serde_json's map is ordered by key, and to_json holds exactly the required
        // members, so the compact serialisation is the RFC 7638 input.
        let input = self.to_json().to_string();
        b64::encode(digest(&SHA256, input.as_bytes()).as_ref())
    }

    /// Verifies `signature` over `message` with this key under `alg`.
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> Result<(), Problem> {
        let ok = match (alg, self) {
            (
                Algorithm::Es256,
                Self::Ec {
                    curve: EcCurve::P256,
                    x,
                    y,
                },
            ) => ec_verify(
                &signature::ECDSA_P256_SHA256_FIXED,
                x,
                y,
                message,
                signature,
            ),
            (
                Algorithm::Es384,
                Self::Ec {
                    curve: EcCurve::P384,
                    x,
                    y,
                },
            ) => ec_verify(
                &signature::ECDSA_P384_SHA384_FIXED,
                x,
                y,
                message,
                signature,
            ),
            (Algorithm::Rs256, Self::Rsa { n, e }) => {
                let key = RsaPublicKeyComponents { n, e };
                key.verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, signature)
                    .is_ok()
            }
            (Algorithm::Ps256, Self::Rsa { n, e }) => {
                let key = RsaPublicKeyComponents { n, e };
                key.verify(&signature::RSA_PSS_2048_8192_SHA256, message, signature)
                    .is_ok()
            }
            (Algorithm::EdDsa, Self::Ed25519 { x }) => {
                UnparsedPublicKey::new(&signature::ED25519, x)
                    .verify(message, signature)
                    .is_ok()
            }
            _ => {
                let why = format!("algorithm {} does not fit the key type", alg.name());
                return Err(Problem::bad_signature_algorithm(why));
            }
        };
        if ok {
            Ok(())
        } else {
            Err(Problem::malformed("JWS signature does not verify"))
        }
    }

    /// The JWK for a certificate's or CSR's SubjectPublicKeyInfo (for revocation by the
    /// certificate's key, RFC 8555 section 7.6).
    pub fn from_spki(spki: &SubjectPublicKeyInfoOwned) -> Result<Self, Problem> {
        let key = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| bad_key("odd key bits"))?;
        let alg = &spki.algorithm;
        if alg.oid == rfc5912::RSA_ENCRYPTION {
            let rsa = RsaPublicKey::from_der(key).map_err(|_| bad_key("bad RSA public key"))?;
            rsa_from_parts(rsa.n.as_bytes().to_vec(), rsa.e.as_bytes().to_vec())
        } else if alg.oid == rfc8410::ID_ED_25519 {
            ed25519_from_parts(key.to_vec())
        } else if alg.oid == rfc5912::ID_EC_PUBLIC_KEY {
            let curve_oid = alg
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
            ec_from_point(curve_oid, key)
        } else {
            Err(bad_key("public key algorithm not supported"))
        }
    }
}

impl TryFrom<Value> for Jwk {
    type Error = Problem;

    fn try_from(v: Value) -> Result<Self, Problem> {
        Self::from_json(&v)
    }
}

impl From<Jwk> for Value {
    fn from(k: Jwk) -> Self {
        k.to_json()
    }
}

/// RFC 8017 RSAPublicKey.
#[derive(der::Sequence)]
struct RsaPublicKey<'a> {
    n: UintRef<'a>,
    e: UintRef<'a>,
}

fn bad_key(detail: impl Into<String>) -> Problem {
    Problem::new(ProblemType::BadPublicKey, detail)
}

fn b64_member(s: &str) -> Result<Vec<u8>, Problem> {
    b64::decode(s).map_err(|_| bad_key("jwk member is not base64url"))
}

fn ec_from_json(crv: &str, x: &str, y: &str) -> Result<Jwk, Problem> {
    let curve = match crv {
        "P-256" => EcCurve::P256,
        "P-384" => EcCurve::P384,
        other => return Err(bad_key(format!("curve {other:?} is not supported"))),
    };
    let (x, y) = (b64_member(x)?, b64_member(y)?);
    if x.len() != curve.coordinate_len() || y.len() != curve.coordinate_len() {
        return Err(bad_key("EC coordinate has the wrong length"));
    }
    Ok(Jwk::Ec { curve, x, y })
}

fn ec_from_point(curve_oid: Option<ObjectIdentifier>, point: &[u8]) -> Result<Jwk, Problem> {
    let curve = match curve_oid {
        Some(oid) if oid == rfc5912::SECP_256_R_1 => EcCurve::P256,
        Some(oid) if oid == rfc5912::SECP_384_R_1 => EcCurve::P384,
        _ => return Err(bad_key("EC curve not supported")),
    };
    let n = curve.coordinate_len();
    match point.split_first() {
        Some((4, xy)) if xy.len() == 2 * n => {
            let (x, y) = xy.split_at(n);
            Ok(Jwk::Ec {
                curve,
                x: x.to_vec(),
                y: y.to_vec(),
            })
        }
        _ => Err(bad_key("EC point is not uncompressed")),
    }
}

fn rsa_from_parts(n: Vec<u8>, e: Vec<u8>) -> Result<Jwk, Problem> {
    let (n, e) = (strip_zeros(n), strip_zeros(e));
    let bits = (n.len() * 8).saturating_sub(n.first().map_or(8, |b| b.leading_zeros() as usize));
    if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        return Err(bad_key(format!(
            "RSA modulus of {bits} bits is not accepted"
        )));
    }
    if e.is_empty() || e.len() > 4 {
        return Err(bad_key("RSA exponent out of range"));
    }
    Ok(Jwk::Rsa { n, e })
}

fn ed25519_from_parts(x: Vec<u8>) -> Result<Jwk, Problem> {
    if x.len() != 32 {
        return Err(bad_key("Ed25519 key must be 32 bytes"));
    }
    Ok(Jwk::Ed25519 { x })
}

fn strip_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let zeros = v.iter().take_while(|b| **b == 0).count();
    v.drain(..zeros);
    v
}

fn ec_verify(
    alg: &'static signature::EcdsaVerificationAlgorithm,
    x: &[u8],
    y: &[u8],
    message: &[u8],
    sig: &[u8],
) -> bool {
    let point: Vec<u8> = [&[4u8][..], x, y].concat();
    UnparsedPublicKey::new(alg, point)
        .verify(message, sig)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RSA key of RFC 7638 section 3.1 and its thumbprint.
    const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    const RFC7638_THUMBPRINT: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

    #[test]
    fn rfc7638_example_thumbprint() {
        let v =
            json!({"kty": "RSA", "n": RFC7638_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"});
        let jwk = Jwk::from_json(&v).unwrap();
        assert_eq!(jwk.thumbprint(), RFC7638_THUMBPRINT);
    }

    #[test]
    fn rejects_unsupported_and_short_keys() {
        let oct = json!({"kty": "oct", "k": "AAAA"});
        assert_eq!(
            Jwk::from_json(&oct).unwrap_err().kind,
            ProblemType::BadPublicKey
        );
        for n in ["", "AA", "AAAA", "AQAB"] {
            let rsa = json!({"kty": "RSA", "n": n, "e": "AQAB"});
            assert!(Jwk::from_json(&rsa).is_err(), "{n:?}");
        }
        let short = json!({"kty": "RSA", "n": "AQAB", "e": ""});
        assert!(Jwk::from_json(&short).is_err());
        let p256_short = json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"});
        assert!(Jwk::from_json(&p256_short).is_err());
        assert!(Jwk::from_json(&json!([1, 2])).is_err());
    }

    #[test]
    fn serde_round_trip_is_canonical() {
        let jwk = Jwk::Ed25519 { x: vec![7; 32] };
        let s = serde_json::to_string(&jwk).unwrap();
        assert_eq!(serde_json::from_str::<Jwk>(&s).unwrap(), jwk);
    }
}
