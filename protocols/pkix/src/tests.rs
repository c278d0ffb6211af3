//! Tests against requests and certificates made by the real `openssl` command (see
//! `tests/vectors/README.md` for how each vector was made).

use std::io::Write as _;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use const_oid::db::rfc5912;
use der::Decode as _;
use spki::AlgorithmIdentifierOwned;

use crate::*;

macro_rules! vector {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/",
            $name
        ))
        .as_slice()
    };
}

const RSA2048: &[u8] = vector!("csr_rsa2048.der");
const RSA1024: &[u8] = vector!("csr_rsa1024.der");
const RSA_PSS: &[u8] = vector!("csr_rsa2048_pss.der");
const P256: &[u8] = vector!("csr_p256.der");
const P384: &[u8] = vector!("csr_p384_sha384.der");
const P521: &[u8] = vector!("csr_p521_sha512.der");
const ED25519: &[u8] = vector!("csr_ed25519.der");
const SANS: &[u8] = vector!("csr_p256_sans.der");
const CHALLENGE: &[u8] = vector!("csr_p256_challenge.der");
const PEM: &[u8] = vector!("csr_p256.pem");
const BAD_SIG: &[u8] = vector!("csr_p256_bad_signature.der");
const ROOT: &[u8] = vector!("cert_root.der");
const ISSUING: &[u8] = vector!("cert_issuing.der");
const OPENSSL_CERTS_ONLY: &[u8] = vector!("certs_only_openssl.der");

const ALL_GOOD: [(&str, &[u8], KeyKind); 9] = [
    ("rsa2048", RSA2048, KeyKind::Rsa { bits: 2048 }),
    ("rsa1024", RSA1024, KeyKind::Rsa { bits: 1024 }),
    ("rsa-pss", RSA_PSS, KeyKind::Rsa { bits: 2048 }),
    ("p256", P256, KeyKind::EcP256),
    ("p384", P384, KeyKind::EcP384),
    ("p521", P521, KeyKind::EcP521),
    ("ed25519", ED25519, KeyKind::Ed25519),
    ("sans", SANS, KeyKind::EcP256),
    ("challenge", CHALLENGE, KeyKind::EcP256),
];

/// Runs the openssl CLI; a missing binary fails the test loudly rather than skipping it.
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
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn openssl_requests_decode_and_verify() {
    for (name, der, kind) in ALL_GOOD {
        let csr = Csr::from_der(der).unwrap_or_else(|e| panic!("{name}: {e}"));
        csr.verify_signature()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(csr.key_kind().unwrap(), kind, "{name}");
        assert_eq!(csr.der(), der);
    }
}

#[test]
fn key_kind_display() {
    let shown: Vec<String> = ALL_GOOD.iter().map(|(_, _, k)| k.to_string()).collect();
    assert_eq!(
        shown,
        [
            "RSA-2048", "RSA-1024", "RSA-2048", "P-256", "P-384", "P-521", "Ed25519", "P-256",
            "P-256"
        ]
    );
}

#[test]
fn subject_strings_follow_rfc4514() {
    let csr = Csr::from_der(RSA2048).unwrap();
    assert_eq!(csr.subject_string(), "CN=dev1,O=Acme");
    assert_eq!(csr.common_name().as_deref(), Some("dev1"));
    assert_eq!(name_to_string(csr.subject()), "CN=dev1,O=Acme");

    let csr = Csr::from_der(P256).unwrap();
    assert_eq!(csr.subject_string(), "CN=dev-p256,OU=Devices,O=Acme,C=DE");
}

#[test]
fn subject_and_key_der_match_openssl() {
    let csr = Csr::from_der(P256).unwrap();
    let pem = openssl(&["req", "-inform", "DER", "-pubkey", "-noout"], P256);
    let spki = openssl(&["pkey", "-pubin", "-outform", "DER"], &pem);
    assert_eq!(csr.public_key_der(), spki);

    let subject = x509_cert::name::Name::from_der(&csr.subject_der()).unwrap();
    assert_eq!(&subject, csr.subject());
}

