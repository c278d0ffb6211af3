//! SCEP (RFC 8894) end to end against a running `enrollgate serve`: the real micromdm
//! `scepclient` (Debian package `scep`), curl and openssl, and, where scepclient cannot go
//! (CertPoll, GetCert, GetCRL, a resent transactionID), pkiMessages built with
//! `enrollgate_scep::client` and POSTed with curl.
//!
//! Covered: GetCACaps and GetCACert on `/scep`, `/scep/<label>` and `/cgi-bin/pkiclient.exe`
//! over HTTP and HTTPS; enrolment with a token secret as challengePassword and renewal signed
//! by the issued certificate (both accepted by `openssl verify`); a spent or wrong challenge;
//! a held request that scepclient retries until an operator approves it; CertPoll after
//! approval and after rejection; a resent transactionID; GetCert and GetCRL; renewal refused
//! once the certificate is revoked.

#![expect(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;
#[path = "common/scep.rs"]
mod scep;

use std::time::{Duration, Instant};

use common::{Gateway, cert_pubkey, cert_serial, cert_subject, openssl, path_str, verify_cert};
use enrollgate_scep::{FailInfo, MessageType, PkiStatus};
use scep::pki::{self, Requester};
use scep::{Scep, ScepClient, assert_failure, issued, output_text, sha256_hex, write_pem};

/// The default route, plus `held` where an operator decides every request.
const HELD_ROUTE: &str = r#"
[profiles.device]

[[routes]]
label = ""
profile = "device"

[[routes]]
label = "held"
profile = "device"
manual_approval = true
"#;

#[test]
fn cacaps_and_cacert_on_every_path_of_both_listeners() {
    let gw = Gateway::start(HELD_ROUTE);
    let s = Scep::new(&gw);
    let issuing = sha256_hex(&s.issuing);
    let ra = sha256_hex(&s.ra);
    let endpoints = [
        s.http(),
        s.https(),
        format!("{}/scep/held", gw.http_url),
        format!("{}/cgi-bin/pkiclient.exe", gw.http_url),
        format!("{}/cgi-bin/pkiclient.exe", gw.https_url),
    ];
    for endpoint in &endpoints {
        let caps = s.get(endpoint, "GetCACaps");
        caps.expect(200, endpoint);
        let text = caps.text();
        for cap in [
            "AES",
            "POSTPKIOperation",
            "Renewal",
            "SHA-256",
            "SCEPStandard",
        ] {
            assert!(
                text.lines().any(|l| l == cap),
                "{endpoint}: no {cap} in {text:?}"
            );
        }

        let ca = s.get(endpoint, "GetCACert");
        ca.expect(200, endpoint);
        assert_eq!(
            ca.header("content-type"),
            Some("application/x-x509-ca-ra-cert"),
            "{endpoint}"
        );
        let fingerprints = pkcs7_fingerprints(&gw, &ca.body);
        assert_eq!(fingerprints.first(), Some(&ra), "{endpoint}: RA first");
        assert!(fingerprints.contains(&issuing), "{endpoint}");
    }

    let unknown = s.get(&format!("{}/scep/nope", gw.http_url), "GetCACaps");
    unknown.expect(404, "unknown route");
    let metrics = gw.metrics();
    let labels = [("protocol", "scep"), ("kind", "unknown_route")];
    assert_eq!(metrics.sum("enrollgate_bad_input_total", &labels), 1.0);
}

#[test]
fn scepclient_enrolls_with_a_token_and_renews_with_the_issued_certificate() {
    let gw = Gateway::start("");
    let s = Scep::new(&gw);
    let (_, secret) = gw.token(&[]);

    // Enrolment: a PKCSReq whose challengePassword is the token secret.
    let client = ScepClient::new(&s, &s.http(), "device-scep");
    let out = client.run(&["-challenge", &secret]);
    assert!(out.status.success(), "enrol: {}", output_text(&out));
    verify_cert(&gw, &client.cert());
    assert!(cert_subject(&client.cert()).contains("CN=device-scep"));
    let first = keep(&gw, &client.cert(), "first.pem");

    // Renewal: the same key and the issued certificate as -certificate make scepclient send
    // a RenewalReq signed by that certificate (no challenge); it writes the new one in place.
    let out = client.run(&[]);
    assert!(out.status.success(), "renew: {}", output_text(&out));
    verify_cert(&gw, &client.cert());
    assert_ne!(
        cert_serial(&client.cert()),
        cert_serial(&first),
        "a new certificate"
    );
    assert_eq!(cert_pubkey(&client.cert()), cert_pubkey(&first), "same key");
    let second = keep(&gw, &client.cert(), "second.pem");

    // The next renewal, signed by the renewed certificate: scepclient sends the same
    // transactionID (a hash of the key) a third time, and gets a third certificate.
    let out = client.run(&[]);
    assert!(out.status.success(), "renew again: {}", output_text(&out));
    verify_cert(&gw, &client.cert());
    for earlier in [&first, &second] {
        assert_ne!(
            cert_serial(&client.cert()),
            cert_serial(earlier),
            "a new certificate"
        );
    }
    let m = gw.metrics();
    let renewed = [
        ("protocol", "scep"),
        ("operation", "renew"),
        ("outcome", "issued"),
    ];
    assert_eq!(m.sum("enrollgate_requests_total", &renewed), 2.0);
    let issued = [("profile", "device")];
    assert_eq!(m.sum("enrollgate_certificates_issued_total", &issued), 3.0);
}

