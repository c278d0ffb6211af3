//! The JWS request envelope of RFC 8555 section 6.2 (RFC 7515 flattened JSON serialisation).
//!
//! Checking a request is two steps with two types. [`Jws::parse`] decodes the body and applies
//! every rule that needs no key: size, shape, a supported `alg`, `jwk` or `kid` as the
//! resource demands, `url` equal to the request URL, a `nonce` present. The gateway then spends
//! the nonce against its store, finds the key (the embedded `jwk`, or the account that `kid`
//! names) and calls [`Jws::verify`], which alone makes a [`VerifiedJws`]. Every state
//! transition that acts for a client takes a `VerifiedJws`, so nothing unverified reaches one.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::b64;
use crate::ids::is_nonce_syntax;
use crate::jwk::{Algorithm, Jwk};
use crate::problem::{Problem, ProblemType};

/// The largest request body accepted, in bytes.
pub const MAX_JWS_BYTES: usize = 64 * 1024;

/// The `alg` values accepted, as listed in a `badSignatureAlgorithm` problem.
pub const SUPPORTED_ALGORITHMS: &[&str] = &["ES256", "ES384", "RS256", "PS256", "EdDSA"];

/// Which key reference a resource demands (RFC 8555 section 6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRule {
    /// `jwk` only: newAccount, and the inner JWS of keyChange.
    Jwk,
    /// `kid` only: every request from an existing account.
    Kid,
    /// Either: revokeCert (by the account key, or by the certificate's own key).
    Either,
}

/// Whether the `nonce` header parameter must be present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceRule {
    /// Outer requests: the nonce is required.
    Required,
    /// The inner JWS of keyChange and EAB: the nonce is optional.
    Optional,
}

/// The key named by the protected header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRef {
    /// The key itself (`jwk`).
    Jwk(Jwk),
    /// An account URL (`kid`).
    Kid(String),
}

/// The decoded protected header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtectedHeader {
    /// The signature algorithm.
    pub alg: Algorithm,
    /// The anti-replay nonce; the gateway must check it is one it issued and not yet used.
    pub nonce: Option<String>,
    /// The URL the client signed for; already checked equal to the request URL.
    pub url: String,
    /// The key reference.
    pub key: KeyRef,
}

/// A parsed JWS whose signature has not been checked yet.
#[derive(Clone, Debug)]
pub struct Jws {
    header: ProtectedHeader,
    payload: Vec<u8>,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

/// A JWS whose signature verified with the key the gateway found for it.
#[derive(Clone, Debug)]
pub struct VerifiedJws {
    header: ProtectedHeader,
    payload: Vec<u8>,
    key: Jwk,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Flattened {
    protected: String,
    payload: String,
    signature: String,
}

impl Jws {
    /// Parses an outer request body received at `request_url`, applying the key rule of the
    /// resource and requiring a nonce.
    pub fn parse(body: &[u8], request_url: &str, rule: KeyRule) -> Result<Self, Problem> {
        Self::parse_with(body, request_url, rule, NonceRule::Required)
    }

    /// Parses with an explicit nonce rule (inner JWS objects).
    pub fn parse_with(
        body: &[u8],
        request_url: &str,
        rule: KeyRule,
        nonce: NonceRule,
    ) -> Result<Self, Problem> {
        if body.len() > MAX_JWS_BYTES {
            return Err(Problem::malformed("request body too large").with_status(413));
        }
        let flat: Flattened = serde_json::from_slice(body)
            .map_err(|_| Problem::malformed("body is not a flattened JWS"))?;
        Self::from_flattened(flat, request_url, rule, nonce)
    }

    /// Parses a JWS given as a JSON value (the inner JWS of keyChange, the EAB object).
    pub fn from_value(
        v: &Value,
        request_url: &str,
        rule: KeyRule,
        nonce: NonceRule,
    ) -> Result<Self, Problem> {
        let flat = Flattened::deserialize(v)
            .map_err(|_| Problem::malformed("value is not a flattened JWS"))?;
        Self::from_flattened(flat, request_url, rule, nonce)
    }

    /// The protected header.
    pub fn header(&self) -> &ProtectedHeader {
        &self.header
    }

    /// The nonce, for the gateway's single-use check (always `Some` for outer requests).
    pub fn nonce(&self) -> Option<&str> {
        self.header.nonce.as_deref()
    }

    /// The `kid` (an account URL), when the request names its key that way.
    pub fn kid(&self) -> Option<&str> {
        match &self.header.key {
            KeyRef::Kid(k) => Some(k),
            KeyRef::Jwk(_) => None,
        }
    }

    /// The embedded `jwk`, when the request carries its key.
    pub fn jwk(&self) -> Option<&Jwk> {
        match &self.header.key {
            KeyRef::Jwk(k) => Some(k),
            KeyRef::Kid(_) => None,
        }
    }

    /// Verifies the signature with `key` (the account's key for a `kid` request).
    pub fn verify(self, key: &Jwk) -> Result<VerifiedJws, Problem> {
        key.verify(self.header.alg, &self.signing_input, &self.signature)?;
        Ok(VerifiedJws {
            header: self.header,
            payload: self.payload,
            key: key.clone(),
        })
    }

