//! The gateway's configuration file (TOML). See `docs/examples/gateway-east.toml`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// One east-west gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// This cluster: its name, locality and trust domain, as registered in the federation.
    pub cluster: ClusterSection,
    pub federation: FederationSection,
    #[serde(default)]
    pub listeners: Listeners,
    /// Local services and their endpoints (static discovery).
    #[serde(default)]
    pub services: Vec<StaticService>,
    #[serde(default)]
    pub health: HealthSection,
    #[serde(default)]
    pub outlier: OutlierSection,
    #[serde(default)]
    pub routing: RoutingSection,
    #[serde(default)]
    pub timeouts: TimeoutSection,
    #[serde(default)]
    pub retries: RetrySection,
    /// Test-only hooks (actor panic injection); off unless set.
    #[serde(default)]
    pub test_hooks: bool,
    #[serde(default)]
    pub runtime: RuntimeSection,
    /// mTLS on the east-west hop (mandatory when set).
    pub tls: Option<TlsSection>,
    #[serde(default)]
    pub authz: AuthzSection,
    /// Where local services come from: `[[services]]` (static) or the Kubernetes API.
    #[serde(default)]
    pub discovery: DiscoverySection,
    #[serde(default)]
    pub telemetry: TelemetrySection,
    /// Bounds on what the listeners accept (docs/security.md).
    #[serde(default)]
    pub limits: LimitsSection,
    /// The `section.key` names the file sets (not defaults): where a setting came from, for
    /// `/config_dump`.
    #[serde(skip)]
    pub explicit: std::collections::BTreeSet<String>,
}

/// What every listener bounds, so no peer can hold the gateway's resources: safe defaults,
/// each documented in `docs/security.md`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// HTTP/1.1: a request head must arrive within this (also how long an idle keep-alive
    /// connection may wait for its next request); the connection is closed after it.
    pub header_read_timeout_ms: u64,
    /// Largest request head (HTTP/1.1: 431 beyond it; HTTP/2: the header list size), and the
    /// largest response head accepted from upstreams.
    pub max_header_bytes: usize,
    /// Client connections per listener; one more is accepted and closed at once (counted).
    pub max_connections: usize,
    /// A request body the gateway buffers (for replay) must arrive within this (408 after).
    pub body_read_timeout_ms: u64,
    /// HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// HTTP/2 streams a client may reset before they are accepted; beyond it the connection
    /// is closed with GOAWAY (rapid reset, CVE-2023-44487).
    pub max_pending_reset_streams: usize,
    /// HTTP/2 ping interval; a peer that does not answer within the same time is dropped.
    pub h2_keepalive_ms: u64,
    /// Raw TCP streams and east-west CONNECT tunnels open at once, per gateway.
    pub max_tunnels: usize,
    /// A tunnel with no bytes in either direction for this long is closed.
    pub tunnel_idle_ms: u64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            header_read_timeout_ms: 10_000,
            max_header_bytes: 64 * 1024,
            max_connections: 10_000,
            body_read_timeout_ms: 30_000,
            max_concurrent_streams: 256,
            max_pending_reset_streams: 20,
            h2_keepalive_ms: 30_000,
            max_tunnels: 1_024,
            tunnel_idle_ms: 300_000,
        }
    }
}

/// What a gateway authenticates to the federation with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// Its cluster's own credential: it may write only what is that cluster's.
    Cluster(String),
    /// The admin token: it may write anything (kept for gateways that register themselves).
    Admin(String),
}

impl Credential {
    pub fn token(&self) -> &str {
        match self {
            Credential::Cluster(t) | Credential::Admin(t) => t,
        }
    }
}

/// Logs and traces of the data path.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySection {
    /// One `warden::access` log line per request (service, clusters, endpoint, status,
    /// duration, retries, trace ids). Also filterable with `WARDEN_LOG=...,warden::access=off`.
    pub access_log: bool,
    /// Requests recorded (the ring behind `/recent` and the federation's traces and logs)
    /// and exported as spans, per million, by trace id; every 5xx is recorded as well. Live
    /// from the store as `telemetry.sample_per_million`.
    pub sample_per_million: u32,
    /// Requests the ring of recent requests holds (0: none recorded, none reported).
    pub recent_requests: usize,
    /// Export spans over OTLP/HTTP (protobuf) when set.
    pub otlp: Option<OtlpSection>,
    /// The golden signals' sampler (`/signals`, the reports behind the federation's
    /// `observability/metrics` and the console's graph); off, none of them has data.
    pub signals: bool,
}

impl Default for TelemetrySection {
    fn default() -> Self {
        Self {
            access_log: true,
            sample_per_million: 10_000,
            recent_requests: 1024,
            otlp: None,
            signals: true,
        }
    }
}