#[test]
fn scepclient_sees_failure_for_a_spent_or_wrong_challenge() {
    let gw = Gateway::start("");
    let s = Scep::new(&gw);
    let (_, secret) = gw.token(&[]);
    let first = ScepClient::new(&s, &s.http(), "first");
    let out = first.run(&["-challenge", &secret]);
    assert!(out.status.success(), "{}", output_text(&out));

    for (name, challenge) in [("spent", secret.as_str()), ("wrong", "not-a-token-secret")] {
        let client = ScepClient::new(&s, &s.http(), name);
        let out = client.run(&["-challenge", challenge]);
        let text = output_text(&out);
        assert!(!out.status.success(), "{name}: scepclient exited 0: {text}");
        assert!(text.contains("badRequest"), "{name}: {text}");
        assert!(!client.cert().exists(), "{name}: no certificate written");
    }
    let m = gw.metrics();
    let refused = [("protocol", "scep"), ("reason", "unauthenticated")];
    assert_eq!(m.sum("enrollgate_rejections_total", &refused), 2.0);
}

#[test]
fn scepclient_retries_a_held_request_until_an_operator_approves_it() {
    let gw = Gateway::start(HELD_ROUTE);
    let s = Scep::new(&gw);
    let (_, secret) = gw.token(&["--route", "held"]);
    let client = ScepClient::new(&s, &format!("{}/scep/held", gw.http_url), "held-device");

    // scepclient 2.1 answers PENDING by sleeping 30 s and sending the same PKCSReq again.
    let child = client.spawn(&["-challenge", &secret]);
    let guard = KillOnDrop(Some(child));
    let id = pending_id(&gw, "held-device");
    let approved = gw.run(&["request", "approve", &id]);
    assert!(approved.contains("issued"), "{approved}");

    let out = guard.wait(Duration::from_secs(90));
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(
        output_text(&out).contains("PENDING"),
        "it saw PENDING first"
    );
    verify_cert(&gw, &client.cert());
}

#[test]
fn certpoll_gets_the_certificate_after_approval_and_failure_after_rejection() {
    let gw = Gateway::start(HELD_ROUTE);
    let s = Scep::new(&gw);
    let url = format!("{}/scep/held", gw.http_url);
    let mut outcomes = Vec::new();
    for (cn, verb) in [("poll-approved", "approve"), ("poll-rejected", "reject")] {
        let device = Requester::new(cn);
        let id = device.identity();
        let (_, secret) = gw.token(&["--route", "held"]);
        let tid = pki::transaction_id(cn);
        let csr = device.csr(cn, Some(&secret));
        let req = pki::message(&id, &s.ra, MessageType::PkcsReq, &tid, &csr);
        assert_eq!(s.exchange(&url, &id, &req).status, PkiStatus::Pending);

        let poll_content = pki::cert_poll_content(&s.issuing, cn);
        let poll = || pki::message(&id, &s.ra, MessageType::CertPoll, &tid, &poll_content);
        let rep = s.exchange(&url, &id, &poll());
        assert_eq!(rep.status, PkiStatus::Pending, "before the decision");
        assert_eq!(rep.transaction_id, tid);

        gw.run(&["request", verb, &pending_id(&gw, cn)]);
        outcomes.push((device, s.exchange(&url, &id, &poll())));
    }

    let (device, approved) = &outcomes[0];
    let cert = issued(approved);
    assert_eq!(
        spki_of(&cert),
        spki_of(&device.self_signed),
        "certifies the key"
    );
    verify_der(&gw, &cert);
    assert_failure(&outcomes[1].1, FailInfo::BadRequest);

    // A CertPoll for a transaction nobody started.
    let device = Requester::new("stranger");
    let id = device.identity();
    let content = pki::cert_poll_content(&s.issuing, "stranger");
    let poll = pki::message(&id, &s.ra, MessageType::CertPoll, "never-seen", &content);
    assert_failure(&s.exchange(&url, &id, &poll), FailInfo::BadRequest);
}

