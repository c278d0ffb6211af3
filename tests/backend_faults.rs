//! Backends that misbehave, played by scripted HTTP servers in the test: garbage, an HTML
//! error page, a certificate for another key, a chain that does not verify, a CA that never
//! answers, and a circuit breaker that opens. Each gives the client a clear failure within
//! the timeout, a counter and a warn line, and never a certificate. Also: a CA that holds a
//! request (EST 202) is stored as pending and polled to issuance through CMP pollReq.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

#[path = "common/backends.rs"]
mod backends;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use backends::{
    FakeServer, Gateway, key_and_csr, make_ca, pubkey_of_cert, pubkey_of_key, require, run,
    sign_csr,
};

fn cfssl_answer(pem: &str) -> Vec<u8> {
    serde_json::json!({"success": true, "result": {"certificate": pem}, "errors": [], "messages": []})
        .to_string()
        .into_bytes()
}

fn backend(name: &str, port: u16, extra: &str) -> String {
    format!(
        "[backends.{name}]\nkind = \"cfssl\"\nurl = \"http://127.0.0.1:{port}\"\n{extra}\n[backends.{name}.cfssl]\n\n[[routes]]\nlabel = \"{name}\"\nprofile = \"device\"\nbackends = [\"{name}\"]\n\n"
    )
}

#[test]
fn bad_answers_are_refused_counted_and_logged() {
    require("curl", "curl");
    require("openssl", "openssl");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (ca1, ca1_key) = make_ca(dir, "fault CA one");
    let (ca2, _) = make_ca(dir, "fault CA two");
    let (_key, _csr, der) = key_and_csr(dir, "dev", "faulty");
    let (_okey, ocsr, _) = key_and_csr(dir, "other", "other");
    // A certificate for another key, and one for the right key with a foreign "chain".
    let (_k, csr_pem, _) = key_and_csr(dir, "dev2", "faulty2");
    let other = std::fs::read_to_string(sign_csr(dir, &ocsr, &ca1, &ca1_key, "other")).unwrap();
    let right = std::fs::read_to_string(sign_csr(dir, &csr_pem, &ca1, &ca1_key, "right")).unwrap();
    let foreign = std::fs::read_to_string(&ca2).unwrap();
    let bad_chain = format!("{right}{foreign}");

    let garbage =
        FakeServer::start(|_, _, _, _| Some((200, "application/json", b"{not json".to_vec())));
    let html = FakeServer::start(|_, _, _, _| {
        Some((
            500,
            "text/html",
            b"<html><body><h1>500 Internal Server Error</h1></body></html>".to_vec(),
        ))
    });
    let mismatch = FakeServer::start(move |_, p, _, _| match p {
        "/api/v1/cfssl/sign" => Some((200, "application/json", cfssl_answer(&other))),
        _ => Some((404, "text/plain", b"no".to_vec())),
    });
    let chain = FakeServer::start(move |_, p, _, _| match p {
        "/api/v1/cfssl/sign" => Some((200, "application/json", cfssl_answer(&bad_chain))),
        _ => Some((404, "text/plain", b"no".to_vec())),
    });
    let hang = FakeServer::start(|_, _, _, _| None);

    let mut config = String::from("[[routes]]\nlabel = \"\"\nprofile = \"device\"\n\n");
    config += &backend(
        "garbage",
        garbage.port,
        "retries = 0\nbreaker_failures = 2\nbreaker_cooldown_secs = 60",
    );
    config += &backend("html", html.port, "");
    config += &backend("mismatch", mismatch.port, "");
    config += &backend("chain", chain.port, "");
    config += &backend("hang", hang.port, "timeout_secs = 2");
    let gw = Gateway::start(&dir.join("gw"), &config, &[]);

    // curl gives up after 6 s (status 0): a 503 shows the client was answered before that.
    let enroll = |route: &str, der: &Path| {
        let (id, secret) = gw.token(route);
        let (status, body) = gw.est_enroll_within(route, der, &id, &secret, 6);
        let text = String::from_utf8_lossy(&body).into_owned();
        assert!(
            !text.contains("BEGIN") && !text.starts_with("MII"),
            "{route}: a certificate was handed out"
        );
        (status, body)
    };
    let (_, _, der2) = (0, 0, dir.join("dev2.csr.der"));

    assert_eq!(enroll("garbage", &der).0, 503);
    assert_eq!(enroll("html", &der).0, 503);
    assert_eq!(enroll("mismatch", &der).0, 503);
    assert_eq!(enroll("chain", &der2).0, 503);
    let (status, _) = enroll("hang", &der);
    assert_eq!(status, 503, "the hanging backend held the client past 6 s");

    let count = |b: &str, k: &str| {
        gw.metric(&format!(
            "enrollgate_backend_errors_total{{backend=\"{b}\",kind=\"{k}\"}}"
        ))
    };
    assert!(count("garbage", "invalid") >= 1.0);
    assert!(
        count("html", "ambiguous") >= 1.0,
        "an HTML 500 is not a CA answer: outcome unknown"
    );
    assert_eq!(count("mismatch", "key_mismatch"), 1.0);
    assert_eq!(count("chain", "bad_chain"), 1.0);
    assert!(count("hang", "ambiguous") >= 1.0);
    // The hanging backend got the enrollment once: an ambiguous POST is never repeated.
    assert_eq!(
        hang.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.1.ends_with("/sign"))
            .count(),
        1
    );
    assert_eq!(gw.metric("enrollgate_certificates_issued_total"), 0.0);
    let log = gw.log();
    for b in ["garbage", "html", "mismatch", "chain", "hang"] {
        assert!(
            log.contains(&format!("backend={b}")),
            "no warn line for {b}:\n{log}"
        );
    }

    // A second garbage answer opens the breaker: the next call fails fast without a request,
    // and /readyz says so.
    let before = garbage.count();
    assert_eq!(enroll("garbage", &der).0, 503);
    assert_eq!(enroll("garbage", &der).0, 503);
    assert!(count("garbage", "circuit_open") >= 1.0);
    assert!(
        garbage.count() <= before + 1,
        "calls went through an open breaker"
    );
    let (code, body) = gw.admin_get("/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("backend garbage: open"), "{body}");
}

