//! Challenge validation, run by spawned tasks and never on a request path: http-01 (an HTTP
//! GET of the token path), dns-01 (a TXT query through the configured nameserver) and
//! tls-alpn-01 (a TLS handshake offering only `acme-tls/1`, RFC 8737). Each attempt has a
//! timeout; a failed attempt is retried after a pause; the crate judges what was fetched.
//!
//! A route may pin the address validations connect to (`resolve_to`, loopback only) and the
//! ports; otherwise DNS identifiers are resolved with the same resolver as dns-01.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use enrollgate_acme::challenge::{ChallengeType, ValidationTask};
use enrollgate_acme::resources::{Identifier, IdentifierType};
use enrollgate_acme::validation::{
    ACME_TLS_ALPN_PROTOCOL, check_dns01_records, check_http01_body, check_tls_alpn01_certificate,
    dns01_record_name, http01_path,
};
use enrollgate_acme::{Problem, ProblemType};
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::{Resolver, TokioResolver};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::config::Acme;

mod tls;

/// The largest http-01 response body read.
const MAX_HTTP01_BODY: usize = 8 * 1024;
/// Addresses of one name tried in turn.
const MAX_ADDRESSES: usize = 4;
/// The User-Agent of the http-01 validator.
const USER_AGENT: &str = "enrollgate-acme-validator";

/// Where a route's validations connect.
#[derive(Clone, Debug)]
pub struct Target {
    /// http-01 port.
    pub http01_port: u16,
    /// tls-alpn-01 port.
    pub tls_alpn01_port: u16,
    /// A fixed address instead of resolving DNS identifiers.
    pub resolve_to: Option<IpAddr>,
}

/// Runs validations with bounded concurrency, timeouts and retries.
pub struct Validator {
    resolver: TokioResolver,
    tls: Arc<rustls::ClientConfig>,
    permits: Semaphore,
    timeout: Duration,
    attempts: u32,
    pause: Duration,
}

impl Validator {
    /// Builds the resolver (the configured nameserver, or the system's) and the TLS client.
    pub fn new(config: &Acme) -> anyhow::Result<Self> {
        let timeout = Duration::from_secs(config.validation_timeout_secs);
        Ok(Self {
            resolver: resolver(config.resolver, timeout),
            tls: tls::client_config()?,
            permits: Semaphore::new(config.max_concurrent_validations),
            timeout,
            attempts: config.validation_attempts,
            pause: Duration::from_secs(config.validation_retry_secs),
        })
    }

    /// Validates one challenge: `Ok` or the last attempt's problem.
    pub async fn validate(&self, task: &ValidationTask, target: &Target) -> Result<(), Problem> {
        let Ok(_permit) = self.permits.acquire().await else {
            return Err(Problem::internal());
        };
        let mut last = Problem::internal();
        for attempt in 0..self.attempts {
            if attempt > 0 {
                tokio::time::sleep(self.pause).await;
            }
            match tokio::time::timeout(self.timeout, self.attempt(task, target)).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(p)) => last = p,
                Err(_) => last = Problem::new(ProblemType::Connection, "validation timed out"),
            }
        }
        Err(last)
    }

    async fn attempt(&self, task: &ValidationTask, target: &Target) -> Result<(), Problem> {
        match task.kind {
            ChallengeType::Http01 => self.http01(task, target).await,
            ChallengeType::Dns01 => self.dns01(task).await,
            ChallengeType::TlsAlpn01 => self.tls_alpn01(task, target).await,
        }
    }

    async fn http01(&self, task: &ValidationTask, target: &Target) -> Result<(), Problem> {
        let port = target.http01_port;
        let stream = self.connect(&task.identifier, target, port).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| connection("HTTP connection failed"))?;
        let driver = tokio::spawn(conn);
        let request = hyper::Request::get(http01_path(&task.token))
            .header(hyper::header::HOST, host_header(&task.identifier, port))
            .header(hyper::header::USER_AGENT, USER_AGENT)
            .body(Empty::<Bytes>::new())
            .map_err(|_| Problem::internal())?;
        let result = fetch(&mut sender, request).await;
        driver.abort();
        check_http01_body(&result?, &task.key_authorization)
    }

    async fn dns01(&self, task: &ValidationTask) -> Result<(), Problem> {
        let name = format!("{}.", dns01_record_name(&task.identifier));
        let lookup = match self.resolver.txt_lookup(name.as_str()).await {
            Ok(l) => l,
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => {
                let why = format!("no TXT record at {name}");
                return Err(Problem::new(ProblemType::IncorrectResponse, why));
            }
            Err(_) => {
                let why = format!("DNS query for {name} failed");
                return Err(Problem::new(ProblemType::Dns, why));
            }
        };
        let records: Vec<String> = lookup
            .iter()
            .map(|txt| {
                txt.txt_data()
                    .iter()
                    .map(|part| String::from_utf8_lossy(part).into_owned())
                    .collect()
            })
            .collect();
        check_dns01_records(&records, &task.key_authorization)
    }

    async fn tls_alpn01(&self, task: &ValidationTask, target: &Target) -> Result<(), Problem> {
        let stream = self
            .connect(&task.identifier, target, target.tls_alpn01_port)
            .await?;
        let name = sni(&task.identifier)?;
        let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
        let tls = connector
            .connect(name, stream)
            .await
            .map_err(|e| Problem::new(ProblemType::Tls, format!("TLS handshake failed: {e}")))?;
        let (_, session) = tls.get_ref();
        if session.alpn_protocol() != Some(ACME_TLS_ALPN_PROTOCOL) {
            let why = "the server did not negotiate acme-tls/1";
            return Err(Problem::new(ProblemType::Tls, why));
        }
        let cert = session
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or_else(|| Problem::new(ProblemType::Tls, "no certificate presented"))?;
        check_tls_alpn01_certificate(cert, &task.identifier, &task.key_authorization)
    }

    /// Connects to the identifier (or the pinned address) on `port`.
    async fn connect(
        &self,
        id: &Identifier,
        target: &Target,
        port: u16,
    ) -> Result<TcpStream, Problem> {
        for ip in self.addresses(id, target).await? {
            if let Ok(s) = TcpStream::connect(SocketAddr::new(ip, port)).await {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
        }
        Err(connection(&format!(
            "could not connect to {} port {port}",
            id.value
        )))
    }

    async fn addresses(&self, id: &Identifier, target: &Target) -> Result<Vec<IpAddr>, Problem> {
        if let Some(ip) = target.resolve_to {
            return Ok(vec![ip]);
        }
        if id.kind == IdentifierType::Ip {
            return id
                .value
                .parse()
                .map(|ip| vec![ip])
                .map_err(|_| Problem::internal());
        }
        let name = format!("{}.", id.value);
        let found =
            self.resolver.lookup_ip(name.as_str()).await.map_err(|_| {
                Problem::new(ProblemType::Dns, format!("no address for {}", id.value))
            })?;
        Ok(found.iter().take(MAX_ADDRESSES).collect())
    }
}

