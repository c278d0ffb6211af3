//! Upstream CMP (RFC 9810, lightweight profile RFC 9483) in RA mode: the gateway forwards the
//! requester's PKCS#10 in a `p10cr` over HTTP (RFC 9811), protected with a shared MAC secret
//! (PasswordBasedMac, `senderKID` = the configured reference) or signed with our own P-256
//! key and certificate. Messages are built and checked by [`enrollgate_cmp::CmpClient`].
//!
//! - `ip`/`cp` accepted: the certificate, its chain taken from caPubs and extraCerts. We ask
//!   for implicit confirmation; when the server does not grant it we send `certConf` and
//!   wait for `pkiConf` before handing the certificate out.
//! - status `waiting` or a `pollRep`: pending; the reference holds the transactionID and the
//!   server's last nonce, and a poll sends `pollReq` for certReqId 0.
//! - `rejection` or an `error` message: refused.
//!
//! Not supported: revocation upstream (`rr`), CRMF requests (only PKCS#10 is forwarded),
//! updating the stored nonce between polls (servers that check `recipNonce` on every poll of
//! a long wait may refuse a second poll).

use async_trait::async_trait;
use bytes::Bytes;
use der::Decode;
use enrollgate_cmp::{ClientProtection, ClientReply, ClientRequest, ClientTransaction, CmpClient};
use hyper::{Method, StatusCode};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use x509_cert::Certificate;
use x509_cert::name::Name;

use super::config::{CmpProtection, CmpSettings};
use super::http::{HttpClient, excerpt, status_error, transport_error};
use super::{BackendAnswer, BackendCert, BackendDef, BackendError, CaBackend, verify};
use crate::issuance::Approved;
use enrollgate_model::Secret;

/// Seconds to wait when a waiting answer gives no checkAfter.
const DEFAULT_RETRY: u32 = 10;

/// An upstream CMP server.
pub struct CmpBackend {
    http: HttpClient,
    client: CmpClient,
}

impl CmpBackend {
    /// Builds the client; reads the secret or key now.
    pub fn new(def: &BackendDef) -> Result<Self, String> {
        let url = def.url.as_deref().unwrap_or_default();
        let http = HttpClient::new(url, &def.tls, super::cfssl::connect_timeout(def))
            .map_err(|e| e.to_string())?;
        let settings = def.cmp.clone().unwrap_or_default();
        let (protection, sender) = protection(&settings)?;
        let recipient = match &settings.recipient {
            Some(text) => text
                .parse::<Name>()
                .map_err(|e| format!("cmp.recipient: {e}"))?,
            None => Name::default(),
        };
        let server_certs = match &settings.server_cert {
            Some(path) => {
                let pem =
                    std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
                verify::pem_certificates(&pem).map_err(|e| e.detail)?
            }
            None => Vec::new(),
        };
        let client = CmpClient::new(protection, sender, recipient, server_certs)
            .map_err(|e| format!("cmp client: {e}"))?;
        Ok(Self { http, client })
    }

    /// Sends one message and reads the reply.
    async fn exchange(
        &self,
        tx: &mut ClientTransaction,
        request: &ClientRequest,
    ) -> Result<ClientReply, BackendError> {
        let headers = [(
            "content-type",
            enrollgate_cmp::http_content_type().to_owned(),
        )];
        let body = Bytes::from(request.der.clone());
        let r = self
            .http
            .send(Method::POST, "", &headers, Some(body))
            .await
            .map_err(transport_error)?;
        if r.status != StatusCode::OK {
            return Err(status_error(r.status, None));
        }
        self.client
            .read_reply(tx, request, &r.body)
            .map_err(|e| BackendError::Invalid(format!("CMP reply: {e}; {}", excerpt(&r.body))))
    }

    /// Turns a reply into an answer, confirming a certificate when needed.
    async fn settle(
        &self,
        mut tx: ClientTransaction,
        reply: ClientReply,
    ) -> Result<BackendAnswer, BackendError> {
        match reply {
            ClientReply::Issued {
                certificate,
                cert_req_id,
                other_certs,
                implicit_confirm,
            } => {
                if !implicit_confirm {
                    self.confirm(&mut tx, &certificate, cert_req_id).await?;
                }
                let chain = chain_for(&certificate, &other_certs);
                Ok(BackendAnswer::Issued(BackendCert {
                    certificate,
                    chain,
                    issued_by: String::new(),
                }))
            }
            ClientReply::Waiting { check_after } => Ok(BackendAnswer::Pending {
                reference: reference(&tx),
                retry_after: check_after
                    .and_then(|s| u32::try_from(s).ok())
                    .unwrap_or(DEFAULT_RETRY),
            }),
            ClientReply::Rejected(text) => Err(BackendError::Refused(text)),
            ClientReply::Confirmed => Err(BackendError::Invalid("unexpected pkiConf".into())),
        }
    }

    async fn confirm(
        &self,
        tx: &mut ClientTransaction,
        certificate: &[u8],
        cert_req_id: i64,
    ) -> Result<(), BackendError> {
        let conf = self
            .client
            .cert_conf(tx, certificate, cert_req_id, now(), &mut fill)
            .map_err(|e| BackendError::Invalid(e.to_string()))?;
        match self.exchange(tx, &conf).await {
            Ok(ClientReply::Confirmed) => Ok(()),
            // Without pkiConf the server may revoke what it issued: the outcome is unknown.
            Ok(other) => Err(BackendError::Ambiguous(format!(
                "certConf answered {other:?}"
            ))),
            Err(e) => Err(BackendError::Ambiguous(format!("certConf: {e}"))),
        }
    }
}

