use serde_json::json;

use super::*;
use crate::test_support::{TestKey, jwk_request, kid_request, sign_value};

const URL: &str = "https://gw.example/acme/new-account";

#[test]
fn verifies_every_algorithm() {
    for alg in [
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::Rs256,
        Algorithm::Ps256,
        Algorithm::EdDsa,
    ] {
        let key = TestKey::generate(alg);
        let body = jwk_request(&key, URL, Some(&json!({"termsOfServiceAgreed": true})));
        let jws = Jws::parse(&body, URL, KeyRule::Jwk).unwrap();
        assert_eq!(jws.header().alg, alg);
        assert_eq!(jws.nonce(), Some("bm9uY2U"));
        let v = jws
            .verify_embedded()
            .unwrap_or_else(|p| panic!("{alg:?}: {p}"));
        assert_eq!(v.key(), &key.jwk());
        assert!(!v.is_post_as_get());
    }
}

#[test]
fn wrong_key_or_tampered_payload_fails() {
    let key = TestKey::es256();
    let other = TestKey::es256();
    let body = kid_request(&key, "https://gw.example/acme/acct/1", URL, None);
    let jws = Jws::parse(&body, URL, KeyRule::Kid).unwrap();
    assert_eq!(
        jws.clone().verify(&other.jwk()).unwrap_err().kind,
        ProblemType::Malformed
    );
    assert!(jws.verify(&key.jwk()).unwrap().is_post_as_get());

    let mut v: Value = serde_json::from_slice(&jwk_request(&key, URL, Some(&json!({})))).unwrap();
    v["payload"] = b64::encode(b"{\"a\":1}").into();
    let jws = Jws::parse(v.to_string().as_bytes(), URL, KeyRule::Jwk).unwrap();
    assert!(jws.verify_embedded().is_err());
}

#[test]
fn mismatched_alg_and_key_type_is_bad_signature_algorithm() {
    let key = TestKey::es256();
    let body = jwk_request(&key, URL, None);
    let jws = Jws::parse(&body, URL, KeyRule::Jwk).unwrap();
    let ed = TestKey::generate(Algorithm::EdDsa);
    assert_eq!(
        jws.verify(&ed.jwk()).unwrap_err().kind,
        ProblemType::BadSignatureAlgorithm
    );
}

#[test]
fn url_must_match() {
    let key = TestKey::es256();
    let body = jwk_request(&key, "https://gw.example/acme/other", None);
    let p = Jws::parse(&body, URL, KeyRule::Jwk).unwrap_err();
    assert_eq!((p.kind, p.status), (ProblemType::Unauthorized, 403));
}

#[test]
fn nonce_is_required_and_checked_for_syntax() {
    let key = TestKey::es256();
    let no_nonce = sign_value(&key, json!({"jwk": key.jwk(), "url": URL}), None).to_string();
    let p = Jws::parse(no_nonce.as_bytes(), URL, KeyRule::Jwk).unwrap_err();
    assert_eq!(p.kind, ProblemType::BadNonce);
    assert!(Jws::parse_with(no_nonce.as_bytes(), URL, KeyRule::Jwk, NonceRule::Optional).is_ok());

    let bad = sign_value(
        &key,
        json!({"jwk": key.jwk(), "url": URL, "nonce": "a=b"}),
        None,
    );
    let p = Jws::parse(bad.to_string().as_bytes(), URL, KeyRule::Jwk).unwrap_err();
    assert_eq!(p.kind, ProblemType::BadNonce);
}

