//! Contract tests of the DigiCert backend: a local HTTP server answers as DigiCert's
//! CertCentral Services API v2 documents (`tests/fixtures/digicert`, sources in its README):
//! orders with the API key header, orders issued at once and orders waiting for an approver,
//! order info polling, PEM download, error bodies, revocation by serial. Enrollment goes
//! through EST (curl) and CMP (`openssl cmp -cmd p10cr`).

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

#[path = "common/backends.rs"]
mod backends;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use backends::{
    FakeServer, Gateway, json_answer as json, key_and_csr, make_ca, pubkey_of_cert, pubkey_of_key,
    require, serial_of, sign_csr_text, verifies,
};

const BASE: &str = "/services/v2";
const API_KEY: &str = "DCKEY-3b1f0c9e5d7a";
const CA_NAME: &str = "digicert test CA";

fn fixture(name: &str) -> String {
    backends::fixture("digicert", name)
}

/// One order the fake CA holds.
struct Order {
    cn: String,
    csr: String,
    certificate: Option<String>,
    info_calls: usize,
}

struct FakeDigicert {
    server: FakeServer,
    ca: PathBuf,
}

/// A fake CertCentral account. Orders for common names `held-*` wait for an approver, who
/// approves after the first order info was read; `refused-*` CSRs are refused
/// (`invalid_csr`); other orders are issued at once.
fn start_digicert(dir: &Path) -> FakeDigicert {
    std::fs::create_dir_all(dir).unwrap();
    let (ca, ca_key) = make_ca(dir, CA_NAME);
    let ca_pem = std::fs::read_to_string(&ca).unwrap();
    let orders: Arc<Mutex<HashMap<u64, Order>>> = Arc::default();
    let (dir, ca_c) = (dir.to_owned(), ca.clone());
    let fill = |text: String, id: u64, cn: &str| {
        text.replace("{{order_id}}", &id.to_string())
            .replace("{{request_id}}", &(id + 100).to_string())
            .replace("{{certificate_id}}", &(id + 200).to_string())
            .replace("{{serial}}", &format!("{:X}", 7000 + id))
            .replace("{{cn}}", cn)
    };
    let server = FakeServer::start(move |method, path, head, body| {
        let key_ok = head.lines().any(|l| {
            l.to_ascii_lowercase() == format!("x-dc-devkey: {}", API_KEY.to_ascii_lowercase())
        });
        if !key_ok {
            return json(401, fixture("error_401.json"));
        }
        let rest = path.strip_prefix(BASE)?;
        let mut orders = orders.lock().unwrap();
        match (method, rest) {
            ("POST", "/order/certificate/private_ssl_plus") => {
                let req: serde_json::Value = serde_json::from_slice(body).ok()?;
                let cn = req["certificate"]["common_name"].as_str()?.to_owned();
                let csr = req["certificate"]["csr"].as_str()?.to_owned();
                if req["organization"]["id"] != 112233
                    || req["certificate"]["signature_hash"] != "sha256"
                {
                    return json(
                        400,
                        r#"{"errors":[{"code":"invalid_request","message":"bad"}]}"#.into(),
                    );
                }
                if cn.starts_with("refused-") {
                    return json(400, fixture("error_400_invalid_csr.json"));
                }
                let id = 1001 + orders.len() as u64;
                let held = cn.starts_with("held-");
                let certificate =
                    (!held).then(|| sign_csr_text(&dir, &csr, &ca_c, &ca_key, 7000 + id));
                orders.insert(
                    id,
                    Order {
                        cn: cn.clone(),
                        csr,
                        certificate,
                        info_calls: 0,
                    },
                );
                let file = if held {
                    "order_201_pending.json"
                } else {
                    "order_201_issued.json"
                };
                json(201, fill(fixture(file), id, &cn))
            }
            ("GET", p) if p.starts_with("/order/certificate?") => {
                let serial = p.rsplit('=').next().unwrap_or_default();
                let found: Vec<String> = orders
                    .iter()
                    .filter(|(id, o)| {
                        o.certificate.is_some() && format!("{:X}", 7000 + **id) == serial
                    })
                    .map(|(id, o)| fill(fixture("order_info_issued.json"), *id, &o.cn))
                    .collect();
                json(
                    200,
                    format!(
                        "{{\"orders\":[{}],\"page\":{{\"total\":{}}}}}",
                        found.join(","),
                        found.len()
                    ),
                )
            }
            ("GET", p) if p.starts_with("/order/certificate/") => {
                let id: u64 = p.rsplit('/').next()?.parse().ok()?;
                let Some(o) = orders.get_mut(&id) else {
                    return json(
                        404,
                        r#"{"errors":[{"code":"not_found","message":"Order not found"}]}"#.into(),
                    );
                };
                o.info_calls += 1;
                // The approver acts after the first look at the order.
                if o.certificate.is_none() && o.info_calls > 1 {
                    o.certificate = Some(sign_csr_text(&dir, &o.csr, &ca_c, &ca_key, 7000 + id));
                }
                let file = if o.certificate.is_some() {
                    "order_info_issued.json"
                } else {
                    "order_info_pending.json"
                };
                json(200, fill(fixture(file), id, &o.cn))
            }
            ("GET", p) if p.ends_with("/download/format/pem_all") => {
                let cid: u64 = p.split('/').nth(2)?.parse().ok()?;
                let cert = orders.get(&(cid - 200))?.certificate.clone()?;
                Some((200, "text/plain", format!("{cert}{ca_pem}").into_bytes()))
            }
            ("PUT", p) if p.ends_with("/revoke") => {
                let cid: u64 = p.split('/').nth(2)?.parse().ok()?;
                json(201, fill(fixture("revoke_201.json"), cid - 200, ""))
            }
            _ => json(
                404,
                r#"{"errors":[{"code":"not_found","message":"Not found"}]}"#.into(),
            ),
        }
    });
    FakeDigicert { server, ca }
}

