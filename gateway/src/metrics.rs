//! The gateway's Prometheus metrics, registered into one registry passed around (no globals).
//! Labels are bounded: service names and cluster names from the catalog, response classes.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// Every metric family of the gateway.
pub struct Metrics {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub duration: HistogramVec,
    pub bytes: IntCounterVec,
    pub endpoints: IntGaugeVec,
    pub failovers: IntCounterVec,
    pub actor_restarts: IntCounterVec,
    pub retries: IntCounterVec,
    pub proxy_errors: IntCounterVec,
    pub federation_revision: IntGaugeVec,
    pub tls_errors: IntCounterVec,
    pub authz_denied: IntCounterVec,
    pub kube_events: IntCounterVec,
    /// Spans by what became of them (exported, dropped_queue_full, dropped_export_failed).
    pub otlp_spans: IntCounterVec,
    pub connections_open: IntGaugeVec,
    pub connections_refused: IntCounterVec,
    pub resilience_actions: IntCounterVec,
    pub outlier_ejections: IntCounterVec,
    pub jwks_loads: IntCounterVec,
    /// Time to rebuild the routing snapshot from the federation's catalog.
    pub routing_rebuild: Histogram,
}

fn must<T>(r: Result<T, prometheus::Error>) -> T {
    // The families below have fixed, valid names and label sets: construction cannot fail.
    match r {
        Ok(v) => v,
        Err(e) => panic!("metric definition: {e}"),
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = must(IntCounterVec::new(
            Opts::new(
                "warden_http_requests_total",
                "Requests proxied, by service, source and destination cluster and response class.",
            ),
            &["service", "src_cluster", "dst_cluster", "code_class"],
        ));
        let duration = must(HistogramVec::new(
            HistogramOpts::new(
                "warden_http_request_duration_seconds",
                "Time from request to response headers, per service, source and destination cluster.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["service", "src_cluster", "dst_cluster"],
        ));
        let bytes = must(IntCounterVec::new(
            Opts::new(
                "warden_http_bytes_total",
                "HTTP body bytes proxied, per service, source and destination cluster and direction (request, response).",
            ),
            &["service", "src_cluster", "dst_cluster", "direction"],
        ));
        let endpoints = must(IntGaugeVec::new(
            Opts::new(
                "warden_upstream_endpoints",
                "Endpoints per service and cluster by state (healthy, unhealthy, ejected).",
            ),
            &["service", "cluster", "state"],
        ));
        let failovers = must(IntCounterVec::new(
            Opts::new(
                "warden_failovers_total",
                "Times a service lost all available local endpoints and traffic moved to other clusters.",
            ),
            &["service"],
        ));
        let actor_restarts = must(IntCounterVec::new(
            Opts::new(
                "warden_actor_restarts_total",
                "Actor restarts by the supervisor.",
            ),
            &["actor"],
        ));
        let retries = must(IntCounterVec::new(
            Opts::new("warden_retries_total", "Request retries, per service."),
            &["service"],
        ));
        let proxy_errors = must(IntCounterVec::new(
            Opts::new(
                "warden_proxy_errors_total",
                "Requests answered with a gateway error, by cause.",
            ),
            &["cause"],
        ));
        let federation_revision = must(IntGaugeVec::new(
            Opts::new(
                "warden_federation_revision",
                "Federation store revision the routing table reflects, and whether the watch is connected.",
            ),
            &["kind"],
        ));
        let tls_errors = must(IntCounterVec::new(
            Opts::new(
                "warden_tls_handshake_errors_total",
                "Refused TLS connections, by listener and reason.",
            ),
            &["listener", "reason"],
        ));
        let authz_denied = must(IntCounterVec::new(
            Opts::new(
                "warden_authz_denied_total",
                "East-west requests denied by authorization, by service and deciding policy.",
            ),
            &["service", "policy"],
        ));
        let resilience_actions = must(IntCounterVec::new(
            Opts::new(
                "warden_resilience_actions_total",
                "Requests a resilience policy acted on, by service, policy and action (overflow, cluster_overflow, retry_overflow, rate_limited, fault_delay, fault_abort, mirrored, mirror_failed, mirror_dropped, mirror_skipped, jwt_refused).",
            ),
            &["service", "policy", "action"],
        ));
        let outlier_ejections = must(IntCounterVec::new(
            Opts::new(
                "warden_outlier_ejections_total",
                "Local endpoints ejected by outlier detection, by service and reason (consecutive_failures, success_rate, failure_percentage, latency).",
            ),
            &["service", "reason"],
        ));
        let jwks_loads = must(IntCounterVec::new(
            Opts::new(
                "warden_jwks_loads_total",
                "JWKS key-set loads by the JWKS actor, by outcome (loaded, failed).",
            ),
            &["outcome"],
        ));
        let kube_events = must(IntCounterVec::new(
            Opts::new(
                "warden_kube_watch_events_total",
                "Kubernetes watch events by resource and kind (apply, delete, relist, listed, error).",
            ),
            &["resource", "event"],
        ));
        let otlp_spans = must(IntCounterVec::new(
            Opts::new(
                "warden_otlp_spans_total",
                "Request spans for the OTLP collector, by outcome (exported, dropped_queue_full, dropped_export_failed).",
            ),
            &["outcome"],
        ));
        let connections_open = must(IntGaugeVec::new(
            Opts::new(
                "warden_listener_connections",
                "Client connections open, per listener.",
            ),
            &["listener"],
        ));
        let connections_refused = must(IntCounterVec::new(
            Opts::new(
                "warden_listener_connections_refused_total",
                "Client connections closed as soon as accepted, per listener and reason.",
            ),
            &["listener", "reason"],
        ));
        let routing_rebuild = must(Histogram::with_opts(
            HistogramOpts::new(
                "warden_routing_rebuild_seconds",
                "Time to rebuild the routing snapshot after catalog changes (one per watch burst).",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0,
            ]),
        ));
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(routing_rebuild.clone()),
            Box::new(duration.clone()),
            Box::new(bytes.clone()),
            Box::new(endpoints.clone()),
            Box::new(failovers.clone()),
            Box::new(actor_restarts.clone()),
            Box::new(retries.clone()),
            Box::new(proxy_errors.clone()),
            Box::new(federation_revision.clone()),
            Box::new(tls_errors.clone()),
            Box::new(authz_denied.clone()),
            Box::new(kube_events.clone()),
            Box::new(connections_open.clone()),
            Box::new(connections_refused.clone()),
            Box::new(resilience_actions.clone()),
            Box::new(outlier_ejections.clone()),
            Box::new(jwks_loads.clone()),
            Box::new(otlp_spans.clone()),
        ] {
            must(registry.register(c));
        }
        Self {
            registry,
            requests,
            duration,
            bytes,
            endpoints,
            failovers,
            actor_restarts,
            retries,
            proxy_errors,
            federation_revision,
            tls_errors,
            authz_denied,
            kube_events,
            connections_open,
            connections_refused,
            resilience_actions,
            outlier_ejections,
            jwks_loads,
            routing_rebuild,
            otlp_spans,
        }
    }

    /// Text exposition of every family.
    pub fn render(&self) -> String {
        let mut buf = String::new();
        let enc = prometheus::TextEncoder::new();
        if let Err(e) = enc.encode_utf8(&self.registry.gather(), &mut buf) {
            tracing::warn!(error = %e, "encoding metrics");
        }
        buf
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
