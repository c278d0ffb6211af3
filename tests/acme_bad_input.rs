//! Bad ACME input against the running gateway: each refusal must be the RFC's problem document
//! with its status, carry a fresh Replay-Nonce, be counted in
//! `enrollgate_bad_input_total{protocol="acme",kind=...}`, and change no state.

#[path = "common/acme.rs"]
mod acme_client;
mod common;

use acme_client::{AcmeKey, Client, expect_problem, json_of, payload_b64, refusal_logged};
use common::{Gateway, KeyType, new_csr, unique};
use serde_json::json;

/// Routes: the default one (network validation, nothing listening), `bench` (always passes),
/// `eab` (tokens only, so EAB is required).
fn gateway() -> Gateway {
    Gateway::start(
        r#"
[[routes]]
label = ""
profile = "device"
auth = ["anonymous"]

[[routes]]
label = "bench"
profile = "device"
auth = ["anonymous"]

[[routes]]
label = "eab"
profile = "device"
auth = ["token"]

[acme]
insecure_benchmark_validation = true

[[acme.routes]]
label = "bench"
validation = "always-pass"
"#,
    )
}

fn bad_input(gw: &Gateway, kind: &str) -> f64 {
    gw.metrics().sum(
        "enrollgate_bad_input_total",
        &[("protocol", "acme"), ("kind", kind)],
    )
}

/// Asserts that no account exists for the client's key.
fn no_account(c: &Client<'_>) {
    let r = c.post(
        &c.url("newAccount"),
        Some(&json!({"onlyReturnExisting": true})),
    );
    expect_problem(&r, 400, "accountDoesNotExist");
}

#[test]
fn bad_signature_is_malformed_and_creates_no_account() {
    let gw = gateway();
    let c = Client::new(&gw, "");
    let before = bad_input(&gw, "malformed");
    let url = c.url("newAccount");
    let payload = payload_b64(Some(&json!({"termsOfServiceAgreed": true})));
    let mut jws = c.key.sign(&c.protected(&url, &c.nonce()), &payload);
    // Sign with another key but present ours: the signature cannot verify.
    let other = AcmeKey::generate().sign(&c.protected(&url, &c.nonce()), &payload);
    jws["signature"] = other["signature"].clone();
    let r = c.post_raw(&url, jws.to_string().as_bytes());
    let p = expect_problem(&r, 400, "malformed");
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("signature")
    );
    assert!(bad_input(&gw, "malformed") > before);
    assert!(refusal_logged(&gw, "malformed"));
    no_account(&c);

    // A registered account's update with a signature by another key changes nothing.
    let mut c = Client::new(&gw, "");
    c.new_account(json!({"contact": ["mailto:kept@example.com"]}))
        .expect(201, "newAccount");
    let kid = c.kid.clone().expect("account URL");
    let payload = payload_b64(Some(&json!({"contact": ["mailto:evil@example.com"]})));
    let mut jws = c.key.sign(&c.protected(&kid, &c.nonce()), &payload);
    let forged = AcmeKey::generate().sign(&c.protected(&kid, &c.nonce()), &payload);
    jws["signature"] = forged["signature"].clone();
    expect_problem(
        &c.post_raw(&kid, jws.to_string().as_bytes()),
        400,
        "malformed",
    );
    let held = json_of(c.account_by_key().expect(200, "the key's account"));
    assert_eq!(
        held["contact"],
        json!(["mailto:kept@example.com"]),
        "{held}"
    );
}

