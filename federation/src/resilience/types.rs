//! The resilience policy objects (see the module above for how they attach and are stored).

use serde::{Deserialize, Serialize};

/// Resilience for one service's requests, or for those a rule of its route matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResiliencePolicy {
    /// DNS label, unique.
    pub id: String,
    /// `namespace/service` whose requests this policy acts on.
    pub service: String,
    /// The name of a rule of the service's route: the policy acts only on requests that rule
    /// matched. Absent: every request of the service. At most one policy per (service, rule).
    #[serde(default)]
    pub rule: Option<String>,
    /// Bounds on what this gateway sends to the service at once (service-wide policies only).
    #[serde(default)]
    pub circuit_breaker: Option<CircuitBreaker>,
    /// Ejecting misbehaving local endpoints from the data path's balancing (service-wide
    /// policies only); replaces the gateway's `[outlier]` settings for this service.
    #[serde(default)]
    pub outlier_detection: Option<OutlierDetection>,
    /// Token buckets a request must each pass (at most 8).
    #[serde(default)]
    pub rate_limits: Vec<RateLimit>,
    /// Delays and aborts injected on purpose, to test the callers.
    #[serde(default)]
    pub fault: Option<FaultInjection>,
    /// A share of requests copied to another service or subset, answers discarded.
    #[serde(default)]
    pub mirror: Option<Mirror>,
    #[serde(default)]
    pub updated_at: u64,
}

impl ResiliencePolicy {
    /// What the policy is attached to, for messages: `ns/svc` or `ns/svc rule "name"`.
    pub fn scope(&self) -> String {
        match &self.rule {
            Some(r) => format!("{} rule {r:?}", self.service),
            None => self.service.clone(),
        }
    }
}

/// Concurrency bounds, each absent one unbounded. Over a bound the request is answered 503
/// with `x-warden-error: overflow` at once, without being sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreaker {
    /// For the service as a whole, from this gateway.
    #[serde(default)]
    pub service: Option<Thresholds>,
    /// For each cluster the service is sent to (this one and each remote gateway): a full
    /// cluster is passed over for the next in failover order; when every one is full, 503.
    #[serde(default)]
    pub per_cluster: Option<Thresholds>,
    /// Bounds on the connections this gateway opens to the service's local endpoints.
    #[serde(default)]
    pub connections: Option<ConnectionLimits>,
}

/// Bounds on the connections to a service's local endpoints (all of them together, from this
/// gateway; idle pooled connections count). Remote gateways are reached over one shared,
/// multiplexed HTTP/2 connection each, which these bounds do not govern: `max_requests`
/// bounds what is sent there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionLimits {
    /// Connections open at once (1–100,000). When all are busy a request waits, up to the
    /// gateway's `timeouts.connect_ms`, for one to come free, then is answered 503
    /// overflow (`max_connections`).
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// Requests a connection carries before it is closed and replaced (1–1,000,000).
    #[serde(default)]
    pub max_requests_per_connection: Option<u32>,
}

/// The bounds of one circuit breaker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Requests in flight at once (1–1,000,000).
    #[serde(default)]
    pub max_requests: Option<u32>,
    /// Requests that may wait, first come first served, for one in flight to finish when
    /// `max_requests` are (0–100,000; default 0: none waits). A waiting request gives up with
    /// 503 overflow when its timeout passes.
    #[serde(default)]
    pub max_pending_requests: Option<u32>,
    /// Retries in flight at once (0–100,000); a retry over it is not made and the last
    /// answer stands.
    #[serde(default)]
    pub max_retries: Option<u32>,
}

