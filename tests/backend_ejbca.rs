//! Contract tests of the EJBCA backend: a local HTTP server answers exactly as EJBCA's REST
//! API v1 documents (`tests/fixtures/ejbca`, sources in its README): `pkcs10enroll` with the
//! configured profiles, CA and end entity credentials, `201` with a DER certificate and its
//! chain, `202` "waiting for approval", error bodies, CA chain download and revocation.
//! Enrollment goes through EST (curl), CMP (`openssl cmp -cmd p10cr`) and SCEP (PKCSReq and
//! CertPoll built with `enrollgate_scep::client`).

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

#[path = "common/backends.rs"]
mod backends;
mod common;
#[path = "common/scep.rs"]
mod scep;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use backends::{
    FakeServer, Gateway, der_b64, json_answer as json, key_and_csr, make_ca, pubkey_of_cert,
    pubkey_of_key, require, serial_of, sign_csr_text, verifies,
};

const BASE: &str = "/ejbca/ejbca-rest-api";
const PASSWORD: &str = "enroll-pw-7f3a9c";
const CA_NAME: &str = "ejbca test CA";

fn fixture(name: &str) -> String {
    backends::fixture("ejbca", name)
}

/// A fake EJBCA. Users named `gw-held-*` are held for approval on their first request (an
/// approval profile) and issued when the request is sent again after approval; users named
/// `gw-refused-*` fail the end entity profile (422), `gw-offline-*` find the CA offline.
struct FakeEjbca {
    server: FakeServer,
    ca: PathBuf,
}

fn start_ejbca(dir: &Path) -> FakeEjbca {
    std::fs::create_dir_all(dir).unwrap();
    let (ca, ca_key) = make_ca(dir, CA_NAME);
    let ca_pem = std::fs::read_to_string(&ca).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&fixture("pkcs10enroll_request.json")).unwrap();
    let fields: Vec<String> = expected.as_object().unwrap().keys().cloned().collect();
    let seen_users: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let serial = Arc::new(AtomicUsize::new(1));
    let (dir, ca_c) = (dir.to_owned(), ca.clone());
    let server = FakeServer::start(move |method, path, _head, body| {
        let enroll = format!("{BASE}/v1/certificate/pkcs10enroll");
        let download = format!("{BASE}/v1/ca/CN%3Dejbca%20test%20CA/certificate/download");
        match (method, path) {
            ("POST", p) if p == enroll => {
                let req: serde_json::Value = serde_json::from_slice(body).ok()?;
                let obj = req.as_object()?;
                if fields.iter().any(|f| !obj.contains_key(f)) {
                    return json(
                        400,
                        r#"{"error_code":400,"error_message":"Invalid request"}"#.into(),
                    );
                }
                let user = req["username"].as_str()?.to_owned();
                let calls = {
                    let mut seen = seen_users.lock().unwrap();
                    let c = seen.entry(user.clone()).or_default();
                    *c += 1;
                    *c
                };
                if user.starts_with("gw-held-") && calls == 1 {
                    return json(202, fixture("waiting_for_approval_202.json"));
                }
                if user.starts_with("gw-refused-") {
                    return json(422, fixture("error_422.json"));
                }
                if user.starts_with("gw-offline-") {
                    return json(503, fixture("error_503.json"));
                }
                if req["password"] != PASSWORD {
                    return json(403, fixture("error_403.json"));
                }
                let n = serial.fetch_add(1, Ordering::SeqCst);
                let csr = req["certificate_request"].as_str()?;
                let leaf = sign_csr_text(&dir, csr, &ca_c, &ca_key, 5000 + n as u64);
                let answer = fixture("pkcs10enroll_201.json")
                    .replace("{{certificate}}", &der_b64(&leaf))
                    .replace("{{serial}}", &format!("{:X}", 5000 + n))
                    .replace("{{ca}}", &der_b64(&ca_pem));
                json(201, answer)
            }
            ("GET", p) if p == download => {
                Some((200, "application/octet-stream", ca_pem.clone().into_bytes()))
            }
            ("PUT", p) if p.contains("/revoke?reason=") => {
                let serial = p.split('/').nth_back(1).unwrap_or_default().to_owned();
                json(
                    200,
                    fixture("revoke_200.json").replace("{{serial}}", &serial),
                )
            }
            _ => json(
                404,
                r#"{"error_code":404,"error_message":"Not found"}"#.into(),
            ),
        }
    });
    FakeEjbca { server, ca }
}