#[test]
fn a_held_request_is_stored_and_polled_to_issuance_through_cmp() {
    require("openssl", "openssl");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (ca, ca_key) = make_ca(dir, "held CA");
    let (key, csr_pem, _) = key_and_csr(dir, "held", "held-device");
    let leaf = sign_csr(dir, &csr_pem, &ca, &ca_key, "held");
    let p7 = dir.join("held.p7");
    run(Command::new("openssl")
        .args(["crl2pkcs7", "-nocrl", "-outform", "DER", "-certfile"])
        .arg(&leaf)
        .arg("-certfile")
        .arg(&ca)
        .arg("-out")
        .arg(&p7));
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&p7).unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    // An EST server that holds the first request (202) and issues when it is sent again.
    let upstream = FakeServer::start(move |_, path, _, _| {
        if !path.ends_with("/simpleenroll") {
            return Some((404, "text/plain", Vec::new()));
        }
        match seen.fetch_add(1, Ordering::SeqCst) {
            0 => Some((202, "text/plain", b"held for approval".to_vec())),
            _ => Some((200, "application/pkcs7-mime", body.clone().into_bytes())),
        }
    });
    let config = format!(
        "[backends.held]\nkind = \"est\"\nurl = \"http://127.0.0.1:{}/.well-known/est\"\nca_chain_file = \"{}\"\n[backends.held.est]\n\n[[routes]]\nlabel = \"\"\nprofile = \"device\"\nbackends = [\"held\"]\n",
        upstream.port,
        ca.display()
    );
    let gw = Gateway::start(&dir.join("gw"), &config, &[]);
    let (id, secret) = gw.token("");
    let (out, cert) = gw.cmp_p10cr("", &csr_pem, &id, &secret, &[]);
    assert!(
        out.status.success(),
        "openssl cmp: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        gw.log()
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("POLL"), "the client never polled: {said}");
    assert_eq!(pubkey_of_cert(&cert), pubkey_of_key(&key));
    assert!(calls.load(Ordering::SeqCst) >= 2);
    // The pending request was stored under status "backend" and is now issued.
    let audit = gw.log();
    assert!(audit.contains("request held by the backend"), "{audit}");
    assert!(audit.contains("held certificate issued"), "{audit}");
}
