//! Interop: the real `openssl cmp` client enrolls (ir, MAC) against our server through a tiny
//! loopback HTTP responder, and accepts our ip and pkiConf. Skipped when `openssl` is absent.

#![expect(clippy::unwrap_used, reason = "a test fails by panicking")]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use enrollgate_cmp::{CmpServer, ServerConfig, Step, TransactionState};
use enrollgate_model::{Issued, Outcome, Secret};

fn vectors() -> String {
    format!("{}/tests/vectors", env!("CARGO_MANIFEST_DIR"))
}

fn pem(name: &str) -> Vec<u8> {
    der::pem::decode_vec(&std::fs::read(format!("{}/{name}", vectors())).unwrap())
        .unwrap()
        .1
}

/// Answers one CMP message: what the gateway's handler would do.
fn handle(
    server: &CmpServer,
    states: &mut HashMap<Vec<u8>, TransactionState>,
    body: &[u8],
) -> Vec<u8> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut rng = |buf: &mut [u8]| aws_lc_rs::rand::fill(buf).unwrap();
    let incoming = server.decode(body).unwrap();
    let tid = incoming.facts().transaction_id.clone().unwrap();
    let verified = server
        .verify_mac(&incoming, &Secret::new(b"insecure-test-secret".to_vec()))
        .unwrap();
    let prior = states.remove(&tid);
    let reply = match server.step(verified, prior, now, &mut rng).unwrap() {
        Step::Reply(reply) => reply,
        Step::Issue { pending, .. } => {
            let outcome = Outcome::Issued(Issued {
                certificate: pem("issued.pem"),
                chain: vec![pem("ca.pem")],
                serial: "01".into(),
                private_key: None,
            });
            server
                .reply_for_outcome(pending, &outcome, now, &mut rng)
                .unwrap()
        }
        other => panic!("unexpected step {other:?}"),
    };
    if let Some(state) = reply.state {
        states.insert(tid, state);
    }
    reply.der
}

fn serve_one(
    listener: &TcpListener,
    server: &CmpServer,
    states: &mut HashMap<Vec<u8>, TransactionState>,
) {
    let (stream, _) = listener.accept().unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).unwrap();
    let reply = handle(server, states, &body);
    let mut stream = stream;
    let head = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        enrollgate_cmp::http_content_type(),
        reply.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&reply).unwrap();
}

#[test]
fn openssl_client_accepts_our_ip_and_pkiconf() {
    assert!(
        Command::new("openssl").arg("version").output().is_ok(),
        "openssl is not installed: this interop test needs the real client"
    );
    let server = CmpServer::new(
        ServerConfig::new(""),
        &pem("server.key"),
        vec![pem("server.pem")],
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let out = std::env::temp_dir().join(format!("enrollgate-cmp-interop-{port}.pem"));
    let dir = vectors();
    let mut client = Command::new("openssl")
        .args([
            "cmp",
            "-server",
            &format!("127.0.0.1:{port}"),
            "-path",
            "pkix/",
            "-cmd",
            "ir",
        ])
        .args(["-ref", "token-1234", "-secret", "pass:insecure-test-secret"])
        .args([
            "-newkey",
            &format!("{dir}/newkey.key"),
            "-subject",
            "/CN=interop",
        ])
        .args(["-certout", out.to_str().unwrap()])
        .spawn()
        .unwrap();
    let mut states = HashMap::new();
    serve_one(&listener, &server, &mut states); // ir -> ip
    serve_one(&listener, &server, &mut states); // certConf -> pkiConf
    let status = client.wait().unwrap();
    assert!(status.success(), "openssl cmp failed: {status}");
    let written = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    assert_eq!(der::pem::decode_vec(&written).unwrap().1, pem("issued.pem"));
    assert!(states.values().all(TransactionState::is_finished));
}
