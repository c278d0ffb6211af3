//! The upstream EST backend against a second enrollgate instance started by the test: our
//! gateway forwards EST (curl) and CMP (`openssl cmp -cmd p10cr`) enrollments upstream as an
//! EST client, authenticated by HTTP Basic (an upstream enrollment token) or by a TLS client
//! certificate that the upstream issued to us.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

#[path = "common/backends.rs"]
mod backends;

use std::path::Path;
use std::process::Command;

use backends::{
    Gateway, issuer_of, key_and_csr, pkcs7_b64_to_pem, pubkey_of_cert, pubkey_of_key, require, run,
    verifies,
};

const UPSTREAM: &str = r#"
[ca]
name = "upstream"

[[routes]]
label = ""
profile = "device"

[[routes]]
label = "devices"
profile = "device"
auth = ["token"]

[[routes]]
label = "mtls"
profile = "device"
auth = ["certificate"]
"#;

fn first_pem(pem: &str) -> String {
    pem.split_inclusive("-----END CERTIFICATE-----\n")
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Enrolls `name` directly at the upstream; returns (key, certificate) paths.
fn upstream_identity(
    dir: &Path,
    up: &Gateway,
    id: &str,
    secret: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let (key, _pem, der) = key_and_csr(dir, "ra", "edge-ra");
    let (status, body) = up.est_enroll("devices", &der, id, secret);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let cert = dir.join("ra.crt");
    std::fs::write(&cert, first_pem(&pkcs7_b64_to_pem(dir, &body))).unwrap();
    (key, cert)
}

fn downstream_config(up: &Gateway, user: &str, ra_key: &Path, ra_cert: &Path) -> String {
    format!(
        r#"
[backends.up-basic]
kind = "est"
url = "https://127.0.0.1:{port}/.well-known/est/devices"
[backends.up-basic.tls]
ca_file = "{root}"
[backends.up-basic.est]
username = "{user}"
password = {{ env = "TEST_UPSTREAM_SECRET" }}

[backends.up-mtls]
kind = "est"
url = "https://127.0.0.1:{port}/.well-known/est/mtls"
[backends.up-mtls.tls]
ca_file = "{root}"
client_cert = "{cert}"
client_key = {{ file = "{key}" }}
[backends.up-mtls.est]

[[routes]]
label = ""
profile = "device"

[[routes]]
label = "basic"
profile = "device"
backends = ["up-basic"]

[[routes]]
label = "mtls"
profile = "device"
backends = ["up-mtls"]
"#,
        port = up.https,
        root = up.root().display(),
        cert = ra_cert.display(),
        key = ra_key.display(),
    )
}

#[test]
fn est_and_cmp_enroll_through_an_upstream_est_server() {
    require("curl", "curl");
    require("openssl", "openssl");
    let tmp = tempfile::tempdir().unwrap();
    let up = Gateway::start(&tmp.path().join("upstream"), UPSTREAM, &[]);
    let (uid, usecret) = up.token("devices");
    let (ra_key, ra_cert) = upstream_identity(tmp.path(), &up, &uid, &usecret);

    let config = downstream_config(&up, &uid, &ra_key, &ra_cert);
    let gw = Gateway::start(
        &tmp.path().join("gw"),
        &config,
        &[("TEST_UPSTREAM_SECRET", usecret.as_str())],
    );

    // EST via curl, forwarded with HTTP Basic.
    let (id, secret) = gw.token("basic");
    let (key, _pem, der) = key_and_csr(tmp.path(), "est", "est-via-upstream");
    let (status, body) = gw.est_enroll("basic", &der, &id, &secret);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let leaf = tmp.path().join("est.crt");
    let answer = pkcs7_b64_to_pem(tmp.path(), &body);
    std::fs::write(&leaf, first_pem(&answer)).unwrap();
    assert!(
        issuer_of(&leaf).contains("upstream"),
        "{}",
        issuer_of(&leaf)
    );
    let chain = up.dir.join("data/issuing.crt");
    run(Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(up.root())
        .arg("-untrusted")
        .arg(&chain)
        .arg(&leaf));
    assert!(
        !verifies(&gw.root(), &leaf),
        "issued by the local CA, not upstream"
    );
    assert_eq!(pubkey_of_cert(&leaf), pubkey_of_key(&key));

    // CMP p10cr via openssl cmp, forwarded with our TLS client certificate.
    let (id, secret) = gw.token("mtls");
    let (key, pem, _der) = key_and_csr(tmp.path(), "cmp", "cmp-via-upstream");
    let (out, cert) = gw.cmp_p10cr("mtls", &pem, &id, &secret, &[]);
    assert!(
        out.status.success(),
        "openssl cmp: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        issuer_of(&cert).contains("upstream"),
        "{}",
        issuer_of(&cert)
    );
    assert_eq!(pubkey_of_cert(&cert), pubkey_of_key(&key));

    // The route's cacerts is the upstream's chain.
    let url = format!(
        "https://127.0.0.1:{}/.well-known/est/basic/cacerts",
        gw.https
    );
    let out = run(Command::new("curl")
        .args(["-s", "--cacert"])
        .arg(gw.root())
        .arg(&url));
    let cacerts = pkcs7_b64_to_pem(tmp.path(), &out.stdout);
    let up_root = std::fs::read_to_string(up.root()).unwrap();
    assert!(
        cacerts.contains(up_root.lines().nth(1).unwrap()),
        "cacerts is not the upstream's"
    );

    // Upstream audit shows both requests; the secret never reached our log.
    assert!(
        !gw.log().contains(&usecret),
        "the upstream secret reached the log"
    );
    assert!(gw.metric("enrollgate_certificates_issued_total{backend=\"up-basic\"") >= 1.0);
    assert!(gw.metric("enrollgate_certificates_issued_total{backend=\"up-mtls\"") >= 1.0);
}

#[test]
fn an_upstream_refusal_reaches_the_client_as_a_refusal() {
    require("curl", "curl");
    let tmp = tempfile::tempdir().unwrap();
    let up = Gateway::start(&tmp.path().join("upstream"), UPSTREAM, &[]);
    let (uid, _) = up.token("devices");
    let config = format!(
        r#"
[backends.up]
kind = "est"
url = "https://127.0.0.1:{}/.well-known/est/devices"
[backends.up.tls]
ca_file = "{}"
[backends.up.est]
username = "{uid}"
password = {{ env = "TEST_WRONG" }}

[[routes]]
label = ""
profile = "device"
backends = ["up"]
"#,
        up.https,
        up.root().display()
    );
    let gw = Gateway::start(
        &tmp.path().join("gw"),
        &config,
        &[("TEST_WRONG", "not-the-secret")],
    );
    let (id, secret) = gw.token("");
    let (_key, _pem, der) = key_and_csr(tmp.path(), "x", "refused");
    let (status, body) = gw.est_enroll("", &der, &id, &secret);
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(gw.metric("enrollgate_backend_errors_total{backend=\"up\",kind=\"refused\"}") >= 1.0);
}
