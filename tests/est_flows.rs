//! EST (RFC 7030) end to end: the real `curl` and `openssl` command-line tools against a running
//! `enrollgate serve`, each test with its own gateway and data directory.
//!
//! Covered: cacerts, simpleenroll with tokens (single use, several uses, expiry, subject
//! pattern, route binding), the default profile's extensions, simplereenroll with the issued
//! certificate as TLS client certificate, serverkeygen, csrattrs, labelled routes, manual
//! approval through the CLI, revocation and the CRL, restart on the same data directory, and
//! `enrollgate check`.

mod common;

use common::{
    Gateway, KeyType, cert_fingerprint, cert_pubkey, cert_serial, cert_subject, enroll, extension,
    multipart_parts, new_csr, openssl, openssl_unchecked, path_str, pkcs7_to_pem, split_pem,
    verify_cert, x509, x509_text,
};

/// A default route plus a route `iot` on its own profile (server certificates, 7 days).
const IOT_ROUTES: &str = r#"
[profiles.device]

[profiles.iot]
extended_key_usage = ["serverAuth"]
validity_days = 7

[[routes]]
label = ""
profile = "device"

[[routes]]
label = "iot"
profile = "iot"
"#;

#[test]
fn cacerts_is_the_ca_chain_as_certs_only_pkcs7() {
    let gw = Gateway::start("");
    let reply = gw.est("cacerts").send();
    reply.expect(200, "cacerts");
    let ct = reply.header("content-type").unwrap_or_default();
    assert!(ct.contains("application/pkcs7-mime"), "content type {ct}");
    assert_eq!(reply.header("content-transfer-encoding"), Some("base64"));

    let pem = pkcs7_to_pem(&gw.work_dir, "cacerts", &reply.body);
    let certs = split_pem(&std::fs::read_to_string(&pem).unwrap());
    let fingerprints: Vec<String> = certs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let path = gw.path(&format!("cacert{i}.pem"));
            std::fs::write(&path, c).unwrap();
            cert_fingerprint(&path)
        })
        .collect();
    assert!(fingerprints.contains(&cert_fingerprint(&gw.issuing_pem())));
    assert!(fingerprints.contains(&cert_fingerprint(&gw.root_pem())));

    // The fingerprint `serve` prints is the root's.
    assert_eq!(
        gw.fingerprint.to_uppercase(),
        cert_fingerprint(&gw.root_pem())
    );
}

#[test]
fn simpleenroll_issues_a_certificate_of_the_default_profile_once_per_token() {
    let gw = Gateway::start("");
    let token = gw.token(&[]);
    let csr = new_csr(
        &gw.work_dir,
        "dev1",
        KeyType::P256,
        "/CN=dev1",
        &["DNS:dev1.example.com", "IP:192.0.2.7"],
    );
    let before = gw.metrics();
    let cert = enroll(&gw, "simpleenroll", &token, &csr);
    let after = gw.metrics();

    let text = x509_text(&cert);
    assert_eq!(cert_subject(&cert), "CN=dev1");
    assert_eq!(
        extension(&text, "X509v3 Basic Constraints"),
        (true, "CA:FALSE".into())
    );
    assert_eq!(
        extension(&text, "X509v3 Key Usage"),
        (true, "Digital Signature, Key Encipherment".into())
    );
    assert_eq!(
        extension(&text, "X509v3 Extended Key Usage").1,
        "TLS Web Client Authentication"
    );
    let (_, ski) = extension(&text, "X509v3 Subject Key Identifier");
    assert!(!ski.is_empty());
    let issuing_ski = extension(
        &x509_text(&gw.issuing_pem()),
        "X509v3 Subject Key Identifier",
    )
    .1;
    let (_, aki) = extension(&text, "X509v3 Authority Key Identifier");
    assert_eq!(aki.trim_start_matches("keyid:"), issuing_ski);
    assert_eq!(
        extension(&text, "X509v3 Subject Alternative Name").1,
        "DNS:dev1.example.com, IP Address:192.0.2.7"
    );
    assert_eq!(cert_pubkey(&cert), public_key_of(&csr.key));
    // The default profile gives 365 days.
    assert_valid_for_days(&cert, 364, 366);

    // Success moves the request, latency and issuance metrics.
    let issued = [("protocol", "est"), ("outcome", "issued")];
    assert_eq!(
        after.sum("enrollgate_requests_total", &issued),
        before.sum("enrollgate_requests_total", &issued) + 1.0
    );
    let est = [("protocol", "est")];
    let count = "enrollgate_request_duration_seconds_count";
    assert_eq!(after.sum(count, &est), before.sum(count, &est) + 1.0);
    let certs = "enrollgate_certificates_issued_total";
    assert_eq!(after.sum(certs, &[]), before.sum(certs, &[]) + 1.0);

    // The token had one use.
    let again = new_csr(&gw.work_dir, "dev1b", KeyType::P256, "/CN=dev1", &[]);
    let reply = gw.est("simpleenroll").token(&token).csr(&again.b64).send();
    reply.expect(401, "spent token");
    assert!(reply.header("www-authenticate").is_some());
}

