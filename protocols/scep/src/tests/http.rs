//! The HTTP mapping.

use base64::Engine as _;

use super::vector;
use crate::{ScepError, ScepHttpRequest, ca_caps, ca_cert_reply, parse_http_request};

#[test]
fn operations_parse_from_get_and_post() {
    assert_eq!(
        parse_http_request("GET", "operation=GetCACaps&message=ca1", b"").expect("caps"),
        ScepHttpRequest::GetCaCaps {
            message: Some("ca1".into())
        }
    );
    assert_eq!(
        parse_http_request("GET", "operation=GetCACert", b"").expect("cacert"),
        ScepHttpRequest::GetCaCert { message: None }
    );
    assert_eq!(
        parse_http_request("GET", "operation=GetNextCACert", b"").expect("next"),
        ScepHttpRequest::GetNextCaCert { message: None }
    );
    assert_eq!(
        parse_http_request("POST", "operation=PKIOperation", b"\x30\x00").expect("post"),
        ScepHttpRequest::PkiOperation(b"\x30\x00".to_vec())
    );
}

#[test]
fn get_pki_operation_decodes_escaped_base64() {
    let msg = vector!("micromdm_pkcsreq.der");
    let b64 = base64::engine::general_purpose::STANDARD.encode(msg);
    // Properly escaped, and with '+' left raw (read as a space) and line breaks.
    let escaped = b64
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let raw_plus = format!("{}%0A", b64.trim_end_matches('='));
    for m in [escaped, raw_plus] {
        let q = format!("operation=PKIOperation&message={m}");
        let got = parse_http_request("GET", &q, b"").expect("get");
        assert_eq!(got, ScepHttpRequest::PkiOperation(msg.to_vec()));
    }
}

#[test]
fn bad_http_requests_are_refused() {
    for (method, query) in [
        ("GET", ""),
        ("GET", "operation=Nope"),
        ("GET", "operation=PKIOperation"),
        ("GET", "operation=PKIOperation&message=%%%"),
        ("GET", "operation=PKIOperation&message=%G1"),
        ("GET", "operation=PKIOperation&message=!!!!"),
        ("PUT", "operation=GetCACaps"),
        ("POST", "operation=PKIOperation"),
    ] {
        let err = parse_http_request(method, query, b"").unwrap_err();
        assert!(
            matches!(err, ScepError::BadHttpRequest(_)),
            "{method} {query}: {err}"
        );
    }
}

#[test]
fn huge_get_message_is_too_large() {
    let query = format!("operation=PKIOperation&message={}", "A".repeat(400 * 1024));
    let err = parse_http_request("GET", &query, b"").unwrap_err();
    assert!(matches!(err, ScepError::TooLarge { .. }), "{err}");
    let query = format!(
        "operation=PKIOperation&message={}",
        "A".repeat(4 * 1024 * 1024)
    );
    assert!(matches!(
        parse_http_request("GET", &query, b""),
        Err(ScepError::TooLarge { .. })
    ));
    let body = vec![0; crate::MAX_MESSAGE_LEN + 1];
    let err = parse_http_request("POST", "operation=PKIOperation", &body).unwrap_err();
    assert!(matches!(err, ScepError::TooLarge { .. }));
}

#[test]
fn ca_caps_lists_what_we_do() {
    let caps = String::from_utf8(ca_caps(false).body).expect("utf8");
    let lines: Vec<&str> = caps.lines().collect();
    for cap in [
        "AES",
        "SHA-256",
        "SHA-512",
        "POSTPKIOperation",
        "Renewal",
        "SCEPStandard",
    ] {
        assert!(lines.contains(&cap), "{cap} missing");
    }
    assert!(!lines.contains(&"GetNextCACert"));
    assert!(
        String::from_utf8(ca_caps(true).body)
            .expect("utf8")
            .contains("GetNextCACert\n")
    );
}

#[test]
fn ca_cert_reply_forms() {
    let ca = vector!("ca_cert.der").to_vec();
    let ra = vector!("ra_cert.der");
    let single = ca_cert_reply(None, std::slice::from_ref(&ca)).expect("single");
    assert_eq!(single.content_type, "application/x-x509-ca-cert");
    assert_eq!(single.body, ca);
    let with_ra = ca_cert_reply(Some(ra), std::slice::from_ref(&ca)).expect("ra");
    assert_eq!(with_ra.content_type, "application/x-x509-ca-ra-cert");
    let certs = enrollgate_pkix::parse_certs_only(&with_ra.body).expect("certs");
    assert_eq!(certs, vec![ra.to_vec(), ca]);
    assert!(ca_cert_reply(None, &[]).is_err());
}

#[test]
fn fail_info_mapping() {
    use crate::{FailInfo, fail_info_for};
    use enrollgate_model::RejectReason;
    assert_eq!(
        fail_info_for(&RejectReason::BadSignature),
        FailInfo::BadMessageCheck
    );
    assert_eq!(
        fail_info_for(&RejectReason::BadAlgorithm("md5".into())),
        FailInfo::BadAlg
    );
    assert_eq!(
        fail_info_for(&RejectReason::Unauthenticated),
        FailInfo::BadRequest
    );
    assert_eq!(fail_info_for(&RejectReason::Internal), FailInfo::BadRequest);
    assert_eq!(FailInfo::from_text("4"), Some(FailInfo::BadCertId));
}
