//! Decoding and re-encoding every captured `openssl cmp` message reproduces it byte for byte.

#![expect(clippy::unwrap_used, reason = "a test fails by panicking")]

use der::{Decode, Encode};
use enrollgate_cmp::types::{BodyKind, PkiMessage};

fn vector(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn all_vectors() -> Vec<String> {
    let dir = format!("{}/tests/vectors", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".der"))
        .collect();
    names.sort();
    names
}

#[test]
fn every_vector_round_trips_byte_identical() {
    let names = all_vectors();
    assert!(names.len() >= 30, "vectors missing: {names:?}");
    for name in names {
        let der = vector(&name);
        let msg = PkiMessage::from_der(&der).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(msg.to_der().unwrap(), der, "{name} re-encodes differently");
    }
}

#[test]
fn body_kinds_match_file_names() {
    let cases = [
        ("ir_mac.der", BodyKind::Ir),
        ("ip_mac.der", BodyKind::Ip),
        ("cr_sig.der", BodyKind::Cr),
        ("cp_sig.der", BodyKind::Cp),
        ("p10cr_sig.der", BodyKind::P10cr),
        ("kur_sig.der", BodyKind::Kur),
        ("kup_sig.der", BodyKind::Kup),
        ("rr_sig.der", BodyKind::Rr),
        ("rp_sig.der", BodyKind::Rp),
        ("pkiconf_mac.der", BodyKind::PkiConf),
        ("genm_cacerts_mac.der", BodyKind::Genm),
        ("genp_cacerts_mac.der", BodyKind::Genp),
        ("certconf_mac.der", BodyKind::CertConf),
        ("pollreq_mac.der", BodyKind::PollReq),
        ("pollrep_mac.der", BodyKind::PollRep),
    ];
    for (name, kind) in cases {
        let msg = PkiMessage::from_der(&vector(name)).unwrap();
        assert_eq!(msg.body.kind(), kind, "{name}");
    }
}
