//! State machine and protection tests over the `openssl cmp` captures in tests/vectors.

use der::asn1::{BitString, OctetString};
use der::{Decode, Encode};
use enrollgate_model::{Credential, Issued, KeySource, Operation, Outcome, RejectReason, Secret};

use crate::mac::{MacParams, pbm_sha256, pbmac1_sha256};
use crate::types::{BodyKind, PkiBody, PkiMessage, PkiStatus};
use crate::*;

const SECRET: &[u8] = b"insecure-test-secret";
const NOW: u64 = 1_800_000_000;

fn vector(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn pem(name: &str) -> Vec<u8> {
    der::pem::decode_vec(&vector(name)).unwrap().1
}

fn rng() -> impl FnMut(&mut [u8]) {
    let mut counter = 0u8;
    move |buf: &mut [u8]| {
        for b in buf {
            counter = counter.wrapping_add(37);
            *b = counter;
        }
    }
}

fn server_with(config: ServerConfig) -> CmpServer {
    CmpServer::new(
        config,
        &pem("server.key"),
        vec![pem("server.pem"), pem("ca.pem")],
    )
    .unwrap()
}

fn server() -> CmpServer {
    let mut config = ServerConfig::new("");
    config.ca_certs = vec![pem("ca.pem")];
    server_with(config)
}

fn secret() -> Secret {
    Secret::new(SECRET)
}

fn issued() -> Outcome {
    Outcome::Issued(Issued {
        certificate: pem("issued.pem"),
        chain: vec![pem("ca.pem")],
        serial: "19ec".into(),
        private_key: None,
    })
}

/// Re-protects a captured MAC message after `edit` changed it (as a client would send it).
fn rewrap(der: &[u8], edit: impl FnOnce(&mut PkiMessage)) -> Vec<u8> {
    let mut msg = PkiMessage::from_der(der).unwrap();
    edit(&mut msg);
    let alg = msg.header.protection_alg.clone().unwrap();
    let params = MacParams::parse(&alg, u64::MAX).unwrap();
    let tag = params
        .compute(SECRET, &msg.protected_part_der().unwrap())
        .unwrap();
    msg.protection = Some(BitString::from_bytes(&tag).unwrap());
    msg.to_der().unwrap()
}

fn with_recip_nonce(der: &[u8], nonce: &[u8]) -> Vec<u8> {
    rewrap(der, |m| {
        m.header.recip_nonce = Some(OctetString::new(nonce).unwrap())
    })
}

fn verified_mac(server: &CmpServer, der: &[u8]) -> Verified {
    server
        .verify_mac(&server.decode(der).unwrap(), &secret())
        .unwrap()
}

fn verified_sig(server: &CmpServer, der: &[u8]) -> Verified {
    server
        .verify_signature(&server.decode(der).unwrap())
        .unwrap()
}

fn expect_reply(step: Step) -> Reply {
    match step {
        Step::Reply(r) => r,
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn issue(step: Step) -> (enrollgate_model::IssuanceRequest, PendingReply) {
    match step {
        Step::Issue { request, pending } => (request, pending),
        other => panic!("expected Issue, got {other:?}"),
    }
}

/// Decodes our reply and checks its MAC with the shared secret.
fn our_mac_reply(server: &CmpServer, der: &[u8]) -> PkiMessage {
    verified_mac(server, der).msg
}

fn sender_nonce(msg: &PkiMessage) -> Vec<u8> {
    msg.header
        .sender_nonce
        .as_ref()
        .unwrap()
        .as_bytes()
        .to_vec()
}

/// Runs ir_mac.der up to our ip; returns the ip and the state.
fn ir_to_ip(server: &CmpServer, ir: &[u8], outcome: &Outcome) -> (PkiMessage, Reply) {
    let mut rng = rng();
    let (_, pending) = issue(
        server
            .step(verified_mac(server, ir), None, NOW, &mut rng)
            .unwrap(),
    );
    let reply = server
        .reply_for_outcome(pending, outcome, NOW, &mut rng)
        .unwrap();
    (our_mac_reply(server, &reply.der), reply)
}

#[test]
fn mac_verifies_with_the_right_secret_only() {
    let server = server();
    let msg = server.decode(&vector("ir_mac.der")).unwrap();
    assert_eq!(msg.facts().protection, ProtectionKind::Mac);
    assert_eq!(msg.facts().sender_kid_text().as_deref(), Some("token-1234"));
    assert!(server.verify_mac(&msg, &secret()).is_ok());
    let wrong = server.verify_mac(&msg, &Secret::new(b"wrong".to_vec()));
    assert!(matches!(wrong, Err(CmpError::BadMessageCheck)));
    assert!(matches!(
        server.verify_signature(&msg),
        Err(CmpError::WrongProtection)
    ));
}

#[test]
fn signature_protection_verifies_and_detects_tampering() {
    let server = server();
    for name in [
        "cr_sig.der",
        "p10cr_sig.der",
        "kur_sig.der",
        "rr_sig.der",
        "certconf_sig.der",
    ] {
        let msg = server.decode(&vector(name)).unwrap();
        assert_eq!(msg.facts().protection, ProtectionKind::Signature, "{name}");
        assert_eq!(
            msg.facts().extra_certs.first(),
            Some(&pem("client.pem")),
            "{name}"
        );
        server
            .verify_signature(&msg)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let mut msg = PkiMessage::from_der(&vector("cr_sig.der")).unwrap();
    msg.header.sender_nonce = Some(OctetString::new([7u8; 16]).unwrap());
    let tampered = server.decode(&msg.to_der().unwrap()).unwrap();
    assert!(matches!(
        server.verify_signature(&tampered),
        Err(CmpError::BadMessageCheck)
    ));
}

#[test]
fn openssl_replies_verify_too() {
    // The mock server's MAC replies use the same secret: our checker accepts them.
    let server = server();
    for name in [
        "ip_mac.der",
        "pkiconf_mac.der",
        "genp_cacerts_mac.der",
        "pollrep_mac.der",
    ] {
        verified_mac(&server, &vector(name));
    }
    verified_sig(&server, &vector("cp_sig.der"));
}

#[test]
fn ir_ip_certconf_pkiconf() {
    let server = server();
    let ir = vector("ir_mac.der");
    let mut rng = rng();
    let (request, pending) = issue(
        server
            .step(verified_mac(&server, &ir), None, NOW, &mut rng)
            .unwrap(),
    );
    assert_eq!(request.operation, Operation::Enroll);
    assert!(
        matches!(&request.requester.credential, Credential::TokenProven { id } if id == "token-1234")
    );
    let KeySource::Verified {
        subject_der,
        public_key_der,
        extensions_der,
    } = &request.key
    else {
        panic!("expected a verified key, got {:?}", request.key);
    };
    let issued_cert = x509_cert::Certificate::from_der(&pem("issued.pem")).unwrap();
    let spki = issued_cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .unwrap();
    assert_eq!(public_key_der, &spki, "the template's key is newkey.key");
    assert!(!subject_der.is_empty());
    assert!(extensions_der.is_none() || extensions_der.as_ref().is_some_and(|e| !e.is_empty()));

    let reply = server
        .reply_for_outcome(pending, &issued(), NOW, &mut rng)
        .unwrap();
    let ip = our_mac_reply(&server, &reply.der);
    let ir_msg = PkiMessage::from_der(&ir).unwrap();
    assert_eq!(ip.header.recip_nonce, ir_msg.header.sender_nonce);
    assert_eq!(ip.header.transaction_id, ir_msg.header.transaction_id);
    let PkiBody::Ip(rep) = &ip.body else {
        panic!("not an ip")
    };
    assert_eq!(rep.response[0].status.status, PkiStatus::Accepted as u8);
    assert!(
        rep.ca_pubs.is_some(),
        "MAC-protected ir gets the root in caPubs"
    );
    let state = reply.state.unwrap();
    assert_eq!(state.phase_name(), "awaiting_confirm");
    assert_eq!(state.confirm_deadline(), Some(NOW + 300));
    let state = TransactionState::from_bytes(&state.to_bytes().unwrap()).unwrap();

    let conf = with_recip_nonce(&vector("certconf_mac.der"), &sender_nonce(&ip));
    let done = expect_reply(
        server
            .step(verified_mac(&server, &conf), Some(state), NOW + 5, &mut rng)
            .unwrap(),
    );
    assert_eq!(
        done.event,
        Some(Event::Confirmed {
            serial: "19ec".into()
        })
    );
    assert_eq!(
        our_mac_reply(&server, &done.der).body.kind(),
        BodyKind::PkiConf
    );
    assert!(done.state.unwrap().is_finished());
}

#[test]
fn implicit_confirm_is_granted_when_allowed() {
    let server = server();
    let (ip, reply) = ir_to_ip(&server, &vector("ir_mac_implicit.der"), &issued());
    assert!(reply.state.unwrap().is_finished());
    assert_eq!(
        reply.event,
        Some(Event::Confirmed {
            serial: "19ec".into()
        })
    );
    let info = ip.header.general_info.unwrap();
    assert!(info.iter().any(|i| i.info_type == oid::IT_IMPLICIT_CONFIRM));

    let mut config = ServerConfig::new("");
    config.allow_implicit_confirm = false;
    let strict = server_with(config);
    let (ip, reply) = ir_to_ip(&strict, &vector("ir_mac_implicit.der"), &issued());
    assert_eq!(reply.state.unwrap().phase_name(), "awaiting_confirm");
    assert!(ip.header.general_info.is_none());
}

#[test]
fn certconf_rejection_asks_for_revocation() {
    let server = server();
    // certconf_reject_mac.der rejects client.pem, so issue that one here.
    let outcome = Outcome::Issued(Issued {
        certificate: pem("client.pem"),
        chain: vec![pem("ca.pem")],
        serial: "c6".into(),
        private_key: None,
    });
    let (ip, reply) = ir_to_ip(&server, &vector("ir_mac_2.der"), &outcome);
    let conf = with_recip_nonce(&vector("certconf_reject_mac.der"), &sender_nonce(&ip));
    let mut rng = rng();
    let done = reply_of(&server, &conf, reply.state, &mut rng);
    assert!(matches!(done.event, Some(Event::RevokeRejected { ref serial, .. }) if serial == "c6"));
    assert_eq!(
        our_mac_reply(&server, &done.der).body.kind(),
        BodyKind::PkiConf
    );
}

fn reply_of(
    server: &CmpServer,
    der: &[u8],
    state: Option<TransactionState>,
    rng: &mut dyn FnMut(&mut [u8]),
) -> Reply {
    expect_reply(
        server
            .step(verified_mac(server, der), state, NOW + 1, rng)
            .unwrap(),
    )
}

fn error_failure(server: &CmpServer, reply: &Reply) -> Option<FailInfo> {
    let msg = our_mac_reply(server, &reply.der);
    let PkiBody::Error(content) = msg.body else {
        return None;
    };
    let bits = content.pki_status_info.fail_info.unwrap();
    reply.failure.filter(|f| f.is_set_in(&bits))
}

#[test]
fn certconf_for_another_certificate_is_bad_cert_id() {
    let server = server();
    // The ip carries client.pem, the certConf hashes issued.pem.
    let outcome = Outcome::Issued(Issued {
        certificate: pem("client.pem"),
        chain: vec![],
        serial: "c6".into(),
        private_key: None,
    });
    let (ip, reply) = ir_to_ip(&server, &vector("ir_mac.der"), &outcome);
    let prior = reply.state.clone();
    let conf = with_recip_nonce(&vector("certconf_mac.der"), &sender_nonce(&ip));
    let mut rng = rng();
    let refused = reply_of(&server, &conf, prior.clone(), &mut rng);
    assert_eq!(error_failure(&server, &refused), Some(FailInfo::BadCertId));
    assert_eq!(
        refused.state, prior,
        "a refused step keeps the stored state"
    );
}

#[test]
fn wrong_recip_nonce_is_refused() {
    let server = server();
    let (_, reply) = ir_to_ip(&server, &vector("ir_mac.der"), &issued());
    let conf = with_recip_nonce(&vector("certconf_mac.der"), &[9u8; 16]);
    let refused = reply_of(&server, &conf, reply.state, &mut rng());
    assert_eq!(
        error_failure(&server, &refused),
        Some(FailInfo::BadRecipientNonce)
    );
}

#[test]
fn reused_transaction_id_is_refused() {
    let server = server();
    let (_, reply) = ir_to_ip(&server, &vector("ir_mac.der"), &issued());
    let refused = reply_of(&server, &vector("ir_mac.der"), reply.state, &mut rng());
    assert_eq!(
        error_failure(&server, &refused),
        Some(FailInfo::TransactionIdInUse)
    );
}

#[test]
fn wrong_pvno_is_refused() {
    let server = server();
    let ir = rewrap(&vector("ir_mac.der"), |m| m.header.pvno = 1);
    let refused = reply_of(&server, &ir, None, &mut rng());
    assert_eq!(
        error_failure(&server, &refused),
        Some(FailInfo::UnsupportedVersion)
    );
    let reply_msg = PkiMessage::from_der(&refused.der).unwrap();
    assert_eq!(reply_msg.header.pvno, 2);
}

#[test]
fn certconf_without_transaction_is_out_of_sequence() {
    let server = server();
    let refused = reply_of(&server, &vector("certconf_mac.der"), None, &mut rng());
    assert_eq!(error_failure(&server, &refused), Some(FailInfo::BadRequest));
}

#[test]
fn iteration_count_over_the_cap_is_refused_before_hashing() {
    let server = server();
    let mut msg = PkiMessage::from_der(&vector("ir_mac.der")).unwrap();
    let params = pbm_sha256(&[1u8; 16], 200_000).unwrap();
    msg.header.protection_alg = Some(params.algorithm_identifier().unwrap());
    let incoming = server.decode(&msg.to_der().unwrap()).unwrap();
    let err = server.verify_mac(&incoming, &secret()).unwrap_err();
    assert!(matches!(
        err,
        CmpError::IterationCountTooHigh {
            count: 200_000,
            max: 10_000
        }
    ));
    assert_eq!(err.fail_info(), FailInfo::BadAlg);
    // The error reply is signed with our key, since the MAC could not be checked.
    let der = server
        .error_reply(&incoming, &err, NOW, &mut rng())
        .unwrap();
    let reply = verified_sig(&server, &der);
    assert_eq!(reply.msg.body.kind(), BodyKind::Error);
}

#[test]
fn garbage_and_truncated_input_are_bare_http_errors() {
    let server = server();
    let ir = vector("ir_mac.der");
    for bad in [
        &b"not cmp"[..],
        &ir[..ir.len() / 2],
        &[],
        &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
    ] {
        let err = server.decode(bad).unwrap_err();
        assert!(err.needs_bare_http_error(), "{err}");
    }
    let mut config = ServerConfig::new("");
    config.limits.max_message_len = 100;
    let err = server_with(config).decode(&ir).unwrap_err();
    assert!(matches!(err, CmpError::TooLarge { max: 100, .. }));
}

#[test]
fn every_truncation_and_byte_flip_fails_cleanly() {
    let server = server();
    for name in [
        "ir_mac.der",
        "certconf_mac.der",
        "genm_cacerts_mac.der",
        "cr_sig.der",
        "rr_sig.der",
    ] {
        let der = vector(name);
        for len in 0..der.len() {
            let err = server.decode(&der[..len]).unwrap_err();
            assert!(err.needs_bare_http_error(), "{name} cut at {len}: {err}");
        }
        // The bytes the protection covers: header and body, after the outer tag and length.
        let msg = PkiMessage::from_der(&der).unwrap();
        let start = match der[1] {
            n if n < 0x80 => 2,
            n => 2 + usize::from(n & 0x7f),
        };
        let covered =
            start..start + msg.header.to_der().unwrap().len() + msg.body.to_der().unwrap().len();
        for pos in 0..der.len() {
            for bit in [0x01, 0x80] {
                let mut flipped = der.clone();
                flipped[pos] ^= bit;
                let Ok(incoming) = server.decode(&flipped) else {
                    continue;
                };
                let verified = match incoming.facts().protection {
                    ProtectionKind::Mac => server.verify_mac(&incoming, &secret()),
                    ProtectionKind::Signature => server.verify_signature(&incoming),
                    ProtectionKind::None => continue,
                };
                let Ok(verified) = verified else {
                    continue;
                };
                assert!(
                    !covered.contains(&pos),
                    "{name}: a flip at {pos} of the protected part verified"
                );
                // Unprotected parts (extraCerts) may change; the step must still not panic.
                let _ = server.step(verified, None, NOW, &mut rng());
            }
        }
    }
}

#[test]
fn pending_then_poll_then_certificate() {
    let server = server();
    let mut rng = rng();
    let waiting = Outcome::Pending {
        id: "req-7".into(),
        retry_after: 30,
    };
    let (ip, reply) = ir_to_ip(&server, &vector("ir_poll2.der"), &waiting);
    let PkiBody::Ip(rep) = &ip.body else {
        panic!("not an ip")
    };
    assert_eq!(rep.response[0].status.status, PkiStatus::Waiting as u8);
    let state = reply.state.unwrap();
    assert_eq!(state.pending_id(), Some("req-7"));

    let poll = with_recip_nonce(&vector("pollreq2_1_mac.der"), &sender_nonce(&ip));
    let step = server
        .step(
            verified_mac(&server, &poll),
            Some(state),
            NOW + 30,
            &mut rng,
        )
        .unwrap();
    let Step::Poll {
        pending_id,
        pending,
    } = step
    else {
        panic!("expected Poll")
    };
    assert_eq!(pending_id, "req-7");
    let reply = server
        .reply_for_outcome(pending, &waiting, NOW + 30, &mut rng)
        .unwrap();
    let rep = our_mac_reply(&server, &reply.der);
    let PkiBody::PollRep(entries) = &rep.body else {
        panic!("not a pollRep")
    };
    assert_eq!(entries[0].check_after, 30);

    let poll = with_recip_nonce(&vector("pollreq2_2_mac.der"), &sender_nonce(&rep));
    let step = server
        .step(
            verified_mac(&server, &poll),
            reply.state,
            NOW + 60,
            &mut rng,
        )
        .unwrap();
    let Step::Poll { pending, .. } = step else {
        panic!("expected Poll")
    };
    let reply = server
        .reply_for_outcome(pending, &issued(), NOW + 60, &mut rng)
        .unwrap();
    assert_eq!(our_mac_reply(&server, &reply.der).body.kind(), BodyKind::Ip);
    assert_eq!(reply.state.unwrap().phase_name(), "awaiting_confirm");
}

#[test]
fn rejection_becomes_a_negative_ip() {
    let server = server();
    let outcome = Outcome::Rejected(RejectReason::PolicyDenied("CN not allowed".into()));
    let (ip, reply) = ir_to_ip(&server, &vector("ir_mac.der"), &outcome);
    let PkiBody::Ip(rep) = &ip.body else {
        panic!("not an ip")
    };
    let status = &rep.response[0].status;
    assert_eq!(status.status, PkiStatus::Rejection as u8);
    assert!(FailInfo::BadCertTemplate.is_set_in(status.fail_info.as_ref().unwrap()));
    assert_eq!(reply.failure, Some(FailInfo::BadCertTemplate));
    assert!(reply.state.unwrap().is_finished());
}

#[test]
fn signed_cr_p10cr_and_kur_map_to_requests() {
    let server = server();
    let mut rng = rng();
    let chain = vec![pem("client.pem")];
    let (cr, _) = issue(
        server
            .step(
                verified_sig(&server, &vector("cr_sig.der")),
                None,
                NOW,
                &mut rng,
            )
            .unwrap(),
    );
    assert!(
        matches!(&cr.requester.credential, Credential::Certificate { chain: c } if *c == chain)
    );
    assert!(matches!(cr.key, KeySource::Verified { .. }));

    let (p10, pending) = issue(
        server
            .step(
                verified_sig(&server, &vector("p10cr_sig.der")),
                None,
                NOW,
                &mut rng,
            )
            .unwrap(),
    );
    assert!(matches!(&p10.key, KeySource::Csr(der) if *der == vector("p10cr.csr")));
    let cp = server
        .reply_for_outcome(pending, &issued(), NOW, &mut rng)
        .unwrap();
    let cp_msg = verified_sig(&server, &cp.der).msg;
    let PkiBody::Cp(rep) = &cp_msg.body else {
        panic!("not a cp")
    };
    assert_eq!(rep.response[0].cert_req_id, -1);
    assert_eq!(
        cp_msg.extra_certs.as_ref().unwrap().len(),
        2,
        "our chain; the CA is not repeated"
    );

    let (kur, pending) = issue(
        server
            .step(
                verified_sig(&server, &vector("kur_sig.der")),
                None,
                NOW,
                &mut rng,
            )
            .unwrap(),
    );
    assert_eq!(kur.operation, Operation::Renew);
    let kup = server
        .reply_for_outcome(pending, &issued(), NOW, &mut rng)
        .unwrap();
    assert_eq!(
        verified_sig(&server, &kup.der).msg.body.kind(),
        BodyKind::Kup
    );
}

#[test]
fn rr_asks_the_gateway_to_revoke() {
    let server = server();
    let mut rng = rng();
    let step = server
        .step(
            verified_sig(&server, &vector("rr_sig.der")),
            None,
            NOW,
            &mut rng,
        )
        .unwrap();
    let Step::Revoke {
        issuer_der,
        serial,
        reason,
        pending,
        ..
    } = step
    else {
        panic!("expected Revoke")
    };
    let issued_cert = x509_cert::Certificate::from_der(&pem("issued.pem")).unwrap();
    let tbs = issued_cert.tbs_certificate();
    assert_eq!(issuer_der, tbs.issuer().to_der().unwrap());
    assert_eq!(
        serial,
        hex::encode(tbs.serial_number().as_bytes()).trim_start_matches("00")
    );
    assert_eq!(reason, Some(1));
    let rp = server
        .reply_for_revocation(pending, Ok(()), NOW, &mut rng)
        .unwrap();
    let msg = verified_sig(&server, &rp.der).msg;
    let PkiBody::Rp(content) = msg.body else {
        panic!("not an rp")
    };
    assert!(content.status[0].is_positive());
}

#[test]
fn genm_ca_certs() {
    let server = server();
    let reply = reply_of(&server, &vector("genm_cacerts_mac.der"), None, &mut rng());
    let msg = our_mac_reply(&server, &reply.der);
    let PkiBody::Genp(items) = msg.body else {
        panic!("not a genp")
    };
    assert_eq!(items[0].info_type, oid::IT_CA_CERTS);
    let certs: Vec<der::asn1::Any> = items[0].info_value.as_ref().unwrap().decode_as().unwrap();
    assert_eq!(certs[0].to_der().unwrap(), pem("ca.pem"));
    assert!(reply.state.is_none());
}

#[test]
fn pbmac1_round_trip() {
    let server = server();
    let mut msg = PkiMessage::from_der(&vector("genm_cacerts_mac.der")).unwrap();
    let params = pbmac1_sha256(&[3u8; 16], 1000).unwrap();
    msg.header.protection_alg = Some(params.algorithm_identifier().unwrap());
    let der = rewrap(&msg.to_der().unwrap(), |_| {});
    let reply = reply_of(&server, &der, None, &mut rng());
    let ours = PkiMessage::from_der(&reply.der).unwrap();
    assert_eq!(
        ours.header.protection_alg.as_ref().unwrap().oid,
        oid::PBMAC1
    );
    our_mac_reply(&server, &reply.der);
    let wrong = server.verify_mac(&server.decode(&der).unwrap(), &Secret::new(b"x".to_vec()));
    assert!(matches!(wrong, Err(CmpError::BadMessageCheck)));
}

#[test]
fn unconfirmed_certificate_expires() {
    let server = server();
    let (ip, reply) = ir_to_ip(&server, &vector("ir_mac.der"), &issued());
    let state = reply.state.unwrap();
    assert!(state.expire(NOW + 300).is_none());
    let (done, event) = state.expire(NOW + 301).unwrap();
    assert!(done.is_finished());
    assert!(matches!(event, Event::RevokeUnconfirmed { ref serial, .. } if serial == "19ec"));
    // A late certConf gets an error and the same revocation event.
    let conf = with_recip_nonce(&vector("certconf_mac.der"), &sender_nonce(&ip));
    let late = expect_reply(
        server
            .step(
                verified_mac(&server, &conf),
                Some(state),
                NOW + 999,
                &mut rng(),
            )
            .unwrap(),
    );
    assert!(matches!(late.event, Some(Event::RevokeUnconfirmed { .. })));
}

#[test]
fn fail_info_bits_encode_as_der_named_bits() {
    assert_eq!(
        FailInfo::BadAlg.to_bit_string().to_der().unwrap(),
        [0x03, 0x02, 0x07, 0x80]
    );
    assert_eq!(
        FailInfo::BadRequest.to_bit_string().to_der().unwrap(),
        [0x03, 0x02, 0x05, 0x20]
    );
    assert_eq!(
        FailInfo::TransactionIdInUse
            .to_bit_string()
            .to_der()
            .unwrap(),
        [0x03, 0x04, 0x02, 0x00, 0x00, 0x04]
    );
    assert_eq!(
        fail_info_for_reject(&RejectReason::BackendUnavailable),
        FailInfo::SystemUnavail
    );
}
