//! The REST API's request and response bodies and the watch stream's lines: one set of types
//! that the server's handlers serialize and the typed [`crate::client`] deserializes, so the
//! two cannot drift apart (and the OpenAPI document describes exactly these).
//!
//! Plain serde data with OpenAPI schemas; no HTTP types and no state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::authn::{JwtPolicy, JwtProvider};
use crate::authz::{AuthorizationPolicy, AuthzRule};
use crate::mesh_config::MeshConfig;
use crate::model::{
    AuthzAction, AuthzSources, Cluster, Lease, SecurityPolicy, ServiceExport, ServicePort,
    SubsetHealth, TrafficPolicy, TrustBundle,
};
use crate::resilience::{
    CircuitBreaker, FaultInjection, Mirror, OutlierDetection, RateLimit, ResiliencePolicy,
};
use crate::route::{Route, RouteRule};

/// The network a cluster is on when a registration names none.
pub fn default_network() -> String {
    "default".into()
}

fn default_weight() -> u32 {
    100
}

fn default_ttl() -> u64 {
    3600
}

fn yes() -> bool {
    true
}

// ---- requests ----

/// The body of `POST /api/v1/clusters`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterCluster {
    pub name: String,
    pub region: String,
    pub zone: String,
    #[serde(default = "default_network")]
    pub network: String,
    /// `host:port` of the cluster's east-west gateway, as other clusters reach it.
    pub gateway: String,
    pub trust_domain: String,
    #[serde(default)]
    pub ca_bundle_pem: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// The body of `POST /api/v1/join`: a registration authenticated by a join token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    pub token: String,
    pub name: String,
    pub region: String,
    pub zone: String,
    #[serde(default = "default_network")]
    pub network: String,
    pub gateway: String,
    pub trust_domain: String,
    pub ca_bundle_pem: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl JoinRequest {
    /// A join with `token` for the cluster `r` describes, with its CA bundle.
    pub fn new(token: String, r: RegisterCluster, ca_bundle_pem: String) -> Self {
        Self {
            token,
            name: r.name,
            region: r.region,
            zone: r.zone,
            network: r.network,
            gateway: r.gateway,
            trust_domain: r.trust_domain,
            ca_bundle_pem,
            labels: r.labels,
        }
    }
}

/// The body of `POST /api/v1/join-tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// Lifetime in seconds (default 3600, at most 7 days).
    #[serde(default = "default_ttl")]
    pub ttl_s: u64,
}

/// The body of `PUT /api/v1/clusters/{c}/services/{ns}/{svc}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportBody {
    pub ports: Vec<ServicePort>,
    #[serde(default)]
    pub healthy_endpoints: u32,
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Healthy endpoints per label set, so that other clusters send a route's subset only
    /// where it can serve (at most 32 sets of at most 16 labels).
    #[serde(default)]
    pub subsets: Vec<SubsetHealth>,
    /// Only these clusters may import this copy (at most 64; empty: every cluster). Left out
    /// when empty, so that a node from before the field takes the body.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub export_to: Vec<String>,
}

/// The body of a lease renewal, `PUT /api/v1/clusters/{name}/lease`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaseBody {
    pub ttl_ms: u64,
    /// Bundle versions loaded by the renewing gateway.
    #[serde(default)]
    pub trust_versions: BTreeMap<String, u64>,
    /// The east-west address the renewing gateway advertises, so a registration that points
    /// elsewhere can be reported (kept by the receiving node in memory, not in the store).
    #[serde(default)]
    pub gateway: Option<String>,
    /// The renewing gateway's demand on mesh-wide rate limits (replaces its last report; a
    /// renewal without it clears the report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<crate::load::LoadReport>,
    /// The renewing gateway's golden signals (every 10 s; kept by the receiving node in
    /// memory, never in the store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signals: Option<crate::signals::SignalsReport>,
    /// Requests the renewing gateway recorded since its last report (sampled ones and every
    /// 5xx; kept by the receiving node in memory, never in the store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent: Option<crate::recent::RecentReport>,
    /// Where the renewing gateway places each service's traffic now (when it changed, and at
    /// least every 30 s; replaces its last report; kept by the receiving node in memory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placements: Option<crate::placement::PlacementReport>,
}

/// The body of `PUT /api/v1/clusters/{name}/gateway`: where other clusters reach it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayBody {
    pub gateway: String,
}

