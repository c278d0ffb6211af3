//! EST-coaps (RFC 9148) and CMP over CoAP (RFC 9482) against the running gateway, driven by
//! the real `coap-client-openssl` (libcoap) over DTLS 1.2, and CMP messages made by the real
//! `openssl cmp` client.
//!
//! `coap-client` exits 0 whatever the response code: these tests look at what it wrote (the
//! `-o` file exists only for a 2.xx response) and what it printed (an error response is
//! printed as `4.01 text` on stderr). Every certificate is checked with `openssl verify`
//! against the gateway's root.
//!
//! CMP: `openssl cmp` speaks only HTTP, so the test runs a forwarder, an HTTP server on
//! loopback that takes each POSTed PKIMessage, carries it to the gateway's CoAPs listener with
//! `coap-client-openssl` (content format 259, block-wise) and returns the CoAP reply's payload
//! as the HTTP reply.

#![expect(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;
#[path = "common/coaps.rs"]
mod kit;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Gateway, openssl, path_str, require_tool, run_unchecked, verify_cert};

/// The libcoap client built with OpenSSL.
const COAP_CLIENT: &str = "coap-client-openssl";

/// What one `coap-client` run printed and wrote.
#[derive(Debug)]
struct CoapRun {
    /// What it printed: an error response as `4.01 text`, DTLS and transport failures.
    stderr: String,
    /// The payload of a 2.xx response (`-o`), absent otherwise.
    body: Option<Vec<u8>>,
}

impl CoapRun {
    /// The body of a successful response; panics with what the client printed otherwise.
    fn expect_body(&self, what: &str) -> &[u8] {
        match &self.body {
            Some(b) if !b.is_empty() => b,
            _ => panic!("{what}: no response body; coap-client printed {self:?}"),
        }
    }
}

/// Runs `coap-client-openssl ARGS -o OUT coaps://ADDR/PATH`.
fn coap_client(gw: &Gateway, args: &[&str], path: &str) -> CoapRun {
    require_tool(COAP_CLIENT);
    let out = gw.path(&common::unique("coap-reply"));
    let mut cmd = Command::new(COAP_CLIENT);
    cmd.args(["-B", "30"])
        .args(args)
        .arg("-o")
        .arg(&out)
        .arg(format!("coaps://{}{path}", gw.coaps_addr));
    let output = run_unchecked(&mut cmd);
    CoapRun {
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        body: std::fs::read(&out).ok(),
    }
}

/// POSTs a DER CSR file (content format 286) to `path`, with a client certificate and key
/// when given, and any further `coap-client` arguments.
fn post_csr(
    gw: &Gateway,
    path: &str,
    csr: &Path,
    cert_key: Option<(&Path, &Path)>,
    extra: &[&str],
) -> CoapRun {
    let mut args = vec!["-m", "post", "-t", "286", "-f", path_str(csr)];
    if let Some((cert, key)) = cert_key {
        args.extend(["-c", path_str(cert), "-j", path_str(key)]);
    }
    args.extend_from_slice(extra);
    coap_client(gw, &args, path)
}

/// A new P-256 key (PEM) in the work directory.
fn new_key(gw: &Gateway, name: &str) -> PathBuf {
    let key = gw.path(&format!("{name}.key"));
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        path_str(&key),
    ]);
    key
}

/// A device-identity CA (P-256) and a device certificate it issued, made with openssl in
/// `dir`: the route trusts the CA, the device holds the certificate.
struct DevicePki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn device_pki(dir: &Path) -> DevicePki {
    let p = |n: &str| dir.join(n);
    let (ca, ca_key) = (p("device-ca.crt"), p("device-ca.key"));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        path_str(&ca_key),
        "-out",
        path_str(&ca),
        "-subj",
        "/CN=Device Identity CA",
        "-days",
        "30",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    let (key, req, cert, ext) = (p("idevid.key"), p("idevid.csr"), p("idevid.crt"), p("ext"));
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        path_str(&key),
        "-out",
        path_str(&req),
        "-subj",
        "/CN=idevid-0001",
    ]);
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        path_str(&req),
        "-CA",
        path_str(&ca),
        "-CAkey",
        path_str(&ca_key),
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        path_str(&ext),
        "-out",
        path_str(&cert),
    ]);
    DevicePki { ca, cert, key }
}