/// Outlier detection for a service's local endpoints: consecutive failures as they happen,
/// and, once per `interval_ms`, success rate, failure percentage and latency over the interval
/// (Envoy's semantics). An ejected endpoint is out for `base_ejection_ms`, doubled with each
/// repeated ejection; never more than `max_ejection_percent` of the endpoints at once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutlierDetection {
    /// Consecutive 5xx answers or connect failures that eject (1–100,000); the gateway's
    /// `outlier.consecutive_failures` when absent.
    #[serde(default)]
    pub consecutive_failures: Option<u32>,
    /// 1–3,600,000 ms; the gateway's `outlier.base_ejection_ms` when absent.
    #[serde(default)]
    pub base_ejection_ms: Option<u64>,
    /// 0–100; the gateway's `outlier.max_ejection_percent` when absent.
    #[serde(default)]
    pub max_ejection_percent: Option<u32>,
    /// How often the interval conditions are evaluated (1,000–600,000 ms, default 10,000).
    #[serde(default = "OutlierDetection::default_interval_ms")]
    pub interval_ms: u64,
    #[serde(default)]
    pub success_rate: Option<SuccessRate>,
    #[serde(default)]
    pub failure_percentage: Option<FailurePercentage>,
    #[serde(default)]
    pub latency: Option<LatencyOutlier>,
}

impl OutlierDetection {
    pub const DEFAULT_INTERVAL_MS: u64 = 10_000;
    fn default_interval_ms() -> u64 {
        Self::DEFAULT_INTERVAL_MS
    }
}

/// Ejects an endpoint whose success rate over the interval is below the mean of the
/// endpoints' rates by more than `stdev_factor` standard deviations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuccessRate {
    /// Endpoints with `request_volume` requests in the interval needed to judge any (2–1,000,
    /// default 5).
    #[serde(default = "SuccessRate::default_min_hosts")]
    pub min_hosts: u32,
    /// Requests an endpoint needs in the interval to be judged (1–1,000,000, default 100).
    #[serde(default = "SuccessRate::default_request_volume")]
    pub request_volume: u32,
    /// 0.1–10, default 1.9.
    #[serde(default = "SuccessRate::default_stdev_factor")]
    pub stdev_factor: f64,
}

impl SuccessRate {
    fn default_min_hosts() -> u32 {
        5
    }
    fn default_request_volume() -> u32 {
        100
    }
    fn default_stdev_factor() -> f64 {
        1.9
    }
}

/// Ejects an endpoint whose share of failed requests over the interval is at least
/// `threshold` percent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailurePercentage {
    /// 1–100, default 85.
    #[serde(default = "FailurePercentage::default_threshold")]
    pub threshold: u32,
    /// 1–1,000, default 5.
    #[serde(default = "FailurePercentage::default_min_hosts")]
    pub min_hosts: u32,
    /// 1–1,000,000, default 50.
    #[serde(default = "FailurePercentage::default_request_volume")]
    pub request_volume: u32,
}

impl FailurePercentage {
    fn default_threshold() -> u32 {
        85
    }
    fn default_min_hosts() -> u32 {
        5
    }
    fn default_request_volume() -> u32 {
        50
    }
}

/// Ejects an endpoint whose mean time to a response head over the interval is above
/// `threshold_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencyOutlier {
    /// 1–600,000 ms.
    pub threshold_ms: u64,
    /// Requests an endpoint needs in the interval to be judged (1–1,000,000, default 20).
    #[serde(default = "LatencyOutlier::default_request_volume")]
    pub request_volume: u32,
}

impl LatencyOutlier {
    fn default_request_volume() -> u32 {
        20
    }
}

/// A token bucket: `requests` per `unit` on average, up to `burst` at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// DNS label naming the limit in answers and metrics; `rate_limits[i]` when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// Tokens added per `unit` (1–1,000,000,000).
    pub requests: u64,
    #[serde(default = "RateUnit::second")]
    pub unit: RateUnit,
    /// The bucket's size: requests that may pass at once after a quiet time (1–1,000,000,000;
    /// default `requests`). A bucket starts full.
    #[serde(default)]
    pub burst: Option<u64>,
    /// What requests share a bucket.
    #[serde(default)]
    pub key: RateKey,
    /// Buckets kept at most (1–100,000; default 1,024). Once as many keys are in use, and no
    /// bucket has refilled completely to make room, further keys share one overflow bucket:
    /// made-up key values cannot grow memory, nor pass the limit.
    #[serde(default = "RateLimit::default_max_buckets")]
    pub max_buckets: u32,
    /// Only requests from these clusters are counted (empty: every request).
    #[serde(default)]
    pub source_clusters: Vec<String>,
    /// Where the limit holds: `local` (each gateway counts on its own) or `mesh`.
    #[serde(default)]
    pub scope: RateScope,
}