/// The body of `PUT /api/v1/trust/bundles/{trust_domain}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BundleBody {
    pub ca_bundle_pem: String,
}

/// The body of `POST /api/v1/federation/members`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    pub id: u64,
    pub raft_addr: String,
    pub api_addr: String,
    /// Promote to voter once caught up (default); `false` keeps it a learner (read replica).
    #[serde(default = "yes")]
    pub voter: bool,
}

/// The body of a traffic policy (the id comes from the path for PUT).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    #[serde(default)]
    pub id: Option<String>,
    pub service: String,
    #[serde(default)]
    pub failover_order: Vec<String>,
    #[serde(default)]
    pub weights: BTreeMap<String, u32>,
    #[serde(default)]
    pub overprovisioning_percent: Option<u32>,
    #[serde(default)]
    pub max_egress_percent: Option<u32>,
}

/// The body of an authorization policy (the id comes from the path for PUT).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityBody {
    #[serde(default)]
    pub id: Option<String>,
    pub service: String,
    pub action: AuthzAction,
    pub sources: AuthzSources,
}

/// The body of a route (the id comes from the path for PUT).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteBody {
    #[serde(default)]
    pub id: Option<String>,
    pub service: String,
    pub rules: Vec<RouteRule>,
}

/// The body of a resilience policy (the id comes from the path for PUT).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResilienceBody {
    #[serde(default)]
    pub id: Option<String>,
    pub service: String,
    #[serde(default)]
    pub rule: Option<String>,
    #[serde(default)]
    pub circuit_breaker: Option<CircuitBreaker>,
    #[serde(default)]
    pub outlier_detection: Option<OutlierDetection>,
    #[serde(default)]
    pub rate_limits: Vec<RateLimit>,
    #[serde(default)]
    pub fault: Option<FaultInjection>,
    #[serde(default)]
    pub mirror: Option<Mirror>,
}

/// The body of a JWT policy (the id comes from the path for PUT).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JwtBody {
    #[serde(default)]
    pub id: Option<String>,
    pub service: String,
    #[serde(default)]
    pub rule: Option<String>,
    pub providers: Vec<JwtProvider>,
    #[serde(default = "default_true")]
    pub require: bool,
}

/// The body of an L7 authorization policy (the id comes from the path for PUT).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationBody {
    #[serde(default)]
    pub id: Option<String>,
    pub service: String,
    pub action: AuthzAction,
    pub rules: Vec<AuthzRule>,
}

fn default_true() -> bool {
    true
}

// ---- responses ----

/// What a write with `?dry_run=true` would do; nothing is written.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DryRun<T> {
    pub change: DryRunChange,
    /// The object as it is now, if there is one.
    pub current: Option<T>,
    /// The object the write would store.
    pub proposed: T,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DryRunChange {
    Create,
    Replace,
    Unchanged,
}

/// A list read at one revision.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Listing<T> {
    pub revision: u64,
    pub items: Vec<T>,
}

/// One service of the global catalog and the clusters that export it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CatalogService {
    pub namespace: String,
    pub service: String,
    pub clusters: Vec<CatalogEntry>,
}

/// One cluster's copy of a service in the global catalog.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CatalogEntry {
    pub cluster: String,
    pub ports: Vec<ServicePort>,
    pub healthy_endpoints: u32,
    pub weight: u32,
    pub updated_at: u64,
    /// Healthy endpoints per label set, when the exporting gateway published them.
    #[serde(default)]
    pub subsets: Vec<SubsetHealth>,
    /// The clusters this copy is for (empty: every cluster).
    #[serde(default)]
    pub export_to: Vec<String>,
}