#[test]
fn simplereenroll_with_the_issued_certificate_keeps_the_subject() {
    let gw = Gateway::start("");
    let (cert, key) = enroll_one(&gw, "/CN=renew-me");
    let next = new_csr(&gw.work_dir, "renewed", KeyType::P256, "/CN=renew-me", &[]);
    let reply = gw
        .est("simplereenroll")
        .client_cert(&cert, &key)
        .csr(&next.b64)
        .send();
    reply.expect(200, "simplereenroll");
    let renewed = pkcs7_to_pem(&gw.work_dir, "renewed", &reply.body);
    verify_cert(&gw, &renewed);
    assert_eq!(cert_subject(&renewed), "CN=renew-me");
    assert_ne!(cert_serial(&renewed), cert_serial(&cert));
    assert_eq!(cert_pubkey(&renewed), public_key_of(&next.key));

    // The renewed certificate renews in turn.
    let third = new_csr(&gw.work_dir, "third", KeyType::P256, "/CN=renew-me", &[]);
    gw.est("simplereenroll")
        .client_cert(&renewed, &next.key)
        .csr(&third.b64)
        .send()
        .expect(200, "renewing the renewed certificate");
}

#[test]
fn simplereenroll_with_another_subject_is_forbidden() {
    let gw = Gateway::start("");
    let (cert, key) = enroll_one(&gw, "/CN=original");
    let other = new_csr(
        &gw.work_dir,
        "other",
        KeyType::P256,
        "/CN=someone-else",
        &[],
    );
    gw.est("simplereenroll")
        .client_cert(&cert, &key)
        .csr(&other.b64)
        .send()
        .expect(403, "renewal with another subject");
}

#[test]
fn simplereenroll_needs_a_client_certificate() {
    let gw = Gateway::start("");
    let csr = new_csr(&gw.work_dir, "anon", KeyType::P256, "/CN=anon", &[]);
    gw.est("simplereenroll")
        .csr(&csr.b64)
        .send()
        .expect(401, "reenroll without credentials");
    // A token is no substitute for the certificate being renewed.
    let token = gw.token(&[]);
    gw.est("simplereenroll")
        .token(&token)
        .csr(&csr.b64)
        .send()
        .expect(401, "reenroll with a token only");
}

