//! Mapping between SCEP and the shared issuance model.

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
/// signature has proven possession of its key. The transaction id is SCEP's transactionID.
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
        transaction_id: Some(request.transaction_id().to_owned()),
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
