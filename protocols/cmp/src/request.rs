//! Turning a verified ir, cr, kur or p10cr into the registrar's [`IssuanceRequest`].
//!
//! CRMF requests carry no PKCS#10: we check their signature proof of possession here
//! (RFC 4211 section 4.1: a signature over the DER `CertRequest` with the template's key) and
//! hand the registrar a [`KeySource::Verified`].

use der::Encode;
use enrollgate_model::{Credential, IssuanceRequest, KeySource, Operation, Protocol, Requester};
use x509_cert::Certificate;

use crate::error::CmpError;
use crate::incoming::{Proof, Verified, kid_text};
use crate::oid;
use crate::signature;
use crate::state::RequestKind;
use crate::types::{CertId, CertReqMessages, CertReqMsg, PkiBody, ProofOfPossession};

/// A request ready for the registrar, with what the reply must repeat.
pub(crate) struct Prepared {
    pub(crate) request: IssuanceRequest,
    pub(crate) kind: RequestKind,
    pub(crate) cert_req_id: i64,
}

/// Maps a verified certificate request to an [`IssuanceRequest`].
pub(crate) fn prepare(v: &Verified, route: &str) -> Result<Prepared, CmpError> {
    let (kind, operation) = match &v.msg.body {
        PkiBody::Ir(_) => (RequestKind::Ir, Operation::Enroll),
        PkiBody::Cr(_) => (RequestKind::Cr, Operation::Enroll),
        PkiBody::P10cr(_) => (RequestKind::P10cr, Operation::Enroll),
        PkiBody::Kur(_) => (RequestKind::Kur, Operation::Renew),
        _ => return Err(CmpError::OutOfSequence("not a certificate request")),
    };
    let (key, cert_req_id) = match &v.msg.body {
        PkiBody::P10cr(csr) => (KeySource::Csr(csr.to_der()?), -1),
        PkiBody::Ir(reqs) | PkiBody::Cr(reqs) | PkiBody::Kur(reqs) => crmf_key(reqs, v, kind)?,
        _ => return Err(CmpError::OutOfSequence("not a certificate request")),
    };
    let request = IssuanceRequest {
        protocol: Protocol::Cmp,
        route: route.to_owned(),
        operation,
        requester: Requester {
            credential: credential(v)?,
            peer: None,
        },
        key,
        transaction_id: v.facts.transaction_id_hex(),
    };
    Ok(Prepared {
        request,
        kind,
        cert_req_id,
    })
}

/// The credential the message protection proved.
pub(crate) fn credential(v: &Verified) -> Result<Credential, CmpError> {
    match &v.proof {
        Proof::Mac { .. } => {
            let kid =
                v.facts.sender_kid.as_deref().ok_or_else(|| {
                    CmpError::BadRequest("MAC protection without senderKID".into())
                })?;
            Ok(Credential::TokenProven { id: kid_text(kid) })
        }
        Proof::Signature { chain } => Ok(Credential::Certificate {
            chain: chain.clone(),
        }),
    }
}

fn crmf_key(
    reqs: &CertReqMessages,
    v: &Verified,
    kind: RequestKind,
) -> Result<(KeySource, i64), CmpError> {
    // RFC 9483 section 4.1.1: exactly one CertReqMsg.
    let [msg] = reqs.as_slice() else {
        return Err(CmpError::BadRequest(
            "exactly one CertReqMsg is supported".into(),
        ));
    };
    verify_pop(msg)?;
    let template = &msg.cert_req.cert_template;
    let spki = template.public_key.as_ref().ok_or_else(|| {
        CmpError::BadCertTemplate("no public key (central key generation is not supported)".into())
    })?;
    let signer = match (&v.proof, kind) {
        (Proof::Signature { chain }, _) => chain.first().map(|c| parse_cert(c)).transpose()?,
        (Proof::Mac { .. }, RequestKind::Kur) => {
            return Err(CmpError::NotAuthorized(
                "kur must be signed with the old certificate".into(),
            ));
        }
        _ => None,
    };
    if kind == RequestKind::Kur {
        check_old_cert_id(msg, signer.as_ref())?;
    }
    let subject_der = match (&template.subject, &signer) {
        (Some(subject), _) => subject.to_der()?,
        (None, Some(old)) if kind == RequestKind::Kur => {
            old.tbs_certificate().subject().to_der()?
        }
        // An empty Name: the profile decides what to put in.
        (None, _) => vec![0x30, 0x00],
    };
    let extensions_der = template
        .extensions
        .as_ref()
        .map(|e| e.to_der())
        .transpose()?;
    let key = KeySource::Verified {
        subject_der,
        public_key_der: spki.to_der()?,
        extensions_der,
    };
    Ok((key, msg.cert_req.cert_req_id))
}

/// Checks a signature POP: RFC 4211 section 4.1, the `poposkInput`-absent case.
fn verify_pop(msg: &CertReqMsg) -> Result<(), CmpError> {
    let popo = match &msg.popo {
        Some(ProofOfPossession::Signature(popo)) => popo,
        Some(ProofOfPossession::RaVerified(_)) => {
            return Err(CmpError::BadPop(
                "raVerified is not accepted from clients".into(),
            ));
        }
        Some(_) => return Err(CmpError::BadPop("only signature POP is supported".into())),
        None => return Err(CmpError::BadPop("missing".into())),
    };
    if popo.poposk_input.is_some() {
        return Err(CmpError::BadPop("poposkInput is not supported".into()));
    }
    let spki = msg
        .cert_req
        .cert_template
        .public_key
        .as_ref()
        .ok_or_else(|| {
            CmpError::BadCertTemplate(
                "no public key (central key generation is not supported)".into(),
            )
        })?;
    let sig = popo
        .signature
        .as_bytes()
        .ok_or_else(|| CmpError::BadPop("bit string".into()))?;
    let signed = msg.cert_req.to_der()?;
    signature::verify(spki, &popo.algorithm_identifier, &signed, sig, || {
        CmpError::BadPop("signature does not verify".into())
    })
}

/// RFC 9483 section 4.1.3: an `oldCertId` control must name the certificate that signed.
fn check_old_cert_id(msg: &CertReqMsg, signer: Option<&Certificate>) -> Result<(), CmpError> {
    let signer = signer.ok_or_else(|| CmpError::NotAuthorized("kur needs a signer".into()))?;
    let controls = msg.cert_req.controls.iter().flatten();
    let Some(control) = controls
        .into_iter()
        .find(|c| c.oid == oid::REG_CTRL_OLD_CERT_ID)
    else {
        return Ok(());
    };
    let old: CertId = control.value.decode_as().map_err(CmpError::Malformed)?;
    let serial = signer.tbs_certificate().serial_number().as_bytes();
    if old.serial_number.as_bytes() != serial {
        return Err(CmpError::BadCertId(
            "oldCertId is not the signing certificate".into(),
        ));
    }
    Ok(())
}

pub(crate) fn parse_cert(der: &[u8]) -> Result<Certificate, CmpError> {
    use der::Decode;
    Certificate::from_der(der).map_err(CmpError::Malformed)
}