    /// Verifies the signature with the embedded `jwk`; refused for a `kid` request.
    pub fn verify_embedded(self) -> Result<VerifiedJws, Problem> {
        let key = self
            .jwk()
            .cloned()
            .ok_or_else(|| Problem::malformed("request has no jwk"))?;
        self.verify(&key)
    }

    fn from_flattened(
        flat: Flattened,
        request_url: &str,
        rule: KeyRule,
        nonce: NonceRule,
    ) -> Result<Self, Problem> {
        let header_bytes = decode_part(&flat.protected, "protected header")?;
        let header: Map<String, Value> = serde_json::from_slice(&header_bytes)
            .map_err(|_| Problem::malformed("protected header is not a JSON object"))?;
        let header = parse_header(&header, rule, nonce)?;
        if header.url != request_url {
            return Err(Problem::unauthorized(
                "JWS url does not match the request URL",
            ));
        }
        let payload = decode_part(&flat.payload, "payload")?;
        let signature = decode_part(&flat.signature, "signature")?;
        let signing_input = format!("{}.{}", flat.protected, flat.payload).into_bytes();
        Ok(Self {
            header,
            payload,
            signing_input,
            signature,
        })
    }
}

impl VerifiedJws {
    /// The protected header.
    pub fn header(&self) -> &ProtectedHeader {
        &self.header
    }

    /// The key that verified the signature.
    pub fn key(&self) -> &Jwk {
        &self.key
    }

    /// The raw payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Whether this is a POST-as-GET (an empty payload, RFC 8555 section 6.3).
    pub fn is_post_as_get(&self) -> bool {
        self.payload.is_empty()
    }

    /// The payload parsed as JSON into `T`; `malformed` when it does not fit.
    pub fn payload_json<T: DeserializeOwned>(&self) -> Result<T, Problem> {
        serde_json::from_slice(&self.payload)
            .map_err(|e| Problem::malformed(format!("payload does not fit the resource: {e}")))
    }

    /// Fails unless this is a POST-as-GET.
    pub fn expect_post_as_get(&self) -> Result<(), Problem> {
        if self.is_post_as_get() {
            Ok(())
        } else {
            Err(Problem::malformed("POST-as-GET must have an empty payload"))
        }
    }
}

fn decode_part(s: &str, what: &str) -> Result<Vec<u8>, Problem> {
    b64::decode(s).map_err(|_| Problem::malformed(format!("JWS {what} is not base64url")))
}

fn parse_header(
    h: &Map<String, Value>,
    rule: KeyRule,
    nonce: NonceRule,
) -> Result<ProtectedHeader, Problem> {
    let alg = parse_alg(h.get("alg"))?;
    if h.contains_key("crit") || h.contains_key("b64") {
        return Err(Problem::malformed(
            "JWS extensions (crit, b64) are not supported",
        ));
    }
    let url = h
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| Problem::malformed("JWS has no url"))?;
    let key = parse_key(h.get("jwk"), h.get("kid"), rule)?;
    let nonce_value = parse_nonce(h.get("nonce"), nonce)?;
    Ok(ProtectedHeader {
        alg,
        nonce: nonce_value,
        url: url.into(),
        key,
    })
}

fn parse_alg(v: Option<&Value>) -> Result<Algorithm, Problem> {
    let name = v
        .and_then(Value::as_str)
        .ok_or_else(|| Problem::malformed("JWS has no alg"))?;
    Algorithm::from_name(name)
        .ok_or_else(|| Problem::bad_signature_algorithm(format!("alg {name:?} is not accepted")))
}

fn parse_key(jwk: Option<&Value>, kid: Option<&Value>, rule: KeyRule) -> Result<KeyRef, Problem> {
    let key = match (jwk, kid) {
        (Some(j), None) => KeyRef::Jwk(Jwk::from_json(j)?),
        (None, Some(k)) => {
            let k = k
                .as_str()
                .ok_or_else(|| Problem::malformed("kid is not a string"))?;
            KeyRef::Kid(k.into())
        }
        (Some(_), Some(_)) => return Err(Problem::malformed("JWS has both jwk and kid")),
        (None, None) => return Err(Problem::malformed("JWS has neither jwk nor kid")),
    };
    match (rule, &key) {
        (KeyRule::Jwk, KeyRef::Kid(_)) => Err(Problem::malformed("this resource needs a jwk")),
        (KeyRule::Kid, KeyRef::Jwk(_)) => Err(Problem::malformed("this resource needs a kid")),
        _ => Ok(key),
    }
}

fn parse_nonce(v: Option<&Value>, rule: NonceRule) -> Result<Option<String>, Problem> {
    match (v, rule) {
        (None, NonceRule::Optional) => Ok(None),
        (None, NonceRule::Required) => Err(Problem::new(ProblemType::BadNonce, "JWS has no nonce")),
        (Some(v), _) => match v.as_str() {
            Some(n) if is_nonce_syntax(n) => Ok(Some(n.into())),
            _ => Err(Problem::new(
                ProblemType::BadNonce,
                "nonce is not base64url",
            )),
        },
    }
}

#[cfg(test)]
#[path = "jws_tests.rs"]
mod tests;
