//! EST refusals end to end: what a running `enrollgate serve` answers to bad, unauthorized or
//! slow clients, driven by the real `curl` and `openssl` tools (and a raw TCP socket for the
//! slow client). Each refusal must have its status, bump a refusal counter on `/metrics`,
//! issue nothing, and leave the enrollment token unspent.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Curl, Gateway, KeyType, Metrics, enroll, new_csr, openssl, path_str, write_base64};

/// A profile that only takes `CN=dev-*` subjects and DNS names under example.com.
const STRICT_PROFILE: &str = r#"
[profiles.device]
subject_pattern = "CN=dev-*"
san_dns = ["*.example.com"]
"#;

/// Short limits for the size and slow-client tests.
const TIGHT_LIMITS: &str = "[limits]\nmax_body_bytes = 4096\nheader_timeout_secs = 1\n";

#[test]
fn broken_base64_is_a_bad_request() {
    let gw = Gateway::start("");
    let token = gw.token(&[]);
    let body = gw.path("junk.b64");
    std::fs::write(&body, "this is %%% not base64 at all\n").unwrap();
    refused(
        &gw,
        gw.est("simpleenroll").token(&token).csr(&body),
        400,
        "broken base64",
    );
    token_still_works(&gw, &token);
}

#[test]
fn der_that_is_not_a_csr_is_a_bad_request() {
    let gw = Gateway::start("");
    let token = gw.token(&[]);
    // A certificate is well-formed DER, but not a PKCS#10.
    let der = gw.path("root.der");
    let root = gw.root_pem();
    openssl(&[
        "x509",
        "-in",
        path_str(&root),
        "-outform",
        "DER",
        "-out",
        path_str(&der),
    ]);
    let body = gw.path("cert-as-csr.b64");
    write_base64(&body, &std::fs::read(&der).unwrap());
    refused(
        &gw,
        gw.est("simpleenroll").token(&token).csr(&body),
        400,
        "a certificate",
    );

    // Raw DER that is a bare INTEGER.
    let body = gw.path("integer.b64");
    write_base64(&body, &[0x02, 0x01, 0x05]);
    refused(
        &gw,
        gw.est("simpleenroll").token(&token).csr(&body),
        400,
        "an INTEGER",
    );
    token_still_works(&gw, &token);
}

#[test]
fn csr_whose_signature_does_not_verify_is_a_bad_request() {
    let gw = Gateway::start("");
    let token = gw.token(&[]);
    let csr = new_csr(&gw.work_dir, "forged", KeyType::P256, "/CN=forged", &[]);
    let mut der = std::fs::read(&csr.der).unwrap();
    // The last byte is inside the ECDSA signature's s value: still DER, no longer valid.
    *der.last_mut().unwrap() ^= 0x01;
    let body = gw.path("forged.b64");
    write_base64(&body, &der);
    let reply = refused(
        &gw,
        gw.est("simpleenroll").token(&token).csr(&body),
        400,
        "bad sig",
    );
    assert!(reply.text().contains("signature"), "{}", reply.text());
    token_still_works(&gw, &token);
}

#[test]
fn rsa_1024_is_a_bad_request() {
    let gw = Gateway::start("");
    let token = gw.token(&[]);
    let csr = new_csr(&gw.work_dir, "weak", KeyType::Rsa(1024), "/CN=weak", &[]);
    refused(
        &gw,
        gw.est("simpleenroll").token(&token).csr(&csr.b64),
        400,
        "RSA-1024",
    );
    token_still_works(&gw, &token);
}

#[test]
fn subject_outside_the_profile_is_forbidden() {
    let gw = Gateway::start(STRICT_PROFILE);
    let token = gw.token(&[]);
    let csr = new_csr(&gw.work_dir, "prod", KeyType::P256, "/CN=prod-1", &[]);
    refused(
        &gw,
        gw.est("simpleenroll").token(&token).csr(&csr.b64),
        403,
        "subject",
    );
    token_still_works(&gw, &token);
}

