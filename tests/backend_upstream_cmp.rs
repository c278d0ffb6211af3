//! The upstream CMP backend against the `openssl cmp -port` mock server, started only for the
//! test and killed after (it binds every interface). The mock answers every request with the
//! fixed certificate given by `-rsp_cert`; the test makes that certificate for the key of
//! the CSR it sends, so that request succeeds, and a second request with another key gets a
//! certificate that does not match its CSR: the gateway must refuse to hand it out.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

#[path = "common/backends.rs"]
mod backends;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use backends::{
    ChildGuard, Gateway, free_port, issuer_of, key_and_csr, pkcs7_b64_to_pem, pubkey_of_cert,
    pubkey_of_key, require, run, wait_listening,
};

const SECRET: &str = "upstream-cmp-shared-secret";

/// A CA (self-signed P-256) made with openssl; returns (cert, key).
fn mock_ca(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("mockca.crt");
    let key = dir.join("mockca.key");
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=mock CMP CA",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    (cert, key)
}

/// The certificate the mock returns: the mock CA's signature over `csr`'s key.
fn response_cert(dir: &Path, csr: &Path, ca: &Path, ca_key: &Path, serial: u32) -> PathBuf {
    let out = dir.join(format!("rsp-{serial}.crt"));
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "1", "-in"])
        .arg(csr)
        .arg("-CA")
        .arg(ca)
        .arg("-CAkey")
        .arg(ca_key)
        .args(["-set_serial", &serial.to_string(), "-out"])
        .arg(&out));
    out
}

fn start_mock(dir: &Path, rsp_cert: &Path, ca: &Path, implicit: bool) -> (ChildGuard, u16) {
    let port = free_port();
    let log = std::fs::File::create(dir.join(format!("mock-{port}.log"))).unwrap();
    let mut cmd = Command::new("openssl");
    cmd.args(["cmp", "-port", &port.to_string()])
        .args(["-srv_ref", "mock", "-srv_secret", &format!("pass:{SECRET}")])
        .arg("-rsp_cert")
        .arg(rsp_cert)
        .arg("-rsp_capubs")
        .arg(ca)
        .stdout(Stdio::null())
        .stderr(log);
    if implicit {
        cmd.arg("-grant_implicitconf");
    }
    let child = ChildGuard(cmd.spawn().expect("openssl cmp -port"));
    wait_listening(port, "openssl cmp mock server");
    (child, port)
}

fn gateway(dir: &Path, port: u16, port_b: u16) -> Gateway {
    let config = format!(
        r#"
[backends.upcmp]
kind = "cmp"
url = "http://127.0.0.1:{port}/pkix/"
timeout_secs = 10
[backends.upcmp.cmp]
protection = "mac"
reference = "edge-ra"
secret = {{ env = "TEST_CMP_SECRET" }}

[backends.upcmp-b]
kind = "cmp"
url = "http://127.0.0.1:{port_b}/pkix/"
[backends.upcmp-b.cmp]
reference = "edge-ra"
secret = {{ env = "TEST_CMP_SECRET" }}

[[routes]]
label = ""
profile = "device"
backends = ["upcmp"]

[[routes]]
label = "b"
profile = "device"
backends = ["upcmp-b"]
"#
    );
    Gateway::start(&dir.join("gw"), &config, &[("TEST_CMP_SECRET", SECRET)])
}

#[test]
fn enrolls_through_the_mock_and_refuses_a_certificate_for_another_key() {
    require("openssl", "openssl");
    require("curl", "curl");
    let tmp = tempfile::tempdir().unwrap();
    let (ca, ca_key) = mock_ca(tmp.path());
    let (key, csr_pem, csr_der) = key_and_csr(tmp.path(), "dev", "cmp-upstream-device");
    let rsp = response_cert(tmp.path(), &csr_pem, &ca, &ca_key, 4242);
    // Without implicit confirmation: the gateway must send certConf and get pkiConf.
    let (_mock, port) = start_mock(tmp.path(), &rsp, &ca, false);
    // A second mock for the CMP client's key (each mock only ever returns one certificate).
    let (key_b, csr_b, _) = key_and_csr(tmp.path(), "devb", "cmp-upstream-device-b");
    let rsp_b = response_cert(tmp.path(), &csr_b, &ca, &ca_key, 4243);
    let (_mock_b, port_b) = start_mock(tmp.path(), &rsp_b, &ca, true);
    let gw = gateway(tmp.path(), port, port_b);
    let (id, secret) = gw.token("");

    // EST via curl: p10cr upstream, ip with the matching certificate, certConf, pkiConf.
    let (status, body) = gw.est_enroll("", &csr_der, &id, &secret);
    assert_eq!(
        status,
        200,
        "{}\n{}",
        String::from_utf8_lossy(&body),
        gw.log()
    );
    let leaf = tmp.path().join("est.crt");
    let pem = pkcs7_b64_to_pem(tmp.path(), &body);
    std::fs::write(&leaf, &pem).unwrap();
    assert!(issuer_of(&leaf).contains("mock CMP CA"));
    assert_eq!(pubkey_of_cert(&leaf), pubkey_of_key(&key));

    // CMP via openssl cmp, through the second mock (implicit confirmation granted).
    let (id_b, secret_b) = gw.token("b");
    let (out, cert) = gw.cmp_p10cr("b", &csr_b, &id_b, &secret_b, &[]);
    assert!(
        out.status.success(),
        "openssl cmp: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        gw.log()
    );
    assert_eq!(pubkey_of_cert(&cert), pubkey_of_key(&key_b));

    // Another key: the mock's certificate does not match the CSR: refused, counted, logged.
    let (_k2, _p2, der2) = key_and_csr(tmp.path(), "other", "other-device");
    let (status, body) = gw.est_enroll("", &der2, &id, &secret);
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(
        !String::from_utf8_lossy(&body).contains("BEGIN"),
        "a certificate was handed out"
    );
    let mismatch = "enrollgate_backend_errors_total{backend=\"upcmp\",kind=\"key_mismatch\"}";
    assert_eq!(gw.metric(mismatch), 1.0);
    assert!(gw.log().contains("backend answer refused"), "{}", gw.log());
    assert!(!gw.log().contains(SECRET), "the MAC secret reached the log");
}

#[test]
fn a_wrong_mac_secret_is_not_a_certificate() {
    require("openssl", "openssl");
    let tmp = tempfile::tempdir().unwrap();
    let (ca, ca_key) = mock_ca(tmp.path());
    let (_key, csr_pem, csr_der) = key_and_csr(tmp.path(), "dev", "wrong-secret");
    let rsp = response_cert(tmp.path(), &csr_pem, &ca, &ca_key, 7);
    let (_mock, port) = start_mock(tmp.path(), &rsp, &ca, true);
    let config = format!(
        r#"
[backends.upcmp]
kind = "cmp"
url = "http://127.0.0.1:{port}/pkix/"
[backends.upcmp.cmp]
reference = "edge-ra"
secret = {{ env = "TEST_CMP_SECRET" }}

[[routes]]
label = ""
profile = "device"
backends = ["upcmp"]
"#
    );
    let gw = Gateway::start(
        &tmp.path().join("gw"),
        &config,
        &[("TEST_CMP_SECRET", "wrong")],
    );
    let (id, secret) = gw.token("");
    let (status, _) = gw.est_enroll("", &csr_der, &id, &secret);
    // The mock answers with an error message (or a reply we cannot verify): never a cert.
    assert!(status == 403 || status == 503, "status {status}");
    assert_eq!(gw.metric("enrollgate_certificates_issued_total"), 0.0);
}