fn config(port: u16) -> String {
    config_with_password(port, "{ env = \"EJBCA_TEST_PASSWORD\" }")
}

fn config_with_password(port: u16, password: &str) -> String {
    format!(
        r#"
[backends.ejbca]
kind = "ejbca"
url = "http://127.0.0.1:{port}{BASE}"
retries = 0
[backends.ejbca.ejbca]
certificate_profile = "ENDUSER"
end_entity_profile = "DeviceEndEntityProfile"
ca_name = "DeviceIssuingCA"
ca_subject_dn = "CN={CA_NAME}"
username = "gw-{{cn}}"
password = {password}
retry_after_secs = 1

[[routes]]
label = ""
profile = "device"
backends = ["ejbca"]
"#
    )
}

fn start(dir: &Path) -> (FakeEjbca, Gateway) {
    let ejbca = start_ejbca(&dir.join("ejbca"));
    let gw = Gateway::start(
        &dir.join("gw"),
        &config(ejbca.server.port),
        &[("EJBCA_TEST_PASSWORD", PASSWORD)],
    );
    (ejbca, gw)
}

fn enroll_requests(server: &FakeServer) -> Vec<serde_json::Value> {
    server
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.1.ends_with("/pkcs10enroll"))
        .map(|r| serde_json::from_slice(&r.2).unwrap())
        .collect()
}

