//! The accept loop shared by the HTTPS, HTTP and admin listeners.
//!
//! Each connection gets a TLS handshake deadline, a header-read deadline, a cap on the number
//! of connections, TCP_NODELAY (clients that write headers and body separately would
//! otherwise stall on Nagle and delayed ACK), HTTP/1.1 and HTTP/2, and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use super::{Body, ConnInfo};
use crate::metrics::Metrics;

/// How one listener behaves.
#[derive(Clone)]
pub struct ListenerSpec {
    /// Name for metrics and logs (`https`, `http`, `admin`).
    pub name: &'static str,
    /// TLS, or plain.
    pub tls: Option<TlsAcceptor>,
    /// Connection cap.
    pub max_connections: usize,
    /// Deadline for the TLS handshake and for request headers.
    pub header_timeout: Duration,
    /// Time allowed for in-flight requests at shutdown.
    pub shutdown_grace: Duration,
}

/// Serves connections on `listener` until `shutdown` turns true, then drains.
pub async fn serve<H, F>(
    listener: TcpListener,
    spec: ListenerSpec,
    metrics: Arc<Metrics>,
    handler: H,
    mut shutdown: watch::Receiver<bool>,
) where
    H: Fn(Arc<ConnInfo>, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(spec.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(spec.header_timeout)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256);
    let builder = Arc::new(builder);

    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(listener = spec.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics
                .connections
                .with_label_values(&[spec.name, "limit"])
                .inc();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let spec = spec.clone();
        let metrics = metrics.clone();
        let handler = handler.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            connection(stream, peer, spec, metrics, handler, builder, watcher).await;
        });
    }
    tracing::info!(listener = spec.name, "draining connections");
    if tokio::time::timeout(spec.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = spec.name,
            "connections still open after the grace period"
        );
    }
}

async fn connection<H, F>(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    spec: ListenerSpec,
    metrics: Arc<Metrics>,
    handler: H,
    builder: Arc<Builder<TokioExecutor>>,
    watcher: hyper_util::server::graceful::Watcher,
) where
    H: Fn(Arc<ConnInfo>, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let Some(acceptor) = spec.tls.clone() else {
        let info = Arc::new(ConnInfo {
            peer: Some(peer),
            ..ConnInfo::default()
        });
        let activity = Arc::new(Activity::default());
        let svc = counted_service(handler, info, activity.clone());
        let conn = watcher.watch(builder.serve_connection(TokioIo::new(stream), svc));
        drive(conn, &activity, &spec, &metrics, peer).await;
        return;
    };
    let tls = match tokio::time::timeout(spec.header_timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            metrics
                .connections
                .with_label_values(&[spec.name, "tls"])
                .inc();
            tracing::debug!(listener = spec.name, %peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            metrics
                .connections
                .with_label_values(&[spec.name, "timeout"])
                .inc();
            tracing::debug!(listener = spec.name, %peer, "TLS handshake timed out");
            return;
        }
    };
    let info = Arc::new(conn_info(peer, tls.get_ref().1));
    let activity = Arc::new(Activity::default());
    let svc = counted_service(handler, info, activity.clone());
    let conn = watcher.watch(builder.serve_connection(TokioIo::new(tls), svc));
    drive(conn, &activity, &spec, &metrics, peer).await;
}

/// Requests seen on one connection, for the idle watchdog of [`drive`].
#[derive(Default)]
struct Activity {
    /// Requests whose headers were read, ever.
    started: AtomicU64,
    /// Requests whose handler has not finished.
    in_flight: AtomicUsize,
}

/// Decrements [`Activity::in_flight`] when a request ends, however it ends.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The connection's service: the handler, with each request recorded in `activity`.
fn counted_service<H, F>(
    handler: H,
    info: Arc<ConnInfo>,
    activity: Arc<Activity>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<Body>,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<Response<Body>, std::convert::Infallible>> + Send,
> + Clone
where
    H: Fn(Arc<ConnInfo>, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    service_fn(move |req| {
        activity.started.fetch_add(1, Ordering::Relaxed);
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        let guard = InFlight(activity.clone());
        let fut = handler(info.clone(), req);
        async move {
            let response = fut.await;
            drop(guard);
            Ok::<_, std::convert::Infallible>(response)
        }
    })
}

/// Runs a connection to its end, cutting it when it stays idle: no request begun within one
/// header timeout of the connection opening, or of the last check while none was running.
/// hyper's own header-read timer only runs once a request's first bytes arrive, so without
/// this a client that connects and sends nothing would hold a connection slot for ever.
async fn drive<C>(
    conn: C,
    activity: &Activity,
    spec: &ListenerSpec,
    metrics: &Metrics,
    peer: SocketAddr,
) where
    C: Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>>,
{
    let idle = async {
        let mut seen = 0;
        loop {
            tokio::time::sleep(spec.header_timeout).await;
            let started = activity.started.load(Ordering::Relaxed);
            if started == seen && activity.in_flight.load(Ordering::Relaxed) == 0 {
                return;
            }
            seen = started;
        }
    };
    let timed_out = tokio::select! {
        result = conn => match result {
            Ok(()) => false,
            Err(e) if is_timeout(&*e) => true,
            Err(e) => {
                tracing::debug!(listener = spec.name, %peer, error = %e, "connection ended with an error");
                false
            }
        },
        () = idle => true,
    };
    if timed_out {
        metrics
            .connections
            .with_label_values(&[spec.name, "timeout"])
            .inc();
        tracing::debug!(listener = spec.name, %peer, "idle or slow connection cut");
    }
}

/// Whether a connection error is hyper's header-read timeout, anywhere in its source chain.
fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_timeout)
        {
            return true;
        }
        cur = err.source();
    }
    false
}

fn conn_info(peer: SocketAddr, conn: &rustls::ServerConnection) -> ConnInfo {
    let client_chain = conn
        .peer_certificates()
        .map(|certs| certs.iter().map(|c| c.as_ref().to_vec()).collect())
        .unwrap_or_default();
    let tls_exporter = (conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3))
        .then(|| {
            // RFC 9266 section 2: label "EXPORTER-Channel-Binding", empty context, 32 bytes.
            conn.export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", Some(&[]))
                .ok()
                .map(|k| k.to_vec())
        })
        .flatten();
    ConnInfo {
        peer: Some(peer),
        tls: true,
        client_chain,
        tls_exporter,
    }
}