#[test]
fn a_resent_transaction_gets_the_same_certificate_and_a_changed_csr_is_refused() {
    let gw = Gateway::start("");
    let s = Scep::new(&gw);
    let device = Requester::new("resend");
    let id = device.identity();
    let (_, secret) = gw.token(&[]);
    let tid = pki::transaction_id("resend");
    let csr = device.csr("resend", Some(&secret));
    let req = pki::message(&id, &s.ra, MessageType::PkcsReq, &tid, &csr);

    // The identical message twice (a lost reply): the second answer replays the first.
    let first = issued(&s.exchange(&s.http(), &id, &req));
    let second = issued(&s.exchange(&s.http(), &id, &req));
    assert_eq!(first, second);
    let m = gw.metrics();
    let labels = [("profile", "device")];
    assert_eq!(m.sum("enrollgate_certificates_issued_total", &labels), 1.0);

    // Same transactionID, another CSR: refused, and the first certificate stays the answer.
    let (_, other_secret) = gw.token(&[]);
    let other = device.csr("resend-other", Some(&other_secret));
    let changed = pki::message(&id, &s.ra, MessageType::PkcsReq, &tid, &other);
    assert_failure(&s.exchange(&s.http(), &id, &changed), FailInfo::BadRequest);
    let again = issued(&s.exchange(&s.http(), &id, &req));
    assert_eq!(again, first);
    let m = gw.metrics();
    let conflict = [("protocol", "scep"), ("reason", "transaction_conflict")];
    assert_eq!(m.sum("enrollgate_rejections_total", &conflict), 1.0);
}

#[test]
fn getcert_and_getcrl_through_the_client_module() {
    let gw = Gateway::start("");
    let s = Scep::new(&gw);
    let device = Requester::new("lookup");
    let id = device.identity();
    let (_, secret) = gw.token(&[]);
    let csr = device.csr("lookup", Some(&secret));
    let tid = pki::transaction_id("lookup");
    let req = pki::message(&id, &s.ra, MessageType::PkcsReq, &tid, &csr);
    let cert = issued(&s.exchange(&s.http(), &id, &req));

    // GetCert by issuer and serial.
    let wanted = pki::issuer_and_serial(&cert);
    let get = pki::message(&id, &s.ra, MessageType::GetCert, "getcert-1", &wanted);
    assert_eq!(issued(&s.exchange(&s.http(), &id, &get)), cert);

    // An unknown serial: badCertId.
    let unknown = pki::issuer_and_serial(&s.ra);
    let get = pki::message(&id, &s.ra, MessageType::GetCert, "getcert-2", &unknown);
    assert_failure(&s.exchange(&s.http(), &id, &get), FailInfo::BadCertId);

    // GetCRL after a revocation: the CRL is the issuing CA's and lists the serial.
    let pem = gw.path("lookup.pem");
    write_pem(&pem, std::slice::from_ref(&cert));
    let serial = cert_serial(&pem);
    gw.run(&["revoke", &serial.to_lowercase(), "--reason", "1"]);
    let get = pki::message(&id, &s.ra, MessageType::GetCrl, "getcrl-1", &wanted);
    let rep = s.exchange(&s.http(), &id, &get);
    assert_eq!(rep.status, PkiStatus::Success);
    let crl = rep.crls.first().expect("a CRL in the reply");
    let crl_path = gw.path("scep.crl");
    std::fs::write(&crl_path, crl).unwrap();
    let text = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        path_str(&crl_path),
        "-CAfile",
        path_str(&gw.issuing_pem()),
        "-noout",
        "-text",
    ]);
    assert!(text.contains(&serial), "serial {serial} in:\n{text}");
}

#[test]
fn renewal_through_the_client_module_needs_a_live_certificate_of_ours() {
    let gw = Gateway::start("");
    let s = Scep::new(&gw);
    let device = Requester::new("renewer");
    let (_, secret) = gw.token(&[]);
    let first_req = device.csr("renewer", Some(&secret));
    let id = device.identity();
    let tid = pki::transaction_id("enrol");
    let req = pki::message(&id, &s.ra, MessageType::PkcsReq, &tid, &first_req);
    let cert = issued(&s.exchange(&s.http(), &id, &req));

    // RenewalReq signed by the issued certificate, no challenge.
    let signer = device.identity_with(&cert);
    let csr = device.csr("renewer", None);
    let renew = |tid: &str| pki::message(&signer, &s.ra, MessageType::RenewalReq, tid, &csr);
    let renewal = renew(&pki::transaction_id("r"));
    let renewed = issued(&s.exchange(&s.http(), &signer, &renewal));
    assert_ne!(renewed, cert);
    verify_der(&gw, &renewed);
    // The same RenewalReq resent (a lost reply): the same certificate, not a second one.
    assert_eq!(issued(&s.exchange(&s.http(), &signer, &renewal)), renewed);
    let labels = [("profile", "device")];
    let m = gw.metrics();
    assert_eq!(m.sum("enrollgate_certificates_issued_total", &labels), 2.0);

    // Once revoked, the old certificate authenticates nothing.
    let pem = gw.path("renewer.pem");
    write_pem(&pem, std::slice::from_ref(&cert));
    gw.run(&["revoke", &cert_serial(&pem).to_lowercase()]);
    let rep = s.exchange(&s.http(), &signer, &renew(&pki::transaction_id("r")));
    assert_failure(&rep, FailInfo::BadRequest);
}

