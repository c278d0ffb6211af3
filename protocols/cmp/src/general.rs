//! Revocation (rr/rp, RFC 9483 section 4.2) and general messages (genm/genp, RFC 9483
//! section 4.3).

use der::Decode;
use der::asn1::Any;
use enrollgate_model::{RejectReason, Requester};

use crate::error::{CmpError, fail_info_for_reject};
use crate::incoming::Verified;
use crate::oid;
use crate::reply::{Extras, ReplyTo};
use crate::request::credential;
use crate::server::{CmpServer, PendingReply, Reply, Step, der_of, rejection, requester_id};
use crate::state::{Common, Phase, RequestKind, TransactionState};
use crate::types::{
    InfoTypeAndValue, PkiBody, PkiStatus, PkiStatusInfo, RevDetails, RevRepContent,
};

/// An rr: name the certificate and the requester for the gateway to revoke.
pub(crate) fn revocation(server: &CmpServer, msg: &Verified) -> Result<Step, CmpError> {
    let PkiBody::Rr(details) = &msg.msg.body else {
        return Err(CmpError::OutOfSequence("not an rr"));
    };
    let [detail] = details.as_slice() else {
        return Err(CmpError::BadRequest(
            "exactly one RevDetails is supported".into(),
        ));
    };
    let template = &detail.cert_details;
    let (Some(issuer), Some(serial)) = (&template.issuer, &template.serial_number) else {
        return Err(CmpError::BadCertTemplate(
            "rr needs issuer and serialNumber".into(),
        ));
    };
    let common = Common {
        transaction_id: msg.facts.transaction_id.clone().unwrap_or_default(),
        last_nonce: Vec::new(),
        requester: requester_id(msg),
        request: RequestKind::Rr,
        cert_req_id: 0,
        pvno: msg.facts.pvno,
        implicit_confirm: false,
    };
    let _ = server;
    Ok(Step::Revoke {
        issuer_der: der_of(issuer)?,
        serial: serial_hex(serial.as_bytes()),
        reason: reason_code(detail),
        requester: Requester {
            credential: credential(msg)?,
            peer: None,
        },
        pending: PendingReply {
            to: ReplyTo::of_verified(msg),
            common,
            first: true,
        },
    })
}

/// The rp for the gateway's revocation result.
pub(crate) fn reply_for_revocation(
    server: &CmpServer,
    pending: PendingReply,
    result: Result<(), RejectReason>,
    now: u64,
    rng: &mut dyn FnMut(&mut [u8]),
) -> Result<Reply, CmpError> {
    let (status, failure) = match &result {
        Ok(()) => (PkiStatusInfo::new(PkiStatus::Accepted), None),
        Err(reason) => {
            let fail = fail_info_for_reject(reason);
            (rejection(fail, reason.public_text()), Some(fail))
        }
    };
    let body = PkiBody::Rp(RevRepContent {
        status: vec![status],
        rev_certs: None,
        crls: None,
    });
    let built = server.build(&pending.to, body, Extras::default(), now, rng)?;
    let mut common = pending.common;
    common.last_nonce = built.nonce;
    let state = Some(TransactionState {
        common,
        phase: Phase::Done,
    });
    Ok(Reply {
        der: built.der,
        state,
        event: None,
        failure,
    })
}

/// A genm: answer caCerts, rootCaCert (no update) and certReqTemplate; skip other types.
pub(crate) fn general_message(
    server: &CmpServer,
    msg: &Verified,
    now: u64,
    rng: &mut dyn FnMut(&mut [u8]),
) -> Result<Step, CmpError> {
    let PkiBody::Genm(requests) = &msg.msg.body else {
        return Err(CmpError::OutOfSequence("not a genm"));
    };
    let mut answers = Vec::new();
    for itav in requests {
        if let Some(answer) = answer(server, itav)? {
            answers.push(answer);
        }
    }
    let built = server.build(
        &ReplyTo::of_verified(msg),
        PkiBody::Genp(answers),
        Extras::default(),
        now,
        rng,
    )?;
    Ok(Step::Reply(Reply {
        der: built.der,
        state: None,
        event: None,
        failure: None,
    }))
}

fn answer(
    server: &CmpServer,
    itav: &InfoTypeAndValue,
) -> Result<Option<InfoTypeAndValue>, CmpError> {
    let config = &server.config;
    let (info_type, info_value) = match itav.info_type {
        oid::IT_CA_CERTS if config.ca_certs.is_empty() => (oid::IT_CA_CERTS, None),
        oid::IT_CA_CERTS => {
            let certs: Result<Vec<Any>, der::Error> =
                config.ca_certs.iter().map(|c| Any::from_der(c)).collect();
            (oid::IT_CA_CERTS, Some(Any::encode_from(&certs?)?))
        }
        // RFC 9483 section 4.3.2: an absent value says there is no root CA update.
        oid::IT_ROOT_CA_CERT => (oid::IT_ROOT_CA_KEY_UPDATE, None),
        oid::IT_CERT_REQ_TEMPLATE => {
            let template = config
                .cert_req_template
                .as_deref()
                .map(Any::from_der)
                .transpose()?;
            (oid::IT_CERT_REQ_TEMPLATE, template)
        }
        _ => return Ok(None),
    };
    Ok(Some(InfoTypeAndValue {
        info_type,
        info_value,
    }))
}

/// The CRL reason code from `crlEntryDetails` (an ENUMERATED inside the extension value).
fn reason_code(detail: &RevDetails) -> Option<u8> {
    let ext = detail
        .crl_entry_details
        .iter()
        .flatten()
        .find(|e| e.extn_id == oid::CRL_REASON)?;
    match ext.extn_value.as_bytes() {
        [0x0a, 0x01, code] => Some(*code),
        _ => None,
    }
}

/// An INTEGER's content bytes as lower-case hex without leading zero bytes.
pub(crate) fn serial_hex(bytes: &[u8]) -> String {
    let start = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    hex::encode(bytes.get(start..).unwrap_or_default())
}
