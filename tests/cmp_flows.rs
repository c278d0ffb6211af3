//! CMP (RFC 9810, lightweight profile RFC 9483) over HTTP (RFC 9811) against the running
//! gateway, driven by the real `openssl cmp` client: ir with a token's MAC secret, cr, p10cr
//! and kur signed with the issued certificate, genm for the CA certificates, rr and the CRL,
//! polling on a manual-approval route, implicit confirmation, and what happens to a
//! certificate whose certConf never comes or rejects it.
//!
//! Every certificate is checked with `openssl verify` against the gateway's root. The replies
//! the client saved (`-rspout`) are decoded with the CMP crate's wire types and their
//! protection is checked by the test kit in `common/cmp.rs`, independently of the gateway.
//!
//! The expiry of a certificate that is never confirmed (300 s by default) is tested in the CMP
//! crate (`unconfirmed_certificate_expires`); the sweeper that revokes it is not run here: the
//! wait is not configurable from the configuration file, so an end-to-end test would take five
//! minutes. A certConf that rejects the certificate, or an error message instead of one, is.

#![expect(clippy::unwrap_used, reason = "a test fails by panicking")]

mod common;
#[path = "common/cmp.rs"]
mod kit;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Gateway, path_str, run, run_unchecked, verify_cert};
use der::{Decode, Encode};
use enrollgate_cmp::oid;
use enrollgate_cmp::types::PkiBody;

/// A route that holds every request for the operator, beside the default route.
const MANUAL_ROUTE: &str = r#"
[[routes]]
label = ""
profile = "device"

[[routes]]
label = "manual"
profile = "device"
manual_approval = true
"#;

/// `openssl cmp -cmd CMD` aimed at the gateway's plain HTTP listener and `path`, trusting
/// the gateway's root (and its issuing CA as an untrusted intermediate).
fn cmp_cli(gw: &Gateway, cmd: &str, path: &str) -> Command {
    common::require_tool("openssl");
    let mut c = Command::new("openssl");
    c.args(["cmp", "-cmd", cmd, "-server"])
        .arg(host_port(&gw.http_url))
        .args(["-path", path, "-msg_timeout", "30", "-trusted"])
        .arg(gw.root_pem())
        .arg("-untrusted")
        .arg(gw.issuing_pem());
    c
}

/// `127.0.0.1:PORT` of a listener URL.
fn host_port(url: &str) -> &str {
    url.split_once("://").map_or(url, |(_, rest)| rest)
}

/// The MAC credential options of a token.
fn mac_args(token: &(String, String)) -> [String; 4] {
    [
        "-ref".into(),
        token.0.clone(),
        "-secret".into(),
        format!("pass:{}", token.1),
    ]
}