#[test]
fn https_listener_and_cgi_path_serve_pkioperation() {
    let gw = Gateway::start("");
    let s = Scep::new(&gw);
    let endpoints = [
        s.https(),
        format!("{}/cgi-bin/pkiclient.exe", gw.http_url),
        format!("{}/cgi-bin/pkiclient.exe", gw.https_url),
    ];
    for (i, endpoint) in endpoints.iter().enumerate() {
        let cn = format!("path-{i}");
        let device = Requester::new(&cn);
        let id = device.identity();
        let (_, secret) = gw.token(&[]);
        let csr = device.csr(&cn, Some(&secret));
        let tid = pki::transaction_id(&cn);
        let req = pki::message(&id, &s.ra, MessageType::PkcsReq, &tid, &csr);
        verify_der(&gw, &issued(&s.exchange(endpoint, &id, &req)));
    }

    // scepclient over HTTPS, trusting our root through Go's SSL_CERT_FILE, on the CGI path.
    let (_, secret) = gw.token(&[]);
    let url = format!("{}/cgi-bin/pkiclient.exe", gw.https_url);
    let mut client = ScepClient::new(&s, &url, "tls-device");
    client.ca_file = Some(gw.root_pem());
    let out = client.run(&["-challenge", &secret]);
    assert!(out.status.success(), "{}", output_text(&out));
    verify_cert(&gw, &client.cert());
}

/// The SHA-256 fingerprints of the certificates of a DER certs-only PKCS#7, read by openssl.
fn pkcs7_fingerprints(gw: &Gateway, der: &[u8]) -> Vec<String> {
    let p7 = gw.path(&common::unique("getcacert.p7"));
    std::fs::write(&p7, der).unwrap();
    let pem = openssl(&[
        "pkcs7",
        "-inform",
        "DER",
        "-in",
        path_str(&p7),
        "-print_certs",
    ]);
    common::split_pem(&pem)
        .iter()
        .map(|c| {
            let path = gw.path(&common::unique("cacert.pem"));
            std::fs::write(&path, c).unwrap();
            sha256_hex(&scep::pem_cert_der(&path))
        })
        .collect()
}

/// `openssl verify` of a DER certificate against the gateway's chain.
fn verify_der(gw: &Gateway, der: &[u8]) {
    let pem = gw.path(&common::unique("issued.pem"));
    write_pem(&pem, &[der.to_vec()]);
    verify_cert(gw, &pem);
}

/// The SubjectPublicKeyInfo of a DER certificate.
fn spki_of(der: &[u8]) -> Vec<u8> {
    use der::{Decode, Encode};
    let cert = x509_cert::Certificate::from_der(der).unwrap();
    cert.tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .unwrap()
}

/// Copies a file in the scratch directory, to keep it across a scepclient run.
fn keep(gw: &Gateway, path: &std::path::Path, name: &str) -> std::path::PathBuf {
    let copy = gw.path(name);
    std::fs::copy(path, &copy).unwrap();
    copy
}

/// The id of the held request whose subject contains `cn`, once `request list` shows it.
fn pending_id(gw: &Gateway, cn: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = gw.run(&["request", "list"]);
        let line = list.lines().find(|l| l.contains(cn));
        if let Some(id) = line.and_then(|l| l.split('\t').next()) {
            return id.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no held request for {cn}:\n{list}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A background scepclient that is killed if the test fails before it ends.
struct KillOnDrop(Option<std::process::Child>);

impl KillOnDrop {
    /// Waits up to `limit` for the process to exit and returns its output.
    fn wait(mut self, limit: Duration) -> std::process::Output {
        let deadline = Instant::now() + limit;
        let mut child = self.0.take().unwrap();
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "scepclient still running after {limit:?}: {}",
                    output_text(&out)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        child.wait_with_output().unwrap()
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
