//! Tests of every EST operation and error, with requests made by `openssl req` (the vectors
//! of the pkix crate, see `protocols/pkix/tests/vectors/README.md`).

use std::io::Write as _;
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use const_oid::db::{rfc2985, rfc5912};
use enrollgate_model::{
    Credential, IssuanceRequest, Issued, KeySource, Operation, Outcome, Protocol, RejectReason,
    Secret,
};

use crate::*;

macro_rules! vector {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../pkix/tests/vectors/",
            $name
        ))
        .as_slice()
    };
}

const P256: &[u8] = vector!("csr_p256.der");
const PEM: &[u8] = vector!("csr_p256.pem");
const BAD_SIG: &[u8] = vector!("csr_p256_bad_signature.der");
const BOUND: &[u8] = vector!("csr_p256_channel_binding.der");
const CHALLENGE: &[u8] = vector!("csr_p256_challenge.der");
const ROOT: &[u8] = vector!("cert_root.der");
const ISSUING: &[u8] = vector!("cert_issuing.der");

/// The stand-in exporter whose base64 is the challengePassword of `BOUND`.
const EXPORTER: [u8; 32] = {
    let mut bytes = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        bytes[i] = i as u8;
        i += 1;
    }
    bytes
};

fn chain() -> Vec<Vec<u8>> {
    vec![ISSUING.to_vec(), ROOT.to_vec()]
}

fn route<'a>(chain: &'a [Vec<u8>], attrs: &'a [CsrAttr]) -> RouteInfo<'a> {
    RouteInfo {
        ca_chain: chain,
        csr_attrs: attrs,
    }
}

fn request<'a>(method: &'a str, body: &'a [u8]) -> EstRequest<'a> {
    EstRequest {
        method,
        content_type: Some("application/pkcs10"),
        content_transfer_encoding: Some("base64"),
        authorization: None,
        body,
        client_chain: &[],
        tls_exporter: None,
        peer: Some("192.0.2.1:4433".into()),
    }
}

fn path(text: &str) -> EstPath {
    parse_path(text).unwrap().unwrap()
}

fn b64(der: &[u8]) -> Vec<u8> {
    STANDARD.encode(der).into_bytes()
}

fn basic(user_pass: &str) -> String {
    format!("Basic {}", STANDARD.encode(user_pass))
}

/// Runs `handle` on an enrollment that must reach the registrar.
fn issue(path_text: &str, req: &EstRequest<'_>) -> IssuanceRequest {
    let chain = chain();
    match handle(&path(path_text), req, &route(&chain, &[])) {
        Ok(Decision::Issue(issuance)) => issuance,
        other => panic!("expected Issue, got {other:?}"),
    }
}

/// Runs `handle` on a request that must fail.
fn refuse(path_text: &str, req: &EstRequest<'_>) -> EstError {
    let chain = chain();
    handle(&path(path_text), req, &route(&chain, &[])).unwrap_err()
}

fn openssl(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the openssl command must be installed for these tests");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn paths() {
    assert_eq!(
        path("/.well-known/est/cacerts"),
        EstPath {
            label: String::new(),
            operation: EstOperation::CaCerts
        }
    );
    assert_eq!(
        path("/.well-known/est/iot-1/simpleenroll?x=1"),
        EstPath {
            label: "iot-1".into(),
            operation: EstOperation::SimpleEnroll
        }
    );
    assert_eq!(
        path("/.well-known/est/csrattrs").operation,
        EstOperation::CsrAttrs
    );
    assert_eq!(
        path("/.well-known/est/a/serverkeygen").operation,
        EstOperation::ServerKeygen
    );
    assert_eq!(
        path("/.well-known/est/simplereenroll").operation,
        EstOperation::SimpleReenroll
    );

    assert!(parse_path("/scep").is_none());
    assert!(parse_path("/.well-known/estx/cacerts").is_none());
    for unknown in [
        "/.well-known/est",
        "/.well-known/est/",
        "/.well-known/est/fullcmc",
        "/.well-known/est/CACERTS",
        "/.well-known/est/a/b/cacerts",
        "/.well-known/est/../cacerts",
        "/.well-known/est/a b/cacerts",
        "/.well-known/est//cacerts",
    ] {
        assert_eq!(
            parse_path(unknown),
            Some(Err(EstError::NotFound)),
            "{unknown}"
        );
    }
}

