//! Requests built by [`crate::client`], decoded by the server side, answered and opened.

use cms::cert::IssuerAndSerialNumber;
use der::{Decode, Encode};
use enrollgate_model::{Credential, Issued, Outcome};
use x509_cert::Certificate;

use super::{counter_rng, ec_client, pkcs_req, ra, rsa_client, vector};
use crate::client::{RequestSpec, build_pki_message, open_cert_rep};
use crate::signed::SignedMessage;
use crate::{
    CertRepPayload, ContentCipher, DecodeOptions, DigestAlg, FailInfo, IssuerAndSubject,
    MessageType, PkiStatus, RequestContent, ScepError, cert_rep_failure, cert_rep_for_outcome,
    cert_rep_pending, cert_rep_success, decode_pki_message, issuance_request, next_ca_cert_reply,
};

const CIPHERS: [ContentCipher; 4] = [
    ContentCipher::Aes128Cbc,
    ContentCipher::Aes256Cbc,
    ContentCipher::DesEde3Cbc,
    ContentCipher::DesCbc,
];

#[test]
fn rsa_pkcsreq_every_cipher() {
    let ra = ra();
    for cipher in CIPHERS {
        let msg = pkcs_req(&rsa_client(), vector!("client_rsa_csr.der"), cipher);
        let req = decode_pki_message(&msg, &ra, &DecodeOptions::default()).expect("decode");
        assert_eq!(req.reply_to.request_cipher, Some(cipher));
        assert_eq!(req.digest, DigestAlg::Sha256);
        assert_eq!(req.transaction_id(), "tx-1");
        let RequestContent::PkcsReq { csr } = &req.content else {
            panic!("not a PKCSReq");
        };
        assert_eq!(csr.as_slice(), vector!("client_rsa_csr.der"));
    }
}

#[test]
fn rsa_success_reply_follows_the_request_cipher() {
    let ra = ra();
    for cipher in CIPHERS {
        let msg = pkcs_req(&rsa_client(), vector!("client_rsa_csr.der"), cipher);
        let req = decode_pki_message(&msg, &ra, &DecodeOptions::default()).expect("decode");
        let issued = Issued {
            certificate: vector!("client_rsa_issued.der").to_vec(),
            chain: vec![vector!("ca_cert.der").to_vec()],
            serial: "2002".into(),
            private_key: None,
        };
        let outcome = Outcome::Issued(issued);
        let rep =
            cert_rep_for_outcome(&ra, &req.reply_to, &outcome, &mut counter_rng(7)).expect("rep");
        let opened = open_cert_rep(&rsa_client(), ra.certificate_der(), &rep).expect("open");
        assert_eq!(opened.status, PkiStatus::Success);
        assert_eq!(opened.recipient_nonce, vec![0x42; 16]);
        assert_eq!(
            opened.certificates,
            vec![vector!("client_rsa_issued.der").to_vec()]
        );
        let used = reply_cipher(&rep);
        assert_eq!(
            used,
            cipher.for_reply().oid(),
            "reply cipher for {cipher:?}"
        );
    }
}

/// The content-encryption OID of a CertRep SUCCESS.
fn reply_cipher(rep: &[u8]) -> const_oid::ObjectIdentifier {
    let msg = SignedMessage::parse(rep).expect("parse");
    let ci = cms::content_info::ContentInfo::from_der(&msg.content).expect("envelope");
    let ed: cms::enveloped_data::EnvelopedData = ci.content.decode_as().expect("EnvelopedData");
    ed.encrypted_content.content_enc_alg.oid
}

#[test]
fn ec_signer_is_verified_and_maps_to_anonymous() {
    let ra = ra();
    let msg = pkcs_req(
        &ec_client(),
        vector!("client_ec_csr.der"),
        ContentCipher::Aes128Cbc,
    );
    let req = decode_pki_message(&msg, &ra, &DecodeOptions::default()).expect("decode");
    let ir = issuance_request(&req, "", None).expect("map");
    assert!(matches!(ir.requester.credential, Credential::Anonymous));

    // SCEP can only encrypt a SUCCESS to an RSA key; FAILURE and PENDING need no envelope.
    let payload = CertRepPayload::Certificates(vec![vector!("client_rsa_issued.der").to_vec()]);
    let err = cert_rep_success(&ra, &req.reply_to, &payload, &mut counter_rng(1)).unwrap_err();
    assert!(
        matches!(err, ScepError::UnsupportedRecipientKey(_)),
        "{err}"
    );
    let rep = cert_rep_pending(&ra, &req.reply_to, &mut counter_rng(1)).expect("pending");
    let opened = open_cert_rep(&ec_client(), ra.certificate_der(), &rep).expect("open");
    assert_eq!(opened.status, PkiStatus::Pending);
}

