//! Certificate revocation (RFC 8555 section 7.6).
//!
//! The request is signed either by the account that ordered the certificate (`kid`) or by the
//! certificate's own key (`jwk`). The gateway parses it with [`RevocationRequest::parse`],
//! finds the record by [`RevocationRequest::fingerprint`], verifies the JWS (with the account
//! key for `kid`, with the embedded key for `jwk`), calls [`authorize_revocation`], asks the
//! backend to revoke, and stores the record.

use aws_lc_rs::digest::{SHA256, digest};
use serde::Deserialize;

use crate::account::Account;
use crate::b64;
use crate::cert::{CertRecord, LeafInfo, MAX_CERT_LEN, RevokedAt, hex_lower};
use crate::jwk::Jwk;
use crate::jws::{KeyRef, VerifiedJws};
use crate::problem::{Problem, ProblemType};

/// A revocation request's payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationRequest {
    /// The certificate, DER.
    pub certificate: Vec<u8>,
    /// The CRL reason code; 0 (unspecified) when absent.
    pub reason: u8,
}

#[derive(Deserialize)]
struct Payload {
    certificate: String,
    reason: Option<i64>,
}

/// What the backend is asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// The serial, lower-case hex of its DER content.
    pub serial: String,
    /// The CRL reason code.
    pub reason: u8,
}

impl RevocationRequest {
    /// Parses the payload and checks the reason: codes 0-6 and 8-10 of RFC 5280 section 5.3.1
    /// are accepted; 7 is unassigned and anything else unknown (`badRevocationReason`).
    pub fn parse(jws: &VerifiedJws) -> Result<Self, Problem> {
        let p: Payload = jws.payload_json()?;
        let certificate = b64::decode(&p.certificate)
            .map_err(|_| Problem::malformed("certificate is not base64url"))?;
        if certificate.is_empty() || certificate.len() > MAX_CERT_LEN {
            return Err(Problem::malformed("certificate is empty or too large"));
        }
        let reason = match p.reason.unwrap_or(0) {
            r @ (0..=6 | 8..=10) => r as u8,
            r => {
                let why = format!("revocation reason {r} is not allowed");
                return Err(Problem::new(ProblemType::BadRevocationReason, why));
            }
        };
        Ok(Self {
            certificate,
            reason,
        })
    }

    /// Lower-case hex SHA-256 of the certificate: the key to find its [`CertRecord`].
    pub fn fingerprint(&self) -> String {
        hex_lower(digest(&SHA256, &self.certificate).as_ref())
    }
}

/// Checks that the signer may revoke `record` and marks it revoked. `account` is the account
/// the `kid` named (`None` for a `jwk` request).
pub fn authorize_revocation(
    jws: &VerifiedJws,
    request: &RevocationRequest,
    account: Option<&Account>,
    record: &mut CertRecord,
    now: i64,
) -> Result<Revocation, Problem> {
    if record.fingerprint != request.fingerprint() {
        return Err(Problem::malformed(
            "certificate is not one this server issued",
        ));
    }
    match (&jws.header().key, account) {
        (KeyRef::Kid(_), Some(acct)) => {
            acct.check_valid()?;
            record.check_owner(&acct.id)?;
        }
        (KeyRef::Jwk(_), None) => {
            let leaf = LeafInfo::from_der(&request.certificate)?;
            if Jwk::from_spki(&leaf.spki).ok().as_ref() != Some(jws.key()) {
                return Err(Problem::unauthorized(
                    "request is not signed by the certificate's key",
                ));
            }
        }
        _ => return Err(Problem::internal()),
    }
    if record.revoked.is_some() {
        return Err(Problem::new(
            ProblemType::AlreadyRevoked,
            "certificate is already revoked",
        ));
    }
    record.revoked = Some(RevokedAt {
        reason: request.reason,
        at: now,
    });
    Ok(Revocation {
        serial: record.serial.clone(),
        reason: request.reason,
    })
}