#[test]
fn cacerts_returns_the_chain_as_base64_certs_only() {
    let chain = chain();
    let Decision::Respond(reply) = handle(
        &path("/.well-known/est/cacerts"),
        &request("GET", b""),
        &route(&chain, &[]),
    )
    .unwrap() else {
        panic!("cacerts is answered directly");
    };
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some(CERTS_ONLY));
    assert_eq!(reply.header("Content-Transfer-Encoding"), Some("base64"));
    let der = decode_base64_body(&reply.body).unwrap();
    assert_eq!(enrollgate_pkix::parse_certs_only(&der).unwrap(), chain);

    // Lines of 64 columns, readable by `openssl base64 -d` and `openssl pkcs7`.
    assert!(
        reply
            .body
            .split(|b| *b == b'\n')
            .all(|line| line.len() <= 64)
    );
    let der = openssl(&["base64", "-d"], &reply.body);
    let text = openssl(&["pkcs7", "-inform", "DER", "-print_certs", "-noout"], &der);
    assert!(
        String::from_utf8(text)
            .unwrap()
            .contains("Acme Test Issuing CA")
    );
}

#[test]
fn cacerts_without_a_chain_is_an_internal_error() {
    let err = handle(
        &path("/.well-known/est/cacerts"),
        &request("GET", b""),
        &route(&[], &[]),
    )
    .unwrap_err();
    assert!(matches!(err, EstError::Internal(_)));
    let reply = err.response();
    assert_eq!(reply.status, 500);
    assert_eq!(reply.body, b"internal error\n");
}

#[test]
fn wrong_methods_are_refused() {
    let chain = chain();
    for (p, method) in [
        ("/.well-known/est/cacerts", "POST"),
        ("/.well-known/est/csrattrs", "PUT"),
        ("/.well-known/est/simpleenroll", "GET"),
        ("/.well-known/est/serverkeygen", "DELETE"),
    ] {
        let err = handle(&path(p), &request(method, b""), &route(&chain, &[])).unwrap_err();
        assert_eq!(err, EstError::MethodNotAllowed, "{p} {method}");
        assert_eq!(err.response().status, 405);
    }
}

#[test]
fn csrattrs_are_base64_der_that_openssl_reads() {
    let attrs = [
        CsrAttr::Oid(rfc2985::PKCS_9_AT_CHALLENGE_PASSWORD),
        CsrAttr::Oid(rfc5912::ECDSA_WITH_SHA_384),
        CsrAttr::EcCurve(rfc5912::SECP_384_R_1),
        CsrAttr::Attribute {
            oid: rfc5912::ID_EXTENSION_REQ,
            values: vec![rfc5912::ID_CE_SUBJECT_ALT_NAME],
        },
    ];
    let chain = chain();
    let decision = handle(
        &path("/.well-known/est/csrattrs"),
        &request("GET", b""),
        &route(&chain, &attrs),
    );
    let Ok(Decision::Respond(reply)) = decision else {
        panic!("csrattrs is answered directly");
    };
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("Content-Type"), Some(CSR_ATTRS));
    let der = decode_base64_body(&reply.body).unwrap();
    assert_eq!(parse_csr_attrs(&der).unwrap(), attrs);

    let text = String::from_utf8(openssl(&["asn1parse", "-inform", "DER"], &der)).unwrap();
    for expected in [
        "challengePassword",
        "ecdsa-with-SHA384",
        "secp384r1",
        "Extension Request",
    ] {
        assert!(text.contains(expected), "{expected} missing in:\n{text}");
    }
}

#[test]
fn empty_csrattrs_is_an_empty_sequence() {
    let chain = chain();
    let decision = handle(
        &path("/.well-known/est/csrattrs"),
        &request("GET", b""),
        &route(&chain, &[]),
    );
    let Ok(Decision::Respond(reply)) = decision else {
        panic!("csrattrs is answered directly");
    };
    assert_eq!(reply.body, b"MAA=");
    assert!(parse_csr_attrs(&[0x30, 0x00]).unwrap().is_empty());
}

