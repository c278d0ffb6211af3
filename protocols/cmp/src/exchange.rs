//! Certificate transactions: the request, the registrar's outcome, polling and confirmation
//! (RFC 9483 sections 4.1, 4.3 and 4.4; RFC 9810 section 5.3.18).

use der::Decode;
use der::asn1::Any;
use enrollgate_model::{Issued, Outcome};
use x509_cert::Certificate;

use crate::error::{CmpError, fail_info_for_reject};
use crate::incoming::{Proof, Verified};
use crate::mac::digest_alg;
use crate::oid;
use crate::reply::{Extras, ReplyTo};
use crate::request;
use crate::server::{CmpServer, PendingReply, Reply, Step, error_body, rejection, requester_id};
use crate::state::{Common, Event, Phase, RequestKind, TransactionState};
use crate::types::{
    CertOrEncCert, CertRepMessage, CertResponse, CertStatus, CertifiedKeyPair, PkiBody, PkiStatus,
    PkiStatusInfo, PollRepEntry,
};

/// An ir, cr, kur or p10cr opening a transaction: check it and hand it to the registrar.
pub(crate) fn start(server: &CmpServer, msg: &Verified) -> Result<Step, CmpError> {
    let prepared = request::prepare(msg, &server.config.route)?;
    let implicit = msg.facts.implicit_confirm_requested && server.config.allow_implicit_confirm;
    let common = Common {
        transaction_id: msg.facts.transaction_id.clone().unwrap_or_default(),
        last_nonce: Vec::new(),
        requester: requester_id(msg),
        request: prepared.kind,
        cert_req_id: prepared.cert_req_id,
        pvno: msg.facts.pvno,
        implicit_confirm: implicit,
    };
    let pending = PendingReply {
        to: ReplyTo::of_verified(msg),
        common,
        first: true,
    };
    Ok(Step::Issue {
        request: prepared.request,
        pending,
    })
}

/// certConf, pollReq or error inside a running transaction.
pub(crate) fn continue_with(
    server: &CmpServer,
    msg: &Verified,
    state: &TransactionState,
    now: u64,
    rng: &mut dyn FnMut(&mut [u8]),
) -> Result<Step, CmpError> {
    match (&msg.msg.body, &state.phase) {
        (PkiBody::PollReq(entries), Phase::AwaitingPoll { pending_id }) => {
            if !entries
                .iter()
                .any(|e| e.cert_req_id == state.common.cert_req_id)
            {
                return Err(CmpError::BadCertId(
                    "pollReq names another certReqId".into(),
                ));
            }
            let pending = PendingReply {
                to: ReplyTo::of_verified(msg),
                common: state.common.clone(),
                first: false,
            };
            Ok(Step::Poll {
                pending_id: pending_id.clone(),
                pending,
            })
        }
        (PkiBody::CertConf(statuses), Phase::AwaitingConfirm { .. }) => {
            confirm(server, msg, state, statuses, now, rng).map(Step::Reply)
        }
        (PkiBody::Error(_), _) => client_error(server, msg, state, now, rng).map(Step::Reply),
        (PkiBody::PollReq(_), _) => Err(CmpError::OutOfSequence("nothing is pending")),
        _ => Err(CmpError::OutOfSequence(
            "no certificate awaits confirmation",
        )),
    }
}