/// Where and how spans are exported.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpSection {
    /// The collector's OTLP/HTTP base URL (`http://host:4318`); spans go to `/v1/traces`.
    pub endpoint: String,
    /// Spans waiting for export at most; more are dropped and counted, never waited for.
    #[serde(default = "default_otlp_queue")]
    pub queue: usize,
    /// Spans per export request at most.
    #[serde(default = "default_otlp_batch")]
    pub max_batch: usize,
    /// A batch that is not full goes out after this long.
    #[serde(default = "default_otlp_flush_ms")]
    pub flush_ms: u64,
    /// One export request may take this long (then it fails and its spans are dropped).
    #[serde(default = "default_otlp_timeout_ms")]
    pub timeout_ms: u64,
}

impl TelemetrySection {
    fn validate(&self) -> Result<(), String> {
        if self.sample_per_million > 1_000_000 {
            return Err("telemetry.sample_per_million must be 0-1000000".into());
        }
        if self.recent_requests > 100_000 {
            return Err("telemetry.recent_requests must be 0-100000".into());
        }
        let Some(o) = &self.otlp else { return Ok(()) };
        let uri: http::Uri = o
            .endpoint
            .parse()
            .map_err(|e| format!("telemetry.otlp.endpoint: {e}"))?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err(
                "telemetry.otlp.endpoint must be an http:// URL with a host (the collector's OTLP/HTTP port)"
                    .into(),
            );
        }
        if !(1..=1_000_000).contains(&o.queue) {
            return Err("telemetry.otlp.queue must be 1-1000000".into());
        }
        if o.max_batch == 0 || o.max_batch > o.queue {
            return Err("telemetry.otlp.max_batch must be 1 up to telemetry.otlp.queue".into());
        }
        if !(10..=60_000).contains(&o.flush_ms) {
            return Err("telemetry.otlp.flush_ms must be 10-60000".into());
        }
        if !(10..=60_000).contains(&o.timeout_ms) {
            return Err("telemetry.otlp.timeout_ms must be 10-60000".into());
        }
        Ok(())
    }
}

fn default_otlp_queue() -> usize {
    4096
}
fn default_otlp_batch() -> usize {
    512
}
fn default_otlp_flush_ms() -> u64 {
    1000
}
fn default_otlp_timeout_ms() -> u64 {
    5000
}

/// Where local services and their endpoints come from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoverySection {
    #[serde(default)]
    pub source: DiscoverySource,
    #[serde(default)]
    pub kubernetes: KubernetesSection,
    /// Endpoints on loopback addresses (127/8, ::1) are refused unless this is true (a
    /// single-machine setup). The gateway's own listeners are refused either way.
    #[serde(default)]
    pub allow_loopback_endpoints: bool,
    /// Endpoints on link-local addresses (169.254/16 — cloud metadata — and fe80::/10) are
    /// refused unless this is true.
    #[serde(default)]
    pub allow_link_local_endpoints: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscoverySource {
    /// The `[[services]]` tables of this file.
    #[default]
    Static,
    /// Services and EndpointSlices of the local cluster (kubeconfig from `KUBECONFIG`, else
    /// `~/.kube/config`, else the in-cluster service account).
    Kubernetes,
}

/// Kubernetes discovery: a Service is exported when it carries `warden.io/export: "true"`
/// or has a `ServiceExport` (multicluster.x-k8s.io/v1alpha1) of the same name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesSection {
    /// Only these namespaces (empty: all).
    pub namespaces: Vec<String>,
    /// Weight of this cluster's copy of each exported service (annotation
    /// `warden.io/weight` overrides it per Service).
    pub weight: u32,
    /// Active probe of endpoints: `tcp` or an HTTP path (annotation `warden.io/probe`
    /// overrides it per Service).
    pub probe: String,
    /// Write `Valid`, `Exported` and `Conflict` conditions on each ServiceExport.
    pub write_status: bool,
    /// Keep a ServiceImport, a derived Service and its EndpointSlice for every service the
    /// mesh exports, so that clients call it by `<svc>.<ns>.svc.clusterset.local`.
    pub imports: bool,
    /// `namespace/name` of the Service in front of this cluster's gateway pods: the derived
    /// Services' endpoints are its ready addresses.
    pub gateway_service: String,
    /// The name of that Service's port that reaches the outbound listener.
    pub gateway_port_name: String,
    /// Pod ports (`"first-last"`) the gateway opens, one per raw TCP port of an imported
    /// service, on the outbound listener's address: a TCP connection carries no name, so the
    /// port it arrives on says which service it is for. Each derived Service records its
    /// ports' pod ports (they stick across restarts and are shared by every replica).
    pub import_tcp_ports: PortRange,
}