#[test]
fn est_and_cmp_enroll_through_pkcs10enroll() {
    require("curl", "curl");
    require("openssl", "openssl");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (ejbca, gw) = start(dir);
    let (id, secret) = gw.token("");

    // EST via curl.
    let (key, _pem, der) = key_and_csr(dir, "est", "device-1");
    let leaf = gw.est_issued(dir, "est", "", &der, &id, &secret);
    assert_eq!(pubkey_of_cert(&leaf), pubkey_of_key(&key));
    assert!(verifies(&ejbca.ca, &leaf));

    // The request is EJBCA's documented body with our configured names and secret.
    let sent = enroll_requests(&ejbca.server);
    assert_eq!(sent.len(), 1);
    let r = &sent[0];
    assert_eq!(r["certificate_profile_name"], "ENDUSER");
    assert_eq!(r["end_entity_profile_name"], "DeviceEndEntityProfile");
    assert_eq!(r["certificate_authority_name"], "DeviceIssuingCA");
    assert_eq!(r["username"], "gw-device-1");
    assert_eq!(r["password"], PASSWORD);
    assert_eq!(r["include_chain"], true);
    assert!(
        r["certificate_request"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE REQUEST")
    );

    // CMP p10cr via openssl cmp.
    let (key, pem, _) = key_and_csr(dir, "cmp", "device-2");
    let (out, cert) = gw.cmp_p10cr("", &pem, &id, &secret, &[]);
    assert!(
        out.status.success(),
        "openssl cmp: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(pubkey_of_cert(&cert), pubkey_of_key(&key));
    assert!(verifies(&ejbca.ca, &cert));

    // The CA chain came from EJBCA's download endpoint; the password never reached the log.
    assert!(
        ejbca
            .server
            .seen
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.1.ends_with("/certificate/download"))
    );
    assert!(
        !gw.log().contains(PASSWORD),
        "the enrollment password was logged"
    );

    // Revocation by serial reaches EJBCA's revoke endpoint with the issuer DN.
    let serial = serial_of(&cert);
    gw.cli(&["revoke", &serial, "--reason", "1"]);
    let seen = ejbca.server.seen.lock().unwrap();
    let put = seen
        .iter()
        .find(|r| r.0 == "PUT")
        .expect("no revocation reached EJBCA");
    assert_eq!(
        put.1,
        format!(
            "{BASE}/v1/certificate/CN%3Dejbca%20test%20CA/{serial}/revoke?reason=KEY_COMPROMISE"
        )
    );
}

#[test]
fn waiting_for_approval_is_pending_then_issued_through_est_and_cmp() {
    require("curl", "curl");
    require("openssl", "openssl");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (ejbca, gw) = start(dir);
    let (id, secret) = gw.token("");

    // EST: 202 first; after the approval, the client's retry gets the certificate.
    let (key, _pem, der) = key_and_csr(dir, "held-est", "held-est");
    let (status, body) = gw.est_enroll("", &der, &id, &secret);
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    assert_eq!(gw.est_last_header("retry-after").as_deref(), Some("1"));
    let leaf = gw.est_issued(dir, "held-est", "", &der, &id, &secret);
    assert_eq!(pubkey_of_cert(&leaf), pubkey_of_key(&key));

    // CMP: the client is told to wait, polls, and gets the certificate.
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

    // Each held user was sent twice: the held request and the one after approval.
    let users: Vec<String> = enroll_requests(&ejbca.server)
        .iter()
        .map(|r| r["username"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        users.iter().filter(|u| *u == "gw-held-est").count(),
        2,
        "{users:?}"
    );
    assert_eq!(
        users.iter().filter(|u| *u == "gw-held-cmp").count(),
        2,
        "{users:?}"
    );
}

#[test]
fn ejbca_error_bodies_keep_their_meaning() {
    require("curl", "curl");
    require("openssl", "openssl");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_ejbca, gw) = start(dir);
    let (id, secret) = gw.token("");

    // 422: the end entity profile refuses: a refusal, not an outage.
    let (_k, _p, der) = key_and_csr(dir, "refused", "refused-1");
    let (status, body) = gw.est_enroll("", &der, &id, &secret);
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    let count = |k: &str| {
        gw.metric(&format!(
            "enrollgate_backend_errors_total{{backend=\"ejbca\",kind=\"{k}\"}}"
        ))
    };
    assert_eq!(count("refused"), 1.0);

    // 503 with EJBCA's error body: the CA is offline, nothing was issued.
    let (_k, _p, der) = key_and_csr(dir, "offline", "offline-1");
    let (status, _) = gw.est_enroll("", &der, &id, &secret);
    assert_eq!(status, 503);
    assert_eq!(count("unavailable"), 1.0);
    assert_eq!(gw.metric("enrollgate_certificates_issued_total"), 0.0);
    assert!(gw.log().contains("backend=ejbca"), "no warn line");
}

#[test]
fn scep_pending_then_certpoll_gets_the_approved_certificate() {
    use enrollgate_scep::{MessageType, PkiStatus};
    use scep::pki::{self, Requester};

    let tmp = tempfile::tempdir().unwrap();
    let ejbca = start_ejbca(&tmp.path().join("ejbca"));
    let password_file = tmp.path().join("ejbca-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let password = format!("{{ file = \"{}\" }}", password_file.display());
    let gw = common::Gateway::start(&config_with_password(ejbca.server.port, &password));
    let s = scep::Scep::new(&gw);
    let url = s.http();

    // EJBCA holds the request: SCEP PENDING; after approval the CertPoll gets the certificate.
    let cn = "held-scep";
    let device = Requester::new(cn);
    let id = device.identity();
    let (_, secret) = gw.token(&[]);
    let tid = pki::transaction_id(cn);
    let csr = device.csr(cn, Some(&secret));
    let req = pki::message(&id, &s.ra, MessageType::PkcsReq, &tid, &csr);
    assert_eq!(s.exchange(&url, &id, &req).status, PkiStatus::Pending);
    let content = pki::cert_poll_content(&s.issuing, cn);
    let poll = pki::message(&id, &s.ra, MessageType::CertPoll, &tid, &content);
    let cert = scep::issued(&s.exchange(&url, &id, &poll));
    let leaf = tmp.path().join("scep.crt");
    scep::write_pem(&leaf, &[cert]);
    assert!(verifies(&ejbca.ca, &leaf), "not EJBCA's certificate");
    let users: Vec<String> = enroll_requests(&ejbca.server)
        .iter()
        .map(|r| r["username"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(users, ["gw-held-scep", "gw-held-scep"]);
}