/// Where a rate limit holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RateScope {
    /// Each gateway has its own buckets, on both listeners.
    #[default]
    Local,
    /// `requests` (and `burst`) for the whole mesh: charged once, where a request enters the
    /// mesh (the outbound listener of the caller's gateway), and divided among the gateways
    /// that see the service's traffic by their recent share of it (each reports its demand
    /// with its lease renewal).
    Mesh,
}

impl RateLimit {
    pub const DEFAULT_MAX_BUCKETS: u32 = 1024;
    fn default_max_buckets() -> u32 {
        Self::DEFAULT_MAX_BUCKETS
    }
    /// The bucket size in force.
    pub fn capacity(&self) -> u64 {
        self.burst.unwrap_or(self.requests)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RateUnit {
    Second,
    Minute,
    Hour,
}

impl RateUnit {
    fn second() -> Self {
        Self::Second
    }
    pub fn seconds(self) -> u64 {
        match self {
            RateUnit::Second => 1,
            RateUnit::Minute => 60,
            RateUnit::Hour => 3600,
        }
    }
}

/// What requests share a bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RateKey {
    /// One bucket for every request the policy acts on.
    #[default]
    Whole,
    /// One bucket per calling cluster (the verified peer on the east-west hop; this
    /// gateway's cluster for its own callers).
    SourceCluster,
    /// One bucket per value of a request header (e.g. a tenant id); requests without it
    /// share one bucket.
    Header { name: String },
}

/// Shadow traffic: a share of the requests a policy acts on is copied, once, to `service`
/// (restricted to `subset`), fire-and-forget, where the request enters the mesh (the outbound
/// listener). The copy carries `warden-mirror: 1`; its answer is discarded; it never slows or
/// fails the request it copies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Mirror {
    /// Share of requests copied, 0–100 (fractions allowed).
    pub percent: f64,
    /// `namespace/service` the copies go to; the policy's service when absent.
    #[serde(default)]
    pub service: Option<String>,
    /// Endpoint labels of the copies' target subset; empty: the whole service.
    #[serde(default)]
    pub subset: std::collections::BTreeMap<String, String>,
    /// Copies in flight at once from one gateway (1–10,000, default 64); over it a copy is
    /// not made.
    #[serde(default = "Mirror::default_max_in_flight")]
    pub max_in_flight: u32,
    /// Larger bodies (and streamed ones) are not copied (0–1,048,576, default 65,536).
    #[serde(default = "Mirror::default_max_body_bytes")]
    pub max_body_bytes: u64,
}

impl Mirror {
    fn default_max_in_flight() -> u32 {
        64
    }
    fn default_max_body_bytes() -> u64 {
        65_536
    }
}

/// Faults injected into the requests a policy acts on, at the gateway where they enter the
/// mesh (the outbound listener), so a request is faulted at most once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultInjection {
    #[serde(default)]
    pub delay: Option<FaultDelay>,
    #[serde(default)]
    pub abort: Option<FaultAbort>,
    /// Only requests from these clusters (the gateway's own cluster is the source on its
    /// outbound listener). Empty: any.
    #[serde(default)]
    pub source_clusters: Vec<String>,
    /// Honour `x-warden-fault: delay=<ms>` and/or `abort=<status>` on a request (for tests):
    /// the header's fault applies to that request whatever the percentages. Default false:
    /// the header is ignored (and never forwarded).
    #[serde(default)]
    pub header_trigger: bool,
}

/// Waits before the request is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultDelay {
    /// Share of requests delayed, 0–100 (fractions allowed).
    pub percent: f64,
    /// 1–60,000 ms.
    pub fixed_ms: u64,
}

/// Answers instead of sending.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultAbort {
    /// Share of requests aborted, 0–100 (fractions allowed).
    pub percent: f64,
    /// The HTTP status answered (200–599); for a gRPC request, its gRPC equivalent.
    #[serde(default)]
    pub http_status: Option<u16>,
    /// The gRPC status answered to a gRPC request (1–16) in a trailers-only answer.
    #[serde(default)]
    pub grpc_status: Option<u8>,
}
