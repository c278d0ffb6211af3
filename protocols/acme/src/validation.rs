//! The pure pieces of challenge validation: key authorizations (RFC 8555 section 8.1) and what
//! http-01 (8.3), dns-01 (8.4) and tls-alpn-01 (RFC 8737) expect to see.
//!
//! The gateway does the network part (with its own timeouts and size limits) and hands the
//! bytes it got to the `check_*` functions here, whose problems go into
//! [`crate::challenge::Authorization::challenge_validated`].

use std::net::IpAddr;

use aws_lc_rs::digest::{SHA256, digest};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::ID_CE_SUBJECT_ALT_NAME;
use der::Decode;
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::b64;
use crate::problem::{Problem, ProblemType};
use crate::resources::{Identifier, IdentifierType};

/// The ALPN protocol name of tls-alpn-01 (RFC 8737 section 6.2).
pub const ACME_TLS_ALPN_PROTOCOL: &[u8] = b"acme-tls/1";

/// id-pe-acmeIdentifier (RFC 8737 section 6.1).
pub const ID_PE_ACME_IDENTIFIER: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.31");

/// The largest validation certificate accepted, in bytes.
pub const MAX_VALIDATION_CERT_LEN: usize = 16 * 1024;

/// The key authorization: `token "." thumbprint` (RFC 8555 section 8.1).
pub fn key_authorization(token: &str, thumbprint: &str) -> String {
    format!("{token}.{thumbprint}")
}

/// The path the http-01 validator fetches on port 80 of the identifier.
pub fn http01_path(token: &str) -> String {
    format!("/.well-known/acme-challenge/{token}")
}

/// Checks an http-01 response body: the key authorization, trailing whitespace allowed.
pub fn check_http01_body(body: &[u8], key_authz: &str) -> Result<(), Problem> {
    if body.trim_ascii_end() == key_authz.as_bytes() {
        Ok(())
    } else {
        Err(Problem::new(
            ProblemType::IncorrectResponse,
            "http-01 response is not the key authorization",
        ))
    }
}

/// The DNS name the dns-01 validator queries for TXT records.
pub fn dns01_record_name(identifier: &Identifier) -> String {
    format!(
        "_acme-challenge.{}",
        identifier.value.trim_start_matches("*.")
    )
}

/// The dns-01 TXT value: base64url(SHA-256(key authorization)).
pub fn dns01_txt_value(key_authz: &str) -> String {
    b64::encode(digest(&SHA256, key_authz.as_bytes()).as_ref())
}

/// Checks the TXT records found: one of them must be the expected value.
pub fn check_dns01_records(records: &[String], key_authz: &str) -> Result<(), Problem> {
    let want = dns01_txt_value(key_authz);
    if records.iter().any(|r| r.trim() == want) {
        Ok(())
    } else {
        Err(Problem::new(
            ProblemType::IncorrectResponse,
            "no TXT record has the expected value",
        ))
    }
}

/// The extnValue of the acmeIdentifier extension: the DER of an OCTET STRING holding
/// SHA-256(key authorization). The extension must be critical.
pub fn tls_alpn01_extension_value(key_authz: &str) -> Vec<u8> {
    let hash = digest(&SHA256, key_authz.as_bytes());
    [&[0x04, 0x20][..], hash.as_ref()].concat()
}

/// Checks the certificate a tls-alpn-01 target presented (RFC 8737 section 3): exactly one
/// subjectAltName, equal to the identifier, and a critical acmeIdentifier extension holding
/// the expected hash. The TLS handshake (SNI, ALPN `acme-tls/1`) is the gateway's part.
pub fn check_tls_alpn01_certificate(
    der: &[u8],
    identifier: &Identifier,
    key_authz: &str,
) -> Result<(), Problem> {
    if der.len() > MAX_VALIDATION_CERT_LEN {
        return Err(Problem::new(
            ProblemType::Tls,
            "validation certificate too large",
        ));
    }
    let cert = Certificate::from_der(der)
        .map_err(|_| Problem::new(ProblemType::Tls, "validation certificate does not parse"))?;
    let exts = cert
        .tbs_certificate()
        .extensions()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let incorrect = |why: &str| Problem::new(ProblemType::IncorrectResponse, why);

    let mut sans = exts.iter().filter(|e| e.extn_id == ID_CE_SUBJECT_ALT_NAME);
    let (Some(san), None) = (sans.next(), sans.next()) else {
        return Err(incorrect(
            "certificate must have one subjectAltName extension",
        ));
    };
    let names = SubjectAltName::from_der(san.extn_value.as_bytes())
        .map_err(|_| incorrect("subjectAltName does not parse"))?;
    match names.0.as_slice() {
        [only] if general_name_is(only, identifier) => {}
        _ => return Err(incorrect("subjectAltName must be exactly the identifier")),
    }

    let mut ids = exts.iter().filter(|e| e.extn_id == ID_PE_ACME_IDENTIFIER);
    let (Some(ext), None) = (ids.next(), ids.next()) else {
        return Err(incorrect(
            "certificate must have one acmeIdentifier extension",
        ));
    };
    if !ext.critical {
        return Err(incorrect("acmeIdentifier extension must be critical"));
    }
    if ext.extn_value.as_bytes() != tls_alpn01_extension_value(key_authz).as_slice() {
        return Err(incorrect(
            "acmeIdentifier does not match the key authorization",
        ));
    }
    Ok(())
}

