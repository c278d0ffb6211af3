//! Building our protected replies (RFC 9483 section 3.1: header fields of responses).

use std::time::Duration;

use der::asn1::{Any, BitString, GeneralizedTime, Null, OctetString};
use der::{Decode, Encode};
use x509_cert::ext::pkix::name::GeneralName;

use crate::error::CmpError;
use crate::incoming::{Proof, Verified};
use crate::oid;
use crate::server::CmpServer;
use crate::types::{InfoTypeAndValue, PkiBody, PkiHeader, PkiMessage, ProtectedPart};

/// Length of our senderNonce (RFC 9810 section 5.1.1: at least 128 bits).
const NONCE_LEN: usize = 16;

/// Everything needed to answer one request, taken from its header and its verified proof.
#[derive(Clone, Debug)]
pub(crate) struct ReplyTo {
    pub(crate) pvno: u8,
    pub(crate) recipient: GeneralName,
    pub(crate) sender_kid: Option<OctetString>,
    pub(crate) transaction_id: Option<OctetString>,
    pub(crate) recip_nonce: Option<OctetString>,
    /// `None` when the request did not verify: we sign the (error) reply.
    pub(crate) proof: Option<Proof>,
}

impl ReplyTo {
    pub(crate) fn new(msg: &PkiMessage, proof: Option<Proof>) -> Self {
        let h = &msg.header;
        Self {
            pvno: if matches!(h.pvno, 2 | 3) { h.pvno } else { 2 },
            recipient: h.sender.clone(),
            sender_kid: h.sender_kid.clone(),
            transaction_id: h.transaction_id.clone(),
            recip_nonce: h.sender_nonce.clone(),
            proof,
        }
    }

    pub(crate) fn of_verified(v: &Verified) -> Self {
        Self::new(&v.msg, Some(v.proof.clone()))
    }
}

/// What a reply carries besides its body.
#[derive(Default)]
pub(crate) struct Extras {
    /// Add `implicitConfirm` to generalInfo (RFC 9810 section 5.1.1.1).
    pub(crate) implicit_confirm: bool,
    /// Certificates for extraCerts after our own chain (the issued certificate's chain).
    pub(crate) certs: Vec<Vec<u8>>,
}

/// A built reply: its DER and the senderNonce we put in it.
pub(crate) struct Built {
    pub(crate) der: Vec<u8>,
    pub(crate) nonce: Vec<u8>,
}

impl CmpServer {
    /// Builds and protects a reply to `to` carrying `body`.
    pub(crate) fn build(
        &self,
        to: &ReplyTo,
        body: PkiBody,
        extras: Extras,
        now: u64,
        rng: &mut dyn FnMut(&mut [u8]),
    ) -> Result<Built, CmpError> {
        let mut nonce = vec![0u8; NONCE_LEN];
        rng(&mut nonce);
        let (alg, mac) = match &to.proof {
            Some(Proof::Mac { params, secret }) => {
                let mut salt = vec![0u8; params.salt_len().clamp(8, 64)];
                rng(&mut salt);
                let fresh = params.with_salt(&salt)?;
                (fresh.algorithm_identifier()?, Some((fresh, secret)))
            }
            _ => (self.key.algorithm_identifier(), None),
        };
        let header = PkiHeader {
            pvno: to.pvno,
            sender: self.name.clone(),
            recipient: to.recipient.clone(),
            message_time: Some(GeneralizedTime::from_unix_duration(Duration::from_secs(
                now,
            ))?),
            protection_alg: Some(alg),
            sender_kid: match &mac {
                Some(_) => to.sender_kid.clone(),
                None => self.kid.clone(),
            },
            recip_kid: to.sender_kid.clone(),
            transaction_id: to.transaction_id.clone(),
            sender_nonce: Some(OctetString::new(nonce.clone())?),
            recip_nonce: to.recip_nonce.clone(),
            free_text: None,
            general_info: general_info(&extras)?,
        };
        let part = ProtectedPart {
            header: header.clone(),
            body: body.clone(),
        }
        .to_der()?;
        let protection = match &mac {
            Some((params, secret)) => params.compute(secret.expose(), &part)?,
            None => self.key.sign(&part)?,
        };
        let certs = match mac {
            Some(_) => extras.certs,
            None => self.chain.iter().cloned().chain(extras.certs).collect(),
        };
        let msg = PkiMessage {
            header,
            body,
            protection: Some(BitString::from_bytes(&protection)?),
            extra_certs: extra_certs(certs)?,
        };
        Ok(Built {
            der: msg.to_der()?,
            nonce,
        })
    }
}

fn general_info(extras: &Extras) -> Result<Option<Vec<InfoTypeAndValue>>, CmpError> {
    if !extras.implicit_confirm {
        return Ok(None);
    }
    let itav = InfoTypeAndValue {
        info_type: oid::IT_IMPLICIT_CONFIRM,
        info_value: Some(Any::encode_from(&Null)?),
    };
    Ok(Some(vec![itav]))
}

fn extra_certs(certs: Vec<Vec<u8>>) -> Result<Option<Vec<Any>>, CmpError> {
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(certs.len());
    for cert in certs {
        if !out.contains(&cert) {
            out.push(cert);
        }
    }
    if out.is_empty() {
        return Ok(None);
    }
    let parsed: Result<Vec<Any>, der::Error> = out.iter().map(|c| Any::from_der(c)).collect();
    Ok(Some(parsed?))
}
