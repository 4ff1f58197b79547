//! The REST API's paths, built in one place for every client: the typed [`crate::client`],
//! and tests that speak raw HTTP to probe what the API refuses. The server's routes (in
//! `api/`) are declared with the same paths; `federation/tests/openapi.rs` checks that every path
//! here is one the served OpenAPI document lists.

/// What every API path starts with.
pub const PREFIX: &str = "/api/v1";
/// `/api/v1/clusters`: register (POST), list (GET).
pub const CLUSTERS: &str = "/api/v1/clusters";
/// `/api/v1/services`: the global catalog.
pub const SERVICES: &str = "/api/v1/services";
/// `/api/v1/catalog`: everything a gateway routes by, at one revision.
pub const CATALOG: &str = "/api/v1/catalog";
/// `/api/v1/leases`: every cluster's lease.
pub const LEASES: &str = "/api/v1/leases";
/// `/api/v1/trust/bundles`: the federated trust bundles.
pub const BUNDLES: &str = "/api/v1/trust/bundles";
/// `/api/v1/trust/status`: which clusters loaded each bundle's current version.
pub const TRUST_STATUS: &str = "/api/v1/trust/status";
/// `/api/v1/traffic/policies`.
pub const TRAFFIC_POLICIES: &str = "/api/v1/traffic/policies";
/// `/api/v1/security/policies`.
pub const SECURITY_POLICIES: &str = "/api/v1/security/policies";
/// `/api/v1/routes`: L7 routes.
pub const ROUTES: &str = "/api/v1/routes";
/// `/api/v1/resilience/policies`: circuit breakers, rate limits, fault injection.
pub const RESILIENCE_POLICIES: &str = "/api/v1/resilience/policies";
/// `/api/v1/mesh/status`: one node's Raft view.
pub const MESH_STATUS: &str = "/api/v1/mesh/status";
/// `/api/v1/observability/metrics`: golden signals per edge across the mesh (GET).
pub const OBSERVABILITY_METRICS: &str = "/api/v1/observability/metrics";
/// Every recorded hop of one trace, from every node.
pub const OBSERVABILITY_TRACES: &str = "/api/v1/observability/traces";
/// The newest recorded requests (sampled and failed), from every node.
pub const OBSERVABILITY_LOGS: &str = "/api/v1/observability/logs";
/// `/api/v1/observability/placements`: where each gateway sends each service's traffic now.
pub const OBSERVABILITY_PLACEMENTS: &str = "/api/v1/observability/placements";
/// `/ui`: the web console (static files; the page reads the API).
pub const CONSOLE: &str = "/ui";
/// `/api/v1/audit`: who changed what (GET, `?since=REVISION&limit=N`).
pub const AUDIT: &str = "/api/v1/audit";