#[test]
fn subject_alt_names_of_every_kind() {
    let csr = Csr::from_der(SANS).unwrap();
    let sans = csr.subject_alt_names().unwrap();
    assert_eq!(
        sans,
        [
            San::Dns("dev-san.example.com".into()),
            San::Dns("alt.example.com".into()),
            San::Ip("192.0.2.7".parse::<IpAddr>().unwrap()),
            San::Ip("2001:db8::1".parse::<IpAddr>().unwrap()),
            San::Email("ops@example.com".into()),
            San::Uri("urn:example:dev:1".into()),
        ]
    );
    let exts = csr.requested_extensions().unwrap();
    assert_eq!(exts.len(), 1);
    assert_eq!(exts[0].extn_id, rfc5912::ID_CE_SUBJECT_ALT_NAME);
    assert_eq!(
        San::Ip("192.0.2.7".parse().unwrap()).to_string(),
        "IP:192.0.2.7"
    );
}

#[test]
fn requests_without_extensions_have_none() {
    let csr = Csr::from_der(RSA2048).unwrap();
    assert!(csr.requested_extensions().unwrap().is_empty());
    assert!(csr.subject_alt_names().unwrap().is_empty());
    assert_eq!(csr.challenge_password(), None);
}

#[test]
fn challenge_password_is_read_and_hidden_from_debug() {
    let csr = Csr::from_der(CHALLENGE).unwrap();
    assert_eq!(csr.challenge_password().as_deref(), Some("s3cret-Pa55"));
    let debug = format!("{csr:?}");
    assert!(debug.contains("dev-challenge"), "{debug}");
    assert!(!debug.contains("s3cret"), "{debug}");
}

#[test]
fn pem_and_der_are_both_accepted() {
    let csr = Csr::from_pem_or_der(PEM).unwrap();
    csr.verify_signature().unwrap();
    assert_eq!(csr.common_name().as_deref(), Some("dev-pem"));

    // CRLF line ends, long lines, leading whitespace: still read.
    let text = std::str::from_utf8(PEM).unwrap();
    let mut body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    body.insert_str(0, "\r\n  -----BEGIN NEW CERTIFICATE REQUEST-----\r\n");
    body.push_str("\r\n-----END NEW CERTIFICATE REQUEST-----\r\n");
    assert_eq!(
        Csr::from_pem_or_der(body.as_bytes()).unwrap().der(),
        csr.der()
    );

    assert_eq!(Csr::from_pem_or_der(P256).unwrap().der(), P256);
}

#[test]
fn bad_pem_is_an_error() {
    let cases: [&[u8]; 4] = [
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n",
        b"-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n",
        b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    ];
    for case in cases {
        assert!(Csr::from_pem_or_der(case).is_err());
    }
}

#[test]
fn flipped_signature_bits_fail() {
    let err = Csr::from_der(BAD_SIG)
        .unwrap()
        .verify_signature()
        .unwrap_err();
    assert!(matches!(err, PkixError::BadSignature), "{err}");

    // The same for every vector: flip a bit in the last signature byte.
    for (name, der, _) in ALL_GOOD {
        let mut bad = der.to_vec();
        *bad.last_mut().unwrap() ^= 0x10;
        let csr = Csr::from_der(&bad).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(csr.verify_signature().is_err(), "{name}");
    }
}

#[test]
fn changed_request_info_fails() {
    // Flip a bit inside the subject: the signature no longer covers what is there.
    let csr = Csr::from_der(RSA2048).unwrap();
    let needle = b"dev1";
    let at = RSA2048.windows(4).position(|w| w == needle).unwrap();
    let mut bad = RSA2048.to_vec();
    bad[at] ^= 0x01;
    let tampered = Csr::from_der(&bad).unwrap();
    assert_ne!(tampered.subject_string(), csr.subject_string());
    assert!(matches!(
        tampered.verify_signature(),
        Err(PkixError::BadSignature)
    ));
}

