//! Routing and resilience with scripted cfssl-API servers: failover where the first backend
//! surely did not issue (refused connection, 503 with the CA's error body), no failover after
//! an ambiguous timeout, a hanging backend answered within its timeout, a refused connection
//! with no backend left, and backend health in `/readyz` and the metrics.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

#[path = "common/backends.rs"]
mod backends;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use backends::{
    FakeServer, Gateway, est_leaf, free_port, key_and_csr, make_ca, pubkey_of_cert, pubkey_of_key,
    require, sign_csr_text,
};

fn cfssl_ok(result: serde_json::Value) -> Vec<u8> {
    serde_json::json!({"success": true, "result": result, "errors": [], "messages": []})
        .to_string()
        .into_bytes()
}

/// A cfssl-API signer that signs with a CA made by openssl.
fn signer(dir: &Path, name: &str) -> (FakeServer, PathBuf) {
    let dir = dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, ca_key) = make_ca(&dir, &format!("{name} CA"));
    let ca_pem = std::fs::read_to_string(&ca).unwrap();
    let serial = Arc::new(AtomicUsize::new(1));
    let ca_c = ca.clone();
    let server = FakeServer::start(move |_, path, _, body| match path {
        "/api/v1/cfssl/sign" => {
            let req: serde_json::Value = serde_json::from_slice(body).ok()?;
            let n = serial.fetch_add(1, Ordering::SeqCst);
            let csr = req["certificate_request"].as_str()?;
            let pem = sign_csr_text(&dir, csr, &ca_c, &ca_key, 9000 + n as u64);
            Some((
                200,
                "application/json",
                cfssl_ok(serde_json::json!({"certificate": pem})),
            ))
        }
        "/api/v1/cfssl/info" => Some((
            200,
            "application/json",
            cfssl_ok(serde_json::json!({"certificate": ca_pem})),
        )),
        _ => Some((404, "text/plain", b"not found".to_vec())),
    });
    (server, ca)
}

fn backend(name: &str, port: u16, extra: &str) -> String {
    format!(
        "[backends.{name}]\nkind = \"cfssl\"\nurl = \"http://127.0.0.1:{port}\"\n{extra}\n[backends.{name}.cfssl]\n\n"
    )
}

fn route(label: &str, backends: &[&str]) -> String {
    let list: Vec<String> = backends.iter().map(|b| format!("\"{b}\"")).collect();
    format!(
        "[[routes]]\nlabel = \"{label}\"\nprofile = \"device\"\nbackends = [{}]\n\n",
        list.join(", ")
    )
}

fn errors(gw: &Gateway, backend: &str, kind: &str) -> f64 {
    gw.metric(&format!(
        "enrollgate_backend_errors_total{{backend=\"{backend}\",kind=\"{kind}\"}}"
    ))
}

fn sign_calls(server: &FakeServer) -> usize {
    server
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.1.ends_with("/sign"))
        .count()
}

#[test]
fn failover_only_where_the_first_backend_surely_did_not_issue() {
    require("curl", "curl");
    require("openssl", "openssl");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (good, _ca) = signer(dir, "good");
    let dead = free_port();
    let busy = FakeServer::start(|_, _, _, _| {
        let body = serde_json::json!({"success": false, "result": null,
            "errors": [{"code": 503, "message": "signer busy"}], "messages": []});
        Some((503, "application/json", body.to_string().into_bytes()))
    });
    let mut config = String::from("[[routes]]\nlabel = \"\"\nprofile = \"device\"\n\n");
    config += &backend(
        "dead",
        dead,
        "retries = 0\nbreaker_failures = 1\nbreaker_cooldown_secs = 60",
    );
    config += &backend("busy", busy.port, "retries = 0");
    config += &backend("good", good.port, "");
    config += &route("refused", &["dead", "good"]);
    config += &route("busy", &["busy", "good"]);
    let gw = Gateway::start(&dir.join("gw"), &config, &[]);

    // Connection refused: the second backend issues.
    let (key, _pem, der) = key_and_csr(dir, "a", "failover-a");
    let (id, secret) = gw.token("refused");
    let (status, body) = gw.est_enroll("refused", &der, &id, &secret);
    assert_eq!(
        status,
        200,
        "{}\n{}",
        String::from_utf8_lossy(&body),
        gw.log()
    );
    assert_eq!(
        pubkey_of_cert(&est_leaf(dir, "a", &body)),
        pubkey_of_key(&key)
    );
    assert!(errors(&gw, "dead", "unavailable") >= 1.0);

    // 503 with cfssl's own error body: nothing was issued, the second backend issues.
    let (key, _pem, der) = key_and_csr(dir, "b", "failover-b");
    let (id, secret) = gw.token("busy");
    let (status, body) = gw.est_enroll("busy", &der, &id, &secret);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        pubkey_of_cert(&est_leaf(dir, "b", &body)),
        pubkey_of_key(&key)
    );
    assert_eq!(
        sign_calls(&busy),
        1,
        "retries = 0: one call, then the next backend"
    );
    assert_eq!(sign_calls(&good), 2);
    let log = gw.log();
    assert!(log.contains("failing over"), "{log}");
    assert!(
        log.contains("backend=dead") && log.contains("backend=busy"),
        "{log}"
    );

    // The dead backend's breaker is open, yet every route still has a working backend.
    let (code, body) = gw.admin_get("/readyz");
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("backend dead: open") && body.contains("Connection refused"),
        "{body}"
    );
    assert!(body.contains("backend good: up"), "{body}");
    // Latency is recorded per backend and result.
    let ok = "enrollgate_backend_duration_seconds_count{backend=\"good\",result=\"ok\"}";
    assert!(gw.metric(ok) >= 2.0);
    assert!(
        gw.metric("enrollgate_backend_duration_seconds_count{backend=\"busy\",result=\"error\"}")
            >= 1.0
    );
}