fn general_name_is(name: &GeneralName, id: &Identifier) -> bool {
    match (name, id.kind) {
        (GeneralName::DnsName(n), IdentifierType::Dns) => {
            n.as_str().eq_ignore_ascii_case(&id.value)
        }
        (GeneralName::IpAddress(octets), IdentifierType::Ip) => {
            let want: Option<IpAddr> = id.value.parse().ok();
            want.is_some_and(|ip| ip_octets(ip) == octets.as_bytes())
        }
        _ => false,
    }
}

fn ip_octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8555 section 8.4's example token with a fixed thumbprint.
    const KEY_AUTHZ: &str =
        "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";

    #[test]
    fn key_authorization_and_dns_value() {
        assert_eq!(key_authorization("tok", "thumb"), "tok.thumb");
        let v = dns01_txt_value(KEY_AUTHZ);
        assert_eq!(v.len(), 43);
        assert!(check_dns01_records(&["other".into(), format!(" {v} ")], KEY_AUTHZ).is_ok());
        assert!(check_dns01_records(&["other".into()], KEY_AUTHZ).is_err());
        assert_eq!(
            dns01_record_name(&Identifier::dns("*.example.org")),
            "_acme-challenge.example.org"
        );
    }

    #[test]
    fn http01_body() {
        assert!(check_http01_body(format!("{KEY_AUTHZ}\r\n").as_bytes(), KEY_AUTHZ).is_ok());
        let p = check_http01_body(b"nope", KEY_AUTHZ).unwrap_err();
        assert_eq!(p.kind, ProblemType::IncorrectResponse);
        assert_eq!(http01_path("abc"), "/.well-known/acme-challenge/abc");
    }

    #[test]
    fn tls_alpn_extension_is_octet_string_of_hash() {
        let v = tls_alpn01_extension_value(KEY_AUTHZ);
        assert_eq!(v.len(), 34);
        assert_eq!(&v[..2], &[0x04, 0x20]);
    }

    #[test]
    fn garbage_certificate_is_tls_problem() {
        let p = check_tls_alpn01_certificate(
            b"\x30\x03\x02\x01",
            &Identifier::dns("a.example"),
            KEY_AUTHZ,
        );
        assert_eq!(p.unwrap_err().kind, ProblemType::Tls);
    }
}

#[cfg(test)]
mod vector_tests {
    use super::*;
    use crate::test_support::vector;

    const KEY_AUTHZ: &str =
        "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";

    #[test]
    fn tls_alpn_certificates() {
        let a = Identifier::dns("a.example.org");
        check_tls_alpn01_certificate(&vector("tls_alpn_good.der"), &a, KEY_AUTHZ).unwrap();
        check_tls_alpn01_certificate(
            &vector("tls_alpn_good.der"),
            &Identifier::dns("A.EXAMPLE.org"),
            KEY_AUTHZ,
        )
        .unwrap();
        let wrong_authz = check_tls_alpn01_certificate(&vector("tls_alpn_good.der"), &a, "x.y");
        assert_eq!(
            wrong_authz.unwrap_err().kind,
            ProblemType::IncorrectResponse
        );
        let other_name = check_tls_alpn01_certificate(
            &vector("tls_alpn_good.der"),
            &Identifier::dns("b.example.org"),
            KEY_AUTHZ,
        );
        assert!(other_name.is_err());
        for bad in ["tls_alpn_not_critical.der", "tls_alpn_two_sans.der"] {
            let p = check_tls_alpn01_certificate(&vector(bad), &a, KEY_AUTHZ).unwrap_err();
            assert_eq!(p.kind, ProblemType::IncorrectResponse, "{bad}");
        }
    }
}