async fn fetch(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    request: hyper::Request<Empty<Bytes>>,
) -> Result<Bytes, Problem> {
    let response = sender
        .send_request(request)
        .await
        .map_err(|_| connection("HTTP request failed"))?;
    if response.status() != hyper::StatusCode::OK {
        let why = format!("http-01 target answered {}", response.status().as_u16());
        return Err(Problem::new(ProblemType::IncorrectResponse, why));
    }
    let body = Limited::new(response.into_body(), MAX_HTTP01_BODY)
        .collect()
        .await
        .map_err(|_| Problem::new(ProblemType::IncorrectResponse, "http-01 body too large"))?;
    Ok(body.to_bytes())
}

fn connection(why: &str) -> Problem {
    Problem::new(ProblemType::Connection, why)
}

/// The Host header: the identifier, bracketed when IPv6, with the port when not 80.
fn host_header(id: &Identifier, port: u16) -> String {
    let host = match id.value.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => id.value.clone(),
    };
    if port == 80 {
        host
    } else {
        format!("{host}:{port}")
    }
}

/// The SNI of a tls-alpn-01 handshake: the DNS name, or for an IP address its reverse
/// mapping name (RFC 8738 section 6).
fn sni(id: &Identifier) -> Result<ServerName<'static>, Problem> {
    let name = match id.value.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        Ok(IpAddr::V6(v6)) => {
            let nibbles: Vec<String> = v6
                .octets()
                .iter()
                .rev()
                .flat_map(|b| [b & 0x0f, b >> 4])
                .map(|n| format!("{n:x}"))
                .collect();
            format!("{}.ip6.arpa", nibbles.join("."))
        }
        Err(_) => id.value.clone(),
    };
    ServerName::try_from(name).map_err(|_| Problem::malformed("identifier is not a valid SNI"))
}

/// The resolver dns-01 (and address lookups) use; no cache, so a retry sees fresh records.
fn resolver(nameserver: Option<SocketAddr>, timeout: Duration) -> TokioResolver {
    let mut builder = match nameserver {
        Some(addr) => {
            let group = NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true);
            let config = ResolverConfig::from_parts(None, Vec::new(), group);
            Resolver::builder_with_config(config, TokioConnectionProvider::default())
        }
        None => Resolver::builder_tokio().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "acme: no system resolver configuration; dns-01 will fail");
            Resolver::builder_with_config(
                ResolverConfig::from_parts(None, Vec::new(), NameServerConfigGroup::new()),
                TokioConnectionProvider::default(),
            )
        }),
    };
    let opts = builder.options_mut();
    opts.cache_size = 0;
    opts.timeout = timeout;
    opts.attempts = 1;
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sni_and_host_for_each_identifier_type() {
        let v4 = Identifier::ip("192.0.2.1");
        assert_eq!(sni(&v4).unwrap().to_str(), "1.2.0.192.in-addr.arpa");
        let v6 = Identifier::ip("2001:db8::1");
        let name = sni(&v6).unwrap().to_str().into_owned();
        assert!(name.starts_with("1.0.0.0.") && name.ends_with(".8.b.d.0.1.0.0.2.ip6.arpa"));
        assert_eq!(host_header(&Identifier::dns("a.test"), 80), "a.test");
        assert_eq!(host_header(&Identifier::ip("::1"), 5002), "[::1]:5002");
    }
}
