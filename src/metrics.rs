//! Prometheus metrics, registered once and shared by every listener.

use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The gateway's metrics.
pub struct Metrics {
    registry: Registry,
    /// Requests by protocol, operation and outcome.
    pub requests: IntCounterVec,
    /// Request latency by protocol and operation.
    pub request_seconds: HistogramVec,
    /// Certificates issued by profile and backend.
    pub issued: IntCounterVec,
    /// Refusals by protocol and reason kind.
    pub rejected: IntCounterVec,
    /// Peer input refused before it reached the registrar, by protocol and kind.
    pub bad_input: IntCounterVec,
    /// Backend call latency by backend and result.
    pub backend_seconds: HistogramVec,
    /// Backend failures by backend and kind (unavailable, ambiguous, refused, invalid,
    /// circuit_open, garbage, key_mismatch, bad_chain).
    pub backend_errors: IntCounterVec,
    /// Connections refused or cut by listener and cause (limit, timeout, tls).
    pub connections: IntCounterVec,
    /// Datagram-transport events by transport (`coaps`) and event: hello_verify,
    /// bad_cookie, handshake_failed, handshake_timeout, session_limit, handshake_limit, ...
    pub transport_events: IntCounterVec,
    /// DTLS sessions and handshakes in progress, by transport and state.
    pub transport_active: IntGaugeVec,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)
                .expect("static metric definition");
            registry
                .register(Box::new(c.clone()))
                .expect("metric registered once");
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let buckets = vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ];
            let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
                .expect("static metric definition");
            registry
                .register(Box::new(h.clone()))
                .expect("metric registered once");
            h
        };
        Self {
            requests: counter(
                "enrollgate_requests_total",
                "Requests by protocol, operation and outcome",
                &["protocol", "operation", "outcome"],
            ),
            request_seconds: histogram(
                "enrollgate_request_duration_seconds",
                "Request latency",
                &["protocol", "operation"],
            ),
            issued: counter(
                "enrollgate_certificates_issued_total",
                "Certificates issued",
                &["profile", "backend"],
            ),
            rejected: counter(
                "enrollgate_rejections_total",
                "Requests refused by the registrar",
                &["protocol", "reason"],
            ),
            bad_input: counter(
                "enrollgate_bad_input_total",
                "Peer input refused by a protocol decoder",
                &["protocol", "kind"],
            ),
            backend_seconds: histogram(
                "enrollgate_backend_duration_seconds",
                "Backend call latency",
                &["backend", "result"],
            ),
            backend_errors: counter(
                "enrollgate_backend_errors_total",
                "Backend call failures and refused answers by kind",
                &["backend", "kind"],
            ),
            connections: counter(
                "enrollgate_connections_refused_total",
                "Connections refused or cut",
                &["listener", "cause"],
            ),
            transport_events: counter(
                "enrollgate_transport_events_total",
                "Datagram transport events (cookie exchange, handshakes, session limits)",
                &["transport", "event"],
            ),
            transport_active: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "enrollgate_transport_active",
                        "Sessions and handshakes in progress",
                    ),
                    &["transport", "state"],
                )
                .expect("static metric definition");
                registry
                    .register(Box::new(g.clone()))
                    .expect("metric registered once");
                g
            },
            registry,
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
