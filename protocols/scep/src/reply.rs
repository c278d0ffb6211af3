//! Building CertRep replies (RFC 8894 section 3.3.2): SignedData by the RA key with the SCEP
//! attributes, and on SUCCESS an envelope to the requester holding a degenerate SignedData.

use cms::content_info::CmsVersion;
use cms::revocation::{RevocationInfoChoice, RevocationInfoChoices};
use cms::signed_data::{EncapsulatedContentInfo, SignedData, SignerInfos};
use der::Decode;
use der::asn1::SetOfVec;
use enrollgate_model::Outcome;
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;

use crate::attributes::{self, FailInfo, MessageType, PkiStatus, oid};
use crate::crypto::ContentCipher;
use crate::message::ReplyTo;
use crate::signed::{self, content_info};
use crate::{RaIdentity, ScepError, envelope, fail_info_for};

/// Length of the senderNonce we send (RFC 8894: 16 octets).
const NONCE_LEN: usize = 16;

/// What a CertRep SUCCESS delivers.
#[derive(Clone, Debug)]
pub enum CertRepPayload {
    /// Certificates, DER, the issued one first (PKCSReq, RenewalReq, CertPoll, GetCert).
    Certificates(Vec<Vec<u8>>),
    /// A CRL, DER (GetCRL).
    Crl(Vec<u8>),
}

/// A CertRep SUCCESS carrying `payload`, encrypted to the requester's certificate.
///
/// `rng` fills the senderNonce, the content-encryption key and the IV.
pub fn cert_rep_success(
    ra: &RaIdentity,
    reply_to: &ReplyTo,
    payload: &CertRepPayload,
    rng: &mut dyn FnMut(&mut [u8]),
) -> Result<Vec<u8>, ScepError> {
    let requester = reply_to
        .requester_cert
        .as_deref()
        .ok_or_else(|| ScepError::invalid("CertRep", "requester certificate unknown"))?;
    let requester =
        Certificate::from_der(requester).map_err(ScepError::malformed("requester certificate"))?;
    let degenerate = degenerate(payload)?;
    let cipher = reply_to
        .request_cipher
        .map_or(ContentCipher::Aes128Cbc, ContentCipher::for_reply);
    let envelope = envelope::seal(&degenerate, &requester, cipher, rng)?;
    cert_rep(ra, reply_to, PkiStatus::Success, None, Some(&envelope), rng)
}

/// A CertRep PENDING: the client is to poll with CertPoll under the same transactionID.
pub fn cert_rep_pending(
    ra: &RaIdentity,
    reply_to: &ReplyTo,
    rng: &mut dyn FnMut(&mut [u8]),
) -> Result<Vec<u8>, ScepError> {
    cert_rep(ra, reply_to, PkiStatus::Pending, None, None, rng)
}

/// A CertRep FAILURE with `fail_info` and, when given, a failInfoText for people.
pub fn cert_rep_failure(
    ra: &RaIdentity,
    reply_to: &ReplyTo,
    fail_info: FailInfo,
    text: Option<&str>,
    rng: &mut dyn FnMut(&mut [u8]),
) -> Result<Vec<u8>, ScepError> {
    cert_rep(
        ra,
        reply_to,
        PkiStatus::Failure,
        Some((fail_info, text)),
        None,
        rng,
    )
}

/// The CertRep for the registrar's answer: SUCCESS with the issued certificate alone (the
/// chain is what GetCACert serves), PENDING, or FAILURE with [`fail_info_for`] and the
/// reason's public text.
pub fn cert_rep_for_outcome(
    ra: &RaIdentity,
    reply_to: &ReplyTo,
    outcome: &Outcome,
    rng: &mut dyn FnMut(&mut [u8]),
) -> Result<Vec<u8>, ScepError> {
    match outcome {
        Outcome::Issued(issued) => {
            let payload = CertRepPayload::Certificates(vec![issued.certificate.clone()]);
            cert_rep_success(ra, reply_to, &payload, rng)
        }
        Outcome::Pending { .. } => cert_rep_pending(ra, reply_to, rng),
        Outcome::Rejected(reason) => {
            let text = reason.public_text();
            cert_rep_failure(ra, reply_to, fail_info_for(reason), Some(&text), rng)
        }
    }
}

/// The signed CertRep; `envelope` is the pkcsPKIEnvelope, present only on SUCCESS.
fn cert_rep(
    ra: &RaIdentity,
    reply_to: &ReplyTo,
    status: PkiStatus,
    failure: Option<(FailInfo, Option<&str>)>,
    envelope: Option<&[u8]>,
    rng: &mut dyn FnMut(&mut [u8]),
) -> Result<Vec<u8>, ScepError> {
    let mut sender_nonce = [0; NONCE_LEN];
    rng(&mut sender_nonce);
    let mut attrs = vec![
        attributes::printable_attr(
            oid::MESSAGE_TYPE,
            &MessageType::CertRep.number().to_string(),
        )?,
        attributes::printable_attr(oid::PKI_STATUS, &status.number().to_string())?,
        attributes::printable_attr(oid::TRANSACTION_ID, &reply_to.transaction_id)?,
        attributes::octets_attr(oid::SENDER_NONCE, &sender_nonce)?,
        attributes::octets_attr(oid::RECIPIENT_NONCE, &reply_to.sender_nonce)?,
    ];
    if let Some((fail_info, text)) = failure {
        attrs.push(attributes::printable_attr(
            oid::FAIL_INFO,
            &fail_info.number().to_string(),
        )?);
        if let Some(text) = text {
            attrs.push(attributes::utf8_attr(oid::FAIL_INFO_TEXT, text)?);
        }
    }
    signed::sign(ra, envelope, attrs, std::slice::from_ref(ra.certificate()))
}

/// The degenerate certs-only (or CRL-only) SignedData inside a SUCCESS envelope.
fn degenerate(payload: &CertRepPayload) -> Result<Vec<u8>, ScepError> {
    match payload {
        CertRepPayload::Certificates(certs) => enrollgate_pkix::certs_only(certs)
            .map_err(|e| ScepError::invalid("issued certificate", e.to_string())),
        CertRepPayload::Crl(crl) => crl_only(crl),
    }
}

/// A SignedData with no signers, no certificates and `crl` in the crls field.
fn crl_only(crl: &[u8]) -> Result<Vec<u8>, ScepError> {
    let crl = CertificateList::from_der(crl).map_err(ScepError::malformed("CRL"))?;
    let crls = SetOfVec::try_from(vec![RevocationInfoChoice::Crl(crl)])
        .map_err(ScepError::malformed("CRL"))?;
    let sd = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::default(),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: oid::DATA,
            econtent: None,
        },
        certificates: None,
        crls: Some(RevocationInfoChoices(crls)),
        signer_infos: SignerInfos(SetOfVec::default()),
    };
    content_info(oid::SIGNED_DATA, &sd)
}