#[test]
fn simpleenroll_with_basic_auth_asks_for_a_token_issuance() {
    let body = b64(P256);
    let auth = basic("tok-1:s3cret:with:colons");
    let req = EstRequest {
        authorization: Some(&auth),
        ..request("POST", &body)
    };
    let issuance = issue("/.well-known/est/iot/simpleenroll", &req);

    assert_eq!(issuance.protocol, Protocol::Est);
    assert_eq!(issuance.route, "iot");
    assert_eq!(issuance.operation, Operation::Enroll);
    assert_eq!(issuance.transaction_id, None);
    assert_eq!(issuance.requester.peer.as_deref(), Some("192.0.2.1:4433"));
    assert!(matches!(&issuance.key, KeySource::Csr(der) if der == P256));
    let Credential::Token { id, secret } = &issuance.requester.credential else {
        panic!("expected a token credential");
    };
    assert_eq!(id, "tok-1");
    assert_eq!(secret.expose(), b"s3cret:with:colons");
}

#[test]
fn body_forms_that_clients_send_are_all_read() {
    let wrapped: Vec<u8> = STANDARD
        .encode(P256)
        .as_bytes()
        .chunks(64)
        .flat_map(|line| [line, b"\r\n"].concat())
        .collect();
    let unpadded = STANDARD
        .encode(P256)
        .trim_end_matches('=')
        .as_bytes()
        .to_vec();
    for body in [wrapped.as_slice(), &unpadded, P256, PEM] {
        let req = EstRequest {
            content_type: None,
            ..request("POST", body)
        };
        let issuance = issue("/.well-known/est/simpleenroll", &req);
        assert!(matches!(issuance.key, KeySource::Csr(_)));
        assert!(matches!(
            issuance.requester.credential,
            Credential::Anonymous
        ));
    }
    let body = b64(P256);
    for content_type in ["application/pkcs10; charset=utf-8", "Application/PKCS10"] {
        let req = EstRequest {
            content_type: Some(content_type),
            ..request("POST", &body)
        };
        issue("/.well-known/est/simpleenroll", &req);
    }
}

#[test]
fn other_media_types_are_refused() {
    let body = b64(P256);
    let req = EstRequest {
        content_type: Some("application/json"),
        ..request("POST", &body)
    };
    let err = refuse("/.well-known/est/simpleenroll", &req);
    assert_eq!(err, EstError::UnsupportedMediaType);
    assert_eq!(err.response().status, 415);
    assert_eq!(err.kind(), "unsupported_media_type");
}

#[test]
fn broken_base64_is_a_bad_request() {
    let err = refuse(
        "/.well-known/est/simpleenroll",
        &request("POST", b"MIIB!!not base64"),
    );
    assert_eq!(err, EstError::BadRequest("body is not valid base64".into()));
    assert_eq!(err.response().status, 400);
}

#[test]
fn der_that_is_not_a_csr_is_a_bad_request() {
    let body = b64(ROOT);
    let err = refuse("/.well-known/est/simpleenroll", &request("POST", &body));
    let EstError::BadRequest(why) = &err else {
        panic!("{err:?}");
    };
    assert!(
        why.starts_with("bad CSR: malformed certification request"),
        "{why}"
    );
    assert_eq!(
        refuse("/.well-known/est/simpleenroll", &request("POST", b""))
            .response()
            .status,
        400
    );
}

#[test]
fn a_csr_with_a_bad_signature_reaches_the_registrar_which_refuses_it_with_400() {
    // The registrar checks proof of possession for every protocol; EST hands the CSR on
    // unchanged and renders the registrar's BadSignature as 400.
    let body = b64(BAD_SIG);
    let req = issue("/.well-known/est/simpleenroll", &request("POST", &body));
    match req.key {
        KeySource::Csr(der) => assert_eq!(der, BAD_SIG),
        other => panic!("unexpected key source {other:?}"),
    }
    let reply = encode_outcome(
        EstOperation::SimpleEnroll,
        &Outcome::Rejected(RejectReason::BadSignature),
    );
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );
}

