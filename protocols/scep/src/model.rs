//! Mapping between SCEP and the shared issuance model.

use der::Decode;
use enrollgate_model::{
    Credential, IssuanceRequest, KeySource, Operation, Protocol, RejectReason, Requester, Secret,
};
use enrollgate_pkix::Csr;

use crate::ScepError;
use crate::attributes::FailInfo;
use crate::message::{PkiRequest, RequestContent};

/// The issuance request for a decoded PKCSReq or RenewalReq arriving on `route`.
///
/// PKCSReq becomes [`Operation::Enroll`]; its credential is the CSR's challengePassword as a
/// token secret with an empty id (the registrar looks the token up by its secret, or checks
/// a route's static password), or [`Credential::Anonymous`] without one. RenewalReq becomes
/// [`Operation::Renew`] with the signer's certificate chain as credential: the SignedData
/// signature has proven possession of its key. The transaction id is [`transaction_key`].
/// The CSR's own signature is left to the registrar.
pub fn issuance_request(
    request: &PkiRequest,
    route: &str,
    peer: Option<String>,
) -> Result<IssuanceRequest, ScepError> {
    let (operation, csr, credential) = match &request.content {
        RequestContent::PkcsReq { csr } => (Operation::Enroll, csr, challenge_credential(csr)?),
        RequestContent::RenewalReq { csr } => {
            let chain = request.signer_chain.clone();
            (Operation::Renew, csr, Credential::Certificate { chain })
        }
        RequestContent::CertPoll(_) => return Err(ScepError::NotIssuance("CertPoll")),
        RequestContent::GetCert(_) => return Err(ScepError::NotIssuance("GetCert")),
        RequestContent::GetCrl(_) => return Err(ScepError::NotIssuance("GetCRL")),
    };
    Ok(IssuanceRequest {
        protocol: Protocol::Scep,
        route: route.to_owned(),
        operation,
        requester: Requester { credential, peer },
        key: KeySource::Csr(csr.clone()),
        transaction_id: Some(transaction_key(request)),
    })
}

/// The key under which the caller keeps the transaction of `request` (the registrar's
/// idempotency record, and what a CertPoll looks up).
///
/// A transactionID only has to be unique per client (RFC 8894 section 3.2.1.1), and clients
/// commonly derive it from the public key, which a renewal may keep: micromdm's scepclient
/// sends its RenewalReq under the transactionID of its first PKCSReq. So a message signed by
/// the requester's self-issued certificate is kept under the transactionID alone, and one
/// signed by an issued certificate (a renewal, or a CertPoll for one) under the transactionID
/// scoped by that certificate: a resent renewal finds its first answer, and the next renewal,
/// signed by the certificate the last one issued, starts a new transaction.
pub fn transaction_key(request: &PkiRequest) -> String {
    let tid = request.transaction_id();
    match request.signer_chain.first() {
        Some(signer) if !self_issued(signer) => {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, signer);
            let scope: String = digest.as_ref()[..16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("{tid}@{scope}")
        }
        _ => tid.to_owned(),
    }
}

/// Whether a certificate names itself as its issuer (a requester's stand-in certificate).
/// Undecodable bytes count as self-issued: the signature check has accepted them already,
/// and the transactionID alone is then the conservative key.
fn self_issued(der: &[u8]) -> bool {
    x509_cert::Certificate::from_der(der).map_or(true, |c| {
        c.tbs_certificate().issuer() == c.tbs_certificate().subject()
    })
}

/// The failInfo for a registrar refusal (RFC 8894 section 3.2.1.4.5). SCEP has few codes:
/// a bad signature is badMessageCheck, a refused algorithm badAlg, all else badRequest.
pub fn fail_info_for(reason: &RejectReason) -> FailInfo {
    match reason {
        RejectReason::BadSignature => FailInfo::BadMessageCheck,
        RejectReason::BadAlgorithm(_) => FailInfo::BadAlg,
        RejectReason::Malformed(_)
        | RejectReason::Unauthenticated
        | RejectReason::PolicyDenied(_)
        | RejectReason::UnknownRoute
        | RejectReason::TransactionConflict
        | RejectReason::Refused
        | RejectReason::BackendUnavailable
        | RejectReason::Internal => FailInfo::BadRequest,
    }
}

/// The challengePassword of a CSR, as a token credential; anonymous without one.
fn challenge_credential(csr: &[u8]) -> Result<Credential, ScepError> {
    let csr =
        Csr::from_der(csr).map_err(|e| ScepError::invalid("PKCS#10 request", e.to_string()))?;
    let password = csr
        .challenge_password_checked()
        .map_err(|e| ScepError::invalid("challengePassword", e.to_string()))?;
    Ok(match password {
        Some(secret) => Credential::Token {
            id: String::new(),
            secret: Secret::new(secret.into_bytes()),
        },
        None => Credential::Anonymous,
    })
}
