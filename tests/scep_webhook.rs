//! SCEP with challenges checked by an approval webhook, end to end: the real `scepclient`
//! enrolls on a route whose `auth` is `webhook`; a small HTTP server in this test plays the
//! device manager that issued the challenge. It sees the challenge, the subject and the CSR,
//! and allows or refuses; a refusal, an answer it cannot parse and a silent webhook all
//! refuse the request (the webhook fails closed), count, and issue nothing.

#![expect(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;
#[path = "common/scep.rs"]
mod scep;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Gateway, cert_subject, verify_cert};
use scep::{Scep, ScepClient, output_text};

/// What the fake device manager does with a request.
#[derive(Clone, Copy)]
enum Mode {
    /// Allows the challenge `letmein`, refuses any other.
    Judge,
    /// Answers 200 with a body that is not the expected JSON.
    Garbage,
    /// Never answers.
    Silent,
}

/// A one-thread HTTP server that records every request body it gets.
struct Hook {
    url: String,
    seen: Arc<Mutex<Vec<serde_json::Value>>>,
}

fn start_hook(mode: Mode) -> Hook {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/approve", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let allow = request["challenge"] == "letmein";
            record.lock().unwrap().push(request);
            let answer = match mode {
                Mode::Judge if allow => r#"{"allow":true}"#.to_owned(),
                Mode::Judge => r#"{"allow":false,"reason":"unknown challenge"}"#.to_owned(),
                Mode::Garbage => "<html>oops</html>".to_owned(),
                Mode::Silent => {
                    std::thread::sleep(Duration::from_secs(30));
                    continue;
                }
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    Hook { url, seen }
}

fn config(url: &str) -> String {
    format!(
        r#"
[profiles.device]

[[routes]]
label = ""
profile = "device"
auth = ["webhook", "certificate"]
webhook = {{ url = "{url}", timeout_secs = 2 }}
"#
    )
}

fn issued(gw: &Gateway) -> f64 {
    gw.metrics()
        .sum("enrollgate_certificates_issued_total", &[])
}

fn refusals(gw: &Gateway) -> f64 {
    gw.metrics().sum(
        "enrollgate_bad_input_total",
        &[("protocol", "webhook"), ("kind", "refused")],
    )
}

#[test]
fn the_webhook_decides_scepclient_challenges() {
    let hook = start_hook(Mode::Judge);
    let gw = Gateway::start(&config(&hook.url));
    let s = Scep::new(&gw);

    // A challenge the device manager knows: enrolled.
    let client = ScepClient::new(&s, &s.http(), "hooked-1");
    let out = client.run(&["-challenge", "letmein"]);
    assert!(out.status.success(), "enrol: {}", output_text(&out));
    verify_cert(&gw, &client.cert());
    assert!(cert_subject(&client.cert()).contains("CN=hooked-1"));
    {
        let seen = hook.seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        let asked = &seen[0];
        assert_eq!(asked["protocol"], "scep");
        assert_eq!(asked["operation"], "enroll");
        assert_eq!(asked["requester"], "webhook");
        assert!(
            asked["subject"]
                .as_str()
                .unwrap()
                .starts_with("CN=hooked-1,"),
            "{asked}"
        );
        assert!(
            asked["csr"].as_str().is_some_and(|c| c.len() > 100),
            "{asked}"
        );
    }
    assert_eq!(issued(&gw), 1.0);

    // A challenge it does not know: refused, counted, nothing issued, and the challenge
    // never reaches the gateway's log.
    let other = ScepClient::new(&s, &s.http(), "hooked-2");
    let out = other.run(&["-challenge", "guessed-wrong"]);
    assert!(!out.status.success(), "refused: {}", output_text(&out));
    assert_eq!(issued(&gw), 1.0);
    assert_eq!(refusals(&gw), 1.0);
    assert_eq!(hook.seen.lock().unwrap().len(), 2);
    let log = gw.log();
    assert!(log.contains("webhook refused the request"), "{log}");
    assert!(!log.contains("guessed-wrong") && !log.contains("letmein"));
}

#[test]
fn an_unreadable_or_silent_webhook_refuses() {
    for mode in [Mode::Garbage, Mode::Silent] {
        let hook = start_hook(mode);
        let gw = Gateway::start(&config(&hook.url));
        let s = Scep::new(&gw);
        let client = ScepClient::new(&s, &s.http(), "hooked-3");
        let out = client.run(&["-challenge", "letmein"]);
        assert!(!out.status.success(), "fails closed: {}", output_text(&out));
        assert_eq!(issued(&gw), 0.0);
        assert_eq!(refusals(&gw), 1.0);
        assert_eq!(hook.seen.lock().unwrap().len(), 1);
    }
}

#[test]
fn check_refuses_a_webhook_route_without_a_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[profiles.device]\n[[routes]]\nlabel = \"\"\nprofile = \"device\"\nauth = [\"webhook\"]\n",
    )
    .unwrap();
    let out = common::run_unchecked(
        std::process::Command::new(common::BIN)
            .args(["check", "--config"])
            .arg(&bad),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "check accepted it: {stderr}");
    assert!(stderr.contains("allows webhook but sets no"), "{stderr}");
}

#[test]
fn the_example_configuration_passes_check() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/scep-webhook.toml");
    let out = common::run_unchecked(
        std::process::Command::new(common::BIN)
            .args(["check", "--config"])
            .arg(example),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