#[test]
fn serverkeygen_returns_a_pkcs8_key_matching_the_certificate() {
    let gw = Gateway::start("");
    let token = gw.token(&[]);
    let template = new_csr(&gw.work_dir, "tmpl", KeyType::P256, "/CN=keygen", &[]);
    let reply = gw
        .est("serverkeygen")
        .token(&token)
        .csr(&template.b64)
        .send();
    reply.expect(200, "serverkeygen");
    let ct = reply.header("content-type").unwrap_or_default().to_owned();
    assert!(ct.starts_with("multipart/mixed"), "content type {ct}");
    let parts = multipart_parts(&ct, &reply.body);
    assert_eq!(
        parts.len(),
        2,
        "parts: {:?}",
        parts.iter().map(|p| &p.0).collect::<Vec<_>>()
    );
    let (key_type, key_der) = &parts[0];
    let (cert_type, p7_der) = &parts[1];
    assert_eq!(key_type, "application/pkcs8");
    assert!(cert_type.contains("certs-only"), "{cert_type}");

    let key_path = gw.path("generated.p8");
    std::fs::write(&key_path, key_der).unwrap();
    // PKCS#8, unencrypted (RFC 7030 4.4.2 without the encrypted-key option).
    openssl(&[
        "pkcs8",
        "-inform",
        "DER",
        "-nocrypt",
        "-in",
        path_str(&key_path),
    ]);
    let key_pub = openssl(&[
        "pkey",
        "-inform",
        "DER",
        "-in",
        path_str(&key_path),
        "-pubout",
    ]);

    let p7_b64 = gw.path("generated.p7.b64");
    common::write_base64(&p7_b64, p7_der);
    let cert = pkcs7_to_pem(&gw.work_dir, "generated", &std::fs::read(&p7_b64).unwrap());
    verify_cert(&gw, &cert);
    assert_eq!(cert_pubkey(&cert), key_pub);
    assert_ne!(cert_pubkey(&cert), public_key_of(&template.key));
    assert_eq!(cert_subject(&cert), "CN=keygen");
}

#[test]
fn csrattrs_is_der_that_openssl_reads() {
    let gw = Gateway::start("");
    let reply = gw.est("csrattrs").send();
    reply.expect(200, "csrattrs");
    assert_eq!(reply.header("content-type"), Some("application/csrattrs"));
    let der = gw.path("csrattrs.der");
    std::fs::write(&der, common::decode_base64(&reply.body)).unwrap();
    let parsed = openssl(&["asn1parse", "-inform", "DER", "-in", path_str(&der)]);
    let first = parsed.lines().next().unwrap_or_default();
    assert!(
        first.contains("d=0") && first.contains("SEQUENCE"),
        "{parsed}"
    );
}

#[test]
fn token_with_three_uses_works_three_times() {
    let gw = Gateway::start("");
    let token = gw.token(&["--uses", "3"]);
    for i in 0..3 {
        let csr = new_csr(
            &gw.work_dir,
            &format!("u{i}"),
            KeyType::P256,
            "/CN=multi",
            &[],
        );
        enroll(&gw, "simpleenroll", &token, &csr);
    }
    let csr = new_csr(&gw.work_dir, "u3", KeyType::P256, "/CN=multi", &[]);
    gw.est("simpleenroll")
        .token(&token)
        .csr(&csr.b64)
        .send()
        .expect(401, "fourth use of a three-use token");
}

#[test]
fn unlimited_token_keeps_working() {
    let gw = Gateway::start("");
    let token = gw.token(&["--uses", "0"]);
    for i in 0..4 {
        let csr = new_csr(
            &gw.work_dir,
            &format!("n{i}"),
            KeyType::P256,
            "/CN=fleet",
            &[],
        );
        enroll(&gw, "simpleenroll", &token, &csr);
    }
}

#[test]
fn expired_token_is_refused() {
    let gw = Gateway::start("");
    let token = gw.token(&["--ttl", "1s"]);
    let csr = new_csr(&gw.work_dir, "late", KeyType::P256, "/CN=late", &[]);
    std::thread::sleep(std::time::Duration::from_secs(2));
    gw.est("simpleenroll")
        .token(&token)
        .csr(&csr.b64)
        .send()
        .expect(401, "expired token");
}