/// Everything a gateway routes by, at one revision: it lists this, then watches from
/// `revision`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RoutingCatalog {
    pub revision: u64,
    /// The serving node's wall clock (ms since the epoch).
    pub now: u64,
    pub clusters: Vec<Cluster>,
    pub exports: Vec<ServiceExport>,
    pub leases: Vec<Lease>,
    pub policies: Vec<TrafficPolicy>,
    pub bundles: Vec<TrustBundle>,
    pub security_policies: Vec<SecurityPolicy>,
    /// L7 routes (absent from an older server).
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Resilience policies (absent from an older server).
    #[serde(default)]
    pub resilience: Vec<ResiliencePolicy>,
    /// JWT policies (absent from an older server).
    #[serde(default)]
    pub jwt: Vec<JwtPolicy>,
    /// L7 authorization policies (absent from an older server).
    #[serde(default)]
    pub authorization: Vec<AuthorizationPolicy>,
    /// Healthy endpoints per label set of the exports that published them (absent from an
    /// older server).
    #[serde(default)]
    pub export_subsets: Vec<ExportSubsets>,
    /// The exports that are for named clusters only (absent from an older server).
    #[serde(default)]
    pub export_audience: Vec<ExportTo>,
    /// The mesh-wide gateway configuration (absent from an older server).
    #[serde(default)]
    pub mesh_config: MeshConfig,
    /// Per-cluster overrides by cluster name (absent from an older server).
    #[serde(default)]
    pub cluster_configs: std::collections::BTreeMap<String, MeshConfig>,
}

/// `POST /api/v1/mesh/validate`: objects to check together, as they would be written (each
/// policy and route with its `id`). Nothing in it is written.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateBundle {
    #[serde(default)]
    pub mesh_config: Option<MeshConfig>,
    /// Per-cluster overrides by cluster name.
    #[serde(default)]
    pub cluster_configs: std::collections::BTreeMap<String, MeshConfig>,
    #[serde(default)]
    pub traffic_policies: Vec<PolicyBody>,
    #[serde(default)]
    pub security_policies: Vec<SecurityBody>,
    #[serde(default)]
    pub routes: Vec<RouteBody>,
    #[serde(default)]
    pub resilience_policies: Vec<ResilienceBody>,
    #[serde(default)]
    pub jwt_policies: Vec<JwtBody>,
    #[serde(default)]
    pub authorization_policies: Vec<AuthorizationBody>,
}

/// What validation found: `valid` when there is no error (warnings do not count).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ValidationReport {
    pub valid: bool,
    /// What a write would refuse (400 or 409), by field path into the bundle.
    pub errors: Vec<crate::lint::Finding>,
    /// Valid, but probably not meant, given the mesh as the store holds it now.
    pub warnings: Vec<crate::lint::Finding>,
}

/// `GET /api/v1/mesh/config`, `GET /api/v1/clusters/{name}/config`: the document and the
/// store revision it was read at.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConfigDocument {
    pub revision: u64,
    pub config: MeshConfig,
}

/// One export's audience.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExportTo {
    pub cluster: String,
    pub namespace: String,
    pub service: String,
    pub export_to: Vec<String>,
}

/// One export's healthy endpoints per label set.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExportSubsets {
    pub cluster: String,
    pub namespace: String,
    pub service: String,
    pub subsets: Vec<SubsetHealth>,
}

/// A cluster's health as one federation node observes it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClusterStatus {
    pub name: String,
    pub gateway: String,
    /// This node opened a TCP connection to the registered gateway address.
    pub gateway_reachable: bool,
    pub gateway_probe: GatewayProbe,
    pub exported_services: Vec<ExportedService>,
    /// The freshest sign of life: the last lease renewal, else the last export update.
    pub last_seen: Option<u64>,
    pub lease: Option<LeaseState>,
    pub registered_at: u64,
}

/// How the serving node probed a gateway.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GatewayProbe {
    pub from_node: u64,
    pub detail: String,
    pub millis: u64,
}

/// A service a cluster exports, as its status shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExportedService {
    pub namespace: String,
    pub service: String,
    pub healthy_endpoints: u32,
    pub updated_at: u64,
}

/// A cluster's lease in its status.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LeaseState {
    pub renewed_at: u64,
    pub ttl_ms: u64,
    pub expired: bool,
}

/// `GET /api/v1/leases`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LeaseList {
    pub revision: u64,
    /// The serving node's clock, which judged `expired_by_this_node_clock`.
    pub now: u64,
    pub items: Vec<LeaseView>,
}

/// One cluster's lease.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LeaseView {
    pub cluster: String,
    pub renewed_at: u64,
    pub ttl_ms: u64,
    pub expired_by_this_node_clock: bool,
    /// The east-west address the cluster's gateway advertised when it last renewed through
    /// this node (soft state: a gateway renewing through another node is seen there).
    #[serde(default)]
    pub gateway: Option<String>,
    /// When this node heard `gateway` (ms since the epoch).
    #[serde(default)]
    pub gateway_seen_at: Option<u64>,
    /// The cluster has its own API credential (from its registration, join, or reissue).
    #[serde(default)]
    pub has_credential: bool,
    /// The credential the last renewal through this node came with: `admin` or `cluster`
    /// (soft state, like `gateway`).
    #[serde(default)]
    pub renewed_with: Option<String>,
    /// When this node saw that renewal (ms since the epoch).
    #[serde(default)]
    pub renewed_with_at: Option<u64>,
}