/// The audit records after revision `since`, `limit` at most.
/// `path?k=v&…`, each value percent-encoded (unreserved characters and `/` kept as they are).
pub fn with_query(path: &str, pairs: &[(&str, String)]) -> String {
    let mut out = path.to_string();
    for (i, (k, v)) in pairs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        for b in v.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// The golden signals over `window` (`1m`, `5m`), of one service or all.
pub fn observability_metrics(window: &str, service: Option<&str>) -> String {
    let mut q = vec![("window", window.to_string())];
    q.extend(service.map(|s| ("service", s.to_string())));
    with_query(OBSERVABILITY_METRICS, &q)
}

/// Every recorded hop of trace `trace_id`.
pub fn observability_trace(trace_id: &str) -> String {
    with_query(OBSERVABILITY_TRACES, &[("trace_id", trace_id.to_string())])
}

/// The recent requests `q` selects (its `trace_id` is not a parameter of this endpoint).
pub fn observability_logs(q: &crate::recent::RecentQuery) -> String {
    let mut p = vec![("limit", q.limit.to_string())];
    p.extend(q.service.clone().map(|s| ("service", s)));
    p.extend(q.status.map(|s| ("status", s.to_string())));
    p.extend(q.status_class.map(|c| ("status", format!("{c}xx"))));
    p.extend(q.since_ms.map(|t| ("since", t.to_string())));
    p.extend(q.cluster.clone().map(|c| ("cluster", c)));
    with_query(OBSERVABILITY_LOGS, &p)
}

/// The placements `q` selects.
pub fn observability_placements(q: &crate::placement::PlacementQuery) -> String {
    let mut p = Vec::new();
    p.extend(q.service.clone().map(|s| ("service", s)));
    p.extend(q.cluster.clone().map(|c| ("cluster", c)));
    with_query(OBSERVABILITY_PLACEMENTS, &p)
}

pub fn audit(since: u64, limit: usize) -> String {
    format!("{AUDIT}?since={since}&limit={limit}")
}
/// `/api/v1/mesh/validate`: check a bundle of objects without writing it (POST).
pub const MESH_VALIDATE: &str = "/api/v1/mesh/validate";
/// `/api/v1/mesh/config`: the mesh-wide gateway settings (GET, PUT).
pub const MESH_CONFIG: &str = "/api/v1/mesh/config";
/// `/api/v1/federation/members`: add a member (POST).
pub const MEMBERS: &str = "/api/v1/federation/members";
/// `/api/v1/join-tokens`: make a join token (POST).
pub const JOIN_TOKENS: &str = "/api/v1/join-tokens";
/// `/api/v1/join`: register with a join token (POST).
pub const JOIN: &str = "/api/v1/join";
/// `/api/v1/watch`: the change stream (see [`watch`] for the query).
pub const WATCH: &str = "/api/v1/watch";
/// `/api/v1/openapi.json`: the API's OpenAPI document.
pub const OPENAPI: &str = "/api/v1/openapi.json";
/// `/readyz`: 200 once Raft runs and a leader is known.
pub const READYZ: &str = "/readyz";
/// `/healthz`: the process is up.
pub const HEALTHZ: &str = "/healthz";
/// `/metrics`: Prometheus text.
pub const METRICS: &str = "/metrics";

/// `/api/v1/clusters/{name}`.
pub fn cluster(name: &str) -> String {
    format!("{CLUSTERS}/{name}")
}

/// `/api/v1/clusters/{name}/status`.
pub fn cluster_status(name: &str) -> String {
    format!("{CLUSTERS}/{name}/status")
}

/// `/api/v1/clusters/{name}/lease`: renew (PUT), withdraw (DELETE).
pub fn lease(cluster: &str) -> String {
    format!("{CLUSTERS}/{cluster}/lease")
}

/// `/api/v1/clusters/{name}/credential`: issue the cluster a new API credential (POST).
pub fn cluster_credential(cluster: &str) -> String {
    format!("{CLUSTERS}/{cluster}/credential")
}

/// `/api/v1/clusters/{name}/gateway`: correct the registered gateway address (PUT).
/// `/api/v1/clusters/{cluster}/config`: the cluster's overrides (GET, PUT).
pub fn cluster_config(cluster: &str) -> String {
    format!("{CLUSTERS}/{cluster}/config")
}

pub fn cluster_gateway(cluster: &str) -> String {
    format!("{CLUSTERS}/{cluster}/gateway")
}

/// `/api/v1/clusters/{cluster}/services/{namespace}/{service}`: export (PUT), unexport.
pub fn export(cluster: &str, namespace: &str, service: &str) -> String {
    format!("{CLUSTERS}/{cluster}/services/{namespace}/{service}")
}

/// `/api/v1/trust/bundles/{trust_domain}`.
pub fn bundle(trust_domain: &str) -> String {
    format!("{BUNDLES}/{trust_domain}")
}

/// `/api/v1/traffic/policies/{id}`.
pub fn traffic_policy(id: &str) -> String {
    format!("{TRAFFIC_POLICIES}/{id}")
}

/// `/api/v1/security/policies/{id}`.
pub fn security_policy(id: &str) -> String {
    format!("{SECURITY_POLICIES}/{id}")
}

pub fn route(id: &str) -> String {
    format!("{ROUTES}/{id}")
}

/// A write to [`route`] that only answers what it would change.
/// `path` with `?dry_run=true`.
pub fn dry_run(path: &str) -> String {
    format!("{path}?dry_run=true")
}

pub fn route_dry_run(id: &str) -> String {
    format!("{ROUTES}/{id}?dry_run=true")
}

/// `/api/v1/security/authorization`: L7 authorization policies.
pub const AUTHORIZATION_POLICIES: &str = "/api/v1/security/authorization";

/// `/api/v1/security/authorization/{id}`.
pub fn authorization_policy(id: &str) -> String {
    format!("{AUTHORIZATION_POLICIES}/{id}")
}

/// A write to [`authorization_policy`] that only answers what it would change.
pub fn authorization_policy_dry_run(id: &str) -> String {
    format!("{AUTHORIZATION_POLICIES}/{id}?dry_run=true")
}

/// `/api/v1/security/jwt`: JWT policies.
pub const JWT_POLICIES: &str = "/api/v1/security/jwt";

/// `/api/v1/security/jwt/{id}`.
pub fn jwt_policy(id: &str) -> String {
    format!("{JWT_POLICIES}/{id}")
}

/// A write to [`jwt_policy`] that only answers what it would change.
pub fn jwt_policy_dry_run(id: &str) -> String {
    format!("{JWT_POLICIES}/{id}?dry_run=true")
}

/// `/api/v1/resilience/policies/{id}`.
pub fn resilience_policy(id: &str) -> String {
    format!("{RESILIENCE_POLICIES}/{id}")
}

/// A write to [`resilience_policy`] that only answers what it would change.
pub fn resilience_policy_dry_run(id: &str) -> String {
    format!("{RESILIENCE_POLICIES}/{id}?dry_run=true")
}

/// `/api/v1/federation/members/{id}`.
pub fn member(id: u64) -> String {
    format!("{MEMBERS}/{id}")
}

/// `/api/v1/watch?from_revision={after}`: changes after `after`.
pub fn watch(after: u64) -> String {
    format!("{WATCH}?from_revision={after}")
}