#[test]
fn jwk_and_kid_rules() {
    let key = TestKey::es256();
    let with_kid = kid_request(&key, "https://gw.example/acme/acct/1", URL, None);
    let with_jwk = jwk_request(&key, URL, None);
    assert_eq!(
        Jws::parse(&with_kid, URL, KeyRule::Jwk).unwrap_err().kind,
        ProblemType::Malformed
    );
    assert_eq!(
        Jws::parse(&with_jwk, URL, KeyRule::Kid).unwrap_err().kind,
        ProblemType::Malformed
    );
    assert!(Jws::parse(&with_kid, URL, KeyRule::Either).is_ok());
    assert!(Jws::parse(&with_jwk, URL, KeyRule::Either).is_ok());
    assert!(
        Jws::parse(&with_kid, URL, KeyRule::Kid)
            .unwrap()
            .verify_embedded()
            .is_err()
    );

    let both = json!({"jwk": key.jwk(), "kid": "x", "url": URL, "nonce": "bm9uY2U"});
    let body = sign_value(&key, both, None).to_string();
    assert_eq!(
        Jws::parse(body.as_bytes(), URL, KeyRule::Either)
            .unwrap_err()
            .kind,
        ProblemType::Malformed
    );
    let neither = sign_value(&key, json!({"url": URL, "nonce": "bm9uY2U"}), None).to_string();
    assert!(Jws::parse(neither.as_bytes(), URL, KeyRule::Either).is_err());
}

#[test]
fn unsupported_algorithms_are_refused() {
    for alg in ["none", "HS256", "ES512"] {
        let header =
            json!({"alg": alg, "jwk": TestKey::es256().jwk(), "url": URL, "nonce": "bm9uY2U"});
        let body = json!({
            "protected": b64::encode(header.to_string().as_bytes()),
            "payload": "",
            "signature": "",
        });
        let p = Jws::parse(body.to_string().as_bytes(), URL, KeyRule::Jwk).unwrap_err();
        assert_eq!(p.kind, ProblemType::BadSignatureAlgorithm, "{alg}");
        assert!(!p.algorithms.is_empty());
    }
}

#[test]
fn garbage_is_malformed_not_a_panic() {
    let cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"not json".to_vec(),
        b"[1,2,3]".to_vec(),
        b"{\"protected\":1,\"payload\":\"\",\"signature\":\"\"}".to_vec(),
        b"{\"protected\":\"!!\",\"payload\":\"\",\"signature\":\"\"}".to_vec(),
        b"{\"protected\":\"e30\",\"payload\":\"\",\"signature\":\"\"}".to_vec(),
        b"{\"protected\":\"bnVsbA\",\"payload\":\"\",\"signature\":\"\"}".to_vec(),
        b"{\"protected\":\"e30\",\"payload\":\"\",\"signature\":\"\",\"header\":{}}".to_vec(),
        b"{\"signatures\":[]}".to_vec(),
        vec![0xff; 100],
    ];
    for body in cases {
        let p = Jws::parse(&body, URL, KeyRule::Either).unwrap_err();
        assert_eq!(
            p.kind,
            ProblemType::Malformed,
            "{:?}",
            String::from_utf8_lossy(&body)
        );
    }
}

#[test]
fn oversized_body_is_refused() {
    let body = vec![b' '; MAX_JWS_BYTES + 1];
    assert_eq!(
        Jws::parse(&body, URL, KeyRule::Jwk).unwrap_err().status,
        413
    );
}

#[test]
fn payload_json_reports_malformed() {
    let key = TestKey::es256();
    let body = jwk_request(&key, URL, Some(&json!({"contact": 5})));
    let v = Jws::parse(&body, URL, KeyRule::Jwk)
        .unwrap()
        .verify_embedded()
        .unwrap();
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct P {
        contact: Vec<String>,
    }
    assert_eq!(
        v.payload_json::<P>().unwrap_err().kind,
        ProblemType::Malformed
    );
    assert!(v.expect_post_as_get().is_err());
}

#[test]
fn every_truncation_of_a_valid_body_is_refused_cleanly() {
    let key = TestKey::es256();
    let body = jwk_request(&key, URL, Some(&json!({"contact": ["mailto:a@b.example"]})));
    for n in 0..body.len() {
        let parsed = Jws::parse(&body[..n], URL, KeyRule::Jwk);
        assert!(parsed.and_then(Jws::verify_embedded).is_err(), "prefix {n}");
    }
    let mut flipped = body.clone();
    for i in 0..flipped.len() {
        flipped[i] ^= 0x20;
        let _ = Jws::parse(&flipped, URL, KeyRule::Jwk).and_then(Jws::verify_embedded);
        flipped[i] ^= 0x20;
    }
}
