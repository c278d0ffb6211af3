//! The cfssl backend against a real `cfssl serve` (Debian golang-cfssl) started by the test:
//! enrollment through EST (curl) and CMP (`openssl cmp -cmd p10cr`), `sign` and `authsign`
//! (HMAC token), failover from a refused connection, a refused HMAC key, and the chain.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

#[path = "common/backends.rs"]
mod backends;

use std::path::{Path, PathBuf};
use std::process::Command;

use backends::{
    ChildGuard, Gateway, free_port, issuer_of, key_and_csr, pkcs7_b64_to_pem, pubkey_of_cert,
    pubkey_of_key, require, run, verifies, wait_listening,
};

/// The cfssl HMAC key (hex), as in cfssl's `auth_keys` of type `standard`.
const AUTH_KEY: &str = "000102030405060708090a0b0c0d0e0f";

struct Cfssl {
    _child: ChildGuard,
    port: u16,
    ca: PathBuf,
}

/// Makes a CA with `cfssl gencert -initca` and serves it with `cfssl serve`.
fn start_cfssl(dir: &Path) -> Cfssl {
    require("cfssl", "golang-cfssl");
    std::fs::create_dir_all(dir).unwrap();
    let csr = dir.join("ca-csr.json");
    std::fs::write(
        &csr,
        r#"{"CN":"cfssl test CA","key":{"algo":"ecdsa","size":256},"names":[{"O":"enrollgate tests"}]}"#,
    )
    .unwrap();
    let out = run(Command::new("cfssl").args(["gencert", "-initca"]).arg(&csr));
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ca = dir.join("ca.pem");
    let ca_key = dir.join("ca-key.pem");
    std::fs::write(&ca, made["cert"].as_str().unwrap()).unwrap();
    std::fs::write(&ca_key, made["key"].as_str().unwrap()).unwrap();
    let usages = r#"["digital signature","key encipherment","client auth"]"#;
    let config = format!(
        r#"{{"signing":{{"default":{{"expiry":"24h","usages":{usages}}},
            "profiles":{{"authed":{{"expiry":"24h","usages":{usages},"auth_key":"k1"}}}}}},
            "auth_keys":{{"k1":{{"type":"standard","key":"{AUTH_KEY}"}}}}}}"#
    );
    let config_path = dir.join("cfssl.json");
    std::fs::write(&config_path, config).unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.join("cfssl.log")).unwrap();
    let child = Command::new("cfssl")
        .args(["serve", "-address", "127.0.0.1", "-port", &port.to_string()])
        .arg("-ca")
        .arg(&ca)
        .arg("-ca-key")
        .arg(&ca_key)
        .arg("-config")
        .arg(&config_path)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("cfssl serve");
    let child = ChildGuard(child);
    wait_listening(port, "cfssl serve");
    Cfssl {
        _child: child,
        port,
        ca,
    }
}

fn gateway_config(cfssl_port: u16) -> String {
    format!(
        r#"
[backends.cf]
kind = "cfssl"
url = "http://127.0.0.1:{cfssl_port}"
[backends.cf.cfssl]

[backends.cf-auth]
kind = "cfssl"
url = "http://127.0.0.1:{cfssl_port}"
[backends.cf-auth.cfssl]
profile = "authed"
auth_key = {{ env = "TEST_CFSSL_KEY" }}

[backends.cf-badkey]
kind = "cfssl"
url = "http://127.0.0.1:{cfssl_port}"
breaker_failures = 0
[backends.cf-badkey.cfssl]
profile = "authed"
auth_key = {{ env = "TEST_CFSSL_BADKEY" }}

[backends.dead]
kind = "cfssl"
url = "http://127.0.0.1:1"
timeout_secs = 3
[backends.dead.cfssl]

[[routes]]
label = ""
profile = "device"

[[routes]]
label = "cf"
profile = "device"
backends = ["cf"]

[[routes]]
label = "cfauth"
profile = "device"
backends = ["dead", "cf-auth"]

[[routes]]
label = "badkey"
profile = "device"
backends = ["cf-badkey", "cf"]
"#
    )
}

fn start(dir: &Path, cfssl: &Cfssl) -> Gateway {
    Gateway::start(
        &dir.join("gw"),
        &gateway_config(cfssl.port),
        &[
            ("TEST_CFSSL_KEY", AUTH_KEY),
            ("TEST_CFSSL_BADKEY", "ffffffffffffffffffffffffffffffff"),
        ],
    )
}