/// An inclusive range of ports, written `"first-last"` (or one port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn contains(self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }

    pub fn iter(self) -> std::ops::RangeInclusive<u16> {
        self.first..=self.last
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl std::str::FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let port = |x: &str| {
            x.trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{x:?} is not a port (1-65535)"))
        };
        let (first, last) = (port(a)?, port(b)?);
        if first > last {
            return Err(format!("{first} is above {last}"));
        }
        Ok(Self { first, last })
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|e| serde::de::Error::custom(format!("a port range \"first-last\": {e}")))
    }
}

impl Default for KubernetesSection {
    fn default() -> Self {
        Self {
            namespaces: Vec::new(),
            weight: default_weight(),
            probe: default_probe(),
            write_status: true,
            imports: false,
            gateway_service: "warden-system/warden-gateway".into(),
            gateway_port_name: "http".into(),
            import_tcp_ports: PortRange {
                first: 15100,
                last: 15199,
            },
        }
    }
}

/// Authorization of callers from other clusters (enforced on the east-west listener with mTLS).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthzSection {
    /// What happens to a caller when no security policy covers the service.
    pub default: AuthzDefault,
}

/// `authz.default`: `"allow"` or `"deny"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthzDefault {
    #[default]
    Allow,
    Deny,
}

/// This gateway's SPIFFE identity and its own trust domain's CA bundle (see `warden trust`).
/// Other domains' bundles come from the federation store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM certificate (chain) with a `spiffe://<trust_domain>/...` URI SAN.
    pub cert: std::path::PathBuf,
    /// PEM private key (keep it mode 0600).
    pub key: std::path::PathBuf,
    /// PEM CA bundle of this cluster's trust domain; registered with the cluster.
    pub ca_bundle: std::path::PathBuf,
    /// A CA directory (`ca.pem`, `ca.key`, from `warden trust init`) to renew this gateway's
    /// certificate from at half-life. Without it the files are only watched for replacement
    /// (e.g. by cert-manager or `warden trust issue`).
    pub ca_dir: Option<std::path::PathBuf>,
    /// How often the certificate files are checked.
    #[serde(default = "default_reload_ms")]
    pub reload_interval_ms: u64,
}

fn default_reload_ms() -> u64 {
    1_000
}