#[test]
fn reused_and_unknown_nonces_are_bad_nonce_with_a_fresh_one() {
    let gw = gateway();
    let mut c = Client::new(&gw, "");
    c.new_account(json!({})).expect(201, "newAccount");
    let before = bad_input(&gw, "badNonce");

    let url = c.url("newOrder");
    let nonce = c.nonce();
    let payload = payload_b64(Some(
        &json!({"identifiers": [{"type": "dns", "value": "a.test"}]}),
    ));
    let jws = c.key.sign(&c.protected(&url, &nonce), &payload);
    c.post_raw(&url, jws.to_string().as_bytes())
        .expect(201, "first use of the nonce");
    let again = c.post_raw(&url, jws.to_string().as_bytes());
    expect_problem(&again, 400, "badNonce");
    let fresh = again.header("replay-nonce").unwrap_or_default().to_owned();
    assert_ne!(fresh, nonce);

    let unknown = c
        .key
        .sign(&c.protected(&url, "AAAAAAAAAAAAAAAAAAAAAA"), &payload);
    let refused = c.post_raw(&url, unknown.to_string().as_bytes());
    expect_problem(&refused, 400, "badNonce");
    let fresh_again = refused.header("replay-nonce").unwrap_or_default();
    assert!(
        fresh_again != fresh && fresh_again != nonce,
        "{fresh_again}"
    );

    // The fresh nonce of the refusal works.
    let retry = c.key.sign(&c.protected(&url, &fresh), &payload);
    c.post_raw(&url, retry.to_string().as_bytes())
        .expect(201, "retry with the nonce from the badNonce reply");
    assert_eq!(bad_input(&gw, "badNonce") - before, 2.0);
    assert!(refusal_logged(&gw, "badNonce"));
    // Only the two accepted requests made orders.
    let account = json_of(&c.post(c.kid.as_deref().unwrap_or_default(), None));
    let orders = json_of(&c.post(account["orders"].as_str().unwrap_or_default(), None));
    assert_eq!(
        orders["orders"].as_array().map(Vec::len),
        Some(2),
        "{orders}"
    );
}

#[test]
fn wrong_url_and_unsupported_algorithm_are_refused() {
    let gw = gateway();
    let c = Client::new(&gw, "");
    let url = c.url("newAccount");
    let payload = payload_b64(Some(&json!({"termsOfServiceAgreed": true})));

    let elsewhere = c
        .key
        .sign(&c.protected(&c.url("newOrder"), &c.nonce()), &payload);
    let unauthorized = bad_input(&gw, "unauthorized");
    let r = c.post_raw(&url, elsewhere.to_string().as_bytes());
    expect_problem(&r, 403, "unauthorized");
    assert_eq!(bad_input(&gw, "unauthorized") - unauthorized, 1.0);
    assert!(refusal_logged(&gw, "JWS url does not match"));

    let mut header = c.protected(&url, &c.nonce());
    header["alg"] = "HS256".into();
    let hs = c.key.sign(&header, &payload);
    let bad_alg = bad_input(&gw, "badSignatureAlgorithm");
    let r = c.post_raw(&url, hs.to_string().as_bytes());
    let p = expect_problem(&r, 400, "badSignatureAlgorithm");
    assert!(
        p["algorithms"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("ES256")))
    );
    assert_eq!(bad_input(&gw, "badSignatureAlgorithm") - bad_alg, 1.0);
    assert!(refusal_logged(&gw, "badSignatureAlgorithm"));
    no_account(&c);
}

#[test]
fn oversized_body_is_refused_with_413() {
    let gw = gateway();
    let c = Client::new(&gw, "");
    let before = bad_input(&gw, "malformed");
    let big = vec![b'x'; 70 * 1024];
    let r = c.post_raw(&c.url("newAccount"), &big);
    expect_problem(&r, 413, "malformed");
    assert!(bad_input(&gw, "malformed") > before);
    assert!(refusal_logged(&gw, "request body too large"));
    no_account(&c);
}

