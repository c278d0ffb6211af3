//! End to end with the real micromdm `scepclient` (Debian package `scep`): a loopback HTTP
//! server in this test answers with the crate's functions, the test CA issues with the
//! `openssl` CLI, and scepclient must accept the CertRep and write its certificate.
//! Skipped (with a note on stderr) when `scepclient` or `openssl` is not installed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use enrollgate_scep::{
    CertRepPayload, DecodeOptions, FailInfo, RaIdentity, RequestContent, ScepHttpRequest, ca_caps,
    ca_cert_reply, cert_rep_failure, cert_rep_success, decode_pki_message, parse_http_request,
};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");
/// SHA-256 of `ra_cert.der`: makes scepclient encrypt to the RA only (see the README).
const RA_FINGERPRINT: &str = "41f0e2724a6c545e879ba1d2547de16c6c3b525180243592ec099a42d5740302";
const CHALLENGE: &str = "s3cret-challenge";

fn vector(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(VECTORS).join(name)).expect("vector")
}

fn installed(cmd: &str, arg: &str) -> bool {
    Command::new(cmd).arg(arg).output().is_ok()
}

#[test]
fn scepclient_enrolls_renews_and_sees_a_refusal() {
    // A missing peer is a failure, never a skip: scripts/test-deps.sh installs both.
    assert!(
        installed("scepclient", "-version"),
        "scepclient is not installed (Debian package scep)"
    );
    assert!(installed("openssl", "version"), "openssl is not installed");
    let work = std::env::temp_dir().join(format!("enrollgate-scep-interop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("work dir");
    let url = serve(Arc::new(work.clone()));

    // Enrolment with the right challenge.
    let cert = work.join("client.pem");
    let out = scepclient(&url, &work, &["-challenge", CHALLENGE]);
    assert!(
        out.status.success(),
        "enrol: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = openssl_text(&cert);
    assert!(text.contains("CN=interop device"), "{text}");
    assert!(text.contains("CN=enrollgate test CA"), "{text}");

    // Renewal: scepclient signs a RenewalReq with the certificate it now holds.
    let out = scepclient(&url, &work, &[]);
    assert!(
        out.status.success(),
        "renew: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A wrong challenge in a fresh enrolment gets a CertRep FAILURE.
    std::fs::remove_file(&cert).expect("remove cert");
    std::fs::remove_file(work.join("csr.pem")).expect("remove csr");
    let out = scepclient(&url, &work, &["-challenge", "wrong"]);
    assert!(!out.status.success());
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("FAILURE") || log.contains("badRequest"),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&work);
}

fn scepclient(url: &str, work: &Path, extra: &[&str]) -> std::process::Output {
    Command::new("scepclient")
        .current_dir(work)
        .args([
            "-server-url",
            url,
            "-cn",
            "interop device",
            "-ca-fingerprint",
            RA_FINGERPRINT,
        ])
        .arg("-private-key")
        .arg(work.join("client.key"))
        .arg("-certificate")
        .arg(work.join("client.pem"))
        .args(extra)
        .output()
        .expect("run scepclient")
}

fn openssl_text(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args([
            "x509", "-noout", "-subject", "-issuer", "-nameopt", "compat", "-in",
        ])
        .arg(cert)
        .output()
        .expect("openssl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts the loopback server; returns its SCEP URL.
fn serve(work: Arc<PathBuf>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            handle(stream, &work);
        }
    });
    format!("http://127.0.0.1:{port}/scep")
}

/// One request per connection (`Connection: close`).
fn handle(mut stream: TcpStream, work: &Path) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("request line");
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).expect("header");
        if header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().expect("length");
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("body");
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let (status, ctype, body) = respond(&method, query, &body, work);
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("write");
    stream.write_all(&body).expect("write");
}

fn respond(
    method: &str,
    query: &str,
    body: &[u8],
    work: &Path,
) -> (&'static str, &'static str, Vec<u8>) {
    let ra = RaIdentity::new(&vector("ra_cert.der"), &vector("ra_key.pk8")).expect("RA");
    let reply = match parse_http_request(method, query, body) {
        Ok(ScepHttpRequest::GetCaCaps { .. }) => ca_caps(false),
        Ok(ScepHttpRequest::GetCaCert { .. }) => {
            ca_cert_reply(Some(ra.certificate_der()), &[vector("ca_cert.der")]).expect("cacert")
        }
        Ok(ScepHttpRequest::PkiOperation(msg)) => {
            return (
                "200 OK",
                "application/x-pki-message",
                pki_operation(&ra, &msg, work),
            );
        }
        _ => return ("400 Bad Request", "text/plain", b"bad request\n".to_vec()),
    };
    ("200 OK", reply.content_type, reply.body)
}

fn pki_operation(ra: &RaIdentity, msg: &[u8], work: &Path) -> Vec<u8> {
    let mut rng = |buf: &mut [u8]| aws_lc_rs::rand::fill(buf).expect("random");
    let req = decode_pki_message(msg, ra, &DecodeOptions::default()).expect("decode");
    let csr = match &req.content {
        RequestContent::PkcsReq { csr } => {
            let parsed = enrollgate_pkix::Csr::from_der(csr).expect("csr");
            if parsed.challenge_password().as_deref() != Some(CHALLENGE) {
                let text = Some("wrong challenge");
                return cert_rep_failure(ra, &req.reply_to, FailInfo::BadRequest, text, &mut rng)
                    .expect("failure");
            }
            csr
        }
        RequestContent::RenewalReq { csr } => csr,
        other => panic!("unexpected {other:?}"),
    };
    let issued = issue(csr, work);
    let payload = CertRepPayload::Certificates(vec![issued]);
    cert_rep_success(ra, &req.reply_to, &payload, &mut rng).expect("success")
}

/// The test CA certifies `csr` with the openssl CLI.
fn issue(csr: &[u8], work: &Path) -> Vec<u8> {
    let csr_path = work.join("request.csr.der");
    let cert_path = work.join("issued.der");
    std::fs::write(&csr_path, csr).expect("write csr");
    let v = Path::new(VECTORS);
    let status = Command::new("openssl")
        .args(["x509", "-req", "-inform", "DER", "-in"])
        .arg(&csr_path)
        .args([
            "-CAform",
            "DER",
            "-CAkeyform",
            "DER",
            "-days",
            "1",
            "-outform",
            "DER",
        ])
        .arg("-CA")
        .arg(v.join("ca_cert.der"))
        .arg("-CAkey")
        .arg(v.join("ca_key.pk8"))
        .arg("-out")
        .arg(&cert_path)
        .status()
        .expect("openssl x509");
    assert!(status.success());
    std::fs::read(cert_path).expect("issued")
}
