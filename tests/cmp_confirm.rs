//! certConf deadlines against a running gateway (RFC 9810 5.3.18): a certificate whose
//! requester never confirms it, and that was not granted implicit confirmation, is revoked
//! when `cmp.confirm_wait_secs` runs out and appears on the CRL; a confirmed one does not.

#![expect(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;
#[path = "common/cmp.rs"]
mod kit;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Gateway, openssl_unchecked, path_str};
use der::Decode;
use kit::{ClientKey, Head, Mac};

const PATH: &str = "/.well-known/cmp";

fn post(addr: SocketAddr, der: &[u8]) -> enrollgate_cmp::types::PkiMessage {
    let reply = kit::HttpConn::connect(addr)
        .unwrap()
        .cmp(PATH, der)
        .unwrap();
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    kit::decode(&reply.body)
}

fn serial_hex(cert: &[u8]) -> String {
    let cert = x509_cert::Certificate::from_der(cert).unwrap();
    hex_upper(cert.tbs_certificate().serial_number().as_bytes())
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The serials on the gateway's CRL, as openssl prints them.
fn crl_serials(gw: &Gateway) -> String {
    let reply = gw.request(&format!("{}/crl", gw.http_url)).send();
    reply.expect(200, "GET /crl");
    let der = gw.path("crl.der");
    std::fs::write(&der, &reply.body).unwrap();
    let out = openssl_unchecked(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        path_str(&der),
        "-noout",
        "-text",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .replace(':', "")
        .to_uppercase()
}

#[test]
fn an_unconfirmed_certificate_is_revoked_when_the_wait_runs_out() {
    let gw = Gateway::start("[cmp]\nconfirm_wait_secs = 2\n");
    let addr: SocketAddr = gw.http_url.trim_start_matches("http://").parse().unwrap();
    let (id, secret) = gw.token(&["--uses", "0"]);
    let mac = Mac::new(&id, &secret);

    // Two irs without implicit confirmation: one confirmed, one left unconfirmed.
    let head = Head::new();
    let ip = post(
        addr,
        &kit::protect_mac(
            &head,
            kit::ir_body(&ClientKey::generate(), "CN=confirmed"),
            &mac,
        ),
    );
    assert!(!kit::grants_implicit_confirm(&ip));
    let confirmed = kit::issued_cert(&ip).unwrap();
    let conf = kit::protect_mac(
        &head.answering(&ip),
        kit::cert_conf_body(&confirmed, 0, true),
        &mac,
    );
    assert_eq!(post(addr, &conf).body.kind().name(), "pkiconf");

    let ip = post(
        addr,
        &kit::protect_mac(
            &Head::new(),
            kit::ir_body(&ClientKey::generate(), "CN=forgotten"),
            &mac,
        ),
    );
    let forgotten = kit::issued_cert(&ip).unwrap();
    let (kept, lost) = (serial_hex(&confirmed), serial_hex(&forgotten));
    assert!(!crl_serials(&gw).contains(&lost));

    // The sweeper runs at least every confirm_wait_secs; allow it a generous margin.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let crl = crl_serials(&gw);
        if crl.contains(&lost) {
            assert!(
                !crl.contains(&kept),
                "the confirmed certificate was revoked too"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{lost} never revoked:\n{crl}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let log = gw.log();
    assert!(log.contains("revoked unconfirmed CMP certificate"), "{log}");
}