/// Writes an EST answer's leaf as PEM and checks it: cfssl's CA issued it for our key.
fn check_est_answer(dir: &Path, name: &str, body: &[u8], key: &Path, ca: &Path) {
    let pem = pkcs7_b64_to_pem(dir, body);
    let leaf = dir.join(format!("{name}.crt"));
    let first = pem
        .split_inclusive("-----END CERTIFICATE-----\n")
        .next()
        .unwrap();
    std::fs::write(&leaf, first).unwrap();
    assert!(
        issuer_of(&leaf).contains("cfssl test CA"),
        "{}",
        issuer_of(&leaf)
    );
    assert!(verifies(ca, &leaf), "cfssl's CA does not verify the leaf");
    assert_eq!(pubkey_of_cert(&leaf), pubkey_of_key(key));
}

#[test]
fn est_and_cmp_enroll_through_cfssl_sign() {
    require("curl", "curl");
    require("openssl", "openssl");
    let tmp = tempfile::tempdir().unwrap();
    let cfssl = start_cfssl(&tmp.path().join("cfssl"));
    let gw = start(tmp.path(), &cfssl);
    let (id, secret) = gw.token("cf");

    // EST via curl.
    let (key, _pem, der) = key_and_csr(tmp.path(), "est", "est-device");
    let (status, body) = gw.est_enroll("cf", &der, &id, &secret);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    check_est_answer(tmp.path(), "est", &body, &key, &cfssl.ca);

    // CMP p10cr via openssl cmp.
    let (key, pem, _der) = key_and_csr(tmp.path(), "cmp", "cmp-device");
    let (out, cert) = gw.cmp_p10cr("cf", &pem, &id, &secret, &[]);
    assert!(
        out.status.success(),
        "openssl cmp: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(issuer_of(&cert).contains("cfssl test CA"));
    assert!(verifies(&cfssl.ca, &cert));
    assert_eq!(pubkey_of_cert(&cert), pubkey_of_key(&key));

    // The route's cacerts is cfssl's CA, read from cfssl's info endpoint.
    let url = format!("https://127.0.0.1:{}/.well-known/est/cf/cacerts", gw.https);
    let out = run(Command::new("curl")
        .args(["-s", "--cacert"])
        .arg(gw.root())
        .arg(&url));
    let chain = pkcs7_b64_to_pem(tmp.path(), &out.stdout);
    let ca_pem = std::fs::read_to_string(&cfssl.ca).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 1);
    assert!(
        chain.contains(ca_pem.lines().nth(1).unwrap()),
        "cacerts is not cfssl's CA"
    );
    assert!(gw.metric("enrollgate_certificates_issued_total{backend=\"cf\"") >= 2.0);
}

#[test]
fn authsign_after_failover_from_a_refused_connection() {
    require("curl", "curl");
    let tmp = tempfile::tempdir().unwrap();
    let cfssl = start_cfssl(&tmp.path().join("cfssl"));
    let gw = start(tmp.path(), &cfssl);
    let (id, secret) = gw.token("cfauth");
    let (key, _pem, der) = key_and_csr(tmp.path(), "auth", "authsigned");
    let (status, body) = gw.est_enroll("cfauth", &der, &id, &secret);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    check_est_answer(tmp.path(), "auth", &body, &key, &cfssl.ca);
    let unavailable = "enrollgate_backend_errors_total{backend=\"dead\",kind=\"unavailable\"}";
    assert!(
        gw.metric(unavailable) >= 1.0,
        "no unavailable count for the dead backend"
    );
    let log = gw.log();
    assert!(log.contains("failing over"), "{log}");
    assert!(!log.contains(AUTH_KEY), "the HMAC key reached the log");
}

#[test]
fn a_wrong_hmac_key_is_a_refusal_without_failover() {
    require("curl", "curl");
    let tmp = tempfile::tempdir().unwrap();
    let cfssl = start_cfssl(&tmp.path().join("cfssl"));
    let gw = start(tmp.path(), &cfssl);
    let (id, secret) = gw.token("badkey");
    let (_key, _pem, der) = key_and_csr(tmp.path(), "bad", "badkey");
    let (status, body) = gw.est_enroll("badkey", &der, &id, &secret);
    // cfssl answered "invalid token": the CA refused, so the next backend must not be tried.
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert_eq!(gw.metric("enrollgate_certificates_issued_total"), 0.0);
    assert!(gw.log().contains("backend call failed") || gw.log().contains("backend failed"));
}