#[test]
fn client_certificate_is_the_credential_without_basic() {
    let body = b64(P256);
    let client = vec![ISSUING.to_vec()];
    let req = EstRequest {
        client_chain: &client,
        ..request("POST", &body)
    };
    let issuance = issue("/.well-known/est/simpleenroll", &req);
    assert!(matches!(
        &issuance.requester.credential,
        Credential::Certificate { chain } if *chain == client
    ));
}

#[test]
fn simplereenroll_needs_a_client_certificate() {
    let body = b64(P256);
    let auth = basic("tok:secret");
    let req = EstRequest {
        authorization: Some(&auth),
        ..request("POST", &body)
    };
    let err = refuse("/.well-known/est/simplereenroll", &req);
    assert_eq!(err, EstError::Unauthorized);
    let reply = err.response();
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.header("WWW-Authenticate"),
        Some(r#"Basic realm="enrollgate""#)
    );

    let client = vec![ISSUING.to_vec()];
    let req = EstRequest {
        client_chain: &client,
        ..req
    };
    let issuance = issue("/.well-known/est/simplereenroll", &req);
    assert_eq!(issuance.operation, Operation::Renew);
    assert!(matches!(
        issuance.requester.credential,
        Credential::Certificate { .. }
    ));
}

#[test]
fn malformed_authorization_is_unauthorized() {
    let body = b64(P256);
    let no_colon = basic("justanid");
    let empty_id = basic(":secret");
    let not_base64 = "Basic !!!".to_owned();
    let not_utf8 = format!("Basic {}", STANDARD.encode([0xff, b':', 0xfe]));
    let other_scheme = "Bearer abc".to_owned();
    for header in [
        &no_colon,
        &empty_id,
        &not_base64,
        &not_utf8,
        &other_scheme,
        &"Basic".into(),
    ] {
        let req = EstRequest {
            authorization: Some(header),
            ..request("POST", &body)
        };
        assert_eq!(
            refuse("/.well-known/est/simpleenroll", &req),
            EstError::Unauthorized
        );
    }
    let lower = format!("basic {}", STANDARD.encode("id:pw"));
    let req = EstRequest {
        authorization: Some(&lower),
        ..request("POST", &body)
    };
    issue("/.well-known/est/simpleenroll", &req);
}

#[test]
fn channel_binding_is_checked_when_both_sides_have_it() {
    let body = b64(BOUND);
    let req = EstRequest {
        tls_exporter: Some(&EXPORTER),
        ..request("POST", &body)
    };
    issue("/.well-known/est/simpleenroll", &req);

    let mut other = EXPORTER;
    other[0] ^= 1;
    let req = EstRequest {
        tls_exporter: Some(&other),
        ..request("POST", &body)
    };
    let err = refuse("/.well-known/est/simpleenroll", &req);
    assert_eq!(err, EstError::BadRequest("channel binding mismatch".into()));
    assert_eq!(err.response().status, 400);

    // A password that is not a binding fails the check too.
    let body = b64(CHALLENGE);
    let req = EstRequest {
        tls_exporter: Some(&EXPORTER),
        ..request("POST", &body)
    };
    assert!(matches!(
        refuse("/.well-known/est/simpleenroll", &req),
        EstError::BadRequest(_)
    ));
}

#[test]
fn channel_binding_is_skipped_when_a_side_lacks_it() {
    // A challengePassword without an exporter (TLS 1.2) is ignored here.
    let body = b64(BOUND);
    issue("/.well-known/est/simpleenroll", &request("POST", &body));
    // An exporter with a CSR that has no challengePassword.
    let body = b64(P256);
    let req = EstRequest {
        tls_exporter: Some(&EXPORTER),
        ..request("POST", &body)
    };
    issue("/.well-known/est/simpleenroll", &req);
}

#[test]
fn serverkeygen_asks_for_a_generated_key() {
    let body = b64(P256);
    let issuance = issue("/.well-known/est/serverkeygen", &request("POST", &body));
    assert_eq!(issuance.operation, Operation::Enroll);
    assert!(matches!(
        &issuance.key,
        KeySource::Generate { template_csr } if template_csr == P256
    ));
}

fn issued(private_key: Option<Secret>) -> Outcome {
    Outcome::Issued(Issued {
        certificate: ISSUING.to_vec(),
        chain: vec![ROOT.to_vec()],
        serial: "02".into(),
        private_key,
    })
}

