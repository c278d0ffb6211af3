//! SCEP bad input against a running `enrollgate serve`: each case gets the right answer (HTTP
//! 400 when no CertRep can be formed, else a signed CertRep FAILURE with the right failInfo),
//! moves a SCEP refusal counter on /metrics, leaves nothing half-stored (the token and the
//! transactionID still work afterwards when the refusal was not about them), and the server
//! keeps answering.

mod common;
#[path = "common/scep.rs"]
mod scep;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Gateway, Metrics};
use enrollgate_scep::client::{seal_for, sign_envelope};
use enrollgate_scep::{ContentCipher, FailInfo, MessageType};
use scep::pki::{self, Requester};
use scep::{Scep, assert_failure, issued};

/// Every SCEP refusal counted on /metrics: the decoder's and the registrar's.
fn refusals(m: &Metrics, kind_or_reason: Option<(&str, &str)>) -> f64 {
    let mut labels = vec![("protocol", "scep")];
    labels.extend(kind_or_reason);
    let bad = m.sum("enrollgate_bad_input_total", &labels);
    let rejected = m.sum("enrollgate_rejections_total", &labels);
    bad + rejected
}

/// A device with a fresh token, ready to enrol on the default route.
struct Device {
    requester: Requester,
    csr: Vec<u8>,
    tid: String,
}

impl Device {
    fn new(gw: &Gateway, cn: &str) -> Self {
        let requester = Requester::new(cn);
        let (_, secret) = gw.token(&[]);
        let csr = requester.csr(cn, Some(&secret));
        Self {
            requester,
            csr,
            tid: pki::transaction_id(cn),
        }
    }

    /// The well-formed PKCSReq.
    fn pkcs_req(&self, s: &Scep<'_>) -> Vec<u8> {
        let id = self.requester.identity();
        pki::message(&id, &s.ra, MessageType::PkcsReq, &self.tid, &self.csr)
    }

    /// Enrols with the well-formed PKCSReq: the token and transactionID were left unused.
    fn enrols(&self, s: &Scep<'_>) {
        let id = self.requester.identity();
        issued(&s.exchange(&s.http(), &id, &self.pkcs_req(s)));
    }
}

/// Asserts that the server still serves GetCACaps.
fn still_answers(s: &Scep<'_>) {
    s.get(&s.http(), "GetCACaps")
        .expect(200, "GetCACaps afterwards");
}

#[test]
fn garbage_and_truncated_der_get_http_400() {
    let gw = Gateway::start("");
    let s = Scep::new(&gw);
    let device = Device::new(&gw, "garbage");
    let good = device.pkcs_req(&s);
    let mut random = vec![0; 3000];
    pki::rng(&mut random);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random bytes", random),
        ("text", b"hello, SCEP".to_vec()),
        ("indefinite length", vec![0x30, 0x80, 0, 0]),
        ("first 10 bytes", good[..10].to_vec()),
        ("first half", good[..good.len() / 2].to_vec()),
        ("all but the last byte", good[..good.len() - 1].to_vec()),
    ];
    let before = gw.metrics();
    for (what, body) in &cases {
        let reply = s.post(&s.http(), body);
        reply.expect(400, what);
    }
    // An empty body, and the GET form with a message that is not base64.
    s.post(&s.http(), b"").expect(400, "empty body");
    let url = format!("{}?operation=PKIOperation&message=%%%21", s.http());
    gw.request(&url).send().expect(400, "bad escape");
    let url = format!("{}?operation=PKIOperation&message=not*base64", s.http());
    gw.request(&url).send().expect(400, "not base64");
    let url = format!("{}?operation=Nonsense", s.http());
    gw.request(&url).send().expect(400, "unknown operation");

    let after = gw.metrics();
    let moved = refusals(&after, None) - refusals(&before, None);
    assert_eq!(moved, (cases.len() + 4) as f64);
    still_answers(&s);
    device.enrols(&s);
}