#[test]
fn token_subject_pattern_limits_the_subject() {
    let gw = Gateway::start("");
    let token = gw.token(&["--subject", "CN=allowed*"]);
    let other = new_csr(&gw.work_dir, "other", KeyType::P256, "/CN=other", &[]);
    gw.est("simpleenroll")
        .token(&token)
        .csr(&other.b64)
        .send()
        .expect(403, "subject outside the token's pattern");
    // The refusal took no use: the single-use token still enrolls an allowed subject.
    let ok = new_csr(&gw.work_dir, "ok", KeyType::P256, "/CN=allowed-7", &[]);
    let cert = enroll(&gw, "simpleenroll", &token, &ok);
    assert_eq!(cert_subject(&cert), "CN=allowed-7");
}

#[test]
fn token_is_bound_to_its_route() {
    let gw = Gateway::start(IOT_ROUTES);
    let iot_token = gw.token(&["--route", "iot"]);
    let default_token = gw.token(&[]);
    let csr = new_csr(&gw.work_dir, "r", KeyType::P256, "/CN=routed", &[]);
    gw.est("simpleenroll")
        .token(&iot_token)
        .csr(&csr.b64)
        .send()
        .expect(401, "iot token on the default route");
    gw.est("iot/simpleenroll")
        .token(&default_token)
        .csr(&csr.b64)
        .send()
        .expect(401, "default token on the iot route");
    // Both still work where they belong.
    enroll(&gw, "iot/simpleenroll", &iot_token, &csr);
    enroll(&gw, "simpleenroll", &default_token, &csr);
}

#[test]
fn labelled_route_issues_under_its_own_profile() {
    let gw = Gateway::start(IOT_ROUTES);
    gw.est("iot/cacerts").send().expect(200, "iot cacerts");
    let token = gw.token(&["--route", "iot"]);
    let csr = new_csr(&gw.work_dir, "sensor", KeyType::P256, "/CN=sensor-1", &[]);
    let cert = enroll(&gw, "iot/simpleenroll", &token, &csr);
    let text = x509_text(&cert);
    assert_eq!(
        extension(&text, "X509v3 Extended Key Usage").1,
        "TLS Web Server Authentication"
    );
    assert_valid_for_days(&cert, 6, 8);
}

#[test]
fn rsa_2048_is_accepted_and_rsa_1024_refused() {
    let gw = Gateway::start("");
    let token = gw.token(&["--uses", "2"]);
    let weak = new_csr(&gw.work_dir, "weak", KeyType::Rsa(1024), "/CN=rsa", &[]);
    gw.est("simpleenroll")
        .token(&token)
        .csr(&weak.b64)
        .send()
        .expect(400, "RSA-1024");
    let strong = new_csr(&gw.work_dir, "strong", KeyType::Rsa(2048), "/CN=rsa", &[]);
    let cert = enroll(&gw, "simpleenroll", &token, &strong);
    assert!(x509_text(&cert).contains("Public-Key: (2048 bit)"));
    let ed = new_csr(&gw.work_dir, "ed", KeyType::Ed25519, "/CN=ed", &[]);
    enroll(&gw, "simpleenroll", &token, &ed);
}

#[test]
fn unknown_label_is_not_found() {
    let gw = Gateway::start("");
    let token = gw.token(&[]);
    let csr = new_csr(&gw.work_dir, "x", KeyType::P256, "/CN=x", &[]);
    // HTTP/1.1 with a small body; est_bad_input covers the reply racing a body in flight.
    gw.est("nolabel/simpleenroll")
        .arg("--http1.1")
        .token(&token)
        .csr(&csr.b64)
        .send()
        .expect(404, "unknown label");
    gw.est("nolabel/cacerts")
        .send()
        .expect(404, "unknown label cacerts");
}