/// A gateway whose default route trusts `pki`'s CA for device certificates.
fn gateway_trusting(pki: &DevicePki) -> Gateway {
    Gateway::start(&format!(
        "[[routes]]\nlabel = \"\"\nprofile = \"device\"\ntrust_anchors = [\"{}\"]\n",
        pki.ca.display()
    ))
}

/// A P-256 key and a DER CSR for it, made by openssl.
fn key_and_csr(gw: &Gateway, name: &str, subject: &str) -> (PathBuf, PathBuf) {
    let files = common::new_csr(&gw.work_dir, name, common::KeyType::P256, subject, &[]);
    (files.key, files.der)
}

/// Writes a DER certs-only PKCS#7 reply as PEM certificates (`openssl pkcs7`).
fn pkcs7_der_to_pem(gw: &Gateway, name: &str, der: &[u8]) -> PathBuf {
    let (p7, pem) = (
        gw.path(&format!("{name}.p7")),
        gw.path(&format!("{name}.pem")),
    );
    std::fs::write(&p7, der).unwrap();
    openssl(&[
        "pkcs7",
        "-inform",
        "DER",
        "-in",
        path_str(&p7),
        "-print_certs",
        "-out",
        path_str(&pem),
    ]);
    pem
}

/// The gateway's log without terminal colour sequences.
fn plain_log(gw: &Gateway) -> String {
    kit::strip_ansi(&gw.log())
}

fn issued_count(gw: &Gateway, operation: &str) -> f64 {
    gw.metrics().sum(
        "enrollgate_requests_total",
        &[
            ("protocol", "est-coaps"),
            ("operation", operation),
            ("outcome", "issued"),
        ],
    )
}

#[test]
fn discovery_lists_the_est_and_cmp_resources() {
    let gw = Gateway::start("");
    let run = coap_client(&gw, &["-m", "get"], "/.well-known/core");
    let links = String::from_utf8(run.expect_body("discovery").to_vec()).unwrap();
    for rt in [
        "ace.est.crts",
        "ace.est.sen",
        "ace.est.sren",
        "ace.est.skg",
        "ace.cmp",
    ] {
        assert!(links.contains(&format!("rt=\"{rt}\"")), "{rt} in {links}");
    }
    assert!(
        links.contains("</.well-known/est/sen>;rt=\"ace.est.sen\""),
        "{links}"
    );

    // The rt filter of RFC 6690 4.1.
    let run = coap_client(&gw, &["-m", "get"], "/.well-known/core?rt=ace.est.sen");
    let one = String::from_utf8(run.expect_body("filtered").to_vec()).unwrap();
    assert_eq!(one.matches('<').count(), 1, "{one}");
    assert!(one.contains("/.well-known/est/sen"), "{one}");
}

#[test]
fn crts_is_the_ca_chain_as_der_pkcs7_blockwise() {
    let gw = Gateway::start("");
    // 64-byte blocks: the ~900-byte reply comes back through Block2.
    let run = coap_client(&gw, &["-m", "get", "-b", "64"], "/.well-known/est/crts");
    let pem = pkcs7_der_to_pem(&gw, "crts", run.expect_body("crts"));
    let certs = common::split_pem(&std::fs::read_to_string(&pem).unwrap());
    assert_eq!(certs.len(), 2, "issuing CA and root");
    let root = std::fs::read_to_string(gw.root_pem()).unwrap();
    assert!(
        certs.iter().any(|c| c.trim() == root.trim()),
        "root in crts"
    );

    // Accept 287: the root alone, as application/pkix-cert.
    let run = coap_client(&gw, &["-m", "get", "-A", "287"], "/.well-known/est/crts");
    let der = gw.path("root.der");
    std::fs::write(&der, run.expect_body("crts 287")).unwrap();
    let fp = openssl(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        path_str(&der),
        "-noout",
        "-fingerprint",
        "-sha256",
    ]);
    assert!(fp.contains(&gw.fingerprint), "{fp} vs {}", gw.fingerprint);

    // att: the route's CSR attributes, DER (content format 285).
    let run = coap_client(&gw, &["-m", "get"], "/.well-known/est/att");
    let att = gw.path("att.der");
    std::fs::write(&att, run.expect_body("att")).unwrap();
    let parsed = openssl(&["asn1parse", "-inform", "DER", "-in", path_str(&att)]);
    assert!(parsed.contains("SEQUENCE"), "{parsed}");
}

