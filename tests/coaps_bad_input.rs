//! Bad input on the CoAPs listener: DTLS hellos without a valid cookie, a handshake that
//! stalls, a flood of handshakes and sessions from many loopback addresses, and inside a
//! session malformed CoAP, block-wise transfers out of sequence or too large, unknown content
//! formats and garbage EST and CMP payloads.
//!
//! Each case checks what the peer gets back (a HelloVerifyRequest, a CoAP code, a Reset, or
//! nothing), the counter that records it, the debug line, and that the gateway still serves
//! afterwards. Limits are asserted through the gateway's gauges and counters, never through
//! elapsed time; the polling loops below have deadlines only so that a broken gateway fails
//! the test instead of hanging it.

#![expect(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;
#[path = "common/coaps.rs"]
mod kit;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::{Gateway, Metrics};
use kit::{Auth, Client, Message, code, kind, opt};

/// The first datagram of `coap-client-openssl` (see protocols/coap/tests/vectors/README.md).
const HELLO: &[u8] = include_bytes!("../protocols/coap/tests/vectors/client_hello_no_cookie.bin");

const RECORD_HEADER: usize = 13;
const HANDSHAKE_HEADER: usize = 12;

fn addr(gw: &Gateway) -> SocketAddr {
    gw.coaps_addr.parse().unwrap()
}

fn loopback(a: u8, b: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, a, b))
}

fn events(m: &Metrics, event: &str) -> f64 {
    m.sum(
        "enrollgate_transport_events_total",
        &[("transport", "coaps"), ("event", event)],
    )
}

fn active(m: &Metrics, state: &str) -> f64 {
    m.sum(
        "enrollgate_transport_active",
        &[("transport", "coaps"), ("state", state)],
    )
}

fn bad_input(m: &Metrics, protocol: &str, what: &str) -> f64 {
    m.sum(
        "enrollgate_bad_input_total",
        &[("protocol", protocol), ("kind", what)],
    )
}