#[test]
fn an_ambiguous_timeout_is_not_failed_over_and_the_client_is_answered_in_time() {
    require("curl", "curl");
    require("openssl", "openssl");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (good, ca) = signer(dir, "spare");
    let hang = FakeServer::start(|_, path, _, _| match path {
        "/api/v1/cfssl/sign" => None,
        _ => Some((404, "text/plain", Vec::new())),
    });
    let mut config = String::from("[[routes]]\nlabel = \"\"\nprofile = \"device\"\n\n");
    config += &format!(
        "{}ca_chain_file = \"{}\"\n",
        backend("hang", hang.port, "timeout_secs = 2\nretries = 3")
            .trim_end_matches("[backends.hang.cfssl]\n\n"),
        ca.display()
    );
    config += "[backends.hang.cfssl]\n\n";
    config += &backend("spare", good.port, "");
    config += &route("slow", &["hang", "spare"]);
    let gw = Gateway::start(&dir.join("gw"), &config, &[]);

    // The CA got the request and never answered: the client gets 503 within the backend's
    // 2 s timeout (curl would give up after 8 s with status 0), and the spare never sees it.
    let (_key, _pem, der) = key_and_csr(dir, "slow", "slow-device");
    let (id, secret) = gw.token("slow");
    let (status, _) = gw.est_enroll_within("slow", &der, &id, &secret, 8);
    assert_eq!(status, 503, "{}", gw.log());
    assert_eq!(
        sign_calls(&hang),
        1,
        "an ambiguous enrollment was sent again"
    );
    assert_eq!(
        sign_calls(&good),
        0,
        "an ambiguous enrollment was failed over"
    );
    assert_eq!(errors(&gw, "hang", "ambiguous"), 1.0);
    assert!(gw.log().contains("backend=hang"));
    assert_eq!(gw.metric("enrollgate_certificates_issued_total"), 0.0);
}

#[test]
fn a_refused_connection_with_no_backend_left_is_a_clear_503() {
    require("curl", "curl");
    require("openssl", "openssl");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let dead = free_port();
    let mut config = String::from("[[routes]]\nlabel = \"\"\nprofile = \"device\"\n\n");
    config += &backend("gone", dead, "retries = 1\nbackoff_ms = 10");
    config += &route("gone", &["gone"]);
    let gw = Gateway::start(&dir.join("gw"), &config, &[]);
    let (_key, _pem, der) = key_and_csr(dir, "gone", "gone-device");
    let (id, secret) = gw.token("gone");
    let (status, body) = gw.est_enroll("gone", &der, &id, &secret);
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(
        !String::from_utf8_lossy(&body).contains("127.0.0.1"),
        "internals in the answer"
    );
    assert!(errors(&gw, "gone", "unavailable") >= 1.0);
    let log = gw.log();
    assert!(
        log.contains("WARN") && log.contains("backend=gone"),
        "{log}"
    );
    // The request was not lost: it can be sent again once the CA is back.
    assert_eq!(gw.metric("enrollgate_certificates_issued_total"), 0.0);
}