/// EST has no transaction id: a client told 202 resends the same CSR with the same
/// credentials (RFC 7030 4.2.3). The gateway recognises the resend: while the request is held
/// it answers 202 again without a second entry, and after approval it returns the approved
/// certificate, although the one-use token was spent by the first attempt. Another CSR under
/// the spent token is refused.
#[test]
fn manual_approval_holds_the_request_until_an_operator_approves() {
    let gw = Gateway::start(
        "[profiles.device]\n[[routes]]\nlabel = \"\"\nprofile = \"device\"\nmanual_approval = true\n",
    );
    let token = gw.token(&[]);
    let csr = new_csr(&gw.work_dir, "held", KeyType::P256, "/CN=held-1", &[]);
    let before = gw.metrics();
    let reply = gw.est("simpleenroll").token(&token).csr(&csr.b64).send();
    reply.expect(202, "held request");
    let retry: u32 = reply
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("202 carries a numeric Retry-After");
    assert!(retry > 0);
    let after = gw.metrics();
    let certs = "enrollgate_certificates_issued_total";
    assert_eq!(after.sum(certs, &[]), before.sum(certs, &[]));

    let held = pending(&gw);
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(
        held[0].contains("CN=held-1") && held[0].contains("est"),
        "{held:?}"
    );
    let id = held[0].split('\t').next().unwrap().to_owned();

    // A resend while held: 202 again, still one entry.
    gw.est("simpleenroll")
        .token(&token)
        .csr(&csr.b64)
        .send()
        .expect(202, "resend while held");
    assert_eq!(pending(&gw), held);

    let approved = gw.run(&["request", "approve", &id]);
    assert_eq!(approved.trim(), format!("{id}: issued"));
    assert!(pending(&gw).is_empty());

    // The resend after approval gets the approved certificate, twice if need be.
    let mut serials = Vec::new();
    for n in 0..2 {
        let resend = gw.est("simpleenroll").token(&token).csr(&csr.b64).send();
        resend.expect(200, "resend after approval");
        let cert = pkcs7_to_pem(&gw.work_dir, &format!("resent{n}"), &resend.body);
        verify_cert(&gw, &cert);
        assert_eq!(cert_pubkey(&cert), public_key_of(&csr.key));
        serials.push(cert_serial(&cert));
    }
    // One certificate: the operator's approval issued it (in the CLI's process), the
    // gateway only hands it out again.
    assert_eq!(serials[0], serials[1]);
    assert_eq!(gw.metrics().sum(certs, &[]), before.sum(certs, &[]));

    // The token is spent: a new CSR under it is refused, and nothing is held.
    let other = new_csr(&gw.work_dir, "held2", KeyType::P256, "/CN=held-2", &[]);
    gw.est("simpleenroll")
        .token(&token)
        .csr(&other.b64)
        .send()
        .expect(401, "spent token, new CSR");
    assert!(pending(&gw).is_empty());
}

#[test]
fn crl_lists_a_revoked_certificate_which_can_no_longer_reenroll() {
    let gw = Gateway::start("");
    let (cert, key) = enroll_one(&gw, "/CN=doomed");
    let serial = cert_serial(&cert);

    let first = crl_text(&gw, "crl1");
    assert!(!first.contains(&serial), "{first}");

    let out = gw.run(&["revoke", &serial, "--reason", "1"]);
    assert!(out.contains("revoked"), "{out}");
    let second = crl_text(&gw, "crl2");
    let entry = second
        .split("Serial Number: ")
        .find(|e| e.starts_with(&serial))
        .unwrap_or_else(|| panic!("serial {serial} not in the CRL:\n{second}"));
    assert!(entry.contains("Key Compromise"), "{entry}");
    assert!(crl_number(&second) > crl_number(&first));

    // Revoking twice says so.
    let again = gw.run_unchecked(&["revoke", &serial]);
    assert!(!again.status.success());

    let next = new_csr(&gw.work_dir, "next", KeyType::P256, "/CN=doomed", &[]);
    gw.est("simplereenroll")
        .client_cert(&cert, &key)
        .csr(&next.b64)
        .send()
        .expect(401, "renewal with a revoked certificate");
}