#[test]
fn truncated_and_garbage_input_is_an_error_not_a_panic() {
    for len in 0..P256.len() {
        assert!(
            Csr::from_der(&P256[..len]).is_err(),
            "prefix of {len} bytes"
        );
        let _ = Csr::from_pem_or_der(&P256[..len]);
        let _ = parse_certs_only(&OPENSSL_CERTS_ONLY[..len]);
    }
    let mut state = 0x2545_f491_u32;
    for round in 0..2000 {
        let len = (round % 300) + 1;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect();
        assert!(Csr::from_der(&bytes).is_err());
        let _ = Csr::from_pem_or_der(&bytes);
        assert!(parse_certs_only(&bytes).is_err());
    }
}

#[test]
fn every_single_byte_change_is_handled() {
    // Mutate each byte of a valid request; decoding and checking must never panic, and a
    // changed request must never verify.
    for (_, der, _) in [ALL_GOOD[0], ALL_GOOD[3], ALL_GOOD[6]] {
        for i in 0..der.len() {
            let mut bad = der.to_vec();
            bad[i] ^= 0x41;
            if let Ok(csr) = Csr::from_pem_or_der(&bad) {
                let _ = csr.subject_alt_names();
                let _ = csr.key_kind();
                let _ = csr.challenge_password();
                assert!(
                    csr.verify_signature().is_err(),
                    "byte {i} changed, still verifies"
                );
            }
        }
    }
}

#[test]
fn oversized_input_is_refused() {
    let big = vec![0x30; MAX_CSR_LEN + 1];
    assert!(matches!(
        Csr::from_der(&big),
        Err(PkixError::TooLarge { .. })
    ));
    let big = vec![0x30; MAX_CERTS_ONLY_LEN + 1];
    assert!(matches!(
        parse_certs_only(&big),
        Err(PkixError::TooLarge { .. })
    ));
}

#[test]
fn malformed_errors_carry_the_position() {
    let err = Csr::from_der(&P256[..100]).unwrap_err();
    assert!(matches!(err, PkixError::Malformed { .. }));
    assert!(
        err.to_string()
            .starts_with("malformed certification request"),
        "{err}"
    );
}

#[test]
fn algorithm_and_key_must_agree() {
    let rsa = Csr::from_der(RSA2048).unwrap();
    let ec = Csr::from_der(P256).unwrap();
    let ecdsa = ec.signature_algorithm().clone();
    let err = verify_signature(rsa.public_key(), &ecdsa, b"m", b"s").unwrap_err();
    assert!(matches!(err, PkixError::KeyAlgorithmMismatch(_)), "{err}");

    let p384 = Csr::from_der(P384).unwrap();
    let ed = Csr::from_der(ED25519).unwrap();
    let err = verify_signature(p384.public_key(), ed.signature_algorithm(), b"m", b"s");
    assert!(matches!(err, Err(PkixError::KeyAlgorithmMismatch(_))));
}

#[test]
fn sha1_is_refused_unless_allowed() {
    let csr = Csr::from_der(RSA2048).unwrap();
    let sha1 = AlgorithmIdentifierOwned {
        oid: rfc5912::SHA_1_WITH_RSA_ENCRYPTION,
        parameters: None,
    };
    let err = verify_signature(csr.public_key(), &sha1, b"m", &[0; 256]).unwrap_err();
    assert!(matches!(err, PkixError::UnsupportedAlgorithm(_)), "{err}");
    let err = verify_signature_allowing_sha1(csr.public_key(), &sha1, b"m", &[0; 256]);
    assert!(matches!(err, Err(PkixError::BadSignature)));
}