#[test]
fn sen_with_a_device_certificate_then_sren_with_the_issued_one() {
    let dir = tempfile::tempdir().unwrap();
    let pki = device_pki(dir.path());
    let gw = gateway_trusting(&pki);

    // sen: the device identity certificate in the handshake, a DER CSR (286) sent in
    // 64-byte Block1 blocks.
    let (key, csr) = key_and_csr(&gw, "op", "/CN=coaps-device-1");
    assert!(
        std::fs::metadata(&csr).unwrap().len() > 128,
        "CSR spans blocks"
    );
    let device = Some((pki.cert.as_path(), pki.key.as_path()));
    let run = post_csr(&gw, "/.well-known/est/sen", &csr, device, &["-b", "64"]);
    let issued = pkcs7_der_to_pem(&gw, "sen", run.expect_body("sen"));
    verify_cert(&gw, &issued);
    assert_eq!(common::cert_subject(&issued), "CN=coaps-device-1");
    assert_eq!(
        common::cert_pubkey(&issued),
        openssl(&["pkey", "-in", path_str(&key), "-pubout"])
    );
    assert_eq!(issued_count(&gw, "enroll"), 1.0);

    // sren: the certificate just issued authenticates the re-enrollment; Accept 287 gives
    // the bare certificate.
    let recsr = gw.path("re.csr.der");
    openssl(&[
        "req",
        "-new",
        "-key",
        path_str(&key),
        "-subj",
        "/CN=coaps-device-1",
        "-outform",
        "DER",
        "-out",
        path_str(&recsr),
    ]);
    let own = Some((issued.as_path(), key.as_path()));
    let run = post_csr(
        &gw,
        "/.well-known/est/sren",
        &recsr,
        own,
        &["-A", "287", "-b", "64"],
    );
    let der = gw.path("sren.der");
    std::fs::write(&der, run.expect_body("sren")).unwrap();
    let renewed = gw.path("sren.pem");
    openssl(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        path_str(&der),
        "-out",
        path_str(&renewed),
    ]);
    verify_cert(&gw, &renewed);
    assert_eq!(common::cert_subject(&renewed), "CN=coaps-device-1");
    assert_ne!(
        common::cert_serial(&renewed),
        common::cert_serial(&issued),
        "a new certificate"
    );
    assert_eq!(issued_count(&gw, "renew"), 1.0);

    // The RFC 7925 certificate suite carried both.
    let log = plain_log(&gw);
    assert!(
        log.contains("credential=\"certificate\" cipher=\"ECDHE-ECDSA-AES128-CCM8\""),
        "RFC 7925 suite with a client certificate"
    );
}

#[test]
fn sen_without_credentials_and_sren_with_a_foreign_certificate_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = device_pki(dir.path());
    let gw = Gateway::start("");
    let (_, csr) = key_and_csr(&gw, "anon", "/CN=anon");

    let run = post_csr(&gw, "/.well-known/est/sen", &csr, None, &[]);
    assert!(run.body.is_none(), "{run:?}");
    assert!(run.stderr.contains("4.01"), "{run:?}");

    // The device CA is not trusted on this gateway's route: no re-enrollment with it.
    let device = Some((pki.cert.as_path(), pki.key.as_path()));
    let run = post_csr(&gw, "/.well-known/est/sren", &csr, device, &[]);
    assert!(run.body.is_none(), "{run:?}");
    assert!(run.stderr.contains("4.01"), "{run:?}");
    assert_eq!(
        issued_count(&gw, "enroll") + issued_count(&gw, "renew"),
        0.0
    );
}