#[test]
fn san_outside_the_profile_is_forbidden() {
    let gw = Gateway::start(STRICT_PROFILE);
    let token = gw.token(&[]);
    let csr = new_csr(
        &gw.work_dir,
        "evil",
        KeyType::P256,
        "/CN=dev-1",
        &["DNS:evil.org"],
    );
    refused(
        &gw,
        gw.est("simpleenroll").token(&token).csr(&csr.b64),
        403,
        "SAN",
    );
    // One good name does not carry a bad one.
    let mixed = ["DNS:a.example.com", "DNS:evil.org"];
    let csr = new_csr(&gw.work_dir, "mixed", KeyType::P256, "/CN=dev-1", &mixed);
    refused(
        &gw,
        gw.est("simpleenroll").token(&token).csr(&csr.b64),
        403,
        "mixed SANs",
    );
    token_still_works(&gw, &token);
}

#[test]
fn wrong_token_secret_is_unauthorized() {
    let gw = Gateway::start("");
    let token = gw.token(&[]);
    let csr = new_csr(&gw.work_dir, "c", KeyType::P256, "/CN=c", &[]);
    let wrong = (token.0.clone(), "not-the-secret".to_owned());
    let reply = refused(
        &gw,
        gw.est("simpleenroll").token(&wrong).csr(&csr.b64),
        401,
        "secret",
    );
    assert!(reply.header("www-authenticate").is_some());
    let unknown = ("tok0000000000000000".to_owned(), token.1.clone());
    refused(
        &gw,
        gw.est("simpleenroll").token(&unknown).csr(&csr.b64),
        401,
        "unknown id",
    );
    let bearer = gw
        .est("simpleenroll")
        .arg("-H")
        .arg("Authorization: Bearer abc")
        .csr(&csr.b64);
    refused(&gw, bearer, 401, "not Basic");
    token_still_works(&gw, &token);
}

#[test]
fn spent_token_is_unauthorized() {
    let gw = Gateway::start("");
    let token = gw.token(&[]);
    token_still_works(&gw, &token);
    let csr = new_csr(&gw.work_dir, "again", KeyType::P256, "/CN=again", &[]);
    refused(
        &gw,
        gw.est("simpleenroll").token(&token).csr(&csr.b64),
        401,
        "spent",
    );
}

#[test]
fn expired_token_is_unauthorized() {
    let gw = Gateway::start("");
    let token = gw.token(&["--ttl", "1s"]);
    let csr = new_csr(&gw.work_dir, "late", KeyType::P256, "/CN=late", &[]);
    std::thread::sleep(Duration::from_secs(2));
    refused(
        &gw,
        gw.est("simpleenroll").token(&token).csr(&csr.b64),
        401,
        "expired",
    );
}

#[test]
fn unknown_label_is_not_found() {
    let gw = Gateway::start("");
    let token = gw.token(&[]);
    let csr = new_csr(&gw.work_dir, "c", KeyType::P256, "/CN=c", &[]);
    // HTTP/1.1 with a small body: the test below covers HTTP/2 and bodies still in flight.
    let call = gw.est("nolabel/simpleenroll").arg("--http1.1");
    refused(&gw, call.token(&token).csr(&csr.b64), 404, "label");
    refused(&gw, gw.est("simpleenrol"), 404, "unknown operation");
    token_still_works(&gw, &token);
}