/// Per trust bundle: which clusters' gateways have loaded its current version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BundleStatus {
    pub trust_domain: String,
    pub version: u64,
    /// Every other cluster that uses mTLS and has a live lease loaded this version: the next
    /// rotation step may proceed.
    pub complete: bool,
    pub clusters: Vec<BundleLoad>,
}

/// One cluster's view of one bundle.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BundleLoad {
    pub cluster: String,
    pub loaded_version: Option<u64>,
    pub current: bool,
    pub lease_live: bool,
    /// The cluster's gateway reports bundles at all (it runs with mTLS).
    pub mtls: bool,
    /// The cluster owns this trust domain: its gateway takes its own bundle from its files,
    /// never from the store, so it does not hold a rotation up.
    #[serde(default)]
    pub owner: bool,
}

/// A registered cluster and its own API credential, shown once: give it to the cluster's
/// gateway (`WARDEN_CLUSTER_TOKEN`), which then needs no admin token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClusterRegistered {
    #[serde(flatten)]
    pub cluster: Cluster,
    /// `<cluster>.<secret>`
    pub credential: String,
}

/// A cluster's new API credential, shown once; the one before it no longer works.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CredentialIssued {
    pub cluster: String,
    /// `<cluster>.<secret>`
    pub credential: String,
    pub issued_at: u64,
}

/// A new join token: shown once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JoinTokenIssued {
    /// `<id>.<secret>.<ca-pin>`
    pub token: String,
    pub id: String,
    pub expires_at: u64,
}

/// A member's role in the Raft group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Voter,
    Learner,
}

/// One member of the federation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Member {
    pub id: u64,
    pub raft_addr: String,
    pub api_addr: String,
    pub role: Role,
    /// On the leader's answer: the last log index this member holds (its lag is the
    /// leader's `last_log_index` minus this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_index: Option<u64>,
}

/// `GET /api/v1/mesh/status`: one node's Raft view.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MeshStatus {
    pub node_id: u64,
    /// `Leader`, `Follower`, `Candidate`, `Learner`, ...
    pub state: String,
    pub leader: Option<u64>,
    pub leader_api: Option<String>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub last_applied: Option<u64>,
    pub snapshot: Option<u64>,
    pub members: Vec<Member>,
    pub revision: u64,
    /// This node's wall clock (ms since the epoch), for clock-skew checks.
    pub now_ms: u64,
    /// The node serves its API and Raft port over TLS (a `[tls]` table).
    #[serde(default)]
    pub tls: bool,
}

/// The answer to adding a member.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MemberAdded {
    pub id: u64,
    pub role: Role,
}

/// `GET /readyz` when ready.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Ready {
    pub ready: bool,
    pub leader: u64,
}

/// The body of every error answer: `{"error":{"code","message","field"}}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable: `invalid_field`, `not_found`, `already_exists`, `no_quorum`, ...
    pub code: String,
    pub message: String,
    /// The request field at fault (400s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

// ---- the watch stream ----

/// One line of `GET /api/v1/watch`: `{"revision":R,"at":T,"type":"cluster.put","cluster":{..}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchLine {
    /// The revision of this change; for heartbeats and errors, the store's current revision.
    pub revision: u64,
    /// When the change was proposed (ms since the epoch); absent on heartbeats and errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<u64>,
    #[serde(flatten)]
    pub event: WatchEvent,
}

