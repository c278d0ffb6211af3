//! Requests captured from micromdm's scepclient 2.1.0.

use enrollgate_model::{Credential, Operation, Outcome, Protocol, RejectReason};

use super::{counter_rng, ra, vector};
use crate::client::{ClientIdentity, open_cert_rep};
use crate::{
    CertRepPayload, ContentCipher, DecodeOptions, DigestAlg, FailInfo, MessageType, PkiStatus,
    RequestContent, ScepError, cert_rep_for_outcome, cert_rep_success, decode_pki_message,
    issuance_request, transaction_key,
};

const TX: &str = "FTqdBll+ITpEfguMa6DVQm7/O9A=";
const NONCE: &str = "346984fcf4b06a0a76e7a646027ea004";

fn micromdm_client(cert: &[u8]) -> ClientIdentity {
    ClientIdentity::new(cert, vector!("micromdm_client_key.pk8")).expect("micromdm client")
}

#[test]
fn pkcsreq_decodes() {
    let req = decode_pki_message(
        vector!("micromdm_pkcsreq.der"),
        &ra(),
        &DecodeOptions::default(),
    )
    .expect("decode");
    assert_eq!(req.transaction_id(), TX);
    assert_eq!(hex::encode(&req.reply_to.sender_nonce), NONCE);
    assert_eq!(req.message_type(), MessageType::PkcsReq);
    assert_eq!(req.digest, DigestAlg::Sha1);
    assert_eq!(req.reply_to.request_cipher, Some(ContentCipher::DesCbc));
    assert_eq!(req.signer_chain.len(), 1);
    let RequestContent::PkcsReq { csr } = &req.content else {
        panic!("not a PKCSReq: {:?}", req.content);
    };
    let csr = enrollgate_pkix::Csr::from_der(csr).expect("csr");
    assert_eq!(csr.common_name().as_deref(), Some("scepclient device"));
    assert_eq!(
        csr.challenge_password().as_deref(),
        Some("s3cret-challenge")
    );
    csr.verify_signature().expect("CSR proof of possession");
}

#[test]
fn pkcsreq_maps_to_enroll_with_challenge_token() {
    let req = decode_pki_message(
        vector!("micromdm_pkcsreq.der"),
        &ra(),
        &DecodeOptions::default(),
    )
    .expect("decode");
    let ir = issuance_request(&req, "", Some("127.0.0.1".into())).expect("map");
    assert_eq!(ir.protocol, Protocol::Scep);
    assert_eq!(ir.operation, Operation::Enroll);
    assert_eq!(ir.transaction_id.as_deref(), Some(TX));
    let Credential::Token { id, secret } = &ir.requester.credential else {
        panic!("expected a token credential");
    };
    assert!(id.is_empty());
    assert_eq!(secret.expose(), b"s3cret-challenge");
    assert!(!format!("{ir:?}").contains("s3cret"));
}

#[test]
fn pkcsreq_refused_when_sha1_is_off() {
    let options = DecodeOptions {
        allow_sha1: false,
        ..DecodeOptions::default()
    };
    let err = decode_pki_message(vector!("micromdm_pkcsreq.der"), &ra(), &options).unwrap_err();
    assert!(
        matches!(err.error, ScepError::UnsupportedAlgorithm { .. }),
        "{err}"
    );
    let reply = err.reply.expect("a CertRep can be sent");
    assert_eq!(reply.fail_info, FailInfo::BadAlg);
    assert_eq!(reply.reply_to.transaction_id, TX);
}

#[test]
fn pkcsreq_cert_rep_opens_with_the_client_key() {
    let ra = ra();
    let req = decode_pki_message(
        vector!("micromdm_pkcsreq.der"),
        &ra,
        &DecodeOptions::default(),
    )
    .expect("decode");
    let issued = vector!("micromdm_client_issued.der").to_vec();
    let payload = CertRepPayload::Certificates(vec![issued.clone()]);
    let rep = cert_rep_success(&ra, &req.reply_to, &payload, &mut counter_rng(9)).expect("reply");

    let signer = req.reply_to.requester_cert.as_deref().expect("signer");
    let opened = open_cert_rep(&micromdm_client(signer), ra.certificate_der(), &rep).expect("open");
    assert_eq!(opened.status, PkiStatus::Success);
    assert_eq!(opened.transaction_id, TX);
    assert_eq!(hex::encode(&opened.recipient_nonce), NONCE);
    assert_eq!(opened.sender_nonce.len(), 16);
    assert_eq!(opened.certificates, vec![issued]);
}

#[test]
fn renewalreq_maps_to_renew_with_signer_chain() {
    let req = decode_pki_message(
        vector!("micromdm_renewalreq.der"),
        &ra(),
        &DecodeOptions::default(),
    )
    .expect("decode");
    assert_eq!(req.message_type(), MessageType::RenewalReq);
    assert!(matches!(req.content, RequestContent::RenewalReq { .. }));
    let issued = vector!("micromdm_client_issued.der");
    assert_eq!(req.signer_chain.first().map(Vec::as_slice), Some(issued));
    let ir = issuance_request(&req, "devices", None).expect("map");
    assert_eq!(ir.operation, Operation::Renew);
    assert_eq!(ir.route, "devices");
    let Credential::Certificate { chain } = &ir.requester.credential else {
        panic!("expected a certificate credential");
    };
    assert_eq!(chain.first().map(Vec::as_slice), Some(issued));
}

#[test]
fn renewalreq_rejection_becomes_a_signed_failure() {
    let ra = ra();
    let req = decode_pki_message(
        vector!("micromdm_renewalreq.der"),
        &ra,
        &DecodeOptions::default(),
    )
    .expect("decode");
    let outcome = Outcome::Rejected(RejectReason::PolicyDenied("subject changed".into()));
    let rep =
        cert_rep_for_outcome(&ra, &req.reply_to, &outcome, &mut counter_rng(3)).expect("reply");
    let client = micromdm_client(vector!("micromdm_client_issued.der"));
    let opened = open_cert_rep(&client, ra.certificate_der(), &rep).expect("open");
    assert_eq!(opened.status, PkiStatus::Failure);
    assert_eq!(opened.fail_info, Some(FailInfo::BadRequest));
    assert_eq!(
        opened.fail_info_text.as_deref(),
        Some("refused by policy: subject changed")
    );
    assert!(opened.certificates.is_empty());
}

#[test]
fn a_renewal_under_the_enrolment_transaction_id_is_kept_apart() {
    let decode = |der| decode_pki_message(der, &ra(), &DecodeOptions::default()).expect("decode");
    let enrol = decode(vector!("micromdm_pkcsreq.der"));
    let renew = decode(vector!("micromdm_renewalreq.der"));
    // scepclient derives the transactionID from the key, which its renewal keeps.
    assert_eq!(renew.transaction_id(), enrol.transaction_id());

    assert_eq!(transaction_key(&enrol), TX);
    let key = transaction_key(&renew);
    let scope = key
        .strip_prefix(&format!("{TX}@"))
        .expect("scoped by the signer");
    assert_eq!(scope.len(), 32);
    assert!(scope.bytes().all(|b| b.is_ascii_hexdigit()));
    let ir = issuance_request(&renew, "", None).expect("map");
    assert_eq!(ir.transaction_id, Some(key));
}