#[test]
fn second_start_reuses_the_ca_and_tokens() {
    let mut gw = Gateway::start("");
    let fingerprint = gw.fingerprint.clone();
    let root = std::fs::read(gw.root_pem()).unwrap();
    let issuing = std::fs::read(gw.issuing_pem()).unwrap();
    let token = gw.token(&[]);
    gw.restart();
    assert_eq!(gw.fingerprint, fingerprint);
    assert_eq!(std::fs::read(gw.root_pem()).unwrap(), root);
    assert_eq!(std::fs::read(gw.issuing_pem()).unwrap(), issuing);
    let csr = new_csr(
        &gw.work_dir,
        "after",
        KeyType::P256,
        "/CN=after-restart",
        &[],
    );
    enroll(&gw, "simpleenroll", &token, &csr);
}

#[test]
fn check_explains_a_bad_configuration_and_accepts_a_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let check = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        common::run_unchecked(
            std::process::Command::new(common::BIN)
                .args(["check", "--config"])
                .arg(&path),
        )
    };
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();

    let out = check("typo.toml", "bogus = 1\n");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unknown field"), "{}", stderr(&out));

    let out = check(
        "ref.toml",
        "[[routes]]\nlabel = \"x\"\nprofile = \"nope\"\n",
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("unknown profile"), "{}", stderr(&out));

    let out = check("good.toml", IOT_ROUTES);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));
}

// ---------------------------------------------------------------------------------------------

/// Enrolls a fresh P-256 key under `subject` with a new token; returns (certificate, key).
fn enroll_one(gw: &Gateway, subject: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let token = gw.token(&[]);
    let name = common::unique("first");
    let csr = new_csr(&gw.work_dir, &name, KeyType::P256, subject, &[]);
    let cert = enroll(gw, "simpleenroll", &token, &csr);
    (cert, csr.key)
}

/// The public key (PEM) of a private key file.
fn public_key_of(key: &std::path::Path) -> String {
    openssl(&["pkey", "-in", path_str(key), "-pubout"])
}

/// Asserts the certificate is valid for more than `min` and less than `max` days from now.
fn assert_valid_for_days(cert: &std::path::Path, min: u64, max: u64) {
    let still_valid = |days: u64| {
        let secs = (days * 86_400).to_string();
        openssl_unchecked(&["x509", "-noout", "-in", path_str(cert), "-checkend", &secs])
            .status
            .success()
    };
    assert!(
        still_valid(min),
        "expires before {min} days:\n{}",
        x509(cert, &["-dates"])
    );
    assert!(
        !still_valid(max),
        "still valid after {max} days:\n{}",
        x509(cert, &["-dates"])
    );
}

/// `enrollgate request list`, one line per held request.
fn pending(gw: &Gateway) -> Vec<String> {
    gw.run(&["request", "list"])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Fetches `/crl` over plain HTTP, checks its signature with openssl, returns its text form.
fn crl_text(gw: &Gateway, name: &str) -> String {
    let reply = gw.request(&format!("{}/crl", gw.http_url)).send();
    reply.expect(200, "GET /crl");
    let der = gw.path(&format!("{name}.der"));
    std::fs::write(&der, &reply.body).expect("writing the CRL");
    let chain = gw.path("chain.pem");
    let bundle = std::fs::read_to_string(gw.issuing_pem()).expect("issuing CA")
        + &std::fs::read_to_string(gw.root_pem()).expect("root CA");
    std::fs::write(&chain, bundle).expect("writing the CA bundle");
    let out = openssl_unchecked(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        path_str(&der),
        "-CAfile",
        path_str(&chain),
        "-noout",
        "-text",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "openssl crl: {stderr}");
    assert!(stderr.contains("verify OK"), "CRL signature: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The CRL Number in `openssl crl -text` output.
fn crl_number(text: &str) -> u64 {
    let (_, value) = extension(text, "X509v3 CRL Number");
    value
        .parse()
        .unwrap_or_else(|_| panic!("CRL number {value:?}"))
}