/// A refusal sent before the request body is read must still reach the client: over HTTP/2
/// the stream is reset under it, over HTTP/1.1 the connection is closed with unread data.
/// Either loses the 404 now and then, so the request is repeated.
#[test]
fn unknown_label_reply_reaches_a_client_that_is_still_sending() {
    let gw = Gateway::start("");
    let csr = new_csr(&gw.work_dir, "c", KeyType::P256, "/CN=c", &[]);
    let big = gw.path("big.b64");
    write_base64(&big, &[0x30; 45_000]);
    let mut failures = Vec::new();
    let attempts = [("--http2", &csr.b64); 20]
        .into_iter()
        .chain([("--http1.1", &big); 10]);
    for (version, body) in attempts {
        let call = gw.est("nolabel/simpleenroll").arg(version).csr(body);
        match call.try_send() {
            Ok(reply) => {
                reply.expect(404, "unknown label");
            }
            Err(e) => failures.push(format!("{version}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 30 clients lost the 404:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn oversized_body_is_payload_too_large() {
    let gw = Gateway::start(TIGHT_LIMITS);
    let token = gw.token(&[]);
    let body = gw.path("huge.b64");
    write_base64(&body, &[0x30; 6000]);
    refused(
        &gw,
        gw.est("simpleenroll").token(&token).csr(&body),
        413,
        "oversized",
    );
    token_still_works(&gw, &token);
}

#[test]
fn wrong_method_is_not_allowed() {
    let gw = Gateway::start("");
    let token = gw.token(&[]);
    refused(
        &gw,
        gw.est("simpleenroll").token(&token),
        405,
        "GET simpleenroll",
    );
    let csr = new_csr(&gw.work_dir, "c", KeyType::P256, "/CN=c", &[]);
    refused(&gw, gw.est("cacerts").csr(&csr.b64), 405, "POST cacerts");
    token_still_works(&gw, &token);
}

#[test]
fn wrong_content_type_is_unsupported() {
    let gw = Gateway::start("");
    let token = gw.token(&[]);
    let csr = new_csr(&gw.work_dir, "c", KeyType::P256, "/CN=c", &[]);
    let call = gw
        .est("simpleenroll")
        .token(&token)
        .body(&csr.b64, "text/plain");
    refused(&gw, call, 415, "text/plain");
    token_still_works(&gw, &token);
}

#[test]
fn est_over_plain_http_is_refused_and_counted() {
    let gw = Gateway::start("");
    let token = gw.token(&[]);
    let csr = new_csr(&gw.work_dir, "c", KeyType::P256, "/CN=c", &[]);
    let url = format!("{}/.well-known/est/simpleenroll", gw.http_url);
    let call = gw.request(&url).token(&token).csr(&csr.b64);
    refused(&gw, call, 403, "EST over plain HTTP");
    token_still_works(&gw, &token);
}

#[test]
fn slow_headers_on_plain_http_are_cut_after_the_header_timeout() {
    let gw = Gateway::start(TIGHT_LIMITS);
    let mut stream = TcpStream::connect(authority(&gw.http_url)).unwrap();
    stream
        .write_all(b"GET /crl HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaa")
        .unwrap();
    let started = Instant::now();
    let closed = wait_for_close(&mut stream, Duration::from_secs(10));
    assert!(closed, "the server kept a half-sent request open for 10 s");
    assert_cut_by_timeout(started.elapsed());
}

#[test]
fn slow_headers_on_https_are_cut_after_the_header_timeout() {
    let gw = Gateway::start(TIGHT_LIMITS);
    let partial = b"GET /.well-known/est/cacerts HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a";
    let elapsed = s_client_until_closed(&gw, partial, Duration::from_secs(10))
        .expect("the server kept a half-sent request open for 10 s");
    assert_cut_by_timeout(elapsed);
}

#[test]
fn silent_tls_handshake_is_cut_after_the_header_timeout() {
    let gw = Gateway::start(TIGHT_LIMITS);
    let before = gw.metrics();
    let mut stream = TcpStream::connect(authority(&gw.https_url)).unwrap();
    let started = Instant::now();
    assert!(
        wait_for_close(&mut stream, Duration::from_secs(10)),
        "a connection that never sent a ClientHello stayed open for 10 s"
    );
    assert_cut_by_timeout(started.elapsed());
    let refused = "enrollgate_connections_refused_total";
    let labels = [("listener", "https"), ("cause", "timeout")];
    assert!(gw.metrics().sum(refused, &labels) > before.sum(refused, &labels));
}

/// A client that sends half its headers is cut (see the tests above) but nothing counts it.
#[test]
fn header_timeout_cut_is_counted() {
    let gw = Gateway::start(TIGHT_LIMITS);
    let before = gw.metrics();
    let mut stream = TcpStream::connect(authority(&gw.http_url)).unwrap();
    stream
        .write_all(b"GET /crl HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    assert!(wait_for_close(&mut stream, Duration::from_secs(10)));
    let after = gw.metrics();
    let refused = "enrollgate_connections_refused_total";
    assert!(
        after.sum(refused, &[("listener", "http")]) > before.sum(refused, &[("listener", "http")]),
        "no enrollgate_connections_refused_total series moved for the cut connection:\n{}",
        metric_lines(&gw, refused)
    );
}

/// A client that connects and never sends a byte must be cut like one that sends half its
/// headers; otherwise `limits.max_connections` idle sockets lock everyone out.
#[test]
fn silent_connections_are_cut_after_the_header_timeout() {
    let gw = Gateway::start(TIGHT_LIMITS);
    let mut plain = TcpStream::connect(authority(&gw.http_url)).unwrap();
    let started = Instant::now();
    assert!(
        wait_for_close(&mut plain, Duration::from_secs(6)),
        "plain HTTP: a connection that sent nothing was still open after 6 s \
         (header_timeout_secs = 1)"
    );
    assert_cut_by_timeout(started.elapsed());

    let elapsed = s_client_until_closed(&gw, b"", Duration::from_secs(6)).expect(
        "HTTPS: a connection that finished the TLS handshake and sent nothing was still open \
         after 6 s (header_timeout_secs = 1)",
    );
    assert_cut_by_timeout(elapsed);
}

// ---------------------------------------------------------------------------------------------

/// Sends `call`, asserts `status`, a moved refusal counter and no issuance; returns the reply.
fn refused(gw: &Gateway, call: Curl<'_>, status: u16, what: &str) -> common::Reply {
    let before = gw.metrics();
    let reply = call.send();
    reply.expect(status, what);
    let after = gw.metrics();
    assert!(
        after.est_refusals() > before.est_refusals(),
        "{what}: neither enrollgate_rejections_total nor enrollgate_bad_input_total moved \
         for protocol est"
    );
    assert_eq!(
        issued(&after),
        issued(&before),
        "{what}: something was issued"
    );
    reply
}

fn issued(m: &Metrics) -> f64 {
    m.sum("enrollgate_certificates_issued_total", &[])
}

/// The refused requests took no use of the token: it still enrolls a good CSR.
fn token_still_works(gw: &Gateway, token: &(String, String)) {
    let name = common::unique("good");
    let sans = ["DNS:ok.example.com"];
    let csr = new_csr(&gw.work_dir, &name, KeyType::P256, "/CN=dev-ok", &sans);
    enroll(gw, "simpleenroll", token, &csr);
}

/// `http://127.0.0.1:1` -> `127.0.0.1:1`.
fn authority(url: &str) -> String {
    url.split_once("://").map_or(url, |(_, a)| a).to_owned()
}

/// Reads until the peer closes (true) or `limit` passes (false); a reset counts as closed.
fn wait_for_close(stream: &mut TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).expect("read timeout");
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(e) => panic!("reading from the gateway: {e}"),
        }
    }
}

/// Runs `openssl s_client` to the HTTPS listener, writes `partial` and keeps its stdin open;
/// returns how long after that the server closed the connection, or `None` after `limit`.
fn s_client_until_closed(gw: &Gateway, partial: &[u8], limit: Duration) -> Option<Duration> {
    common::require_tool("openssl");
    let root = gw.root_pem();
    let mut child = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", &authority(&gw.https_url)])
        .args(["-CAfile", path_str(&root)])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting openssl s_client");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(partial).expect("writing to s_client");
    stdin.flush().expect("flushing s_client's stdin");
    let started = Instant::now();
    let result = loop {
        if child.try_wait().expect("polling s_client").is_some() {
            break Some(started.elapsed());
        }
        if started.elapsed() > limit {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    drop(stdin);
    result
}

/// The connection was cut by the 1-second header timeout, not refused at once.
fn assert_cut_by_timeout(elapsed: Duration) {
    assert!(
        elapsed >= Duration::from_millis(800),
        "closed after {elapsed:?}, before the 1 s header timeout"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "closed after {elapsed:?}, long after the 1 s header timeout"
    );
}

fn metric_lines(gw: &Gateway, name: &str) -> String {
    let reply = gw.request(&format!("{}/metrics", gw.admin_url)).send();
    reply
        .text()
        .lines()
        .filter(|l| l.contains(name))
        .collect::<Vec<_>>()
        .join("\n")
}
