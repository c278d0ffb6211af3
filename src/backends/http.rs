//! A small HTTP/1.1 client for the CA APIs: hyper's connection API over tokio-rustls with
//! the aws-lc-rs provider (so `ring` stays out of the build), a pool of idle connections,
//! a response size limit, and errors that say whether the request surely never left us.
//!
//! That last point is what failover needs: a refused or failed connection, or a pooled
//! connection that hyper reports closed before the request was written, is
//! [`HttpError::NotSent`]; anything that fails after the request was handed to the
//! connection is [`HttpError::AfterSend`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::{HeaderMap, Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::config::ClientTls;

/// Largest response body accepted from a CA.
pub const MAX_RESPONSE: usize = 1024 * 1024;

/// Idle connections kept per backend.
const MAX_IDLE: usize = 16;

/// Where the system's trusted CAs are, when a backend names no `ca_file`.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A failed HTTP exchange.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The request surely did not reach the server (connect or TLS failure, closed pool
    /// connection).
    #[error("not sent: {0}")]
    NotSent(String),
    /// The request may have reached the server; its effect is unknown.
    #[error("failed after sending: {0}")]
    AfterSend(String),
    /// Our own configuration or request is wrong.
    #[error("client setup: {0}")]
    Setup(String),
}

/// A response, its body read in full (bounded by [`MAX_RESPONSE`]).
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl HttpResponse {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A client for one base URL.
pub struct HttpClient {
    base: Uri,
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    connect_timeout: Duration,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

impl HttpClient {
    /// A client for `base` (its path is the prefix of every request path).
    pub fn new(base: &str, tls: &ClientTls, connect_timeout: Duration) -> Result<Self, HttpError> {
        let uri: Uri = base
            .parse()
            .map_err(|e| HttpError::Setup(format!("bad url {base}: {e}")))?;
        let https = uri.scheme_str() == Some("https");
        let host = uri
            .host()
            .ok_or_else(|| HttpError::Setup(format!("url {base} has no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tls = if https {
            let name = ServerName::try_from(host.clone())
                .map_err(|e| HttpError::Setup(format!("server name {host}: {e}")))?;
            Some((TlsConnector::from(Arc::new(tls_config(tls)?)), name))
        } else {
            None
        };
        Ok(Self {
            base: uri,
            host,
            port,
            tls,
            connect_timeout,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// The base URL's path, without a trailing slash.
    pub fn base_path(&self) -> &str {
        self.base.path().trim_end_matches('/')
    }

    /// Sends one request; `path` is appended to the base URL's path and may carry a query.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<Bytes>,
    ) -> Result<HttpResponse, HttpError> {
        // An empty `path` posts to the URL exactly as configured (CMP servers match it).
        let target = match path {
            "" => self.base.path().to_owned(),
            _ => format!("{}{}", self.base_path(), path),
        };
        let authority = match self.base.port_u16() {
            Some(p) => format!("{}:{p}", self.base.host().unwrap_or_default()),
            None => self.base.host().unwrap_or_default().to_owned(),
        };
        let mut builder = Request::builder()
            .method(method)
            .uri(target)
            .header("host", authority)
            .header(
                "user-agent",
                concat!("enrollgate/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in headers {
            builder = builder.header(*name, value.as_str());
        }
        let request = builder
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| HttpError::Setup(e.to_string()))?;
        let (response, sender) = self.exchange(request).await?;
        let (parts, incoming) = response.into_parts();
        let body = Limited::new(incoming, MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| HttpError::AfterSend(format!("reading the answer: {e}")))?
            .to_bytes();
        self.put_back(sender);
        Ok(HttpResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// Sends on a pooled connection if one is ready, else on a new one.
    async fn exchange(
        &self,
        mut request: Request<Full<Bytes>>,
    ) -> Result<
        (
            hyper::Response<hyper::body::Incoming>,
            SendRequest<Full<Bytes>>,
        ),
        HttpError,
    > {
        while let Some(mut sender) = self.take_idle() {
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(r) => return Ok((r, sender)),
                Err(mut e) => match e.take_message() {
                    // hyper gave the request back: it was never written.
                    Some(r) => request = r,
                    None => return Err(HttpError::AfterSend(e.into_error().to_string())),
                },
            }
        }
        let mut sender = self.connect().await?;
        sender
            .ready()
            .await
            .map_err(|e| HttpError::NotSent(e.to_string()))?;
        match sender.try_send_request(request).await {
            Ok(r) => Ok((r, sender)),
            Err(mut e) => {
                // hyper hands the request back when it was never written.
                let sent = e.take_message().is_none();
                let text = e.into_error().to_string();
                Err(if sent {
                    HttpError::AfterSend(text)
                } else {
                    HttpError::NotSent(text)
                })
            }
        }
    }

    /// Sends a request with an optional JSON body (and `content-type: application/json`),
    /// mapping transport failures to backend errors.
    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        mut headers: Vec<(&str, String)>,
        body: Option<serde_json::Value>,
    ) -> Result<HttpResponse, super::BackendError> {
        if body.is_some() {
            headers.push(("content-type", "application/json".to_owned()));
        }
        let body = body.map(|b| Bytes::from(b.to_string()));
        self.send(method, path, &headers, body)
            .await
            .map_err(transport_error)
    }

    fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(s) = idle.pop() {
            if !s.is_closed() {
                return Some(s);
            }
        }
        None
    }

    fn put_back(&self, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(sender);
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, HttpError> {
        let not_sent = |e: &dyn std::fmt::Display| HttpError::NotSent(e.to_string());
        let tcp = tokio::time::timeout(
            self.connect_timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| HttpError::NotSent("connect timed out".into()))?
        .map_err(|e| not_sent(&format!("connect to {}:{}: {e}", self.host, self.port)))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => handshake(TokioIo::new(tcp)).await,
            Some((connector, name)) => {
                let tls = tokio::time::timeout(
                    self.connect_timeout,
                    connector.connect(name.clone(), tcp),
                )
                .await
                .map_err(|_| HttpError::NotSent("TLS handshake timed out".into()))?
                .map_err(|e| not_sent(&format!("TLS handshake: {e}")))?;
                handshake(TokioIo::new(tls)).await
            }
        }
    }
}

async fn handshake<T>(io: T) -> Result<SendRequest<Full<Bytes>>, HttpError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| HttpError::NotSent(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "backend connection ended");
        }
    });
    Ok(sender)
}

/// The rustls client configuration for a backend: its trust anchors and our client
/// certificate, always with the aws-lc-rs provider.
fn tls_config(tls: &ClientTls) -> Result<rustls::ClientConfig, HttpError> {
    let setup = |m: String| HttpError::Setup(m);
    let ca_path = tls.ca_file.clone().unwrap_or_else(|| SYSTEM_BUNDLE.into());
    let pem = std::fs::read(&ca_path)
        .map_err(|e| setup(format!("reading {}: {e}", ca_path.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| setup(format!("{}: {e}", ca_path.display())))?;
        // System bundles hold a few certificates rustls cannot use; skip those.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(setup(format!("{} holds no usable CA", ca_path.display())));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| setup(e.to_string()))?
        .with_root_certificates(roots);
    match (&tls.client_cert, &tls.client_key) {
        (Some(cert_path), Some(key_ref)) => {
            let pem = std::fs::read(cert_path)
                .map_err(|e| setup(format!("reading {}: {e}", cert_path.display())))?;
            let chain = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| setup(format!("{}: {e}", cert_path.display())))?;
            let key_pem = key_ref.load().map_err(setup)?;
            let key = PrivateKeyDer::from_pem_slice(key_pem.expose())
                .map_err(|_| setup("tls.client_key is not a PEM private key".into()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| setup(format!("client certificate: {e}")))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// The backend error for a failed exchange.
pub fn transport_error(e: HttpError) -> super::BackendError {
    match e {
        HttpError::NotSent(m) | HttpError::Setup(m) => super::BackendError::Unavailable(m),
        HttpError::AfterSend(m) => super::BackendError::Ambiguous(m),
    }
}

/// The backend error for an answer that is not a success. `vendor` is the CA's own error
/// text when the body is in its API's error format.
///
/// - 4xx with the CA's error body: the CA refused.
/// - 502 and 503: a gateway or the CA says it is not serving; nothing was issued.
/// - other 5xx with the CA's error body: the CA says it failed; nothing was issued.
/// - anything else (an HTML page, garbage): unusable, and not safe to fail over from.
pub fn status_error(status: StatusCode, vendor: Option<String>) -> super::BackendError {
    use super::BackendError as E;
    let code = status.as_u16();
    match (code, vendor) {
        (400..=499, Some(m)) => E::Refused(format!("HTTP {code}: {m}")),
        (502 | 503, m) => E::Unavailable(format!("HTTP {code}{}", suffix(m))),
        (500..=599, Some(m)) => E::Unavailable(format!("HTTP {code}: {m}")),
        (500..=599, None) => E::Ambiguous(format!("HTTP {code} without an API error body")),
        (_, m) => E::Invalid(format!("HTTP {code}{}", suffix(m))),
    }
}

/// As [`status_error`], for CA APIs whose 500 may come after the certificate was made (EJBCA
/// answers any unmapped failure with 500 "General failure", DigiCert may fail after placing an
/// order): only 502 and 503 say surely nothing was issued; any other 5xx is ambiguous.
pub fn vendor_error(status: StatusCode, vendor: Option<String>) -> super::BackendError {
    match status.as_u16() {
        500..=599 if !matches!(status.as_u16(), 502 | 503) => {
            super::BackendError::Ambiguous(format!("HTTP {}{}", status.as_u16(), suffix(vendor)))
        }
        _ => status_error(status, vendor),
    }
}

fn suffix(m: Option<String>) -> String {
    m.map(|m| format!(": {m}")).unwrap_or_default()
}

/// A short, printable excerpt of a body for logs (never secrets: CA answers only).
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(120)]);
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