/// How the data path uses threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataPathThreads {
    /// One multi-thread tokio runtime; every listener's connections spread over its workers.
    #[default]
    Shared,
    /// Envoy's model: one actix Arbiter (a current-thread runtime) per core, each accepting on
    /// the shared listening sockets with its own upstream connection pools.
    PerCore,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    #[serde(default)]
    pub data_path: DataPathThreads,
    /// Arbiters in `per_core` mode (default: the number of cores).
    pub workers: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    pub name: String,
    pub region: String,
    pub zone: String,
    #[serde(default = "default_network")]
    pub network: String,
    pub trust_domain: String,
    /// Register this cluster on start if the federation does not know it.
    #[serde(default = "yes")]
    pub register: bool,
    /// Address other gateways use for the east-west listener; defaults to the bound address.
    pub advertise: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationSection {
    /// Base URLs of federation nodes' APIs; the gateway uses the first that answers.
    pub endpoints: Vec<String>,
    /// This cluster's own API credential (`<cluster>.<secret>`, from its registration, join or
    /// `warden cluster credential`): all the gateway needs to write its lease, exports and
    /// bundle. `WARDEN_CLUSTER_TOKEN` takes precedence; either wins over an admin token.
    pub cluster_token: Option<String>,
    /// Admin token for writes, for a gateway that registers its cluster itself
    /// (`cluster.register`); `WARDEN_ADMIN_TOKEN` takes precedence. Prefer `cluster_token`.
    pub admin_token: Option<String>,
    /// Lease TTL: once it expires without renewal, other gateways stop sending here.
    #[serde(default = "default_lease_ttl")]
    pub lease_ttl_ms: u64,
    /// Minimum time between two health-count publications of one export.
    #[serde(default = "default_publish_interval")]
    pub publish_interval_ms: u64,
    /// The federation's CA bundle, for `https://` endpoints.
    pub ca_bundle: Option<std::path::PathBuf>,
    /// On drain, withdraw the cluster's lease so other clusters stop sending here at once.
    /// Turn off when several gateway replicas serve one cluster behind one address: the others
    /// keep the lease, and the load balancer takes the draining one out (its `/readyz` is 503).
    #[serde(default = "yes")]
    pub withdraw_lease_on_drain: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listeners {
    /// Local workloads send here (HTTP/1.1 or h2c); port 0 picks a free port.
    pub outbound: String,
    /// Other gateways send here (HTTP/2).
    pub eastwest: String,
    /// `/healthz`, `/readyz`, `/metrics`, `/config_dump`, `/explain`.
    pub admin: String,
    /// Raw TCP: `listen address -> namespace/service:port`.
    pub tcp: Vec<TcpRoute>,
    /// TLS on the outbound listener, with this gateway's `[tls]` certificate, so that a
    /// workload presenting a SPIFFE client certificate (verified against the federation's
    /// trust bundles) is known by its identity to authorization (`workloads` rules):
    /// `off` (plain HTTP, the default), `optional` (a workload may present one) or
    /// `required` (a handshake without one fails).
    pub outbound_tls: OutboundTls,
    /// Accept an east-west listener on a non-loopback address without `[tls]`: other
    /// clusters' traffic and identities would be plaintext and unverified. Only for a network
    /// nobody else reaches.
    pub insecure_plaintext: bool,
}

impl Default for Listeners {
    fn default() -> Self {
        Self {
            outbound: "127.0.0.1:15001".into(),
            eastwest: "127.0.0.1:15008".into(),
            admin: "127.0.0.1:15000".into(),
            tcp: Vec::new(),
            outbound_tls: OutboundTls::Off,
            insecure_plaintext: false,
        }
    }
}

/// Whether the outbound listener speaks TLS, and whether its clients must present a
/// certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboundTls {
    #[default]
    Off,
    Optional,
    Required,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpRoute {
    pub listen: String,
    /// `namespace/service`
    pub service: String,
    pub port: u16,
}

/// A local service and its endpoints. In a file, labelled endpoints are written in
/// `[[services.subsets]]` tables; here every address is in `endpoints` (so every check of an
/// address sees them all) and `labels` holds those of the labelled ones.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "ServiceInFile")]
pub struct StaticService {
    pub namespace: String,
    pub name: String,
    /// Port name, number and protocol of the service.
    pub ports: Vec<warden_federation::model::ServicePort>,
    /// `host:port` of each endpoint, labelled or not.
    pub endpoints: Vec<String>,
    /// Labels of the labelled endpoints, by address (a route's subsets select on them).
    pub labels: BTreeMap<String, BTreeMap<String, String>>,
    /// Relative weight of this cluster's copy in cross-cluster splits.
    pub weight: u32,
    /// Export to the federation (default true).
    pub export: bool,
    /// Active probe: `tcp` (connect) or an HTTP path like `/healthz`.
    pub probe: String,
    /// The endpoints' port for each service port after the first (whose port is each
    /// endpoint's own); a port without an entry is served on its own number.
    pub port_targets: BTreeMap<u16, u16>,
    /// Only these clusters may import the service (empty: every cluster).
    pub export_to: Vec<String>,
}

impl StaticService {
    /// The port endpoint `addr` serves service port `port` on (`None`: not a port of the
    /// service).
    pub fn target_of(&self, port: u16) -> Option<TargetPort> {
        let first = self.ports.first()?;
        let p = self.ports.iter().find(|p| p.port == port)?;
        let h2 = matches!(
            p.protocol,
            warden_federation::model::Protocol::Http2 | warden_federation::model::Protocol::Grpc
        );
        Some(match p.port == first.port {
            true => TargetPort {
                own: true,
                port: 0,
                h2,
            },
            false => TargetPort {
                own: false,
                port: self.port_targets.get(&port).copied().unwrap_or(port),
                h2,
            },
        })
    }
}

/// Where a service port is served: on each endpoint's own port (`own`, the first port) or on
/// `port`; and whether it speaks HTTP/2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetPort {
    pub own: bool,
    pub port: u16,
    pub h2: bool,
}

/// `[[services]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceInFile {
    namespace: String,
    name: String,
    #[serde(default = "default_ports")]
    ports: Vec<warden_federation::model::ServicePort>,
    /// Endpoints without labels.
    #[serde(default)]
    endpoints: Vec<String>,
    /// Endpoints with labels, e.g. `[[services.subsets]]` `labels = { version = "v2" }`,
    /// `endpoints = ["10.0.0.7:8080"]`.
    #[serde(default)]
    subsets: Vec<SubsetInFile>,
    #[serde(default = "default_weight")]
    weight: u32,
    #[serde(default = "yes")]
    export: bool,
    #[serde(default = "default_probe")]
    probe: String,
    /// The endpoints' port for a service port other than the first, by port name, e.g.
    /// `port_targets = { admin = 9001 }` (default: the port's own number).
    #[serde(default)]
    port_targets: BTreeMap<String, u16>,
    /// Only these clusters may import the service (default: every cluster).
    #[serde(default)]
    export_to: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubsetInFile {
    labels: BTreeMap<String, String>,
    endpoints: Vec<String>,
}

