//! Bad input: every case gives the right error and failInfo, and nothing panics.

use der::Decode;
use x509_cert::Certificate;

use super::{counter_rng, pkcs_req, ra, rsa_client, vector};
use crate::attributes::{self, oid};
use crate::client::{RequestSpec, build_pki_message};
use crate::{
    ContentCipher, DecodeOptions, FailInfo, MessageType, ScepError, ScepFailure, decode_pki_message,
};

fn decode(msg: &[u8]) -> Result<crate::PkiRequest, ScepFailure> {
    static RA: std::sync::OnceLock<crate::RaIdentity> = std::sync::OnceLock::new();
    decode_pki_message(msg, RA.get_or_init(ra), &DecodeOptions::default())
}

fn fail_info(err: &ScepFailure) -> Option<FailInfo> {
    err.reply.as_ref().map(|r| r.fail_info)
}

#[test]
fn garbage_and_empty_are_http_400() {
    for input in [&b""[..], b"hello", &[0x30, 0x80, 0, 0], &[0xff; 64]] {
        let err = decode(input).unwrap_err();
        assert!(err.reply.is_none(), "{err}");
    }
}

#[test]
fn oversized_message_is_refused_before_decoding() {
    let big = vec![0x30; crate::MAX_MESSAGE_LEN + 1];
    let err = decode(&big).unwrap_err();
    assert!(matches!(err.error, ScepError::TooLarge { .. }));
    assert!(err.reply.is_none());
}

#[test]
fn every_truncation_fails_without_panic() {
    let msg = vector!("micromdm_pkcsreq.der");
    for len in 0..msg.len() {
        let err = decode(msg.get(..len).expect("prefix")).unwrap_err();
        assert!(err.reply.is_none(), "truncated at {len}: {err}");
    }
}

#[test]
fn byte_flips_never_panic_and_never_pass() {
    let msg = vector!("micromdm_pkcsreq.der");
    for pos in (0..msg.len()).step_by(3) {
        let mut bad = msg.to_vec();
        if let Some(b) = bad.get_mut(pos) {
            *b ^= 0x01;
        }
        // A flip inside an unsigned, unchecked field (the signer certificate's own signature,
        // an unused algorithm parameter) may still decode; all else must fail.
        if let Ok(req) = decode(&bad) {
            assert_eq!(
                req.transaction_id(),
                "FTqdBll+ITpEfguMa6DVQm7/O9A=",
                "flip at {pos}"
            );
        }
    }
}

#[test]
fn flipped_signature_is_bad_message_check() {
    let mut msg = vector!("micromdm_pkcsreq.der").to_vec();
    let last = msg.len() - 10;
    msg[last] ^= 0x80;
    let err = decode(&msg).unwrap_err();
    assert!(matches!(err.error, ScepError::BadSignature), "{err}");
    assert_eq!(fail_info(&err), Some(FailInfo::BadMessageCheck));
    let reply = err.reply.expect("reply");
    assert_eq!(
        reply.reply_to.transaction_id,
        "FTqdBll+ITpEfguMa6DVQm7/O9A="
    );
    assert!(reply.reply_to.requester_cert.is_some());
}

#[test]
fn altered_content_is_digest_mismatch() {
    let mut msg = vector!("micromdm_pkcsreq.der").to_vec();
    // Inside the encapsulated pkcsPKIEnvelope (offsets 60..1167, see `openssl asn1parse`).
    msg[900] ^= 0x01;
    let err = decode(&msg).unwrap_err();
    assert!(matches!(err.error, ScepError::DigestMismatch), "{err}");
    assert_eq!(fail_info(&err), Some(FailInfo::BadMessageCheck));
}

#[test]
fn envelope_to_another_ra_is_not_for_us() {
    let spec = RequestSpec {
        message_type: MessageType::PkcsReq,
        transaction_id: "tx-2",
        sender_nonce: &[1; 16],
        content: vector!("client_rsa_csr.der"),
        cipher: ContentCipher::Aes128Cbc,
    };
    let other = vector!("other_ra_cert.der");
    let msg = build_pki_message(&rsa_client(), other, &spec, &mut counter_rng(1)).expect("build");
    let err = decode(&msg).unwrap_err();
    assert!(matches!(err.error, ScepError::NotForUs), "{err}");
    assert_eq!(fail_info(&err), Some(FailInfo::BadMessageCheck));
}