/// Encodes the registrar's outcome as ip/cp/kup, or pollRep while still pending.
pub(crate) fn reply_for_outcome(
    server: &CmpServer,
    pending: PendingReply,
    outcome: &Outcome,
    now: u64,
    rng: &mut dyn FnMut(&mut [u8]),
) -> Result<Reply, CmpError> {
    let PendingReply {
        to,
        mut common,
        first,
    } = pending;
    let id = common.cert_req_id;
    let (body, phase, extras, event, failure) = match outcome {
        Outcome::Issued(issued) => {
            let (response, ca_pubs, phase, event) =
                issued_parts(server, &to, &common, issued, now)?;
            let body = cert_rep(common.request, ca_pubs, response)?;
            let extras = Extras {
                implicit_confirm: common.implicit_confirm,
                certs: issued.chain.clone(),
            };
            (body, phase, extras, event, None)
        }
        Outcome::Pending {
            id: pending_id,
            retry_after,
        } => {
            let body = if first {
                let status = PkiStatusInfo::new(PkiStatus::Waiting);
                let response = CertResponse {
                    cert_req_id: id,
                    status,
                    certified_key_pair: None,
                    rsp_info: None,
                };
                cert_rep(common.request, None, response)?
            } else {
                let entry = PollRepEntry {
                    cert_req_id: id,
                    check_after: i64::from(*retry_after),
                    reason: None,
                };
                PkiBody::PollRep(vec![entry])
            };
            let phase = Phase::AwaitingPoll {
                pending_id: pending_id.clone(),
            };
            (body, phase, Extras::default(), None, None)
        }
        Outcome::Rejected(reason) => {
            let fail = fail_info_for_reject(reason);
            let status = rejection(fail, reason.public_text());
            let response = CertResponse {
                cert_req_id: id,
                status,
                certified_key_pair: None,
                rsp_info: None,
            };
            (
                cert_rep(common.request, None, response)?,
                Phase::Done,
                Extras::default(),
                None,
                Some(fail),
            )
        }
    };
    let built = server.build(&to, body, extras, now, rng)?;
    common.last_nonce = built.nonce;
    let state = Some(TransactionState { common, phase });
    Ok(Reply {
        der: built.der,
        state,
        event,
        failure,
    })
}

type IssuedParts = (CertResponse, Option<Vec<Any>>, Phase, Option<Event>);

fn issued_parts(
    server: &CmpServer,
    to: &ReplyTo,
    common: &Common,
    issued: &Issued,
    now: u64,
) -> Result<IssuedParts, CmpError> {
    let cert = Certificate::from_der(&issued.certificate)
        .map_err(|e| CmpError::Internal(format!("issued certificate: {e}")))?;
    let issuer = crate::server::der_of(cert.tbs_certificate().issuer())?;
    let serial = issued.serial.clone();
    let key_pair = CertifiedKeyPair {
        cert_or_enc_cert: CertOrEncCert::Certificate(Any::from_der(&issued.certificate)?),
        private_key: None,
        publication_info: None,
    };
    let response = CertResponse {
        cert_req_id: common.cert_req_id,
        status: PkiStatusInfo::new(PkiStatus::Accepted),
        certified_key_pair: Some(key_pair),
        rsp_info: None,
    };
    // RFC 9483 section 4.1.1: with MAC protection the root may come in caPubs.
    let mac_ir = matches!(to.proof, Some(Proof::Mac { .. })) && common.request == RequestKind::Ir;
    let ca_pubs = match issued.chain.last() {
        Some(root) if mac_ir => Some(vec![Any::from_der(root)?]),
        _ => None,
    };
    let (phase, event) = if common.implicit_confirm {
        (Phase::Done, Some(Event::Confirmed { serial }))
    } else {
        let deadline = now.saturating_add(server.config.confirm_wait_secs);
        let cert = issued.certificate.clone();
        (
            Phase::AwaitingConfirm {
                cert,
                serial,
                issuer,
                deadline,
            },
            None,
        )
    };
    Ok((response, ca_pubs, phase, event))
}

fn cert_rep(
    kind: RequestKind,
    ca_pubs: Option<Vec<Any>>,
    response: CertResponse,
) -> Result<PkiBody, CmpError> {
    let content = CertRepMessage {
        ca_pubs,
        response: vec![response],
    };
    Ok(match kind {
        RequestKind::Ir => PkiBody::Ip(content),
        RequestKind::Cr | RequestKind::P10cr => PkiBody::Cp(content),
        RequestKind::Kur => PkiBody::Kup(content),
        RequestKind::Rr => return Err(CmpError::Internal("certificate reply to rr".into())),
    })
}

