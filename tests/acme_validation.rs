//! Failed http-01 validations against the running gateway: the challenge, its authorization
//! and the order become invalid with the RFC's error type (connection, incorrectResponse),
//! each failure is counted and logged, and the order can no longer be finalized.

#[path = "common/acme.rs"]
mod acme_client;
mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use acme_client::{Client, expect_problem, free_port, json_of, logged};
use common::{Gateway, KeyType, new_csr, unique};
use serde_json::{Value, json};

/// The default route validates http-01 on `port` of 127.0.0.1, one attempt per challenge.
fn gateway(port: u16) -> Gateway {
    Gateway::start(&format!(
        r#"
[acme]
validation_attempts = 1
validation_timeout_secs = 5

[[routes]]
label = ""
profile = "device"
auth = ["anonymous"]

[[acme.routes]]
label = ""
http01_port = {port}
resolve_to = "127.0.0.1"
"#
    ))
}

fn bad_input(gw: &Gateway, kind: &str) -> f64 {
    gw.metrics().sum(
        "enrollgate_bad_input_total",
        &[("protocol", "acme"), ("kind", kind)],
    )
}

/// Orders `name`, answers its http-01 challenge and waits until the authorization is no
/// longer pending or processing; returns the order URL, the order and the authorization.
fn answer_and_wait(c: &Client<'_>, name: &str) -> (String, Value, Value) {
    let (order_url, order) = c.new_order(&[name]);
    let authz_url = order["authorizations"][0]
        .as_str()
        .expect("authz URL")
        .to_owned();
    let authz = json_of(&c.post(&authz_url, None));
    let chall = authz["challenges"]
        .as_array()
        .and_then(|cs| cs.iter().find(|ch| ch["type"] == "http-01"))
        .expect("an http-01 challenge")
        .clone();
    c.post(
        chall["url"].as_str().expect("challenge URL"),
        Some(&json!({})),
    )
    .expect(200, "challenge response");
    for _ in 0..100 {
        let authz = json_of(&c.post(&authz_url, None));
        if authz["status"] != "pending" {
            return (order_url, order, authz);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("authorization {authz_url} stayed pending");
}

/// The error of the authorization's http-01 challenge.
fn challenge_error(authz: &Value) -> Value {
    authz["challenges"]
        .as_array()
        .and_then(|cs| cs.iter().find(|ch| ch["type"] == "http-01"))
        .map(|ch| {
            assert_eq!(ch["status"], "invalid", "{ch}");
            ch["error"].clone()
        })
        .expect("the http-01 challenge")
}

#[test]
fn nothing_listening_is_a_connection_error_and_the_order_is_invalid() {
    let port = free_port();
    let gw = gateway(port);
    let mut c = Client::new(&gw, "");
    c.new_account(json!({})).expect(201, "newAccount");

    let (order_url, order, authz) = answer_and_wait(&c, "down.test");
    assert_eq!(authz["status"], "invalid", "{authz}");
    let error = challenge_error(&authz);
    assert_eq!(
        error["type"], "urn:ietf:params:acme:error:connection",
        "{error}"
    );
    assert_eq!(bad_input(&gw, "connection"), 1.0);
    assert!(logged(
        &gw,
        "acme challenge failed",
        &["down.test", "connection"]
    ));
    assert_eq!(json_of(&c.post(&order_url, None))["status"], "invalid");

    let csr = new_csr(
        &gw.work_dir,
        &unique("down"),
        KeyType::P256,
        "/CN=down.test",
        &["DNS:down.test"],
    );
    let der = std::fs::read(&csr.der).expect("CSR");
    expect_problem(&c.finalize(&order, &der), 403, "orderNotReady");
}

#[test]
fn a_wrong_key_authorization_is_an_incorrect_response() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding the challenge server");
    let port = listener.local_addr().expect("address").port();
    // Answers every request with a body that is not the key authorization.
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { break };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nwrong",
            );
        }
    });
    let gw = gateway(port);
    let mut c = Client::new(&gw, "");
    c.new_account(json!({})).expect(201, "newAccount");

    let (order_url, _, authz) = answer_and_wait(&c, "wrong.test");
    assert_eq!(authz["status"], "invalid", "{authz}");
    let error = challenge_error(&authz);
    assert_eq!(
        error["type"], "urn:ietf:params:acme:error:incorrectResponse",
        "{error}"
    );
    assert_eq!(bad_input(&gw, "incorrectResponse"), 1.0);
    assert!(logged(
        &gw,
        "acme challenge failed",
        &["wrong.test", "incorrectResponse"]
    ));
    assert_eq!(json_of(&c.post(&order_url, None))["status"], "invalid");
}
