//! Test helpers: account keys generated in-test and a JWS signer, playing the ACME client.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

use crate::b64;
use crate::jwk::{Algorithm, EcCurve, Jwk};

/// A private key that signs as an ACME client would.
pub enum TestKey {
    Ec(EcdsaKeyPair, EcCurve),
    Rsa(RsaKeyPair, Algorithm),
    Ed(Ed25519KeyPair),
}

impl TestKey {
    pub fn generate(alg: Algorithm) -> Self {
        match alg {
            Algorithm::Es256 => Self::Ec(
                EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
                EcCurve::P256,
            ),
            Algorithm::Es384 => Self::Ec(
                EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING).unwrap(),
                EcCurve::P384,
            ),
            Algorithm::Rs256 | Algorithm::Ps256 => {
                Self::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).unwrap(), alg)
            }
            Algorithm::EdDsa => Self::Ed(Ed25519KeyPair::generate().unwrap()),
        }
    }

    pub fn es256() -> Self {
        Self::generate(Algorithm::Es256)
    }

    pub fn alg(&self) -> Algorithm {
        match self {
            Self::Ec(_, EcCurve::P256) => Algorithm::Es256,
            Self::Ec(_, EcCurve::P384) => Algorithm::Es384,
            Self::Rsa(_, alg) => *alg,
            Self::Ed(_) => Algorithm::EdDsa,
        }
    }

    pub fn jwk(&self) -> Jwk {
        match self {
            Self::Ec(k, curve) => {
                let point = k.public_key().as_ref();
                let n = (point.len() - 1) / 2;
                Jwk::Ec {
                    curve: *curve,
                    x: point[1..=n].to_vec(),
                    y: point[n + 1..].to_vec(),
                }
            }
            Self::Rsa(k, _) => Jwk::Rsa {
                n: k.public_key()
                    .modulus()
                    .big_endian_without_leading_zero()
                    .to_vec(),
                e: k.public_key()
                    .exponent()
                    .big_endian_without_leading_zero()
                    .to_vec(),
            },
            Self::Ed(k) => Jwk::Ed25519 {
                x: k.public_key().as_ref().to_vec(),
            },
        }
    }

    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Self::Ec(k, _) => k.sign(&rng, msg).unwrap().as_ref().to_vec(),
            Self::Rsa(k, alg) => {
                let pad: &dyn signature::RsaEncoding = match alg {
                    Algorithm::Ps256 => &signature::RSA_PSS_SHA256,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(pad, &rng, msg, &mut sig).unwrap();
                sig
            }
            Self::Ed(k) => k.sign(msg).as_ref().to_vec(),
        }
    }
}

/// Signs `payload` (None = POST-as-GET) with a protected header built from `header`, to which
/// `alg` is added. Returns the flattened JWS as a JSON value.
pub fn sign_value(key: &TestKey, mut header: Value, payload: Option<&Value>) -> Value {
    header["alg"] = key.alg().name().into();
    let protected = b64::encode(header.to_string().as_bytes());
    let payload = payload
        .map(|p| b64::encode(p.to_string().as_bytes()))
        .unwrap_or_default();
    let sig = key.sign(format!("{protected}.{payload}").as_bytes());
    json!({"protected": protected, "payload": payload, "signature": b64::encode(&sig)})
}

/// A request signed with the embedded jwk.
pub fn jwk_request(key: &TestKey, url: &str, payload: Option<&Value>) -> Vec<u8> {
    let header = json!({"jwk": key.jwk(), "nonce": "bm9uY2U", "url": url});
    sign_value(key, header, payload).to_string().into_bytes()
}

/// A request signed for account `kid`.
pub fn kid_request(key: &TestKey, kid: &str, url: &str, payload: Option<&Value>) -> Vec<u8> {
    let header = json!({"kid": kid, "nonce": "bm9uY2U", "url": url});
    sign_value(key, header, payload).to_string().into_bytes()
}

/// An RNG for ids: a process-wide counter, so ids differ across calls and tests.
pub fn counter_rng() -> impl FnMut(&mut [u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    move |buf: &mut [u8]| {
        let n = NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes();
        buf.iter_mut()
            .zip(n.iter().cycle())
            .for_each(|(b, x)| *b = *x);
    }
}

/// The test vector directory.
pub fn vector(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

impl TestKey {
    /// The subscriber key of the test vectors (P-256, PKCS#8).
    pub fn leaf_key() -> Self {
        let der = vector("leaf_key.p8.der");
        let k =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der).unwrap();
        Self::Ec(k, EcCurve::P256)
    }
}
