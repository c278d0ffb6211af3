//! External account binding (RFC 8555 section 7.3.4).
//!
//! A newAccount payload may carry `externalAccountBinding`: a flattened JWS, MACed with a key
//! the operator gave the client out of band (an enrollment token of the gateway), whose
//! payload is the new account's JWK. Verifying it proves that whoever creates the account holds
//! that token; the account then issues with `Credential::TokenProven { id: kid }`.

use aws_lc_rs::hmac;
use enrollgate_model::Secret;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::b64;
use crate::jwk::Jwk;
use crate::problem::{Problem, ProblemType};

/// The longest EAB key id accepted.
const MAX_KID_LEN: usize = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Flattened {
    protected: String,
    payload: String,
    signature: String,
}

/// Decodes an EAB MAC key as operators and client configurations write it (base64url,
/// padding tolerated).
pub fn decode_eab_key(text: &str) -> Result<Secret, Problem> {
    b64::decode(text.trim().trim_end_matches('='))
        .map(Secret::new)
        .map_err(|_| Problem::malformed("EAB key is not base64url"))
}

/// Checks an `externalAccountBinding` object and returns its key id.
///
/// `account_key` is the key of the outer newAccount JWS, `new_account_url` the newAccount URL,
/// and `key_for` looks up the MAC key of a key id (`None` when unknown or spent).
pub fn verify_eab(
    eab: &Value,
    account_key: &Jwk,
    new_account_url: &str,
    key_for: impl FnOnce(&str) -> Option<Secret>,
) -> Result<String, Problem> {
    let flat = Flattened::deserialize(eab)
        .map_err(|_| Problem::malformed("externalAccountBinding is not a flattened JWS"))?;
    let header = decode_header(&flat.protected)?;
    let (alg, kid) = check_header(&header, new_account_url)?;

    let payload = b64::decode(&flat.payload)
        .map_err(|_| Problem::malformed("EAB payload is not base64url"))?;
    let bound: Value = serde_json::from_slice(&payload)
        .map_err(|_| Problem::malformed("EAB payload is not a JWK"))?;
    if Jwk::from_json(&bound)? != *account_key {
        return Err(Problem::malformed("EAB payload is not the account key"));
    }

    let key = key_for(&kid).ok_or_else(|| Problem::unauthorized("unknown EAB key id"))?;
    let tag = b64::decode(&flat.signature)
        .map_err(|_| Problem::malformed("EAB signature is not base64url"))?;
    let input = format!("{}.{}", flat.protected, flat.payload);
    hmac::verify(&hmac::Key::new(alg, key.expose()), input.as_bytes(), &tag)
        .map_err(|_| Problem::unauthorized("EAB MAC does not verify"))?;
    Ok(kid)
}

fn decode_header(protected: &str) -> Result<Map<String, Value>, Problem> {
    let bytes = b64::decode(protected)
        .map_err(|_| Problem::malformed("EAB protected header is not base64url"))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| Problem::malformed("EAB protected header is not a JSON object"))
}

fn check_header(h: &Map<String, Value>, url: &str) -> Result<(hmac::Algorithm, String), Problem> {
    let alg = match h.get("alg").and_then(Value::as_str) {
        Some("HS256") => hmac::HMAC_SHA256,
        Some("HS384") => hmac::HMAC_SHA384,
        Some("HS512") => hmac::HMAC_SHA512,
        _ => {
            let why = "EAB alg must be HS256, HS384 or HS512";
            return Err(Problem::new(ProblemType::BadSignatureAlgorithm, why));
        }
    };
    if h.contains_key("nonce") {
        return Err(Problem::malformed("EAB header must not have a nonce"));
    }
    if h.get("url").and_then(Value::as_str) != Some(url) {
        return Err(Problem::unauthorized("EAB url is not the newAccount URL"));
    }
    let kid = match h.get("kid").and_then(Value::as_str) {
        Some(k) if !k.is_empty() && k.len() <= MAX_KID_LEN => k.to_string(),
        _ => return Err(Problem::malformed("EAB header needs a kid")),
    };
    Ok((alg, kid))
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_support::TestKey;

    const URL: &str = "https://gw.example/acme/new-account";

    /// Builds the EAB object a client would send.
    pub(crate) fn eab_object(jwk: &Jwk, kid: &str, key: &[u8], url: &str) -> Value {
        let header = json!({"alg": "HS256", "kid": kid, "url": url});
        let protected = b64::encode(header.to_string().as_bytes());
        let payload = b64::encode(jwk.to_json().to_string().as_bytes());
        let input = format!("{protected}.{payload}");
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), input.as_bytes());
        json!({"protected": protected, "payload": payload, "signature": b64::encode(tag.as_ref())})
    }

    #[test]
    fn right_mac_verifies() {
        let jwk = TestKey::es256().jwk();
        let secret = decode_eab_key("c2VjcmV0LWtleS1ieXRlcy0zMi1sb25nLWZvci10ZXN0").unwrap();
        let eab = eab_object(&jwk, "tok1", secret.expose(), URL);
        let kid = verify_eab(&eab, &jwk, URL, |k| (k == "tok1").then(|| secret.clone()));
        assert_eq!(kid.unwrap(), "tok1");
    }

    #[test]
    fn wrong_mac_key_url_or_account_key_fail() {
        let jwk = TestKey::es256().jwk();
        let eab = eab_object(&jwk, "tok1", b"right key", URL);
        let wrong = verify_eab(&eab, &jwk, URL, |_| {
            Some(Secret::new(b"wrong key".to_vec()))
        });
        assert_eq!(wrong.unwrap_err().kind, ProblemType::Unauthorized);
        let unknown = verify_eab(&eab, &jwk, URL, |_| None);
        assert_eq!(unknown.unwrap_err().kind, ProblemType::Unauthorized);

        let other = TestKey::es256().jwk();
        let p = verify_eab(&eab, &other, URL, |_| {
            Some(Secret::new(b"right key".to_vec()))
        });
        assert_eq!(p.unwrap_err().kind, ProblemType::Malformed);

        let elsewhere = eab_object(&jwk, "tok1", b"right key", "https://x.example/new-account");
        let p = verify_eab(&elsewhere, &jwk, URL, |_| {
            Some(Secret::new(b"right key".to_vec()))
        });
        assert_eq!(p.unwrap_err().kind, ProblemType::Unauthorized);
    }

    #[test]
    fn garbage_eab_is_malformed() {
        let jwk = TestKey::es256().jwk();
        for v in [
            json!(1),
            json!({}),
            json!({"protected": "!", "payload": "", "signature": ""}),
        ] {
            let p = verify_eab(&v, &jwk, URL, |_| None).unwrap_err();
            assert_eq!(p.kind, ProblemType::Malformed);
        }
    }
}