#[test]
fn issued_certificate_is_sent_alone() {
    let reply = encode_outcome(EstOperation::SimpleEnroll, &issued(None));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("Content-Type"), Some(CERTS_ONLY));
    assert_eq!(reply.header("Content-Transfer-Encoding"), Some("base64"));
    let der = decode_base64_body(&reply.body).unwrap();
    assert_eq!(
        enrollgate_pkix::parse_certs_only(&der).unwrap(),
        [ISSUING.to_vec()]
    );
}

#[test]
fn serverkeygen_reply_is_multipart_with_key_and_certificate() {
    let key = b"0\x03\x02\x01\x00 stand-in PKCS#8".to_vec();
    let reply = encode_outcome(
        EstOperation::ServerKeygen,
        &issued(Some(Secret::new(key.clone()))),
    );
    assert_eq!(reply.status, 200);
    let content_type = reply.header("Content-Type").unwrap();
    assert!(content_type.starts_with("multipart/mixed; boundary="));
    assert!(!format!("{reply:?}").contains("stand-in"));

    let parts = parse_multipart(content_type, &reply.body).unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0], ("application/pkcs8".to_owned(), key));
    assert_eq!(parts[1].0, CERTS_ONLY);
    assert_eq!(
        enrollgate_pkix::parse_certs_only(&parts[1].1).unwrap(),
        [ISSUING.to_vec()]
    );

    let reply = encode_outcome(EstOperation::ServerKeygen, &issued(None));
    assert_eq!(reply.status, 500);
}

#[test]
fn pending_is_202_with_retry_after() {
    let outcome = Outcome::Pending {
        id: "p-1".into(),
        retry_after: 120,
    };
    let reply = encode_outcome(EstOperation::SimpleEnroll, &outcome);
    assert_eq!(reply.status, 202);
    assert_eq!(reply.header("Retry-After"), Some("120"));
}

#[test]
fn rejections_map_to_statuses() {
    let cases = [
        (RejectReason::Malformed("x".into()), 400),
        (RejectReason::BadSignature, 400),
        (RejectReason::BadAlgorithm("RSA-1024".into()), 400),
        (RejectReason::TransactionConflict, 400),
        (RejectReason::Unauthenticated, 401),
        (RejectReason::PolicyDenied("SAN".into()), 403),
        (RejectReason::Refused, 403),
        (RejectReason::UnknownRoute, 404),
        (RejectReason::BackendUnavailable, 503),
        (RejectReason::Internal, 500),
    ];
    for (reason, status) in cases {
        let reply = encode_outcome(
            EstOperation::SimpleEnroll,
            &Outcome::Rejected(reason.clone()),
        );
        assert_eq!(reply.status, status, "{reason:?}");
        assert_eq!(
            reply.body,
            format!("{}\n", reason.public_text()).into_bytes()
        );
        assert_eq!(reply.header("WWW-Authenticate").is_some(), status == 401);
        assert_eq!(reply.header("Retry-After").is_some(), status == 503);
    }
}

#[test]
fn request_debug_hides_the_password() {
    let auth = basic("tok:hunter2");
    let req = EstRequest {
        authorization: Some(&auth),
        ..request("POST", b"")
    };
    let debug = format!("{req:?}");
    assert!(!debug.contains(&auth[6..]), "{debug}");
}

#[test]
fn multipart_parser_refuses_garbage() {
    assert_eq!(
        parse_multipart("text/plain", b""),
        Err(EstError::UnsupportedMediaType)
    );
    assert!(parse_multipart("multipart/mixed", b"").is_err());
    assert!(parse_multipart("multipart/mixed; boundary=b", b"no delimiter").is_err());
    assert!(parse_multipart("multipart/mixed; boundary=b", b"--b\r\nContent-Type: x\r\n").is_err());
    let quoted = b"--b\r\nContent-Type: a/b\r\n\r\nhello\r\n--b--\r\n";
    let parts = parse_multipart("multipart/mixed; boundary=\"b\"", quoted).unwrap();
    assert_eq!(parts, [("a/b".to_owned(), b"hello".to_vec())]);
}