#[test]
fn finalize_refusals_leave_the_order_as_it_was() {
    let gw = gateway();
    let mut c = Client::new(&gw, "bench");
    c.new_account(json!({})).expect(201, "newAccount");

    // Before ready: orderNotReady, 403.
    let (order_url, order) = c.new_order(&["f.test"]);
    let csr = new_csr(
        &gw.work_dir,
        &unique("f"),
        KeyType::P256,
        "/CN=f.test",
        &["DNS:f.test"],
    );
    let der = std::fs::read(&csr.der).expect("CSR");
    expect_problem(&c.finalize(&order, &der), 403, "orderNotReady");
    assert_eq!(bad_input(&gw, "orderNotReady"), 1.0);
    assert!(refusal_logged(&gw, "orderNotReady"));
    assert_eq!(json_of(&c.post(&order_url, None))["status"], "pending");

    let order = c.make_ready(&order_url, &order);
    // Not a CSR at all.
    let bad_csr = bad_input(&gw, "badCSR");
    expect_problem(&c.finalize(&order, b"not a CSR"), 400, "badCSR");
    // A CSR for other names.
    let other = new_csr(
        &gw.work_dir,
        &unique("g"),
        KeyType::P256,
        "/CN=g.test",
        &["DNS:g.test"],
    );
    let other = std::fs::read(&other.der).expect("CSR");
    expect_problem(&c.finalize(&order, &other), 400, "badCSR");
    assert_eq!(bad_input(&gw, "badCSR") - bad_csr, 2.0);
    assert!(refusal_logged(&gw, "badCSR"));
    assert_eq!(json_of(&c.post(&order_url, None))["status"], "ready");

    // The right CSR still works afterwards.
    c.finalize(&order, &der).expect(200, "finalize");
    assert_eq!(c.poll(&order_url, "valid")["status"], "valid");
}

#[test]
fn deactivated_account_is_unauthorized() {
    let gw = gateway();
    let mut c = Client::new(&gw, "bench");
    c.new_account(json!({})).expect(201, "newAccount");
    let kid = c.kid.clone().expect("account URL");
    let r = c.post(&kid, Some(&json!({"status": "deactivated"})));
    r.expect(200, "deactivate");
    assert_eq!(json_of(&r)["status"], "deactivated");
    let before = bad_input(&gw, "unauthorized");
    let r = c.post(
        &c.url("newOrder"),
        Some(&json!({"identifiers": [{"type": "dns", "value": "d.test"}]})),
    );
    expect_problem(&r, 403, "unauthorized");
    assert_eq!(bad_input(&gw, "unauthorized") - before, 1.0);
    assert!(refusal_logged(&gw, "account is deactivated or revoked"));

    // Nor may it reactivate itself or change its contacts.
    let r = c.post(&kid, Some(&json!({"contact": ["mailto:late@example.com"]})));
    expect_problem(&r, 403, "unauthorized");
    let held = json_of(c.account_by_key().expect(200, "the key's account"));
    assert_eq!(held["status"], "deactivated", "{held}");
    assert_eq!(held["contact"], json!([]), "{held}");
}

#[test]
fn revoked_account_is_unauthorized_and_unchanged() {
    let gw = gateway();
    let mut c = Client::new(&gw, "bench");
    c.new_account(json!({"contact": ["mailto:ops@example.com"]}))
        .expect(201, "newAccount");
    let (order_url, _) = c.new_order(&["rv.test"]);
    let kid = c.kid.clone().expect("account URL");

    let said = gw.run(&["acme", "revoke-account", &kid]);
    assert!(said.contains("revoked"), "{said}");

    let before = bad_input(&gw, "unauthorized");
    let refused = [
        c.post(
            &c.url("newOrder"),
            Some(&json!({"identifiers": [{"type": "dns", "value": "rv2.test"}]})),
        ),
        c.post(&order_url, None),
        c.post(&kid, Some(&json!({"contact": ["mailto:new@example.com"]}))),
        c.post(&kid, Some(&json!({"status": "deactivated"}))),
    ];
    for r in &refused {
        expect_problem(r, 403, "unauthorized");
    }
    assert_eq!(bad_input(&gw, "unauthorized") - before, 4.0);
    assert!(refusal_logged(&gw, "account is deactivated or revoked"));

    let held = json_of(c.account_by_key().expect(200, "the key's account"));
    assert_eq!(held["status"], "revoked", "{held}");
    assert_eq!(held["contact"], json!(["mailto:ops@example.com"]), "{held}");

    let unknown = gw.run_unchecked(&["acme", "revoke-account", "no-such-account"]);
    assert!(
        !unknown.status.success(),
        "revoking an unknown account succeeded"
    );
}