/// The gateway configuration; DigiCert's chain is given as a file (the Services API offers it
/// only with a certificate).
fn config(port: u16, chain: &Path) -> String {
    format!(
        r#"
[backends.digicert]
kind = "digicert"
url = "http://127.0.0.1:{port}{BASE}"
ca_chain_file = "{}"
retries = 0
[backends.digicert.digicert]
api_key = {{ env = "DIGICERT_TEST_KEY" }}
product = "private_ssl_plus"
organization_id = 112233
retry_after_secs = 1

[[routes]]
label = ""
profile = "device"
backends = ["digicert"]
"#,
        chain.display()
    )
}

fn start(dir: &Path, key: &str) -> (FakeDigicert, Gateway) {
    let dc = start_digicert(&dir.join("digicert"));
    let gw = Gateway::start(
        &dir.join("gw"),
        &config(dc.server.port, &dc.ca),
        &[("DIGICERT_TEST_KEY", key)],
    );
    (dc, gw)
}

#[test]
fn est_and_cmp_order_issue_and_revoke() {
    require("curl", "curl");
    require("openssl", "openssl");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (dc, gw) = start(dir, API_KEY);
    let (id, secret) = gw.token("");

    let (key, _pem, der) = key_and_csr(dir, "est", "device-1");
    let leaf = gw.est_issued(dir, "est", "", &der, &id, &secret);
    assert_eq!(pubkey_of_cert(&leaf), pubkey_of_key(&key));
    assert!(verifies(&dc.ca, &leaf));

    // The order body carries the documented fields with our configuration.
    let sent: serde_json::Value = {
        let seen = dc.server.seen.lock().unwrap();
        let order = seen.iter().find(|r| r.0 == "POST").unwrap();
        assert_eq!(
            order.1,
            format!("{BASE}/order/certificate/private_ssl_plus")
        );
        serde_json::from_slice(&order.2).unwrap()
    };
    let documented: serde_json::Value =
        serde_json::from_str(&fixture("order_request.json")).unwrap();
    for k in documented.as_object().unwrap().keys() {
        assert!(sent.get(k).is_some(), "order lacks {k}: {sent}");
    }
    assert_eq!(sent["certificate"]["common_name"], "device-1");
    assert_eq!(sent["order_validity"]["years"], 1);

    let (key, pem, _) = key_and_csr(dir, "cmp", "device-2");
    let (out, cert) = gw.cmp_p10cr("", &pem, &id, &secret, &[]);
    assert!(
        out.status.success(),
        "openssl cmp: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(pubkey_of_cert(&cert), pubkey_of_key(&key));

    // Revocation finds the certificate by serial and revokes it by certificate id.
    let serial = serial_of(&cert);
    gw.cli(&["revoke", &serial, "--reason", "1"]);
    let seen = dc.server.seen.lock().unwrap();
    let put = seen
        .iter()
        .find(|r| r.0 == "PUT")
        .expect("no revocation reached DigiCert");
    assert!(
        put.1.ends_with("/revoke") && put.1.starts_with(&format!("{BASE}/certificate/")),
        "{}",
        put.1
    );
    let body: serde_json::Value = serde_json::from_slice(&put.2).unwrap();
    assert_eq!(body["reason"], "key_compromise");
    drop(seen);
    assert!(!gw.log().contains(API_KEY), "the API key was logged");
}

#[test]
fn an_order_waiting_for_approval_is_pending_then_issued() {
    require("curl", "curl");
    require("openssl", "openssl");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (dc, gw) = start(dir, API_KEY);
    let (id, secret) = gw.token("");

    // EST: 202 while the order waits (order placed, then order info "pending"), 200 after.
    let (key, _pem, der) = key_and_csr(dir, "held-est", "held-est");
    assert_eq!(gw.est_enroll("", &der, &id, &secret).0, 202);
    assert_eq!(gw.est_last_header("retry-after").as_deref(), Some("1"));
    assert_eq!(gw.est_enroll("", &der, &id, &secret).0, 202);
    let leaf = gw.est_issued(dir, "held-est", "", &der, &id, &secret);
    assert_eq!(pubkey_of_cert(&leaf), pubkey_of_key(&key));
    // One order only: the retries polled it, they did not order again.
    let posts = dc
        .server
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.0 == "POST")
        .count();
    assert_eq!(posts, 1);

    // CMP: waiting, polling, certificate.
    let (key, pem, _) = key_and_csr(dir, "held-cmp", "held-cmp");
    let (out, cert) = gw.cmp_p10cr("", &pem, &id, &secret, &[]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "openssl cmp: {said}\n{}", gw.log());
    assert!(said.contains("POLL"), "the client never polled: {said}");
    assert_eq!(pubkey_of_cert(&cert), pubkey_of_key(&key));
}