/// A message signed by the RSA client around `envelope`, with `message_type`.
fn signed_around(envelope: &[u8], message_type: &str) -> Vec<u8> {
    let client = rsa_client();
    let attrs = vec![
        attributes::printable_attr(oid::MESSAGE_TYPE, message_type).expect("attr"),
        attributes::printable_attr(oid::TRANSACTION_ID, "tx-3").expect("attr"),
        attributes::octets_attr(oid::SENDER_NONCE, &[3; 16]).expect("attr"),
    ];
    let cert = Certificate::from_der(vector!("client_rsa_selfsigned.der")).expect("cert");
    crate::signed::sign(&client, Some(envelope), attrs, &[cert]).expect("sign")
}

fn sealed_csr() -> Vec<u8> {
    let ra = Certificate::from_der(vector!("ra_cert.der")).expect("ra");
    let csr = vector!("client_rsa_csr.der");
    crate::envelope::seal(csr, &ra, ContentCipher::Aes128Cbc, &mut counter_rng(1)).expect("seal")
}

#[test]
fn unknown_content_cipher_is_bad_alg() {
    let mut envelope = sealed_csr();
    let aes128 = [
        0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02,
    ];
    let at = envelope
        .windows(aes128.len())
        .position(|w| w == aes128)
        .expect("AES OID");
    envelope[at + aes128.len() - 1] = 0x7f;
    let err = decode(&signed_around(&envelope, "19")).unwrap_err();
    assert!(
        matches!(err.error, ScepError::UnsupportedAlgorithm { .. }),
        "{err}"
    );
    assert_eq!(fail_info(&err), Some(FailInfo::BadAlg));
}

#[test]
fn corrupted_key_transport_is_bad_message_check() {
    let mut envelope = sealed_csr();
    // The encryptedKey is the 256-byte OCTET STRING after the rsaEncryption identifier.
    let rsa = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let at = envelope
        .windows(rsa.len())
        .position(|w| w == rsa)
        .expect("rsa OID");
    envelope[at + rsa.len() + 20] ^= 0x55;
    let err = decode(&signed_around(&envelope, "19")).unwrap_err();
    assert!(matches!(err.error, ScepError::DecryptFailed), "{err}");
    assert_eq!(fail_info(&err), Some(FailInfo::BadMessageCheck));
}

#[test]
fn cert_rep_or_unknown_message_type_is_bad_request() {
    for t in ["3", "99", "abc"] {
        let err = decode(&signed_around(&sealed_csr(), t)).unwrap_err();
        assert!(
            matches!(err.error, ScepError::UnsupportedMessageType(_)),
            "{err}"
        );
        assert_eq!(fail_info(&err), Some(FailInfo::BadRequest));
    }
}

#[test]
fn missing_transaction_id_is_http_400() {
    let client = rsa_client();
    let attrs = vec![attributes::printable_attr(oid::MESSAGE_TYPE, "19").expect("attr")];
    let cert = Certificate::from_der(vector!("client_rsa_selfsigned.der")).expect("cert");
    let msg = crate::signed::sign(&client, Some(&sealed_csr()), attrs, &[cert]).expect("sign");
    let err = decode(&msg).unwrap_err();
    assert!(
        matches!(err.error, ScepError::MissingAttribute("transactionID")),
        "{err}"
    );
    assert!(err.reply.is_none());
}

#[test]
fn signer_certificate_missing_is_bad_message_check() {
    let client = rsa_client();
    let attrs = vec![
        attributes::printable_attr(oid::MESSAGE_TYPE, "19").expect("attr"),
        attributes::printable_attr(oid::TRANSACTION_ID, "tx-4").expect("attr"),
        attributes::octets_attr(oid::SENDER_NONCE, &[4; 16]).expect("attr"),
    ];
    let other = Certificate::from_der(vector!("other_ra_cert.der")).expect("cert");
    let msg = crate::signed::sign(&client, Some(&sealed_csr()), attrs, &[other]).expect("sign");
    let err = decode(&msg).unwrap_err();
    assert!(matches!(err.error, ScepError::SignerNotFound), "{err}");
    assert_eq!(fail_info(&err), Some(FailInfo::BadMessageCheck));
}

#[test]
fn round_trip_message_survives_bit_flips_without_panic() {
    let msg = pkcs_req(
        &rsa_client(),
        vector!("client_rsa_csr.der"),
        ContentCipher::DesEde3Cbc,
    );
    for pos in (0..msg.len()).step_by(5) {
        let mut bad = msg.clone();
        if let Some(b) = bad.get_mut(pos) {
            *b = b.wrapping_add(0x33);
        }
        let _ = decode(&bad);
    }
}