/// Polls the metrics until `done` holds; panics with `what` after 30 s.
fn wait_for(gw: &Gateway, what: &str, done: impl Fn(&Metrics) -> bool) -> Metrics {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = gw.metrics();
        if done(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "{what}: {m:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The gateway's log without terminal colour sequences.
fn plain_log(gw: &Gateway) -> String {
    kit::strip_ansi(&gw.log())
}

/// A plain UDP socket on `local`, connected to the gateway.
fn raw(gw: &Gateway, local: IpAddr) -> UdpSocket {
    let s = UdpSocket::bind(SocketAddr::new(local, 0)).unwrap();
    s.connect(addr(gw)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s
}

fn recv(s: &UdpSocket) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    let n = s.recv(&mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// The handshake message type of the first record (3: HelloVerifyRequest, 2: ServerHello).
fn handshake_type(datagram: &[u8]) -> Option<u8> {
    (datagram.first() == Some(&22))
        .then(|| datagram.get(RECORD_HEADER).copied())
        .flatten()
}

/// The cookie of a HelloVerifyRequest (RFC 6347 4.2.1).
fn hvr_cookie(datagram: &[u8]) -> Vec<u8> {
    let at = RECORD_HEADER + HANDSHAKE_HEADER + 2;
    let len = usize::from(datagram[at]);
    datagram[at + 1..at + 1 + len].to_vec()
}

/// The client's second ClientHello: `HELLO` with `cookie`, record and message sequence 1.
fn with_cookie(cookie: &[u8]) -> Vec<u8> {
    let body = RECORD_HEADER + HANDSHAKE_HEADER;
    let sid_len = usize::from(HELLO[body + 34]);
    let cookie_at = body + 35 + sid_len;
    let mut out = HELLO[..cookie_at].to_vec();
    out.push(u8::try_from(cookie.len()).unwrap());
    out.extend_from_slice(cookie);
    out.extend_from_slice(&HELLO[cookie_at + 1..]);
    let record_len = out.len() - RECORD_HEADER;
    let msg_len = u32::try_from(record_len - HANDSHAKE_HEADER)
        .unwrap()
        .to_be_bytes();
    out[10] = 1;
    out[11..13].copy_from_slice(&u16::try_from(record_len).unwrap().to_be_bytes());
    out[14..17].copy_from_slice(&msg_len[1..]);
    out[17..19].copy_from_slice(&[0, 1]);
    out[22..25].copy_from_slice(&msg_len[1..]);
    out
}

/// Does the cookie exchange from `s` and sends the cookie-bearing hello.
fn send_hello_with_cookie(s: &UdpSocket) {
    s.send(HELLO).unwrap();
    let hvr = recv(s).expect("a HelloVerifyRequest");
    assert_eq!(handshake_type(&hvr), Some(3), "HelloVerifyRequest");
    s.send(&with_cookie(&hvr_cookie(&hvr))).unwrap();
}

/// The gateway process's resident memory in KiB, from /proc.
fn gateway_rss_kib(gw: &Gateway) -> u64 {
    let config = gw.config_path.display().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().map_while(Result::ok) {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if !(cmdline.contains("serve") && cmdline.contains(&config)) {
            continue;
        }
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        return line.split_whitespace().nth(1).unwrap().parse().unwrap();
    }
    panic!("no gateway process for {config}");
}

/// An anonymous DTLS session (no client certificate) that trusts the gateway's root.
fn session(gw: &Gateway) -> Client {
    let ctx = kit::context(Some(&gw.root_pem()), &Auth::Anonymous);
    Client::connect(addr(gw), &ctx, Duration::from_secs(10)).unwrap()
}

/// Asserts that the gateway still answers discovery over a new session and never panicked.
fn still_serving(gw: &Gateway) {
    let mut c = session(gw);
    let reply = c
        .request(kit::GET, "/.well-known/core", &[], &[], 6)
        .unwrap();
    assert_eq!(reply.code_str(), "2.05");
    c.close();
    assert!(!gw.log().contains("panicked"), "the gateway panicked");
}

#[test]
fn hellos_without_a_valid_cookie_get_a_hello_verify_request_and_no_state() {
    let gw = Gateway::start("");
    let s = raw(&gw, loopback(0, 1));

    // No cookie: a HelloVerifyRequest that repeats the record sequence number.
    s.send(HELLO).unwrap();
    let hvr = recv(&s).expect("a HelloVerifyRequest");
    assert_eq!(handshake_type(&hvr), Some(3));
    assert_eq!(&hvr[5..11], &HELLO[5..11]);
    let cookie = hvr_cookie(&hvr);
    assert_eq!(cookie.len(), 32);

    // A forged cookie, and a valid cookie replayed from another address: another
    // HelloVerifyRequest each, counted as bad cookies.
    s.send(&with_cookie(&[0u8; 32])).unwrap();
    assert_eq!(handshake_type(&recv(&s).unwrap()), Some(3));
    let other = raw(&gw, loopback(0, 2));
    other.send(&with_cookie(&cookie)).unwrap();
    assert_eq!(handshake_type(&recv(&other).unwrap()), Some(3));

    // Not a ClientHello at all: dropped without an answer.
    s.send(b"\x17\xfe\xfd\x00\x01garbage").unwrap();
    assert!(recv(&s).is_none(), "no answer to a stray record");

    let m = gw.metrics();
    assert_eq!(events(&m, "hello_verify"), 3.0);
    assert_eq!(events(&m, "bad_cookie"), 2.0);
    assert_eq!(events(&m, "no_session"), 1.0);
    assert_eq!(active(&m, "handshakes") + active(&m, "sessions"), 0.0);
    let log = plain_log(&gw);
    assert!(
        log.contains("coaps ClientHello with an invalid cookie"),
        "{log}"
    );
    assert!(log.contains("coaps datagram without session dropped"));

    // The right cookie from the right address starts the handshake: a ServerHello.
    let reply = s.send(&with_cookie(&cookie)).map(|_| recv(&s)).unwrap();
    assert_eq!(
        reply.as_deref().and_then(handshake_type),
        Some(2),
        "ServerHello"
    );
    still_serving(&gw);
}

#[test]
fn a_stalled_handshake_is_cut_at_the_deadline() {
    let gw = Gateway::start("[coaps]\nhandshake_timeout_secs = 1\n");
    let s = raw(&gw, loopback(0, 1));
    send_hello_with_cookie(&s);
    let flight = recv(&s).expect("the server's first flight");
    assert_eq!(handshake_type(&flight), Some(2), "ServerHello");

    // The client never answers: the session task ends at the handshake deadline.
    let m = wait_for(&gw, "handshake cut", |m| {
        events(m, "handshake_timeout") == 1.0 && active(m, "handshakes") == 0.0
    });
    assert_eq!(active(&m, "sessions"), 0.0);
    assert!(plain_log(&gw).contains("coaps handshake timed out"));
    still_serving(&gw);
}

#[test]
fn a_handshake_flood_from_many_addresses_stays_within_the_caps() {
    let gw = Gateway::start(
        "[coaps]\nmax_handshakes = 4\nmax_sessions = 6\nhandshake_timeout_secs = 5\n",
    );
    still_serving(&gw);
    let rss_before = gateway_rss_kib(&gw);

    // 5000 cookie-less hellos from 250 addresses: answered statelessly, nothing kept.
    let flooders: Vec<UdpSocket> = (1..=250).map(|i| raw(&gw, loopback(1, i))).collect();
    for _ in 0..20 {
        for s in &flooders {
            s.send(HELLO).unwrap();
        }
        // Paced so that the loopback socket buffers, not the gateway, set the loss.
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut answered = 0;
    let mut quiet_rounds = 0;
    while quiet_rounds < 3 {
        let before = answered;
        for s in &flooders {
            s.set_nonblocking(true).unwrap();
            while let Some(d) = recv(s) {
                answered += usize::from(handshake_type(&d) == Some(3));
            }
        }
        quiet_rounds = if answered == before {
            quiet_rounds + 1
        } else {
            0
        };
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(answered >= 2500, "HelloVerifyRequests received: {answered}");
    let m = gw.metrics();
    assert!(events(&m, "hello_verify") >= answered as f64);
    assert_eq!(active(&m, "handshakes") + active(&m, "sessions"), 0.0);
    let grown = gateway_rss_kib(&gw).saturating_sub(rss_before);
    assert!(
        grown < 8 * 1024,
        "the hello flood grew the gateway by {grown} KiB"
    );
    drop(flooders);

    // 40 addresses complete the cookie exchange and stall: at most 4 handshakes run, the
    // rest are refused before any DTLS state exists.
    let stallers: Vec<UdpSocket> = (1..=40).map(|i| raw(&gw, loopback(2, i))).collect();
    for s in &stallers {
        send_hello_with_cookie(s);
        let m = gw.metrics();
        assert!(active(&m, "handshakes") <= 4.0, "handshake cap: {m:?}");
    }
    let m = gw.metrics();
    assert_eq!(events(&m, "handshake_limit"), 36.0);
    let m = wait_for(&gw, "stalled handshakes cut", |m| {
        active(m, "handshakes") == 0.0 && events(m, "handshake_timeout") == 4.0
    });
    assert_eq!(active(&m, "sessions"), 0.0);
    assert!(plain_log(&gw).contains("coaps handshake limit reached"));

    // Ten real clients from ten addresses: six sessions at most; the others get no
    // handshake at all.
    let ctx = kit::context(Some(&gw.root_pem()), &Auth::Anonymous);
    let server = addr(&gw);
    let attempts: Vec<_> = (1..=10)
        .map(|i| {
            let ctx = ctx.clone();
            std::thread::spawn(move || {
                Client::connect_from(loopback(3, i), server, &ctx, Duration::from_secs(4)).ok()
            })
        })
        .collect();
    let clients: Vec<Client> = attempts
        .into_iter()
        .filter_map(|t| t.join().unwrap())
        .collect();
    let m = gw.metrics();
    assert_eq!(clients.len(), 6, "the session cap admits six");
    assert_eq!(active(&m, "sessions"), 6.0);
    assert!(events(&m, "session_limit") >= 4.0, "{m:?}");

    // Closing them frees the places.
    for c in clients {
        c.close();
    }
    wait_for(&gw, "sessions closed", |m| active(m, "sessions") == 0.0);
    still_serving(&gw);
}

#[test]
fn malformed_coap_is_dropped_reset_or_refused() {
    let gw = Gateway::start("");
    let mut c = session(&gw);
    let wait = Duration::from_millis(500);

    // Shorter than the header, and a wrong version: dropped silently.
    c.send_raw(&[0x40, 0x01]).unwrap();
    assert_eq!(c.recv_raw(wait), None);
    c.send_raw(&[0x80, 0x01, 0x12, 0x34]).unwrap();
    assert_eq!(c.recv_raw(wait), None);

    // A Confirmable message with the reserved token length 9: Reset.
    c.send_raw(&[0x49, 0x01, 0x00, 0x07, 1, 2, 3, 4, 5, 6, 7, 8, 9])
        .unwrap();
    let rst = Message::decode(&c.recv_raw(wait).unwrap()).unwrap();
    assert_eq!((rst.kind, rst.mid, rst.code), (kind::RST, 7, 0));

    // An option header with the reserved length nibble 15: Reset.
    c.send_raw(&[0x40, 0x01, 0x00, 0x08, 0xbf, 0x00]).unwrap();
    let rst = Message::decode(&c.recv_raw(wait).unwrap()).unwrap();
    assert_eq!((rst.kind, rst.mid), (kind::RST, 8));

    // An unknown critical option (9): 4.02 Bad Option.
    let mid = c.mid();
    let msg =
        Message::request(kind::CON, kit::GET, mid, &[1], "/.well-known/core").with_option(9, b"x");
    let reply = c.exchange(&msg, Duration::from_secs(10)).unwrap();
    assert_eq!(reply.code_str(), "4.02");

    // An unknown method code (0.09): 4.05.
    let mid = c.mid();
    let mut msg = Message::request(kind::CON, kit::GET, mid, &[2], "/.well-known/core");
    msg.code = 9;
    assert_eq!(
        c.exchange(&msg, Duration::from_secs(10))
            .unwrap()
            .code_str(),
        "4.05"
    );
    c.close();

    let m = gw.metrics();
    assert_eq!(bad_input(&m, "coaps", "malformed"), 4.0);
    assert_eq!(bad_input(&m, "coaps", "bad_option"), 1.0);
    assert_eq!(bad_input(&m, "coaps", "unknown_method"), 1.0);
    assert!(plain_log(&gw).contains("coaps message refused"));
    still_serving(&gw);
}

#[test]
fn block_gaps_and_oversized_bodies_get_4_08_and_4_13() {
    let gw = Gateway::start("[coaps]\nmax_body_bytes = 1024\n");
    let mut c = session(&gw);
    let path = "/.well-known/est/sen";
    let post = |c: &mut Client, token: u8, b1: Vec<u8>, size1: Option<u32>, body: &[u8]| {
        let mid = c.mid();
        let mut msg = Message::request(kind::CON, kit::POST, mid, &[token], path)
            .with_uint(opt::CONTENT_FORMAT, 286)
            .with_option(opt::BLOCK1, &b1)
            .with_payload(body);
        if let Some(s) = size1 {
            msg = msg.with_uint(opt::SIZE1, s);
        }
        c.exchange(&msg, Duration::from_secs(10)).unwrap()
    };

    // Block 0 of 64 bytes, then block 2: the gap gets 4.08 Request Entity Incomplete.
    let r = post(&mut c, 1, kit::block(0, true, 2), None, &[0x30; 64]);
    assert_eq!(r.code_str(), "2.31");
    assert_eq!(
        r.option(opt::BLOCK1),
        Some(kit::block(0, true, 2).as_slice())
    );
    let r = post(&mut c, 1, kit::block(2, true, 2), None, &[0x30; 64]);
    assert_eq!(r.code_str(), "4.08");

    // A body announced larger than the limit: 4.13 with the limit in Size1.
    let r = post(
        &mut c,
        2,
        kit::block(0, true, 2),
        Some(100_000),
        &[0x30; 64],
    );
    assert_eq!(r.code, code(4, 13));
    assert_eq!(r.uint(opt::SIZE1), Some(1024));

    // A body that grows past the limit without announcing it: 4.13 at the block that
    // crosses it.
    let mut last = Message::default();
    for num in 0..20u32 {
        last = post(&mut c, 3, kit::block(num, true, 6), None, &[0x30; 1024]);
        if last.code != code(2, 31) {
            break;
        }
    }
    assert_eq!(last.code_str(), "4.13");
    c.close();

    let m = gw.metrics();
    assert_eq!(bad_input(&m, "coaps", "block_sequence"), 1.0);
    assert_eq!(bad_input(&m, "coaps", "too_large"), 2.0);
    still_serving(&gw);
}

#[test]
fn unknown_content_formats_and_garbage_payloads_are_refused() {
    let gw = Gateway::start("");
    let mut c = session(&gw);
    let ask = |c: &mut Client, path: &str, cf: u32, body: &[u8]| {
        let options = [(opt::CONTENT_FORMAT, kit::uint(cf))];
        c.request(kit::POST, path, &options, body, 6).unwrap()
    };

    // EST-coaps wants 286, CMP wants 259: anything else is 4.15.
    let r = ask(&mut c, "/.well-known/est/sen", 9999, b"x");
    assert_eq!(r.code_str(), "4.15");
    let r = ask(&mut c, "/.well-known/cmp", 286, b"x");
    assert_eq!(r.code_str(), "4.15");

    // Garbage where a CSR or a PKIMessage belongs: 4.00, never a 5.xx.
    let r = ask(
        &mut c,
        "/.well-known/est/sen",
        286,
        &[0x30, 0x82, 0xff, 0xff, 1, 2],
    );
    assert_eq!(r.code_str(), "4.00");
    let r = ask(&mut c, "/.well-known/cmp", 259, b"\x30\x03\x02\x01\x05junk");
    assert_eq!(r.code_str(), "4.00");

    // Unknown paths and an unknown Accept.
    let r = c
        .request(kit::GET, "/.well-known/est/nope", &[], &[], 6)
        .unwrap();
    assert_eq!(r.code_str(), "4.04");
    let r = c
        .request(
            kit::GET,
            "/.well-known/est/crts",
            &[(opt::ACCEPT, kit::uint(286))],
            &[],
            6,
        )
        .unwrap();
    assert_eq!(r.code_str(), "4.06");
    c.close();

    let m = gw.metrics();
    assert_eq!(
        bad_input(&m, "est-coaps", "unsupported_content_format"),
        1.0
    );
    assert_eq!(
        bad_input(&m, "cmp-coaps", "unsupported_content_format"),
        1.0
    );
    assert_eq!(bad_input(&m, "est-coaps", "bad_request"), 1.0);
    assert_eq!(bad_input(&m, "cmp", "decode"), 1.0);
    assert_eq!(bad_input(&m, "est-coaps", "not_acceptable"), 1.0);
    let issued = m.sum(
        "enrollgate_requests_total",
        &[("protocol", "est-coaps"), ("outcome", "issued")],
    );
    assert_eq!(issued, 0.0);
    let log = plain_log(&gw);
    assert!(log.contains("coaps request refused"), "debug line");
    still_serving(&gw);
}

/// `openssl s_client -dtls1_2` offering only `cipher`; its output, and whether it exited 0.
fn s_client_with(gw: &Gateway, cipher: &str) -> (bool, String) {
    let out = common::openssl_unchecked(&[
        "s_client",
        "-dtls1_2",
        "-connect",
        &gw.coaps_addr,
        "-cipher",
        cipher,
        "-CAfile",
        common::path_str(&gw.root_pem()),
    ]);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn suites_outside_rfc_7925_are_refused_unless_configured() {
    let gw = Gateway::start("");
    let (ok, out) = s_client_with(&gw, "ECDHE-ECDSA-AES128-GCM-SHA256");
    assert!(!ok, "GCM is not offered by default: {out}");
    let m = wait_for(&gw, "failed handshake counted", |m| {
        events(m, "handshake_failed") >= 1.0
    });
    assert_eq!(active(&m, "handshakes") + active(&m, "sessions"), 0.0);
    let (ok, out) = s_client_with(&gw, "ECDHE-ECDSA-AES128-CCM8");
    assert!(
        ok && out.contains("Cipher is ECDHE-ECDSA-AES128-CCM8"),
        "{out}"
    );

    let gw = Gateway::start("[coaps]\nextra_ciphers = [\"ECDHE-ECDSA-AES128-GCM-SHA256\"]\n");
    let (ok, out) = s_client_with(&gw, "ECDHE-ECDSA-AES128-GCM-SHA256");
    assert!(
        ok && out.contains("Cipher is ECDHE-ECDSA-AES128-GCM-SHA256"),
        "{out}"
    );
}

#[test]
fn a_quiet_session_is_closed_at_the_idle_timeout() {
    let gw = Gateway::start("[coaps]\nidle_timeout_secs = 1\n");
    let c = session(&gw);
    wait_for(&gw, "session up", |m| active(m, "sessions") == 1.0);

    // The client never speaks again: the gateway closes the session and forgets the peer.
    let m = wait_for(&gw, "idle session closed", |m| {
        active(m, "sessions") == 0.0 && events(m, "idle_closed") == 1.0
    });
    assert_eq!(active(&m, "handshakes"), 0.0);
    drop(c);
    still_serving(&gw);
}