#[test]
fn digicert_errors_are_refusals_and_the_key_stays_secret() {
    require("curl", "curl");
    require("openssl", "openssl");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // A refused CSR (400 invalid_csr) is a refusal.
    let (_dc, gw) = start(&dir.join("a"), API_KEY);
    let (id, secret) = gw.token("");
    let (_k, _p, der) = key_and_csr(dir, "refused", "refused-1");
    assert_eq!(gw.est_enroll("", &der, &id, &secret).0, 403);
    let refused = "enrollgate_backend_errors_total{backend=\"digicert\",kind=\"refused\"}";
    assert_eq!(gw.metric(refused), 1.0);
    drop(gw);

    // A wrong API key (401 access_denied) is a refusal too; the key is not logged.
    let wrong = "DCKEY-wrong-8e2d";
    let (_dc, gw) = start(&dir.join("b"), wrong);
    let (id, secret) = gw.token("");
    let (_k, _p, der) = key_and_csr(dir, "dev", "device-9");
    assert_eq!(gw.est_enroll("", &der, &id, &secret).0, 403);
    assert_eq!(gw.metric(refused), 1.0);
    let log = gw.log();
    assert!(log.contains("access_denied"), "{log}");
    assert!(!log.contains(wrong), "the API key was logged");
    assert_eq!(gw.metric("enrollgate_certificates_issued_total"), 0.0);
}