/// A new P-256 key (PEM) in the work directory.
fn new_key(gw: &Gateway, name: &str) -> PathBuf {
    let key = gw.path(&format!("{name}.key"));
    common::openssl(&[
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

/// The public key (PEM) of a private key file.
fn key_pubkey(key: &Path) -> String {
    common::openssl(&["pkey", "-in", path_str(key), "-pubout"])
}

/// The DER of a PEM certificate file.
fn cert_der(pem: &Path) -> Vec<u8> {
    let text = std::fs::read(pem).unwrap();
    der::pem::decode_vec(&text).unwrap().1
}

/// Decodes a reply the client saved with `-rspout`.
fn saved(path: &Path) -> enrollgate_cmp::types::PkiMessage {
    kit::decode(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// Runs `cmd`, asserts success, returns what `openssl cmp` reported. OpenSSL 3.0 logs its
/// progress ("CMP info: ...") on stdout and later versions on stderr: both are kept.
fn run_cmp(cmd: &mut Command) -> String {
    client_log(&run(cmd))
}

/// The stdout and stderr of an `openssl cmp` run, as one text.
fn client_log(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The CRL as text (`openssl crl -inform DER -text`), fetched from the HTTP listener.
fn crl_text(gw: &Gateway) -> (PathBuf, String) {
    let reply = gw.request(&format!("{}/crl", gw.http_url)).send();
    reply.expect(200, "GET /crl");
    let der = gw.path(&common::unique("crl.der"));
    std::fs::write(&der, &reply.body).unwrap();
    let text = common::openssl(&["crl", "-inform", "DER", "-in", path_str(&der), "-text"]);
    (der, text)
}

/// Whether `openssl verify -crl_check` with the current CRL calls `cert` revoked.
fn revoked_per_crl(gw: &Gateway, cert: &Path) -> bool {
    let (der, _) = crl_text(gw);
    let pem = gw.path(&common::unique("crl.pem"));
    common::openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        path_str(&der),
        "-out",
        path_str(&pem),
    ]);
    let out = common::openssl_unchecked(&[
        "verify",
        "-crl_check",
        "-CRLfile",
        path_str(&pem),
        "-CAfile",
        path_str(&gw.root_pem()),
        "-untrusted",
        path_str(&gw.issuing_pem()),
        path_str(cert),
    ]);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    match (out.status.success(), text.contains("certificate revoked")) {
        (true, _) => false,
        (false, true) => true,
        (false, false) => panic!("openssl verify -crl_check failed otherwise: {text}"),
    }
}

/// The gateway's CMP signer certificate (DER).
fn cmp_signer(gw: &Gateway) -> Vec<u8> {
    cert_der(&gw.data_dir.join("cmp.crt"))
}

#[test]
fn ir_cr_p10cr_kur_genm_rr_with_the_openssl_client() {
    let gw = Gateway::start("");
    let token = gw.token(&["--uses", "0"]);
    let p = |n: &str| gw.path(n);

    // ir, MAC-protected with the token: the root comes back in caPubs.
    let k1 = new_key(&gw, "k1");
    let c1 = p("c1.pem");
    run_cmp(
        cmp_cli(&gw, "ir", ".well-known/cmp")
            .args(mac_args(&token))
            .args(["-newkey", path_str(&k1), "-subject", "/CN=cmp-device"])
            .args([
                "-certout",
                path_str(&c1),
                "-cacertsout",
                path_str(&p("capubs.pem")),
            ])
            .args([
                "-rspout",
                &format!("{},{}", p("ip.der").display(), p("pc1.der").display()),
            ]),
    );
    verify_cert(&gw, &c1);
    assert_eq!(common::cert_subject(&c1), "CN=cmp-device");
    assert_eq!(common::cert_pubkey(&c1), key_pubkey(&k1));
    assert_eq!(
        common::cert_fingerprint(&p("capubs.pem")),
        common::cert_fingerprint(&gw.root_pem()),
        "caPubs carries the root"
    );
    let mac = kit::Mac::new(&token.0, &token.1);
    kit::assert_mac_by(&saved(&p("ip.der")), &mac, "ip");
    kit::assert_mac_by(&saved(&p("pc1.der")), &mac, "pkiConf");

    // cr, signed with the certificate just issued: our reply is signed with cmp.crt.
    let k2 = new_key(&gw, "k2");
    let c2 = p("c2.pem");
    run_cmp(
        cmp_cli(&gw, "cr", ".well-known/cmp")
            .args(["-cert", path_str(&c1), "-key", path_str(&k1)])
            .args(["-newkey", path_str(&k2), "-subject", "/CN=cmp-cr"])
            .args(["-certout", path_str(&c2)])
            .args([
                "-rspout",
                &format!("{},{}", p("cp.der").display(), p("pc2.der").display()),
            ]),
    );
    verify_cert(&gw, &c2);
    assert_eq!(common::cert_subject(&c2), "CN=cmp-cr");
    assert_eq!(common::cert_pubkey(&c2), key_pubkey(&k2));
    let signer = cmp_signer(&gw);
    kit::assert_signed_by(&saved(&p("cp.der")), &signer, "cp");
    kit::assert_signed_by(&saved(&p("pc2.der")), &signer, "pkiConf");

    // p10cr with an openssl CSR (with a SAN), signed with c1.
    let csr = common::new_csr(
        &gw.work_dir,
        "p10",
        common::KeyType::P256,
        "/CN=cmp-p10",
        &["DNS:p10.example.com"],
    );
    let c3 = p("c3.pem");
    run_cmp(
        cmp_cli(&gw, "p10cr", ".well-known/cmp")
            .args(["-cert", path_str(&c1), "-key", path_str(&k1)])
            .args(["-csr", path_str(&csr.der), "-certout", path_str(&c3)]),
    );
    verify_cert(&gw, &c3);
    assert_eq!(common::cert_subject(&c3), "CN=cmp-p10");
    assert_eq!(common::cert_pubkey(&c3), key_pubkey(&csr.key));
    let (_, san) = common::extension(&common::x509_text(&c3), "X509v3 Subject Alternative Name");
    assert_eq!(san, "DNS:p10.example.com");

    // kur: a new key for c1's subject, signed with c1.
    let k4 = new_key(&gw, "k4");
    let c4 = p("c4.pem");
    run_cmp(
        cmp_cli(&gw, "kur", ".well-known/cmp")
            .args(["-cert", path_str(&c1), "-key", path_str(&k1)])
            .args(["-newkey", path_str(&k4), "-certout", path_str(&c4)]),
    );
    verify_cert(&gw, &c4);
    assert_eq!(common::cert_subject(&c4), "CN=cmp-device");
    assert_eq!(common::cert_pubkey(&c4), key_pubkey(&k4));
    assert_ne!(common::cert_serial(&c4), common::cert_serial(&c1));

    // genm caCerts, once signed and once with the MAC: the issuing CA and the root.
    // (OpenSSL 3.0 has no -cacertsout for genm: the saved genp is decoded here.)
    let expected = vec![cert_der(&gw.issuing_pem()), cert_der(&gw.root_pem())];
    for (name, auth) in [
        (
            "genp_sig.der",
            vec![
                "-cert".into(),
                path_str(&c1).into(),
                "-key".into(),
                path_str(&k1).into(),
            ],
        ),
        ("genp_mac.der", mac_args(&token).to_vec()),
    ] {
        let stderr = run_cmp(
            cmp_cli(&gw, "genm", ".well-known/cmp")
                .args(["-infotype", "caCerts"])
                .args(auth)
                .args(["-rspout", path_str(&p(name))]),
        );
        assert!(stderr.contains("id-it-caCerts"), "{stderr}");
        assert_eq!(ca_certs_of(&saved(&p(name))), expected, "{name}");
    }

    // rr of c2 (reason keyCompromise), signed with c2: the CRL lists it.
    let serial = common::cert_serial(&c2);
    assert!(!revoked_per_crl(&gw, &c2));
    let stderr = run_cmp(
        cmp_cli(&gw, "rr", ".well-known/cmp")
            .args(["-cert", path_str(&c2), "-key", path_str(&k2)])
            .args(["-oldcert", path_str(&c2), "-revreason", "1"]),
    );
    assert!(stderr.contains("revocation accepted"), "{stderr}");
    let (_, text) = crl_text(&gw);
    assert!(
        text.contains(&serial),
        "CRL does not list {serial}:\n{text}"
    );
    assert!(text.contains("Key Compromise"), "reason missing:\n{text}");
    assert!(revoked_per_crl(&gw, &c2));
    for other in [&c1, &c3, &c4] {
        assert!(!revoked_per_crl(&gw, other), "{} revoked", other.display());
    }

    // The metrics saw four issuances (ir, cr and p10cr enroll, kur renews) and no refusal.
    let m = gw.metrics();
    let cmp = [("protocol", "cmp")];
    let issued = |operation| {
        let labels = [
            ("protocol", "cmp"),
            ("operation", operation),
            ("outcome", "issued"),
        ];
        m.sum("enrollgate_requests_total", &labels)
    };
    assert_eq!(issued("enroll"), 3.0);
    assert_eq!(issued("renew"), 1.0);
    assert_eq!(
        m.sum("enrollgate_requests_total", &cmp),
        4.0,
        "only issuances"
    );
    assert_eq!(m.sum("enrollgate_bad_input_total", &cmp), 0.0);
}

/// The DER certificates in a genp's caCerts value.
fn ca_certs_of(msg: &enrollgate_cmp::types::PkiMessage) -> Vec<Vec<u8>> {
    let PkiBody::Genp(itavs) = &msg.body else {
        panic!("not a genp: {:?}", msg.body);
    };
    let itav = itavs
        .iter()
        .find(|i| i.info_type == oid::IT_CA_CERTS)
        .expect("caCerts in genp");
    let value = itav
        .info_value
        .as_ref()
        .expect("caCerts value")
        .to_der()
        .unwrap();
    let certs: Vec<der::asn1::Any> = Vec::from_der(&value).unwrap();
    certs.iter().map(|c| c.to_der().unwrap()).collect()
}

/// `openssl cmp` running in the background with its output (stdout and stderr, see
/// [`run_cmp`]) in one file.
struct Background {
    child: Child,
    stderr: PathBuf,
}

impl Background {
    /// Starts `cmd` under `stdbuf -oL`: the client's stdout goes to a file, which the C
    /// library would otherwise buffer until the client exits.
    fn start(cmd: &mut Command, stderr: PathBuf) -> Self {
        common::require_tool("stdbuf");
        let err = std::fs::File::create(&stderr).unwrap();
        let out = err.try_clone().unwrap();
        let child = Command::new("stdbuf")
            .arg("-oL")
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `stdbuf -oL {}`: {e}", common::describe(cmd)));
        Self { child, stderr }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits up to `limit` for the client to exit; returns whether it succeeded.
    fn wait(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "openssl cmp still running after {limit:?}:\n{}",
            self.stderr()
        );
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `enrollgate request list` shows a CMP request for `subject`; returns its id.
fn pending_request(gw: &Gateway, subject: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = gw.run(&["request", "list"]);
        let found = list
            .lines()
            .find(|l| l.contains("cmp") && l.contains(subject))
            .and_then(|l| l.split_whitespace().next());
        if let Some(id) = found {
            return id.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no pending request for {subject}: {list}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn manual_approval_the_client_polls_until_the_operator_approves() {
    let gw = Gateway::start(MANUAL_ROUTE);
    let token = gw.token(&["--uses", "0", "--route", "manual"]);
    let key = new_key(&gw, "k");
    let cert = gw.path("approved.pem");
    let mut client = Background::start(
        cmp_cli(&gw, "ir", ".well-known/cmp/p/manual")
            .args(mac_args(&token))
            .args(["-newkey", path_str(&key), "-subject", "/CN=manual-device"])
            .args(["-certout", path_str(&cert), "-total_timeout", "90"]),
        gw.path("poll.stderr"),
    );

    // The client got "waiting" and polls; the operator approves while it does.
    let id = pending_request(&gw, "CN=manual-device");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client.stderr().contains("sending POLLREQ") {
        assert!(
            Instant::now() < deadline,
            "no pollReq:\n{}",
            client.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(client.child.try_wait().unwrap().is_none(), "client gave up");
    let approved = gw.run(&["request", "approve", &id]);
    assert!(approved.contains("issued"), "{approved}");

    assert!(client.wait(Duration::from_secs(60)), "{}", client.stderr());
    let log = client.stderr();
    assert!(log.contains("received 'waiting' PKIStatus"), "{log}");
    assert!(log.contains("received ip/cp/kup after polling"), "{log}");
    verify_cert(&gw, &cert);
    assert_eq!(common::cert_subject(&cert), "CN=manual-device");
}

#[test]
fn manual_approval_a_rejected_request_ends_the_polling() {
    let gw = Gateway::start(MANUAL_ROUTE);
    let token = gw.token(&["--uses", "0", "--route", "manual"]);
    let key = new_key(&gw, "k");
    let mut client = Background::start(
        cmp_cli(&gw, "ir", ".well-known/cmp/p/manual")
            .args(mac_args(&token))
            .args(["-newkey", path_str(&key), "-subject", "/CN=to-be-rejected"])
            .args([
                "-certout",
                path_str(&gw.path("never.pem")),
                "-total_timeout",
                "90",
            ]),
        gw.path("poll.stderr"),
    );
    let id = pending_request(&gw, "CN=to-be-rejected");
    gw.run(&["request", "reject", &id]);
    assert!(
        !client.wait(Duration::from_secs(60)),
        "the client got a certificate"
    );
    let log = client.stderr();
    assert!(log.contains("received 'waiting' PKIStatus"), "{log}");
    assert!(log.contains("rejection"), "{log}");
    assert!(!gw.path("never.pem").exists());
}

#[test]
fn implicit_confirm_skips_cert_conf_and_disable_confirm_leaves_it_pending() {
    let gw = Gateway::start("");
    let token = gw.token(&["--uses", "0"]);
    let p = |n: &str| gw.path(n);

    // -implicit_confirm: granted in the ip; the client sends no certConf.
    let key = new_key(&gw, "k");
    let reqs = format!("{},{}", p("ir.der").display(), p("cc.der").display());
    run_cmp(
        cmp_cli(&gw, "ir", ".well-known/cmp")
            .args(mac_args(&token))
            .args([
                "-newkey",
                path_str(&key),
                "-subject",
                "/CN=implicit",
                "-implicit_confirm",
            ])
            .args(["-certout", path_str(&p("implicit.pem")), "-reqout", &reqs])
            .args(["-rspout", path_str(&p("ip.der"))]),
    );
    verify_cert(&gw, &p("implicit.pem"));
    assert!(kit::grants_implicit_confirm(&saved(&p("ip.der"))));
    assert!(!p("cc.der").exists(), "a certConf was sent");

    // -disable_confirm: the client keeps the certificate without confirming it. The gateway
    // still waits for the certConf (and the sweeper revokes after the confirm wait): the
    // certificate is valid now, and the transaction accepts a late certConf meanwhile.
    let unconfirmed = p("unconfirmed.pem");
    run_cmp(
        cmp_cli(&gw, "ir", ".well-known/cmp")
            .args(mac_args(&token))
            .args([
                "-newkey",
                path_str(&key),
                "-subject",
                "/CN=unconfirmed",
                "-disable_confirm",
            ])
            .args(["-certout", path_str(&unconfirmed), "-reqout", &reqs])
            .args(["-rspout", path_str(&p("ip2.der"))]),
    );
    verify_cert(&gw, &unconfirmed);
    assert!(!kit::grants_implicit_confirm(&saved(&p("ip2.der"))));
    assert!(!revoked_per_crl(&gw, &unconfirmed));

    // The late certConf, built from the saved ir and ip: pkiConf, and nothing is revoked.
    let ir = kit::decode(&std::fs::read(p("ir.der")).unwrap());
    let ip = saved(&p("ip2.der"));
    let head = kit::Head {
        transaction_id: ir
            .header
            .transaction_id
            .as_ref()
            .map(|t| t.as_bytes().to_vec()),
        ..kit::Head::new()
    }
    .answering(&ip);
    let conf = kit::protect_mac(
        &head,
        kit::cert_conf_body(&cert_der(&unconfirmed), 0, true),
        &kit::Mac::new(&token.0, &token.1),
    );
    let reply = post_cmp(&gw, ".well-known/cmp", &conf);
    assert_eq!(reply.body.kind().name(), "pkiconf", "{:?}", reply.body);
    assert!(!revoked_per_crl(&gw, &unconfirmed));
}

/// POSTs a CMP message to the plain HTTP listener and decodes the reply.
fn post_cmp(gw: &Gateway, path: &str, der: &[u8]) -> enrollgate_cmp::types::PkiMessage {
    let addr = host_port(&gw.http_url).parse().unwrap();
    let mut conn = kit::HttpConn::connect(addr).unwrap();
    let reply = conn.cmp(&format!("/{path}"), der).unwrap();
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    kit::decode(&reply.body)
}

#[test]
fn a_certificate_rejected_in_cert_conf_or_abandoned_is_revoked() {
    let gw = Gateway::start("");
    let token = gw.token(&["--uses", "0"]);
    let mac = kit::Mac::new(&token.0, &token.1);
    let path = ".well-known/cmp";

    // ir -> ip, then certConf with a rejection status -> pkiConf, certificate revoked.
    // Then ir -> ip, then an error message (the client gives up) -> pkiConf, revoked too.
    let key = kit::ClientKey::generate();
    for (subject, last) in [
        (
            "CN=rejected",
            kit::cert_conf_body as fn(&[u8], i64, bool) -> PkiBody,
        ),
        ("CN=abandoned", |_: &[u8], _: i64, _: bool| {
            kit::error_body()
        }),
    ] {
        let head = kit::Head::new();
        let ip = post_cmp(
            &gw,
            path,
            &kit::protect_mac(&head, kit::ir_body(&key, subject), &mac),
        );
        let cert = kit::issued_cert(&ip).unwrap_or_else(|| panic!("no cert: {:?}", ip.body));
        let pem = gw.path(&format!("{subject}.pem"));
        std::fs::write(
            &pem,
            der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &cert).unwrap(),
        )
        .unwrap();
        verify_cert(&gw, &pem);
        assert!(!revoked_per_crl(&gw, &pem));

        let reply = post_cmp(
            &gw,
            path,
            &kit::protect_mac(&head.answering(&ip), last(&cert, 0, false), &mac),
        );
        assert_eq!(
            reply.body.kind().name(),
            "pkiconf",
            "{subject}: {:?}",
            reply.body
        );
        kit::assert_mac_by(&reply, &mac, subject);
        assert!(revoked_per_crl(&gw, &pem), "{subject} not revoked");
    }
}

#[test]
fn ir_over_https_and_unknown_routes() {
    let gw = Gateway::start("");
    let token = gw.token(&["--uses", "0"]);
    let key = new_key(&gw, "k");
    let cert = gw.path("tls.pem");
    let mut cmd = cmp_cli(&gw, "ir", ".well-known/cmp");
    // The same client over the HTTPS listener: -server is set again, later options win.
    cmd.arg("-server")
        .arg(host_port(&gw.https_url))
        .args(["-tls_used", "-tls_trusted", path_str(&gw.root_pem())])
        .args(mac_args(&token))
        .args(["-newkey", path_str(&key), "-subject", "/CN=over-tls"])
        .args(["-certout", path_str(&cert)]);
    run_cmp(&mut cmd);
    verify_cert(&gw, &cert);

    // An unknown route label: HTTP 404, the client reports it and gets nothing.
    let out = run_unchecked(
        cmp_cli(&gw, "ir", ".well-known/cmp/p/nosuchroute")
            .args(mac_args(&token))
            .args(["-newkey", path_str(&key), "-subject", "/CN=x"])
            .args(["-certout", path_str(&gw.path("none.pem"))]),
    );
    assert!(!out.status.success());
    let log = client_log(&out);
    assert!(log.contains("404"), "{log}");
}