/// certConf: check the hash, answer pkiConf, tell the gateway to keep or revoke.
fn confirm(
    server: &CmpServer,
    msg: &Verified,
    state: &TransactionState,
    statuses: &[CertStatus],
    now: u64,
    rng: &mut dyn FnMut(&mut [u8]),
) -> Result<Reply, CmpError> {
    let Phase::AwaitingConfirm {
        cert,
        serial,
        issuer,
        deadline,
    } = &state.phase
    else {
        return Err(CmpError::OutOfSequence(
            "no certificate awaits confirmation",
        ));
    };
    let revoke = |serial: &String| Event::RevokeRejected {
        issuer_der: issuer.clone(),
        serial: serial.clone(),
    };
    let to = ReplyTo::of_verified(msg);
    if now > *deadline {
        let event = Event::RevokeUnconfirmed {
            issuer_der: issuer.clone(),
            serial: serial.clone(),
        };
        let error = CmpError::ConfirmationTimeout;
        let built = server.build(&to, error_body(&error), Extras::default(), now, rng)?;
        let state = Some(state.clone().finish());
        return Ok(Reply {
            der: built.der,
            state,
            event: Some(event),
            failure: Some(error.fail_info()),
        });
    }
    let event = match statuses {
        // RFC 9810 section 5.3.18: an empty certConf rejects every certificate.
        [] => revoke(serial),
        [status] => {
            check_cert_hash(status, cert, state.common.cert_req_id)?;
            match &status.status_info {
                Some(info) if !info.is_positive() => revoke(serial),
                _ => Event::Confirmed {
                    serial: serial.clone(),
                },
            }
        }
        _ => {
            return Err(CmpError::BadRequest(
                "certConf for more than one certificate".into(),
            ));
        }
    };
    let built = server.build(&to, PkiBody::PkiConf, Extras::default(), now, rng)?;
    let mut done = state.clone().finish();
    done.common.last_nonce = built.nonce;
    Ok(Reply {
        der: built.der,
        state: Some(done),
        event: Some(event),
        failure: None,
    })
}

/// RFC 9810 section 5.3.18: the hash uses `hashAlg` when given (pvno 3), else the hash of
/// the certificate's signature algorithm.
fn check_cert_hash(status: &CertStatus, cert: &[u8], cert_req_id: i64) -> Result<(), CmpError> {
    if status.cert_req_id != cert_req_id {
        return Err(CmpError::BadCertId(
            "certConf names another certReqId".into(),
        ));
    }
    let hash_oid = match &status.hash_alg {
        Some(alg) => alg.oid,
        None => signature_hash(cert)?,
    };
    let digest = aws_lc_rs::digest::digest(digest_alg(&hash_oid)?, cert);
    if digest.as_ref() != status.cert_hash.as_bytes() {
        return Err(CmpError::BadCertId(
            "certHash does not match the issued certificate".into(),
        ));
    }
    Ok(())
}

fn signature_hash(cert: &[u8]) -> Result<der::asn1::ObjectIdentifier, CmpError> {
    let cert = Certificate::from_der(cert)?;
    Ok(match cert.signature_algorithm().oid {
        oid::ECDSA_SHA256 | oid::RSA_SHA256 => oid::SHA256,
        oid::ECDSA_SHA384 | oid::RSA_SHA384 => oid::SHA384,
        oid::ECDSA_SHA512 | oid::RSA_SHA512 | oid::ED25519 => oid::SHA512,
        other => {
            return Err(CmpError::UnsupportedAlgorithm(format!(
                "certificate signature {other}"
            )));
        }
    })
}

/// The client gave up (RFC 9483 section 4.6): answer pkiConf and end the transaction; a
/// certificate that was never confirmed is to be revoked.
fn client_error(
    server: &CmpServer,
    msg: &Verified,
    state: &TransactionState,
    now: u64,
    rng: &mut dyn FnMut(&mut [u8]),
) -> Result<Reply, CmpError> {
    let event = match &state.phase {
        Phase::AwaitingConfirm { serial, issuer, .. } => Some(Event::RevokeUnconfirmed {
            issuer_der: issuer.clone(),
            serial: serial.clone(),
        }),
        _ => None,
    };
    let built = server.build(
        &ReplyTo::of_verified(msg),
        PkiBody::PkiConf,
        Extras::default(),
        now,
        rng,
    )?;
    let mut done = state.clone().finish();
    done.common.last_nonce = built.nonce;
    Ok(Reply {
        der: built.der,
        state: Some(done),
        event,
        failure: None,
    })
}