impl TryFrom<ServiceInFile> for StaticService {
    type Error = String;
    fn try_from(f: ServiceInFile) -> Result<Self, String> {
        let mut endpoints = f.endpoints;
        let mut labels = BTreeMap::new();
        for (i, s) in f.subsets.into_iter().enumerate() {
            let field = format!("subsets[{i}].labels");
            warden_federation::model::validate_labels(&field, &s.labels, 16)
                .map_err(|e| e.to_string())?;
            if s.labels.is_empty() {
                return Err(format!("{field}: a subset needs at least one label"));
            }
            for addr in s.endpoints {
                if endpoints.contains(&addr) {
                    return Err(format!(
                        "endpoint {addr} is listed twice (in endpoints or in two subsets)"
                    ));
                }
                labels.insert(addr.clone(), s.labels.clone());
                endpoints.push(addr);
            }
        }
        let mut port_targets = BTreeMap::new();
        for (name, target) in f.port_targets {
            let Some(p) = f.ports.iter().skip(1).find(|p| p.name == name) else {
                return Err(format!(
                    "port_targets.{name}: not a port of the service after its first (whose endpoints name their own port)"
                ));
            };
            if target == 0 {
                return Err(format!("port_targets.{name}: a port 1-65535"));
            }
            port_targets.insert(p.port, target);
        }
        warden_federation::audience::ExportAudience {
            export_to: f.export_to.clone(),
        }
        .validate("export_to")
        .map_err(|e| e.to_string())?;
        Ok(StaticService {
            namespace: f.namespace,
            name: f.name,
            ports: f.ports,
            endpoints,
            labels,
            weight: f.weight,
            export: f.export,
            probe: f.probe,
            port_targets,
            export_to: f.export_to,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthSection {
    pub interval_ms: u64,
    pub timeout_ms: u64,
    /// Consecutive successes before an unhealthy endpoint counts as healthy again (hysteresis).
    pub healthy_threshold: u32,
    /// Consecutive failures before a healthy endpoint counts as unhealthy.
    pub unhealthy_threshold: u32,
}

impl Default for HealthSection {
    fn default() -> Self {
        Self {
            interval_ms: 1000,
            timeout_ms: 500,
            healthy_threshold: 3,
            unhealthy_threshold: 2,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutlierSection {
    /// Consecutive 5xx or connect failures that eject an endpoint.
    pub consecutive_failures: u32,
    /// First ejection time; doubles with each repeated ejection.
    pub base_ejection_ms: u64,
    /// Never eject more than this share of a service's local endpoints.
    pub max_ejection_percent: u32,
}

impl Default for OutlierSection {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            base_ejection_ms: 10_000,
            max_ejection_percent: 50,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingSection {
    /// Envoy's overprovisioning factor (percent): a priority with this share of healthy
    /// endpoints × factor >= 100 % keeps all its traffic.
    pub overprovisioning_percent: u32,
    /// After local endpoints recover, their share of traffic ramps up over this window.
    pub failback_ramp_ms: u64,
}

impl Default for RoutingSection {
    fn default() -> Self {
        Self {
            overprovisioning_percent: 140,
            failback_ramp_ms: 5_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutSection {
    pub connect_ms: u64,
    pub per_try_ms: u64,
    pub overall_ms: u64,
    /// On SIGTERM/SIGINT: how long requests in flight may take to finish after the gateway
    /// stops accepting connections, before it closes them.
    pub drain_ms: u64,
}

impl Default for TimeoutSection {
    fn default() -> Self {
        Self {
            connect_ms: 1_000,
            per_try_ms: 15_000,
            overall_ms: 30_000,
            drain_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySection {
    /// Attempts per request beyond the first (idempotent requests; connect failures always).
    pub max_retries: u32,
    /// Retries may add at most this percent on top of the request rate (a retry budget).
    pub budget_percent: u32,
    /// Retries always allowed per second regardless of the budget.
    pub min_retries_per_second: u32,
}

impl Default for RetrySection {
    fn default() -> Self {
        Self {
            max_retries: 2,
            budget_percent: 20,
            min_retries_per_second: 10,
        }
    }
}

/// `section.key` for every key of every table at the top of `table`.
pub fn explicit_keys(table: &toml::Table) -> std::collections::BTreeSet<String> {
    table
        .iter()
        .filter_map(|(section, v)| v.as_table().map(|t| (section, t)))
        .flat_map(|(section, t)| t.keys().map(move |k| format!("{section}.{k}")))
        .collect()
}

use warden_federation::wire::default_network;
fn yes() -> bool {
    true
}
fn default_lease_ttl() -> u64 {
    5_000
}
fn default_publish_interval() -> u64 {
    1_000
}
fn default_weight() -> u32 {
    100
}
fn default_probe() -> String {
    "tcp".into()
}
fn default_ports() -> Vec<warden_federation::model::ServicePort> {
    vec![warden_federation::model::ServicePort {
        name: "http".into(),
        port: 80,
        protocol: warden_federation::model::Protocol::Http,
    }]
}

pub use warden_federation::config::ConfigError;

impl GatewayConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut cfg: GatewayConfig = warden_federation::config::read_toml(path)?;
        let table: toml::Table = warden_federation::config::read_toml(path)?;
        cfg.explicit = explicit_keys(&table);
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        use warden_federation::model::{validate_dns_label, validate_host_port};
        let bad = |e: warden_federation::model::FieldError| ConfigError::Invalid(e.to_string());
        validate_dns_label("cluster.name", &self.cluster.name).map_err(bad)?;
        if self.federation.endpoints.is_empty() {
            return Err(ConfigError::Invalid("federation.endpoints is empty".into()));
        }
        for (i, s) in self.services.iter().enumerate() {
            validate_dns_label(&format!("services[{i}].namespace"), &s.namespace).map_err(bad)?;
            validate_dns_label(&format!("services[{i}].name"), &s.name).map_err(bad)?;
            for e in &s.endpoints {
                validate_host_port(&format!("services[{i}].endpoints"), e).map_err(bad)?;
            }
            if s.probe != "tcp" && !s.probe.starts_with('/') {
                return Err(ConfigError::Invalid(format!(
                    "services[{i}].probe must be \"tcp\" or an HTTP path starting with '/'"
                )));
            }
        }
        let k = &self.discovery.kubernetes;
        if self.discovery.source == DiscoverySource::Kubernetes && !self.services.is_empty() {
            return Err(ConfigError::Invalid(
                "discovery.source = \"kubernetes\" takes services from the cluster: remove the [[services]] tables".into(),
            ));
        }
        if k.probe != "tcp" && !k.probe.starts_with('/') {
            return Err(ConfigError::Invalid(
                "discovery.kubernetes.probe must be \"tcp\" or an HTTP path starting with '/'"
                    .into(),
            ));
        }
        for (i, ns) in k.namespaces.iter().enumerate() {
            validate_dns_label(&format!("discovery.kubernetes.namespaces[{i}]"), ns)
                .map_err(bad)?;
        }
        if k.imports {
            // An import listener on one of the gateway's own ports would never bind, and the
            // derived Services would send raw TCP to an HTTP listener.
            let own = [
                ("listeners.outbound", &self.listeners.outbound),
                ("listeners.eastwest", &self.listeners.eastwest),
                ("listeners.admin", &self.listeners.admin),
            ];
            let tcp = self
                .listeners
                .tcp
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("listeners.tcp[{i}].listen"), &r.listen));
            let all = own.iter().map(|(n, a)| (n.to_string(), *a)).chain(tcp);
            for (name, addr) in all {
                let port = addr
                    .rsplit_once(':')
                    .and_then(|(_, p)| p.parse::<u16>().ok());
                if let Some(p) = port.filter(|p| k.import_tcp_ports.contains(*p)) {
                    return Err(ConfigError::Invalid(format!(
                        "discovery.kubernetes.import_tcp_ports ({}) holds {name}'s port {p}: choose a range clear of the gateway's listeners",
                        k.import_tcp_ports
                    )));
                }
            }
        }
        if self.health.healthy_threshold == 0 || self.health.unhealthy_threshold == 0 {
            return Err(ConfigError::Invalid(
                "health thresholds must be >= 1".into(),
            ));
        }
        for (i, r) in self.listeners.tcp.iter().enumerate() {
            warden_federation::model::validate_service_ref(
                &format!("listeners.tcp[{i}].service"),
                &r.service,
            )
            .map_err(bad)?;
            // A route to a port the local service does not have would never reach its
            // endpoints: say so now rather than drop every connection.
            let local = self
                .services
                .iter()
                .find(|s| format!("{}/{}", s.namespace, s.name) == r.service);
            if let Some(s) = local
                && s.target_of(r.port).is_none()
            {
                let ports: Vec<String> = s.ports.iter().map(|p| p.port.to_string()).collect();
                return Err(ConfigError::Invalid(format!(
                    "listeners.tcp[{i}].port is {}, but {} has ports {} only (set the service's ports, or route one of them)",
                    r.port,
                    r.service,
                    ports.join(", ")
                )));
            }
        }
        if self.tls.is_none() && self.listeners.outbound_tls != OutboundTls::Off {
            return Err(ConfigError::Invalid(
                "listeners.outbound_tls needs the [tls] table: the outbound listener presents this gateway's certificate".into(),
            ));
        }
        if self.tls.is_none()
            && !self.listeners.insecure_plaintext
            && !warden_federation::config::is_loopback(&self.listeners.eastwest)
        {
            return Err(ConfigError::Invalid(format!(
                "listeners.eastwest {} is not a loopback address and there is no [tls] table: other clusters' requests would be plaintext and unauthenticated; add [tls], or set listeners.insecure_plaintext = true on a network nobody else reaches",
                self.listeners.eastwest
            )));
        }
        let l = &self.limits;
        if l.header_read_timeout_ms == 0
            || l.body_read_timeout_ms == 0
            || l.max_connections == 0
            || l.max_tunnels == 0
            || l.tunnel_idle_ms == 0
            || l.max_concurrent_streams == 0
            || l.h2_keepalive_ms == 0
        {
            return Err(ConfigError::Invalid(
                "limits: timeouts and caps must be > 0".into(),
            ));
        }
        if l.max_header_bytes < 8192 {
            return Err(ConfigError::Invalid(
                "limits.max_header_bytes must be >= 8192".into(),
            ));
        }
        if self.federation.lease_ttl_ms < 300 {
            return Err(ConfigError::Invalid(
                "federation.lease_ttl_ms must be >= 300".into(),
            ));
        }
        self.telemetry.validate().map_err(ConfigError::Invalid)
    }

    /// The admin token for writes: environment first, then the file.
    pub fn admin_token(&self) -> Option<String> {
        std::env::var("WARDEN_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .or_else(|| self.federation.admin_token.clone())
    }

    /// The credential this gateway writes with: its cluster's own if it has one, else the
    /// admin token, else none (reads from loopback only).
    pub fn credential(&self) -> Option<Credential> {
        std::env::var("WARDEN_CLUSTER_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .or_else(|| self.federation.cluster_token.clone())
            .map(Credential::Cluster)
            .or_else(|| self.admin_token().map(Credential::Admin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> Result<GatewayConfig, ConfigError> {
        let cfg: GatewayConfig = toml::from_str(&format!(
            "[cluster]\nname = \"east\"\nregion = \"r\"\nzone = \"z\"\ntrust_domain = \"east.test\"\n\
             [federation]\nendpoints = [\"http://127.0.0.1:9\"]\n\
             [listeners]\noutbound = \"127.0.0.1:0\"\neastwest = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n{extra}"
        ))
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// A telemetry table out of its bounds is refused at start, naming the key.
    #[test]
    fn telemetry_bounds_are_named() {
        let otlp = |rest: &str| format!("[telemetry]\n[telemetry.otlp]\n{rest}");
        let cases = [
            (
                otlp("endpoint = \"localhost:4318\""),
                "telemetry.otlp.endpoint",
            ),
            (
                otlp("endpoint = \"https://c:4318\""),
                "telemetry.otlp.endpoint",
            ),
            (
                otlp("endpoint = \"http://c:4318\"\nqueue = 0"),
                "telemetry.otlp.queue",
            ),
            (
                otlp("endpoint = \"http://c:4318\"\nqueue = 8\nmax_batch = 9"),
                "telemetry.otlp.max_batch",
            ),
            (
                otlp("endpoint = \"http://c:4318\"\nflush_ms = 0"),
                "telemetry.otlp.flush_ms",
            ),
            (
                otlp("endpoint = \"http://c:4318\"\ntimeout_ms = 0"),
                "telemetry.otlp.timeout_ms",
            ),
            (
                "[telemetry]\nrecent_requests = 100001".to_string(),
                "telemetry.recent_requests",
            ),
        ];
        for (toml, key) in cases {
            let e = parse(&toml).unwrap_err().to_string();
            assert!(e.contains(key), "{toml}: {e}");
        }
        let ok = parse(&otlp("endpoint = \"http://collector:4318\"")).unwrap();
        assert_eq!(ok.telemetry.otlp.unwrap().queue, 4096);
    }

    /// Labelled endpoints join the service's endpoints (every address check sees them) with
    /// their labels beside; an address listed twice and a subset without labels are refused.
    #[test]
    fn subsets_are_endpoints_with_labels() {
        let svc = |subsets: &str| {
            format!(
                "[[services]]\nnamespace = \"shop\"\nname = \"cart\"\nendpoints = [\"10.0.0.1:80\"]\n{subsets}"
            )
        };
        let cfg = parse(&svc(
            "[[services.subsets]]\nlabels = { version = \"v2\" }\nendpoints = [\"10.0.0.2:80\", \"10.0.0.3:80\"]\n",
        ))
        .unwrap();
        let s = &cfg.services[0];
        assert_eq!(s.endpoints, ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
        assert_eq!(s.labels.len(), 2);
        assert_eq!(s.labels["10.0.0.3:80"]["version"], "v2");
        let twice = parse(&svc(
            "[[services.subsets]]\nlabels = { version = \"v2\" }\nendpoints = [\"10.0.0.1:80\"]\n",
        ))
        .unwrap_err()
        .to_string();
        assert!(twice.contains("listed twice"), "{twice}");
        let bare = parse(&svc(
            "[[services.subsets]]\nlabels = {}\nendpoints = [\"10.0.0.2:80\"]\n",
        ))
        .unwrap_err()
        .to_string();
        assert!(bare.contains("at least one label"), "{bare}");
    }

    /// A TCP route to a port the service's endpoints do not serve is refused at start, naming
    /// the port they do serve; the default authorization is typed.
    #[test]
    fn port_targets_name_a_later_port_and_export_to_names_clusters() {
        let svc = |extra: &str| {
            format!(
                "[[services]]\nnamespace = \"shop\"\nname = \"multi\"\nendpoints = [\"10.0.0.1:8080\"]\n\
                 ports = [{{ name = \"http\", port = 80, protocol = \"http\" }}, {{ name = \"admin\", port = 9000, protocol = \"http\" }}]\n{extra}"
            )
        };
        let cfg = parse(&svc("port_targets = { admin = 9001 }\n")).unwrap();
        let s = &cfg.services[0];
        assert_eq!(
            s.target_of(9000).map(|t| (t.own, t.port)),
            Some((false, 9001))
        );
        assert_eq!(s.target_of(80).map(|t| t.own), Some(true));
        assert_eq!(s.target_of(81), None);
        for (bad, says) in [
            ("port_targets = { http = 9001 }\n", "port_targets.http"),
            ("port_targets = { nope = 9001 }\n", "port_targets.nope"),
            ("port_targets = { admin = 0 }\n", "port_targets.admin"),
            ("export_to = [\"Not A Label\"]\n", "export_to[0]"),
        ] {
            let err = parse(&svc(bad)).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn outbound_tls_needs_the_gateways_certificate() {
        let err = parse("outbound_tls = \"optional\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs the [tls] table"), "{err}");
        assert!(parse("outbound_tls = \"sometimes\"\n").is_err());
        assert_eq!(parse("").unwrap().listeners.outbound_tls, OutboundTls::Off);
    }

    #[test]
    fn tcp_routes_name_the_port_the_endpoints_serve() {
        let svc = "[[services]]\nnamespace = \"shop\"\nname = \"db\"\nports = [{ name = \"pg\", port = 5432, protocol = \"tcp\" }]\nendpoints = [\"127.0.0.1:5432\"]\n";
        let route = |port: u16| {
            format!(
                "[[listeners.tcp]]\nlisten = \"127.0.0.1:0\"\nservice = \"shop/db\"\nport = {port}\n"
            )
        };
        assert!(parse(&format!("{}{svc}", route(5432))).is_ok());
        let err = parse(&format!("{}{svc}", route(80)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("has ports 5432 only"), "{err}");
        // A route to a service only other clusters have is not checked here.
        assert!(parse(&route(80)).is_ok());
        assert_eq!(parse("").unwrap().authz.default, AuthzDefault::Allow);
        assert!(parse("[authz]\ndefault = \"maybe\"").is_err());
    }

    #[test]
    fn import_tcp_ports_is_a_port_range() {
        let k = |v: &str| {
            parse(&format!(
                "[discovery.kubernetes]\nimport_tcp_ports = {v:?}\n"
            ))
        };
        let r = k("15000-15009")
            .unwrap()
            .discovery
            .kubernetes
            .import_tcp_ports;
        assert_eq!((r.first, r.last), (15000, 15009));
        assert!(r.contains(15009) && !r.contains(15010));
        let one = k("16000").unwrap().discovery.kubernetes.import_tcp_ports;
        assert_eq!((one.first, one.last), (16000, 16000));
        for bad in ["15010-15000", "0-10", "x", "1-70000"] {
            let e = k(bad).unwrap_err().to_string();
            assert!(e.contains("port range"), "{bad}: {e}");
        }
        let d = parse("").unwrap().discovery.kubernetes.import_tcp_ports;
        assert_eq!(d.to_string(), "15100-15199");
        // With imports on, the range must leave the gateway's own listeners alone.
        let clash = "[[listeners.tcp]]\nlisten = \"127.0.0.1:15150\"\nservice = \"shop/db\"\nport = 5432\n[discovery.kubernetes]\nimports = true\n";
        let e = parse(clash).unwrap_err().to_string();
        assert!(e.contains("listeners.tcp[0].listen's port 15150"), "{e}");
        assert!(parse(&clash.replace("imports = true", "imports = false")).is_ok());
    }
}