#[test]
fn a_signature_that_does_not_verify_is_bad_message_check() {
    let gw = Gateway::start("");
    let s = Scep::new(&gw);
    let device = Device::new(&gw, "forged");
    let mut forged = device.pkcs_req(&s);
    // The SignerInfo's RSA signature is the last 256 bytes of the message.
    let last = forged.len() - 10;
    forged[last] ^= 0x80;

    let before = gw.metrics();
    let id = device.requester.identity();
    let rep = s.exchange(&s.http(), &id, &forged);
    assert_failure(&rep, FailInfo::BadMessageCheck);
    assert_eq!(rep.transaction_id, device.tid);
    let kind = Some(("kind", "badMessageCheck"));
    assert_eq!(refusals(&gw.metrics(), kind) - refusals(&before, kind), 1.0);
    device.enrols(&s);
}

#[test]
fn an_envelope_for_another_ra_is_bad_message_check() {
    let gw = Gateway::start("");
    let s = Scep::new(&gw);
    let device = Device::new(&gw, "misaddressed");
    let other_ra = Requester::new("some other RA");
    let id = device.requester.identity();
    let msg = pki::message(
        &id,
        &other_ra.self_signed,
        MessageType::PkcsReq,
        &device.tid,
        &device.csr,
    );

    let before = gw.metrics();
    assert_failure(&s.exchange(&s.http(), &id, &msg), FailInfo::BadMessageCheck);
    let kind = Some(("kind", "badMessageCheck"));
    assert_eq!(refusals(&gw.metrics(), kind) - refusals(&before, kind), 1.0);
    still_answers(&s);
    device.enrols(&s);
}

#[test]
fn an_unknown_content_cipher_is_bad_alg() {
    let gw = Gateway::start("");
    let s = Scep::new(&gw);
    let device = Device::new(&gw, "odd-cipher");
    let mut envelope =
        seal_for(&s.ra, &device.csr, ContentCipher::Aes128Cbc, &mut pki::rng).expect("envelope");
    // aes128-CBC is 2.16.840.1.101.3.4.1.2; .127 names no cipher.
    let aes128 = [
        0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02,
    ];
    let at = envelope
        .windows(aes128.len())
        .position(|w| w == aes128)
        .expect("the AES-128-CBC identifier");
    envelope[at + aes128.len() - 1] = 0x7f;
    let id = device.requester.identity();
    let msg = sign_envelope(&id, &envelope, "19", &device.tid, &pki::nonce()).expect("signed");

    let before = gw.metrics();
    assert_failure(&s.exchange(&s.http(), &id, &msg), FailInfo::BadAlg);
    let kind = Some(("kind", "badAlg"));
    assert_eq!(refusals(&gw.metrics(), kind) - refusals(&before, kind), 1.0);
    device.enrols(&s);
}

#[test]
fn a_wrong_or_spent_challenge_is_bad_request() {
    let gw = Gateway::start("");
    let s = Scep::new(&gw);
    let device = Device::new(&gw, "challenged");
    let id = device.requester.identity();
    let reason = Some(("reason", "unauthenticated"));

    // Wrong: the transactionID is not claimed by the refusal, so it can be used again.
    let wrong = device
        .requester
        .csr("challenged", Some("not-a-token-secret"));
    let msg = pki::message(&id, &s.ra, MessageType::PkcsReq, &device.tid, &wrong);
    let before = gw.metrics();
    assert_failure(&s.exchange(&s.http(), &id, &msg), FailInfo::BadRequest);
    assert_eq!(
        refusals(&gw.metrics(), reason) - refusals(&before, reason),
        1.0
    );

    // No challenge at all, on a route that does not allow anonymous requests.
    let none = device.requester.csr("challenged", None);
    let msg = pki::message(&id, &s.ra, MessageType::PkcsReq, "no-challenge", &none);
    assert_failure(&s.exchange(&s.http(), &id, &msg), FailInfo::BadRequest);

    // The right challenge under the same transactionID works; the spent token then fails.
    device.enrols(&s);
    let tid = pki::transaction_id("again");
    let msg = pki::message(&id, &s.ra, MessageType::PkcsReq, &tid, &device.csr);
    assert_failure(&s.exchange(&s.http(), &id, &msg), FailInfo::BadRequest);
    assert_eq!(
        refusals(&gw.metrics(), reason) - refusals(&before, reason),
        3.0
    );
}