#[test]
fn wrong_eab_mac_is_unauthorized_and_creates_no_account() {
    let gw = gateway();
    let mut c = Client::new(&gw, "eab");
    assert_eq!(c.dir["meta"]["externalAccountRequired"], true);
    let r = c.new_account(json!({}));
    expect_problem(&r, 400, "externalAccountRequired");

    let (id, secret) = gw.token(&["--route", "eab"]);
    let wrong = c.eab(&id, b"not the token secret");
    let before = bad_input(&gw, "unauthorized");
    let r = c.new_account(json!({"externalAccountBinding": wrong}));
    expect_problem(&r, 403, "unauthorized");
    assert_eq!(bad_input(&gw, "unauthorized") - before, 1.0);
    assert!(refusal_logged(&gw, "unauthorized"));
    no_account(&c);

    let key = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &secret)
        .expect("token secrets are base64url");
    let right = c.eab(&id, &key);
    c.new_account(json!({"externalAccountBinding": right}))
        .expect(201, "newAccount with the right MAC");
}

#[test]
fn rate_limits_answer_rate_limited_with_retry_after() {
    let gw = Gateway::start(
        r#"
[acme.rate_limits]
orders_per_account = 2
orders_per_identifier = 1

[[routes]]
label = ""
profile = "device"
auth = ["anonymous"]
"#,
    );
    let mut c = Client::new(&gw, "");
    c.new_account(json!({})).expect(201, "newAccount");
    c.new_order(&["r1.test"]);
    c.new_order(&["r2.test"]);
    let r = c.post(
        &c.url("newOrder"),
        Some(&json!({"identifiers": [{"type": "dns", "value": "r3.test"}]})),
    );
    expect_problem(&r, 429, "rateLimited");
    assert_eq!(bad_input(&gw, "rateLimited"), 1.0);
    assert!(refusal_logged(&gw, "rateLimited"));
    assert_eq!(c.order_count(), 2, "a refused order is not made");
    let wait: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After seconds");
    assert!((1..=3600).contains(&wait), "Retry-After {wait}");

    // Per identifier, over all accounts: r1.test has had its one order this window.
    let mut other = Client::new(&gw, "");
    other.new_account(json!({})).expect(201, "newAccount");
    let r = other.post(
        &other.url("newOrder"),
        Some(&json!({"identifiers": [{"type": "dns", "value": "r1.test"}]})),
    );
    let p = expect_problem(&r, 429, "rateLimited");
    assert!(
        p["detail"].as_str().unwrap_or_default().contains("r1.test"),
        "{p}"
    );
    assert!(
        r.header("retry-after").is_some(),
        "Retry-After on the identifier limit"
    );
    assert_eq!(bad_input(&gw, "rateLimited"), 2.0);
    assert_eq!(other.order_count(), 0, "a refused order is not made");
}

#[test]
fn identifiers_outside_the_profile_are_rejected_before_validation() {
    let gw = Gateway::start(
        r#"
[profiles.device]
san_dns = ["*.allowed.test"]
san_ip = false

[[routes]]
label = ""
profile = "device"
auth = ["anonymous"]
"#,
    );
    let mut c = Client::new(&gw, "");
    c.new_account(json!({})).expect(201, "newAccount");
    c.new_order(&["a.allowed.test"]);
    let r = c.post(
        &c.url("newOrder"),
        Some(&json!({"identifiers": [
            {"type": "dns", "value": "evil.test"},
            {"type": "ip", "value": "192.0.2.1"}
        ]})),
    );
    let p = expect_problem(&r, 400, "rejectedIdentifier");
    assert_eq!(p["subproblems"].as_array().map(Vec::len), Some(2), "{p}");
    assert_eq!(bad_input(&gw, "rejectedIdentifier"), 1.0);
    assert!(refusal_logged(&gw, "rejectedIdentifier"));
    assert_eq!(c.order_count(), 1, "a refused order is not made");
}