#[test]
fn sen_over_a_psk_session_spends_the_token() {
    // A wrong PSK makes the client's Finished undecryptable, which DTLS discards silently
    // (RFC 6347 4.1.2.7): the handshake then stalls until the gateway cuts it.
    let gw = Gateway::start("[coaps]\nhandshake_timeout_secs = 2\n");
    let (id, secret) = gw.token(&[]);
    let (_, csr) = key_and_csr(&gw, "psk", "/CN=psk-device");
    let psk = ["-u", id.as_str(), "-k", secret.as_str()];
    let mut args = vec!["-m", "post", "-t", "286", "-f", path_str(&csr)];
    args.extend_from_slice(&psk);

    let run = coap_client(&gw, &args, "/.well-known/est/sen");
    let issued = pkcs7_der_to_pem(&gw, "psk", run.expect_body("sen over PSK"));
    verify_cert(&gw, &issued);
    assert_eq!(common::cert_subject(&issued), "CN=psk-device");
    let log = plain_log(&gw);
    assert!(
        log.contains("requester=token:"),
        "the token is the requester"
    );
    assert!(
        log.contains("credential=\"psk\" cipher=\"PSK-AES128-CCM8\""),
        "RFC 7925 PSK suite"
    );

    // The token had one use: the same PSK no longer enrolls.
    let run = coap_client(&gw, &args, "/.well-known/est/sen");
    assert!(run.body.is_none(), "{run:?}");
    assert!(run.stderr.contains("4.01"), "{run:?}");

    // A wrong key fails the handshake itself: nothing is written.
    let bad = vec![
        "-B",
        "6",
        "-m",
        "post",
        "-t",
        "286",
        "-f",
        path_str(&csr),
        "-u",
        id.as_str(),
        "-k",
        "not-the-secret",
    ];
    let run = coap_client(&gw, &bad, "/.well-known/est/sen");
    assert!(run.body.is_none(), "{run:?}");
    let m = gw.metrics();
    let event = |e: &str| {
        m.sum(
            "enrollgate_transport_events_total",
            &[("transport", "coaps"), ("event", e)],
        )
    };
    assert!(
        event("handshake_failed") + event("handshake_timeout") >= 1.0,
        "the failed handshake is counted"
    );
    assert_eq!(issued_count(&gw, "enroll"), 1.0);
}

// ---------------------------------------------------------------------------------------------
// CMP over CoAP through a forwarder
// ---------------------------------------------------------------------------------------------

/// An HTTP server on loopback that carries each POSTed CMP message over CoAPs to the
/// gateway with `coap-client-openssl` and returns the reply.
struct Forwarder {
    port: u16,
    /// The HTTP path `openssl cmp` is told to use (the CoAP path without its leading `/`).
    path: String,
    carried: Arc<AtomicUsize>,
}

impl Forwarder {
    fn start(gw: &Gateway, coaps_path: &str) -> Self {
        require_tool(COAP_CLIENT);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let carried = Arc::new(AtomicUsize::new(0));
        let count = carried.clone();
        let uri = format!("coaps://{}{coaps_path}", gw.coaps_addr);
        let dir = gw.work_dir.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().map_while(Result::ok) {
                let n = count.fetch_add(1, Ordering::SeqCst);
                forward_one(conn, &uri, &dir, n);
            }
        });
        let path = coaps_path.trim_start_matches('/').to_owned();
        Self {
            port,
            path,
            carried,
        }
    }
}