/// What a watch line says, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum WatchEvent {
    /// The stream is live (first line, then every 10 s of quiet).
    #[serde(rename = "heartbeat")]
    Heartbeat,
    /// The stream ends: `revision_compacted` means list again and watch from the listing.
    #[serde(rename = "error")]
    Error { code: String, message: String },
    #[serde(rename = "cluster.put")]
    ClusterPut { cluster: Cluster },
    #[serde(rename = "cluster.deleted")]
    ClusterDeleted { name: String },
    #[serde(rename = "service.put")]
    ServicePut {
        service: ServiceExport,
        /// Healthy endpoints per label set (absent from an older server or gateway).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subsets: Option<Vec<SubsetHealth>>,
        /// The clusters this copy is for, when it names them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        export_to: Option<Vec<String>>,
    },
    #[serde(rename = "service.deleted")]
    ServiceDeleted {
        cluster: String,
        namespace: String,
        service: String,
    },
    #[serde(rename = "trust_bundle.put")]
    TrustBundlePut { bundle: TrustBundle },
    #[serde(rename = "trust_bundle.deleted")]
    TrustBundleDeleted { trust_domain: String },
    #[serde(rename = "lease.renewed")]
    LeaseRenewed {
        lease: Lease,
        /// The renewing gateway's demand on mesh-wide rate limits, when it reported one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        load: Option<crate::load::LoadReport>,
    },
    /// The cluster's gateway withdrew its lease (it is draining): stop sending to it now.
    #[serde(rename = "lease.withdrawn")]
    LeaseWithdrawn { cluster: String },
    #[serde(rename = "policy.put")]
    PolicyPut { policy: TrafficPolicy },
    #[serde(rename = "policy.deleted")]
    PolicyDeleted { id: String },
    #[serde(rename = "security_policy.put")]
    SecurityPolicyPut { policy: SecurityPolicy },
    #[serde(rename = "security_policy.deleted")]
    SecurityPolicyDeleted { id: String },
    #[serde(rename = "route.put")]
    RoutePut { route: Route },
    #[serde(rename = "route.deleted")]
    RouteDeleted { id: String },
    #[serde(rename = "resilience_policy.put")]
    ResiliencePolicyPut { policy: Box<ResiliencePolicy> },
    #[serde(rename = "resilience_policy.deleted")]
    ResiliencePolicyDeleted { id: String },
    #[serde(rename = "jwt_policy.put")]
    JwtPolicyPut { policy: Box<JwtPolicy> },
    #[serde(rename = "jwt_policy.deleted")]
    JwtPolicyDeleted { id: String },
    #[serde(rename = "authorization_policy.put")]
    AuthorizationPolicyPut { policy: Box<AuthorizationPolicy> },
    #[serde(rename = "authorization_policy.deleted")]
    AuthorizationPolicyDeleted { id: String },
    /// The mesh-wide gateway configuration, whole.
    #[serde(rename = "mesh_config.put")]
    MeshConfigPut { config: Box<MeshConfig> },
    /// One cluster's overrides, whole (empty: removed).
    #[serde(rename = "cluster_config.put")]
    ClusterConfigPut {
        cluster: String,
        config: Box<MeshConfig>,
    },
    /// A Raft member was added or removed (the group itself: see `/api/v1/mesh/status`).
    #[serde(rename = "member.changed")]
    MemberChanged {
        change: crate::member_change::MemberChange,
    },
    /// A kind this build does not know (a newer server): not routing state for it.
    #[serde(other)]
    Unknown,
}

/// The `code` of the error line (and of the 410 answer) for a watch that fell behind.
pub const REVISION_COMPACTED: &str = "revision_compacted";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_lines_keep_their_wire_form() {
        let line = WatchLine {
            revision: 9,
            at: Some(5),
            event: WatchEvent::ServiceDeleted {
                cluster: "b".into(),
                namespace: "shop".into(),
                service: "cart".into(),
            },
        };
        let text = serde_json::to_string(&line).unwrap();
        assert_eq!(
            text,
            r#"{"revision":9,"at":5,"type":"service.deleted","cluster":"b","namespace":"shop","service":"cart"}"#
        );
        assert_eq!(serde_json::from_str::<WatchLine>(&text).unwrap(), line);
        let hb: WatchLine = serde_json::from_str(r#"{"type":"heartbeat","revision":7}"#).unwrap();
        assert_eq!(hb.event, WatchEvent::Heartbeat);
        assert_eq!(
            serde_json::to_string(&hb).unwrap(),
            r#"{"revision":7,"type":"heartbeat"}"#
        );
        let later: WatchLine =
            serde_json::from_str(r#"{"type":"mesh.route.put","revision":8,"route":{"x":1}}"#)
                .unwrap();
        assert_eq!(later.event, WatchEvent::Unknown);
        assert!(
            serde_json::from_str::<WatchLine>(r#"{"type":"cluster.put","revision":1}"#).is_err()
        );
    }
}
