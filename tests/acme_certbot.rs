//! certbot (the Debian package) against the gateway's ACME server: http-01 in standalone mode,
//! revocation, and external account binding with an enrollment token.
//!
//! The gateway validates http-01 by connecting to 127.0.0.1 (`resolve_to`) on the port certbot's
//! standalone server listens on, so `-d dev1.test` needs no DNS.

#[path = "common/acme.rs"]
mod acme_client;
mod common;

use std::path::PathBuf;
use std::process::Command;

use acme_client::{free_port, logged};
use common::{Gateway, path_str, require_tool, run, run_unchecked, verify_cert, x509_text};

/// A gateway whose default route is open to ACME accounts without EAB and whose `eab` route
/// requires it; both validate http-01 on `port` of 127.0.0.1.
fn gateway(port: u16) -> Gateway {
    Gateway::start(&format!(
        r#"
[[routes]]
label = ""
profile = "device"
auth = ["anonymous", "token"]

[[routes]]
label = "eab"
profile = "device"
auth = ["token"]

[[acme.routes]]
label = ""
http01_port = {port}
resolve_to = "127.0.0.1"

[[acme.routes]]
label = "eab"
http01_port = {port}
resolve_to = "127.0.0.1"
"#
    ))
}

/// certbot with its directories in the test's scratch space, trusting our root.
fn certbot(gw: &Gateway, directory: &str, args: &[&str]) -> Command {
    require_tool("certbot");
    let base = gw.path("certbot");
    let mut cmd = Command::new("certbot");
    cmd.args(args)
        .args(["--non-interactive", "--server", directory])
        .arg("--config-dir")
        .arg(base.join("config"))
        .arg("--work-dir")
        .arg(base.join("work"))
        .arg("--logs-dir")
        .arg(base.join("logs"))
        .env("REQUESTS_CA_BUNDLE", gw.root_pem());
    cmd
}

fn live(gw: &Gateway, name: &str, file: &str) -> PathBuf {
    gw.path("certbot").join("config/live").join(name).join(file)
}

fn certonly(gw: &Gateway, directory: &str, port: u16, name: &str, extra: &[&str]) {
    let port = port.to_string();
    let mut args = vec![
        "certonly",
        "--standalone",
        "--http-01-port",
        &port,
        "--register-unsafely-without-email",
        "--agree-tos",
        "-d",
        name,
    ];
    args.extend_from_slice(extra);
    run(&mut certbot(gw, directory, &args));
}

/// The serials (upper-case hex) on the gateway's CRL.
fn crl_serials(gw: &Gateway) -> String {
    let reply = gw.request(&format!("{}/crl", gw.http_url)).send();
    reply.expect(200, "GET /crl");
    let der = gw.path("crl.der");
    std::fs::write(&der, &reply.body).expect("writing the CRL");
    common::openssl(&[
        "crl",
        "-inform",
        "DER",
        "-noout",
        "-text",
        "-in",
        path_str(&der),
    ])
}

#[test]
fn certbot_obtains_with_http01_and_revokes() {
    let port = free_port();
    let gw = gateway(port);
    let directory = format!("{}/acme/directory", gw.https_url);
    certonly(&gw, &directory, port, "dev1.test", &[]);

    let cert = live(&gw, "dev1.test", "cert.pem");
    verify_cert(&gw, &cert);
    let text = x509_text(&cert);
    assert!(text.contains("DNS:dev1.test"), "{text}");
    let serial = common::cert_serial(&cert);
    let validated = logged(&gw, "acme challenge valid", &["kind=Http01", "dev1.test"]);
    assert!(
        validated,
        "the gateway did not validate http-01:\n{}",
        gw.log()
    );

    run(&mut certbot(
        &gw,
        &directory,
        &[
            "revoke",
            "--cert-path",
            path_str(&cert),
            "--reason",
            "keycompromise",
            "--no-delete-after-revoke",
        ],
    ));
    let crl = crl_serials(&gw);
    assert!(
        crl.contains(&serial),
        "serial {serial} not on the CRL:\n{crl}"
    );
    assert!(crl.contains("Key Compromise"), "{crl}");
}

#[test]
fn certbot_needs_eab_on_an_eab_route_and_succeeds_with_a_token() {
    let port = free_port();
    let gw = gateway(port);
    let directory = format!("{}/acme/eab/directory", gw.https_url);
    let dir_json = gw.request(&directory).send();
    assert!(dir_json.text().contains("\"externalAccountRequired\":true"));

    // Without EAB certbot is refused at registration.
    let out = run_unchecked(&mut certbot(
        &gw,
        &directory,
        &[
            "register",
            "--register-unsafely-without-email",
            "--agree-tos",
        ],
    ));
    assert!(!out.status.success(), "registration without EAB succeeded");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("external account"), "certbot said: {said}");

    let (id, secret) = gw.token(&["--route", "eab", "--uses", "0"]);
    certonly(
        &gw,
        &directory,
        port,
        "eab1.test",
        &["--eab-kid", &id, "--eab-hmac-key", &secret],
    );
    // The route accepts only tokens: issuance proves the account carried the token to the
    // registrar (Credential::TokenProven).
    verify_cert(&gw, &live(&gw, "eab1.test", "cert.pem"));
}