#[test]
fn unknown_algorithms_are_named() {
    let csr = Csr::from_der(P256).unwrap();
    let md5 = AlgorithmIdentifierOwned {
        oid: rfc5912::MD_5_WITH_RSA_ENCRYPTION,
        parameters: None,
    };
    let err = verify_signature(csr.public_key(), &md5, b"m", b"s").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported signature algorithm: md5WithRSAEncryption"
    );
}

#[test]
fn certs_only_matches_openssl_and_round_trips() {
    let chain = vec![ISSUING.to_vec(), ROOT.to_vec()];
    let ours = certs_only(&chain).unwrap();
    assert_eq!(
        ours, OPENSSL_CERTS_ONLY,
        "byte-identical to openssl crl2pkcs7"
    );
    assert_eq!(parse_certs_only(&ours).unwrap(), chain);
    assert_eq!(parse_certs_only(OPENSSL_CERTS_ONLY).unwrap(), chain);
}

#[test]
fn openssl_reads_our_certs_only() {
    let ours = certs_only(&[ISSUING.to_vec(), ROOT.to_vec()]).unwrap();
    let text = openssl(
        &["pkcs7", "-inform", "DER", "-print_certs", "-noout"],
        &ours,
    );
    let text = String::from_utf8(text).unwrap();
    let issuing = text
        .find("subject=O = Acme, CN = Acme Test Issuing CA")
        .unwrap();
    let root = text.find("subject=O = Acme, CN = Acme Test Root").unwrap();
    assert!(issuing < root, "order kept: {text}");

    let empty = certs_only(&[]).unwrap();
    openssl(
        &["pkcs7", "-inform", "DER", "-print_certs", "-noout"],
        &empty,
    );
    assert!(parse_certs_only(&empty).unwrap().is_empty());
}

#[test]
fn certs_only_refuses_non_certificates() {
    assert!(certs_only(&[b"\x04\x01x".to_vec()]).is_err());
    assert!(certs_only(&[vec![]]).is_err());
    let mut trailing = ROOT.to_vec();
    trailing.push(0);
    assert!(certs_only(&[trailing]).is_err());
}

#[test]
fn parse_certs_only_refuses_other_content() {
    // A ContentInfo of type id-data.
    let data = [
        0x30, 0x0f, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01, 0xa0, 0x02,
        0x04, 0x00,
    ];
    let err = parse_certs_only(&data).unwrap_err();
    assert!(matches!(err, PkixError::Invalid { .. }), "{err}");
}

#[test]
fn fingerprint_matches_openssl() {
    assert_eq!(
        sha256_fingerprint(ISSUING),
        "b4c2c3c1aa2dfbccf9726d1024e5e6be3f95038dccdf5a04b0eccde8cd29f015"
    );
}

/// The cached formatter gives exactly what `x509_cert`'s `Display` gives, escapes,
/// multi-valued RDNs, non-text values and unnamed OIDs included.
#[test]
fn name_to_string_matches_the_library_display() {
    use std::str::FromStr as _;
    use x509_cert::name::Name;
    let cases = [
        "CN=dev1",
        "CN=dev-1,OU=Plant 4,O=Acme\\, Inc.,L=Köln,ST=NRW,C=DE",
        "CN=\\#hash\\ ,O=a\\+b\\;c\\<d\\>e\\\\f\\\"g",
        "CN=a+SERIALNUMBER=1234,DC=example,DC=com",
        "UID=jdoe,EMAILADDRESS=j@example.com",
        "1.2.3.4.5=#0c03616263,CN=x",
        "CN=\\ lead and trail\\ ",
    ];
    for text in cases {
        let name = Name::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(name_to_string(&name), name.to_string(), "{text}");
        // Twice: the second run uses the cached short names.
        assert_eq!(name_to_string(&name), name.to_string(), "{text}");
    }
    // A name from a real openssl CSR.
    let csr = Csr::from_der(P256).unwrap();
    let subject = csr.subject();
    assert_eq!(name_to_string(subject), subject.to_string());
}
