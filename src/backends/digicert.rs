//! Placeholder.

use async_trait::async_trait;

use super::{BackendAnswer, BackendDef, BackendError, CaBackend};
use crate::issuance::Approved;

/// Placeholder.
pub struct DigicertBackend;

impl DigicertBackend {
    /// Placeholder.
    pub fn new(_def: &BackendDef) -> Result<Self, String> {
        Err("not implemented yet".into())
    }
}

#[async_trait]
impl CaBackend for DigicertBackend {
    fn name(&self) -> &str {
        "digicert"
    }
    async fn issue(&self, _request: &Approved) -> Result<BackendAnswer, BackendError> {
        Err(BackendError::Unsupported)
    }
    async fn revoke(&self, _serial: &str, _reason: u8) -> Result<(), BackendError> {
        Err(BackendError::Unsupported)
    }
    fn ca_chain(&self) -> Vec<Vec<u8>> {
        Vec::new()
    }
}
