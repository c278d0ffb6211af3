//! ACME profiles (draft-aaron-acme-profiles) against the running gateway: the directory lists
//! the profiles a route offers, an order naming one is issued under the route and issuance
//! profile it maps to, and an unknown profile is refused before any order is made.

#[path = "common/acme.rs"]
mod acme_client;
mod common;

use acme_client::{Client, expect_problem, json_of, refusal_logged};
use common::Gateway;
use der::Decode;
use serde_json::json;
use x509_cert::Certificate;

/// The `bench` route passes every challenge and offers `shortlived`, issued on the `short`
/// route whose issuance profile gives two-day certificates.
fn gateway() -> Gateway {
    Gateway::start(
        r#"
[profiles.device]

[profiles.short]
validity_days = 2

[acme]
insecure_benchmark_validation = true

[[routes]]
label = ""
profile = "device"
auth = ["anonymous"]

[[routes]]
label = "bench"
profile = "device"
auth = ["anonymous"]

[[routes]]
label = "short"
profile = "short"
auth = ["anonymous"]

[[acme.routes]]
label = "bench"
validation = "always-pass"

[acme.routes.profiles.shortlived]
route = "short"
description = "two-day certificates"
"#,
    )
}

/// Whole days between the leaf's notBefore and notAfter.
fn validity_days(chain_pem: &std::path::Path) -> u64 {
    let text = std::fs::read_to_string(chain_pem).expect("chain");
    let leaf = common::split_pem(&text).into_iter().next().expect("a leaf");
    let body: String = leaf.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = common::decode_base64(body.as_bytes());
    let cert = Certificate::from_der(&der).expect("leaf parses");
    let validity = cert.tbs_certificate().validity();
    let secs = validity.not_after.to_unix_duration() - validity.not_before.to_unix_duration();
    secs.as_secs() / 86_400
}

#[test]
fn an_order_naming_a_profile_is_issued_under_it() {
    let gw = gateway();
    let mut c = Client::new(&gw, "bench");
    assert_eq!(
        c.dir["meta"]["profiles"],
        json!({"shortlived": "two-day certificates"}),
        "{}",
        c.dir
    );
    c.new_account(json!({})).expect(201, "newAccount");

    let payload = json!({
        "identifiers": [{"type": "dns", "value": "short.test"}],
        "profile": "shortlived"
    });
    let r = c.post(&c.url("newOrder"), Some(&payload));
    r.expect(201, "newOrder with a profile");
    let order = json_of(&r);
    assert_eq!(order["profile"], "shortlived", "{order}");
    let order_url = r.header("location").expect("order Location").to_owned();
    let (short, _) = c.complete(&order_url, &order, &["short.test"]);
    assert!(
        (1..=2).contains(&validity_days(&short)),
        "{}",
        validity_days(&short)
    );

    // Without a profile the route's own issuance profile applies (a year by default).
    let (plain, _) = c.issue(&["plain.test"]);
    assert!(validity_days(&plain) > 300, "{}", validity_days(&plain));
}

#[test]
fn an_unknown_profile_is_refused_and_makes_no_order() {
    let gw = gateway();
    let mut c = Client::new(&gw, "bench");
    c.new_account(json!({})).expect(201, "newAccount");
    let payload = json!({
        "identifiers": [{"type": "dns", "value": "x.test"}],
        "profile": "no-such-profile"
    });
    let r = c.post(&c.url("newOrder"), Some(&payload));
    expect_problem(&r, 400, "invalidProfile");
    let counted = gw.metrics().sum(
        "enrollgate_bad_input_total",
        &[("protocol", "acme"), ("kind", "invalidProfile")],
    );
    assert_eq!(counted, 1.0);
    assert!(refusal_logged(&gw, "invalidProfile"));
    assert_eq!(c.order_count(), 0);
}