#[test]
fn a_renewal_signed_by_a_certificate_we_did_not_issue_is_refused() {
    let gw = Gateway::start("");
    let s = Scep::new(&gw);
    let device = Device::new(&gw, "impostor");
    let csr = device.requester.csr("impostor", None);
    let stranger = device.requester.certified_by_stranger("impostor");
    let signers = [
        ("self-signed", device.requester.identity()),
        ("another CA", device.requester.identity_with(&stranger)),
    ];
    let reason = Some(("reason", "unauthenticated"));
    let before = gw.metrics();
    for (what, signer) in &signers {
        let tid = pki::transaction_id("renew");
        let msg = pki::message(signer, &s.ra, MessageType::RenewalReq, &tid, &csr);
        let rep = s.exchange(&s.http(), signer, &msg);
        assert_failure(&rep, FailInfo::BadRequest);
        assert!(rep.certificates.is_empty(), "{what}");
    }
    assert_eq!(
        refusals(&gw.metrics(), reason) - refusals(&before, reason),
        2.0
    );
    device.enrols(&s);
}

#[test]
fn message_types_we_do_not_serve_are_bad_request() {
    let gw = Gateway::start("");
    let s = Scep::new(&gw);
    let device = Device::new(&gw, "wrong-type");
    let id = device.requester.identity();
    let envelope =
        seal_for(&s.ra, &device.csr, ContentCipher::Aes128Cbc, &mut pki::rng).expect("envelope");
    let before = gw.metrics();
    // 3 is CertRep, a server's own message; 99 and "abc" are no message type at all.
    for message_type in ["3", "99", "abc"] {
        let msg = sign_envelope(&id, &envelope, message_type, &device.tid, &pki::nonce())
            .expect("signed");
        let rep = s.exchange(&s.http(), &id, &msg);
        assert_failure(&rep, FailInfo::BadRequest);
    }
    let kind = Some(("kind", "badRequest"));
    assert_eq!(refusals(&gw.metrics(), kind) - refusals(&before, kind), 3.0);
    device.enrols(&s);
}

#[test]
fn huge_queries_and_bodies_are_refused_and_the_server_lives() {
    let gw = Gateway::start("");
    let s = Scep::new(&gw);
    let addr = gw.http_url.trim_start_matches("http://").to_owned();

    // 2 MiB of query string: refused by the HTTP layer before any SCEP code runs.
    let pad = "A".repeat(2 << 20);
    let status = raw_get(&addr, &format!("/scep?operation=GetCACaps&pad={pad}"));
    assert!(
        matches!(status, None | Some(400 | 413 | 414 | 431)),
        "2 MiB query: {status:?}"
    );
    still_answers(&s);

    // 100 KiB of message parameter: past the 64 KiB request target hyper accepts, answered
    // with a status (not a dropped connection) before any SCEP code runs.
    let before = gw.metrics();
    let query = |len: usize| format!("/scep?operation=PKIOperation&message={}", "*".repeat(len));
    let status = raw_get(&addr, &query(100 << 10));
    assert!(
        matches!(status, Some(414 | 431)),
        "100 KiB message parameter: {status:?}"
    );
    still_answers(&s);

    // 40 KiB: within what HTTP reads, refused by the SCEP parser (not base64).
    let status = raw_get(&addr, &query(40 << 10));
    assert_eq!(status, Some(400), "40 KiB message parameter");
    // A body over the configured limit (64 KiB): 413.
    let big = vec![0x30; 70 << 10];
    s.post(&s.http(), &big).expect(413, "body over the limit");
    let moved = refusals(&gw.metrics(), None) - refusals(&before, None);
    assert_eq!(moved, 2.0);
    still_answers(&s);
}

/// Sends `GET target` on a fresh connection and reads the status code; `None` when the
/// server closed or reset the connection without one.
fn raw_get(addr: &str, target: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let head = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    // The server may answer and close before reading everything: ignore write errors.
    let _ = stream.write_all(head.as_bytes());
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    let text = String::from_utf8_lossy(&reply);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}
