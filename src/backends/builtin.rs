//! The built-in signer: the embedded default CA, signing in process with aws-lc-rs.

use std::sync::Arc;

use async_trait::async_trait;

use super::{BackendAnswer, BackendCert, BackendError, CaBackend};
use crate::ca::BuiltinCa;
use crate::ca::x509::CertTemplate;
use crate::issuance::Approved;

/// Signs with the [`BuiltinCa`]'s issuing CA.
pub struct BuiltinBackend {
    ca: Arc<BuiltinCa>,
}

impl BuiltinBackend {
    /// Wraps the CA.
    pub fn new(ca: Arc<BuiltinCa>) -> Self {
        Self { ca }
    }
}

#[async_trait]
impl CaBackend for BuiltinBackend {
    fn name(&self) -> &str {
        "builtin"
    }

    fn signs_in_process(&self) -> bool {
        true
    }

    async fn issue(&self, request: &Approved) -> Result<BackendAnswer, BackendError> {
        let template = CertTemplate {
            serial: request.serial().to_vec(),
            subject: request.subject().clone(),
            public_key: request.public_key().clone(),
            not_before: request.not_before(),
            not_after: request.not_after(),
            ca: None,
            key_usage: request.key_usage(),
            extended_key_usage: request.extended_key_usage().to_vec(),
            subject_alt_names: request.subject_alt_names().to_vec(),
        };
        // A P-256 signature takes tens of microseconds: signing inline beats a thread hop.
        let certificate = self
            .ca
            .sign(&template)
            .map_err(|e| BackendError::Refused(e.to_string()))?;
        Ok(BackendAnswer::Issued(BackendCert {
            certificate,
            chain: self.ca.chain(),
            issued_by: String::new(),
        }))
    }

    async fn revoke(&self, _serial: &str, _reason: u8) -> Result<(), BackendError> {
        // Revocation state lives in the store; the CRL is built from it on demand.
        Ok(())
    }

    fn ca_chain(&self) -> Vec<Vec<u8>> {
        self.ca.chain()
    }
}
