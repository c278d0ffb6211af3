//! Renewal information (RFC 9773) and revocation by the certificate's own key, against the
//! running gateway on a route whose challenges always pass.

#[path = "common/acme.rs"]
mod acme_client;
mod common;

use acme_client::{AcmeKey, Client, b64, expect_problem, json_of};
use common::Gateway;
use der::{Decode, Encode};
use serde_json::json;
use x509_cert::Certificate;
use x509_cert::ext::pkix::AuthorityKeyIdentifier;

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

[acme]
insecure_benchmark_validation = true

[[acme.routes]]
label = "bench"
validation = "always-pass"
"#,
    )
}

/// The leaf of a PEM chain, DER.
fn leaf_der(chain_pem: &std::path::Path) -> Vec<u8> {
    let text = std::fs::read_to_string(chain_pem).expect("chain");
    let leaf = common::split_pem(&text).into_iter().next().expect("a leaf");
    let body: String = leaf.lines().filter(|l| !l.starts_with("-----")).collect();
    common::decode_base64(body.as_bytes())
}

/// The RFC 9773 CertID, computed here from the certificate independently of the gateway.
fn cert_id(der: &[u8]) -> String {
    let cert = Certificate::from_der(der).expect("leaf parses");
    let tbs = cert.tbs_certificate();
    let (_, aki) = tbs
        .get_extension::<AuthorityKeyIdentifier>()
        .expect("extensions parse")
        .expect("an authority key identifier");
    let key_id = aki.key_identifier.expect("a key identifier");
    let serial = tbs.serial_number().to_der().expect("serial encodes");
    format!("{}.{}", b64(key_id.as_bytes()), b64(&serial[2..]))
}

#[test]
fn renewal_info_answers_and_replaces_is_accepted_once() {
    let gw = gateway();
    let mut c = Client::new(&gw, "bench");
    c.new_account(json!({})).expect(201, "newAccount");
    let (chain, _key) = c.issue(&["ari.test"]);
    let id = cert_id(&leaf_der(&chain));

    let info = gw.request(&format!("{}/{id}", c.url("renewalInfo"))).send();
    info.expect(200, "renewalInfo");
    assert!(
        info.header("retry-after")
            .is_some_and(|v| v.parse::<u64>().is_ok())
    );
    assert!(info.header("replay-nonce").is_some());
    let window = &json_of(&info)["suggestedWindow"];
    let (start, end) = (window["start"].as_str(), window["end"].as_str());
    assert!(start.is_some() && end.is_some() && start < end, "{window}");

    let unknown = gw
        .request(&format!("{}/AAAA.AQ", c.url("renewalInfo")))
        .send();
    expect_problem(&unknown, 404, "malformed");

    let order = json!({"identifiers": [{"type": "dns", "value": "ari.test"}], "replaces": id});
    let first = c.post(&c.url("newOrder"), Some(&order));
    first.expect(201, "newOrder replacing the certificate");
    assert_eq!(json_of(&first)["replaces"], id.as_str());
    let second = c.post(&c.url("newOrder"), Some(&order));
    expect_problem(&second, 409, "alreadyReplaced");
    let refused = gw.metrics().sum(
        "enrollgate_bad_input_total",
        &[("protocol", "acme"), ("kind", "alreadyReplaced")],
    );
    assert_eq!(refused, 1.0);
    // The issuing order and the one replacement; the refused order was not made.
    assert_eq!(c.order_count(), 2);
}

#[test]
fn certificate_key_revokes_and_renewal_info_says_renew_now() {
    let gw = gateway();
    let mut c = Client::new(&gw, "bench");
    c.new_account(json!({})).expect(201, "newAccount");
    let (chain, key) = c.issue(&["rev.test"]);
    let der = leaf_der(&chain);

    // Signed by the certificate's key, with the key embedded (no account).
    let mut by_cert = Client::new(&gw, "bench");
    by_cert.key = AcmeKey::from_pem_file(&key);
    let payload = json!({"certificate": b64(&der), "reason": 4});
    by_cert
        .post(&by_cert.url("revokeCert"), Some(&payload))
        .expect(200, "revokeCert by the certificate key");
    let again = by_cert.post(&by_cert.url("revokeCert"), Some(&payload));
    expect_problem(&again, 400, "alreadyRevoked");

    // A stranger's key may not revoke.
    let stranger = Client::new(&gw, "bench");
    let r = stranger.post(&stranger.url("revokeCert"), Some(&payload));
    expect_problem(&r, 403, "unauthorized");

    let info = gw
        .request(&format!("{}/{}", c.url("renewalInfo"), cert_id(&der)))
        .send();
    let end = json_of(&info)["suggestedWindow"]["end"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formatting now");
    assert!(
        end < now,
        "a revoked certificate's window must be past: {end} vs {now}"
    );
}