#[test]
fn failure_reply_carries_fail_info_and_text() {
    let ra = ra();
    let msg = pkcs_req(
        &rsa_client(),
        vector!("client_rsa_csr.der"),
        ContentCipher::Aes128Cbc,
    );
    let req = decode_pki_message(&msg, &ra, &DecodeOptions::default()).expect("decode");
    let rep = cert_rep_failure(
        &ra,
        &req.reply_to,
        FailInfo::BadCertId,
        Some("no such"),
        &mut counter_rng(5),
    )
    .expect("failure");
    let opened = open_cert_rep(&rsa_client(), ra.certificate_der(), &rep).expect("open");
    assert_eq!(opened.status, PkiStatus::Failure);
    assert_eq!(opened.fail_info, Some(FailInfo::BadCertId));
    assert_eq!(opened.fail_info_text.as_deref(), Some("no such"));
    assert_eq!(opened.transaction_id, "tx-1");
    // senderNonce comes from the caller's generator.
    assert_eq!(opened.sender_nonce, (5..21).collect::<Vec<u8>>());
}

fn request(message_type: MessageType, content: &[u8]) -> Vec<u8> {
    let spec = RequestSpec {
        message_type,
        transaction_id: "tx-poll",
        sender_nonce: &[7; 16],
        content,
        cipher: ContentCipher::Aes256Cbc,
    };
    build_pki_message(
        &rsa_client(),
        vector!("ra_cert.der"),
        &spec,
        &mut counter_rng(2),
    )
    .expect("build")
}

fn issuer_and_serial() -> IssuerAndSerialNumber {
    let cert = Certificate::from_der(vector!("client_rsa_issued.der")).expect("cert");
    IssuerAndSerialNumber {
        issuer: cert.tbs_certificate().issuer().clone(),
        serial_number: cert.tbs_certificate().serial_number().clone(),
    }
}

#[test]
fn cert_poll_get_cert_and_get_crl_decode() {
    let ra = ra();
    let cert = Certificate::from_der(vector!("client_rsa_issued.der")).expect("cert");
    let ias = IssuerAndSubject {
        issuer: cert.tbs_certificate().issuer().clone(),
        subject: cert.tbs_certificate().subject().clone(),
    };
    let opts = DecodeOptions::default();
    let poll = decode_pki_message(
        &request(MessageType::CertPoll, &ias.to_der().expect("der")),
        &ra,
        &opts,
    );
    assert!(matches!(poll.expect("poll").content, RequestContent::CertPoll(p) if p == ias));

    let isn = issuer_and_serial().to_der().expect("der");
    let get =
        decode_pki_message(&request(MessageType::GetCert, &isn), &ra, &opts).expect("getcert");
    assert!(matches!(get.content, RequestContent::GetCert(ref i) if *i == issuer_and_serial()));
    assert!(matches!(
        issuance_request(&get, "", None),
        Err(ScepError::NotIssuance("GetCert"))
    ));
    let crl = decode_pki_message(&request(MessageType::GetCrl, &isn), &ra, &opts).expect("getcrl");
    assert!(matches!(crl.content, RequestContent::GetCrl(_)));
}

#[test]
fn get_crl_success_carries_the_crl() {
    let ra = ra();
    let isn = issuer_and_serial().to_der().expect("der");
    let req = decode_pki_message(
        &request(MessageType::GetCrl, &isn),
        &ra,
        &DecodeOptions::default(),
    )
    .expect("decode");
    let payload = CertRepPayload::Crl(vector!("ca_crl.der").to_vec());
    let rep = cert_rep_success(&ra, &req.reply_to, &payload, &mut counter_rng(4)).expect("rep");
    let opened = open_cert_rep(&rsa_client(), ra.certificate_der(), &rep).expect("open");
    assert_eq!(opened.crls, vec![vector!("ca_crl.der").to_vec()]);
    assert!(opened.certificates.is_empty());
}

#[test]
fn content_not_matching_its_message_type_is_bad_request() {
    let ra = ra();
    let msg = request(MessageType::GetCert, b"\x30\x03\x02\x01\x01");
    let err = decode_pki_message(&msg, &ra, &DecodeOptions::default()).unwrap_err();
    assert_eq!(err.reply.expect("reply").fail_info, FailInfo::BadRequest);
}

#[test]
fn next_ca_cert_is_signed_by_the_ra() {
    let ra = ra();
    let next = vec![vector!("other_ra_cert.der").to_vec()];
    let reply = next_ca_cert_reply(&ra, &next).expect("reply");
    assert_eq!(reply.content_type, "application/x-x509-next-ca-cert");
    let msg = SignedMessage::parse(&reply.body).expect("parse");
    msg.verify(ra.certificate(), false).expect("verify");
    assert_eq!(
        enrollgate_pkix::parse_certs_only(&msg.content).expect("inner"),
        next
    );
}

#[test]
fn ra_key_must_match_its_certificate() {
    let err =
        crate::RaIdentity::new(vector!("ra_cert.der"), vector!("other_ra_key.pk8")).unwrap_err();
    assert!(matches!(err, ScepError::BadRaIdentity(_)));
    let err = crate::RaIdentity::new(vector!("ca_cert.der"), vector!("ca_key.pk8")).unwrap_err();
    assert!(matches!(err, ScepError::BadRaIdentity(_)), "EC RA refused");
    assert!(!format!("{:?}", ra()).contains("BEGIN"));
}