/// Reads the protection settings; returns it and our sender name.
fn protection(settings: &CmpSettings) -> Result<(ClientProtection, Name), String> {
    match settings.protection {
        CmpProtection::Mac => {
            let reference = settings.reference.clone().unwrap_or_default();
            let secret = settings
                .secret
                .as_ref()
                .ok_or("cmp.secret is required")?
                .load()?;
            let p = ClientProtection::Mac {
                reference: reference.into_bytes(),
                secret,
            };
            Ok((p, Name::default()))
        }
        CmpProtection::Signature => {
            let path = settings.cert.as_ref().ok_or("cmp.cert is required")?;
            let pem =
                std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
            let chain = verify::pem_certificates(&pem).map_err(|e| e.detail)?;
            let leaf = chain
                .first()
                .and_then(|c| Certificate::from_der(c).ok())
                .ok_or("cmp.cert holds no certificate")?;
            let key_pem = settings.key.as_ref().ok_or("cmp.key is required")?.load()?;
            let PrivateKeyDer::Pkcs8(key) = PrivateKeyDer::from_pem_slice(key_pem.expose())
                .map_err(|_| "cmp.key is not a PEM private key".to_owned())?
            else {
                return Err("cmp.key must be PKCS#8 (BEGIN PRIVATE KEY)".into());
            };
            let p = ClientProtection::Signature {
                key_pkcs8: Secret::new(key.secret_pkcs8_der().to_vec()),
                chain,
            };
            Ok((p, leaf.tbs_certificate().subject().clone()))
        }
    }
}

/// The chain above `leaf` among `pool`, following issuer names.
fn chain_for(leaf: &[u8], pool: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let parsed: Vec<(Vec<u8>, Certificate)> = pool
        .iter()
        .filter_map(|d| Certificate::from_der(d).ok().map(|c| (d.clone(), c)))
        .collect();
    let mut chain = Vec::new();
    let Ok(mut current) = Certificate::from_der(leaf) else {
        return chain;
    };
    while chain.len() < parsed.len() {
        let issuer = current.tbs_certificate().issuer().clone();
        if current.tbs_certificate().subject() == &issuer && !chain.is_empty() {
            break;
        }
        let Some((der, cert)) = parsed
            .iter()
            .find(|(d, c)| c.tbs_certificate().subject() == &issuer && !chain.contains(d))
        else {
            break;
        };
        chain.push(der.clone());
        current = cert.clone();
    }
    chain
}

/// `hex(transactionID).hex(server nonce)`.
fn reference(tx: &ClientTransaction) -> String {
    format!(
        "{}.{}",
        hex::encode(&tx.transaction_id),
        hex::encode(tx.server_nonce.as_deref().unwrap_or_default())
    )
}

fn parse_reference(reference: &str) -> Option<ClientTransaction> {
    let (tid, nonce) = reference.split_once('.')?;
    let nonce = hex::decode(nonce).ok()?;
    Some(ClientTransaction {
        transaction_id: hex::decode(tid).ok()?,
        server_nonce: (!nonce.is_empty()).then_some(nonce),
    })
}

fn now() -> u64 {
    u64::try_from(crate::clock::now()).unwrap_or(0)
}

fn fill(buf: &mut [u8]) {
    buf.copy_from_slice(&crate::crypto::random_bytes::<64>()[..buf.len().min(64)]);
}

#[async_trait]
impl CaBackend for CmpBackend {
    fn name(&self) -> &str {
        "cmp"
    }

    async fn issue(&self, request: &Approved) -> Result<BackendAnswer, BackendError> {
        let csr = request.csr().ok_or_else(|| {
            BackendError::Refused("upstream CMP forwards PKCS#10 requests only".into())
        })?;
        let mut tx = ClientTransaction {
            transaction_id: crate::crypto::random_bytes::<16>().to_vec(),
            server_nonce: None,
        };
        let msg = self
            .client
            .p10cr(&tx, csr, now(), &mut fill)
            .map_err(|e| BackendError::Unavailable(format!("building p10cr: {e}")))?;
        let reply = self.exchange(&mut tx, &msg).await?;
        self.settle(tx, reply).await
    }

    async fn poll(&self, reference: &str) -> Result<BackendAnswer, BackendError> {
        let mut tx = parse_reference(reference)
            .ok_or_else(|| BackendError::Invalid("bad CMP pending reference".into()))?;
        let msg = self
            .client
            .poll_req(&tx, 0, now(), &mut fill)
            .map_err(|e| BackendError::Unavailable(format!("building pollReq: {e}")))?;
        let reply = self.exchange(&mut tx, &msg).await?;
        self.settle(tx, reply).await
    }

    async fn revoke(&self, _serial: &str, _reason: u8) -> Result<(), BackendError> {
        Err(BackendError::Unsupported)
    }

    fn ca_chain(&self) -> Vec<Vec<u8>> {
        Vec::new()
    }
}