/// Reads one HTTP POST, sends its body as a CoAP POST (259), answers with the reply.
fn forward_one(mut conn: TcpStream, uri: &str, dir: &Path, n: usize) {
    let Some(body) = read_http_body(&conn) else {
        return;
    };
    let (req, rsp) = (
        dir.join(format!("fwd-{n}.req")),
        dir.join(format!("fwd-{n}.rsp")),
    );
    std::fs::write(&req, &body).unwrap();
    let out = run_unchecked(
        Command::new(COAP_CLIENT)
            .args([
                "-B", "30", "-m", "post", "-t", "259", "-A", "259", "-b", "256",
            ])
            .arg("-f")
            .arg(&req)
            .arg("-o")
            .arg(&rsp)
            .arg(uri),
    );
    let (status, reply) = match std::fs::read(&rsp) {
        Ok(r) if !r.is_empty() => ("200 OK", r),
        _ => (
            "502 Bad Gateway",
            String::from_utf8_lossy(&out.stderr)
                .into_owned()
                .into_bytes(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/pkixcmp\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        reply.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(&reply);
}

fn read_http_body(conn: &TcpStream) -> Option<Vec<u8>> {
    let mut reader = BufReader::new(conn);
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                len = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; len.min(64 * 1024)];
    reader.read_exact(&mut body).ok()?;
    Some(body)
}

/// `openssl cmp -cmd ir` through the forwarder, MAC-protected with `token`.
fn cmp_ir(
    gw: &Gateway,
    fwd: &Forwarder,
    token: &(String, String),
    key: &Path,
    subject: &str,
    cert: &Path,
) -> Command {
    let mut cmd = Command::new("openssl");
    cmd.args(["cmp", "-cmd", "ir", "-server"])
        .arg(format!("127.0.0.1:{}", fwd.port))
        .args(["-path", &fwd.path, "-msg_timeout", "60"])
        .args(["-ref", &token.0, "-secret", &format!("pass:{}", token.1)])
        .args(["-newkey", path_str(key), "-subject", subject])
        .args(["-certout", path_str(cert), "-trusted"])
        .arg(gw.root_pem())
        .arg("-untrusted")
        .arg(gw.issuing_pem());
    cmd
}

#[test]
fn cmp_ir_and_cert_conf_from_openssl_cmp_over_coaps() {
    require_tool("openssl");
    let gw = Gateway::start("");
    let token = gw.token(&[]);
    let fwd = Forwarder::start(&gw, "/.well-known/cmp");
    let key = new_key(&gw, "cmp");
    let cert = gw.path("cmp.pem");
    let out = common::run(&mut cmp_ir(
        &gw,
        &fwd,
        &token,
        &key,
        "/CN=cmp-over-coap",
        &cert,
    ));
    let log = String::from_utf8_lossy(&out.stderr);
    verify_cert(&gw, &cert);
    assert_eq!(common::cert_subject(&cert), "CN=cmp-over-coap");

    // ir and certConf each went over CoAP; the gateway saw them as CMP over CoAP.
    assert_eq!(fwd.carried.load(Ordering::SeqCst), 2, "{log}");
    let m = gw.metrics();
    let cmp_coaps = m.sum(
        "enrollgate_requests_total",
        &[("protocol", "cmp-coaps"), ("outcome", "issued")],
    );
    assert!(cmp_coaps >= 1.0, "issued over cmp-coaps");
    let gw_log = plain_log(&gw);
    assert!(
        gw_log.contains("path=/.well-known/cmp"),
        "CoAP requests logged"
    );
    assert!(
        gw_log.contains("protocol=\"cmp-coaps\""),
        "audit line names CMP over CoAP"
    );
}

#[test]
fn cmp_polling_over_coaps_until_the_operator_approves() {
    let gw = Gateway::start(
        "[[routes]]\nlabel = \"\"\nprofile = \"device\"\n\n\
         [[routes]]\nlabel = \"manual\"\nprofile = \"device\"\nmanual_approval = true\n",
    );
    let token = gw.token(&["--uses", "0", "--route", "manual"]);
    let fwd = Forwarder::start(&gw, "/.well-known/cmp/p/manual");
    let key = new_key(&gw, "poll");
    let cert = gw.path("poll.pem");
    let log_path = gw.path("poll.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut client = cmp_ir(&gw, &fwd, &token, &key, "/CN=polled-over-coap", &cert)
        .args(["-total_timeout", "120"])
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let client_log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    // ir was answered "waiting"; the client polls over CoAP while the request is held.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while fwd.carried.load(Ordering::SeqCst) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no pollReq: {}",
            client_log()
        );
        assert!(
            client.try_wait().unwrap().is_none(),
            "gave up: {}",
            client_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let list = gw.run(&["request", "list"]);
    let id = list
        .lines()
        .find(|l| l.contains("CN=polled-over-coap"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no held request: {list}"))
        .to_owned();
    let approved = gw.run(&["request", "approve", &id]);
    assert!(approved.contains("issued"), "{approved}");

    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = client.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = client.kill();
            panic!("openssl cmp did not finish: {}", client_log());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{}", client_log());
    verify_cert(&gw, &cert);
    assert_eq!(common::cert_subject(&cert), "CN=polled-over-coap");

    // ir, at least one pollReq, certConf: every one over CoAP.
    assert!(fwd.carried.load(Ordering::SeqCst) >= 3, "{}", client_log());
    let carried = plain_log(&gw)
        .lines()
        .filter(|l| l.contains("coaps request") && l.contains("path=/.well-known/cmp/p/manual"))
        .count();
    assert_eq!(carried, fwd.carried.load(Ordering::SeqCst));
}

// ---------------------------------------------------------------------------------------------
// Server-side key generation and pending requests
// ---------------------------------------------------------------------------------------------

/// The (content format, bytes) pairs of an application/multipart-core body (RFC 8710): a
/// CBOR array of unsigned integers and byte strings, decoded here independently.
fn multipart_core(body: &[u8]) -> Vec<(u64, Vec<u8>)> {
    fn head(b: &[u8], at: &mut usize) -> (u8, u64) {
        let first = b[*at];
        *at += 1;
        let extra = match first & 0x1f {
            n @ 0..=23 => return (first >> 5, u64::from(n)),
            24 => 1,
            25 => 2,
            26 => 4,
            n => panic!("unexpected CBOR length form {n}"),
        };
        let v = b[*at..*at + extra]
            .iter()
            .fold(0u64, |a, x| a << 8 | u64::from(*x));
        *at += extra;
        (first >> 5, v)
    }
    let mut at = 0;
    let (major, count) = head(body, &mut at);
    assert_eq!(major, 4, "a CBOR array");
    let mut parts = Vec::new();
    for _ in 0..count / 2 {
        let (m, format) = head(body, &mut at);
        let (b, len) = head(body, &mut at);
        assert_eq!((m, b), (0, 2), "content format, then a byte string");
        let len = usize::try_from(len).unwrap();
        parts.push((format, body[at..at + len].to_vec()));
        at += len;
    }
    assert_eq!(at, body.len(), "nothing after the array");
    parts
}

#[test]
fn skg_returns_a_generated_key_and_its_certificate_as_multipart_core() {
    let gw = Gateway::start("");
    let (id, secret) = gw.token(&[]);
    let (_, csr) = key_and_csr(&gw, "template", "/CN=skg-device");
    let run = coap_client(
        &gw,
        &[
            "-m",
            "post",
            "-t",
            "286",
            "-b",
            "256",
            "-f",
            path_str(&csr),
            "-u",
            &id,
            "-k",
            &secret,
        ],
        "/.well-known/est/skg",
    );
    let parts = multipart_core(run.expect_body("skg"));
    let formats: Vec<u64> = parts.iter().map(|(f, _)| *f).collect();
    assert_eq!(formats, [284, 281], "PKCS#8 key, then certs-only PKCS#7");
    let key = gw.path("skg.key.der");
    std::fs::write(&key, &parts[0].1).unwrap();
    let cert = pkcs7_der_to_pem(&gw, "skg", &parts[1].1);
    verify_cert(&gw, &cert);
    assert_eq!(common::cert_subject(&cert), "CN=skg-device");
    let key_pub = openssl(&["pkey", "-inform", "DER", "-in", path_str(&key), "-pubout"]);
    assert_eq!(
        common::cert_pubkey(&cert),
        key_pub,
        "the key is the certificate's"
    );

    // skc: the same with the bare certificate (287) instead of PKCS#7.
    let (id, secret) = gw.token(&[]);
    let psk = ["-u", id.as_str(), "-k", secret.as_str()];
    let run = post_csr(&gw, "/.well-known/est/skc", &csr, None, &psk);
    let parts = multipart_core(run.expect_body("skc"));
    let formats: Vec<u64> = parts.iter().map(|(f, _)| *f).collect();
    assert_eq!(formats, [284, 287], "PKCS#8 key, then the certificate");
    let der = gw.path("skc.crt.der");
    std::fs::write(&der, &parts[1].1).unwrap();
    let pem = gw.path("skc.pem");
    openssl(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        path_str(&der),
        "-out",
        path_str(&pem),
    ]);
    verify_cert(&gw, &pem);
    assert_ne!(
        common::cert_pubkey(&pem),
        key_pub,
        "a fresh key for every request"
    );
}

#[test]
fn a_held_request_gets_5_03_with_max_age_until_approved_then_the_resend_gets_the_cert() {
    let gw =
        Gateway::start("[[routes]]\nlabel = \"\"\nprofile = \"device\"\nmanual_approval = true\n");
    let (id, secret) = gw.token(&[]);
    let (_, csr) = key_and_csr(&gw, "held", "/CN=held-coaps");
    let csr_der = std::fs::read(&csr).unwrap();
    let ctx = kit::context(
        Some(&gw.root_pem()),
        &kit::Auth::Psk {
            id: &id,
            secret: &secret,
        },
    );
    let addr = gw.coaps_addr.parse().unwrap();
    let sen = |what: &str| {
        let mut c = kit::Client::connect(addr, &ctx, Duration::from_secs(10)).unwrap();
        let options = [(kit::opt::CONTENT_FORMAT, kit::uint(286))];
        let reply = c
            .request(kit::POST, "/.well-known/est/sen", &options, &csr_der, 6)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        c.close();
        reply
    };

    // Held: 5.03 Service Unavailable with Max-Age saying when to retry (RFC 9148 5.7).
    let reply = sen("first");
    assert_eq!(reply.code_str(), "5.03");
    assert!(
        reply.uint(kit::opt::MAX_AGE).is_some_and(|s| s > 0),
        "{reply:?}"
    );
    let list = gw.run(&["request", "list"]);
    let held: Vec<&str> = list
        .lines()
        .filter(|l| l.contains("CN=held-coaps"))
        .collect();
    assert_eq!(held.len(), 1, "{list}");

    // A resend while held: 5.03 again, still one entry.
    assert_eq!(sen("resend while held").code_str(), "5.03");
    let list = gw.run(&["request", "list"]);
    assert_eq!(
        list.lines().filter(|l| l.contains("CN=held-coaps")).count(),
        1
    );

    // Approved: the same resend gets the certificate, though the one-use token is spent.
    let request_id = held[0].split_whitespace().next().unwrap().to_owned();
    let approved = gw.run(&["request", "approve", &request_id]);
    assert!(approved.contains("issued"), "{approved}");
    let reply = sen("resend after approval");
    assert_eq!(reply.code_str(), "2.01");
    let cert = pkcs7_der_to_pem(&gw, "held", &reply.payload);
    verify_cert(&gw, &cert);
    assert_eq!(common::cert_subject(&cert), "CN=held-coaps");
}

#[test]
fn a_retransmitted_sen_is_answered_again_without_a_second_certificate() {
    let gw = Gateway::start("");
    let (id, secret) = gw.token(&["--uses", "0"]);
    let (_, csr) = key_and_csr(&gw, "dup", "/CN=dup-device");
    let ctx = kit::context(
        Some(&gw.root_pem()),
        &kit::Auth::Psk {
            id: &id,
            secret: &secret,
        },
    );
    let addr = gw.coaps_addr.parse().unwrap();
    let mut c = kit::Client::connect(addr, &ctx, Duration::from_secs(10)).unwrap();
    let mid = c.mid();
    let msg = kit::Message::request(
        kit::kind::CON,
        kit::POST,
        mid,
        &[9, 9],
        "/.well-known/est/sen",
    )
    .with_uint(kit::opt::CONTENT_FORMAT, 286)
    .with_payload(&std::fs::read(&csr).unwrap());
    let first = c.exchange(&msg, Duration::from_secs(30)).unwrap();
    assert_eq!(first.code_str(), "2.01");

    // The same message id again, as after a lost ACK (RFC 7252 4.5): the same answer.
    let again = c.exchange(&msg, Duration::from_secs(30)).unwrap();
    assert_eq!(again, first);
    c.close();

    let m = gw.metrics();
    assert_eq!(issued_count(&gw, "enroll"), 1.0, "one certificate");
    let duplicates = m.sum(
        "enrollgate_transport_events_total",
        &[("transport", "coaps"), ("event", "duplicate")],
    );
    assert_eq!(duplicates, 1.0);
}
