//! The federation catalog as one gateway knows it, and the [`RemoteTable`] built from it.
//! Pure: fed by the listing and by watch lines, evaluated against a given wall-clock time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use warden_federation::authn::JwtPolicy;
use warden_federation::authz::AuthorizationPolicy;
use warden_federation::load::LoadReport;
use warden_federation::model::{
    Cluster, Lease, SecurityPolicy, ServiceExport, SubsetHealth, TrafficPolicy, TrustBundle,
};
use warden_federation::resilience::ResiliencePolicy;
use warden_federation::route::Route;
use warden_federation::wire::{RoutingCatalog, WatchEvent, WatchLine};

use crate::access::CompiledAuthz;
use crate::authn::{CompiledJwt, ServiceJwt};
use crate::key::ServiceKey;
use crate::resilience::ServicePolicies;
use crate::route::CompiledRoute;
use crate::table::{RemoteTable, RoutePolicy, Tables};
use warden_federation::mesh_config::MeshConfig;

/// Clusters, exports, leases and policies at one revision.
#[derive(Debug, Default, Clone)]
pub struct CatalogView {
    pub revision: u64,
    pub clusters: BTreeMap<String, Cluster>,
    pub exports: BTreeMap<(String, String, String), ServiceExport>,
    pub leases: BTreeMap<String, Lease>,
    pub policies: BTreeMap<String, TrafficPolicy>,
    /// CA bundles by trust domain.
    pub bundles: BTreeMap<String, TrustBundle>,
    /// Authorization policies by id.
    pub security: BTreeMap<String, SecurityPolicy>,
    /// L7 routes by id.
    pub routes: BTreeMap<String, Route>,
    /// Resilience policies by id.
    pub resilience: BTreeMap<String, ResiliencePolicy>,
    /// JWT policies by id.
    pub jwt: BTreeMap<String, JwtPolicy>,
    /// L7 authorization policies by id.
    pub authorization: BTreeMap<String, AuthorizationPolicy>,
    /// Healthy endpoints per label set, by export.
    pub subsets: BTreeMap<(String, String, String), Arc<[SubsetHealth]>>,
    /// The clusters an export is for, when it names them.
    pub audience: BTreeMap<(String, String, String), Vec<String>>,
    /// Each cluster's last reported demand on mesh-wide rate limits (from its renewals only:
    /// the listing has none).
    pub loads: BTreeMap<String, Arc<LoadReport>>,
    /// The mesh-wide gateway settings.
    pub mesh_config: MeshConfig,
    /// Per-cluster overrides by cluster name.
    pub cluster_configs: BTreeMap<String, MeshConfig>,
    /// The clusters exporting each service (namespace, name), in name order: the index a
    /// rebuild of one service reads.
    pub by_service: BTreeMap<(String, String), BTreeSet<String>>,
    /// What changed since [`CatalogView::take_changes`] was last called.
    pub changes: Changes,
}

/// What changed in a view since the routing table was last built from it: a rebuild redoes the
/// services these name, not the whole mesh.
#[derive(Debug, Default, Clone)]
pub struct Changes {
    /// Everything (a new listing).
    pub all: bool,
    /// Clusters registered, changed or removed: every service they export is redone.
    pub clusters: BTreeSet<String>,
    /// Services (namespace, name) one export of which was put or deleted.
    pub services: BTreeSet<(String, String)>,
}

impl Changes {
    /// Everything changed.
    pub fn everything() -> Self {
        Changes {
            all: true,
            ..Changes::default()
        }
    }
}

fn export_key(e: &ServiceExport) -> (String, String, String) {
    (e.cluster.clone(), e.namespace.clone(), e.service.clone())
}

impl CatalogView {
    /// Builds a view from `GET /api/v1/catalog`.
    pub fn from_listing(c: RoutingCatalog) -> Self {
        let mut by_service: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        for e in &c.exports {
            by_service
                .entry((e.namespace.clone(), e.service.clone()))
                .or_default()
                .insert(e.cluster.clone());
        }
        CatalogView {
            by_service,
            changes: Changes::everything(),
            revision: c.revision,
            clusters: c
                .clusters
                .into_iter()
                .map(|c| (c.name.clone(), c))
                .collect(),
            exports: c.exports.into_iter().map(|e| (export_key(&e), e)).collect(),
            leases: c
                .leases
                .into_iter()
                .map(|l| (l.cluster.clone(), l))
                .collect(),
            policies: c.policies.into_iter().map(|p| (p.id.clone(), p)).collect(),
            bundles: c
                .bundles
                .into_iter()
                .map(|b| (b.trust_domain.clone(), b))
                .collect(),
            security: c
                .security_policies
                .into_iter()
                .map(|p| (p.id.clone(), p))
                .collect(),
            routes: c.routes.into_iter().map(|r| (r.id.clone(), r)).collect(),
            resilience: c
                .resilience
                .into_iter()
                .map(|p| (p.id.clone(), p))
                .collect(),
            jwt: c.jwt.into_iter().map(|p| (p.id.clone(), p)).collect(),
            authorization: c
                .authorization
                .into_iter()
                .map(|p| (p.id.clone(), p))
                .collect(),
            subsets: c
                .export_subsets
                .into_iter()
                .map(|s| ((s.cluster, s.namespace, s.service), Arc::from(s.subsets)))
                .collect(),
            audience: c
                .export_audience
                .into_iter()
                .map(|a| ((a.cluster, a.namespace, a.service), a.export_to))
                .collect(),
            loads: BTreeMap::new(),
            mesh_config: c.mesh_config,
            cluster_configs: c.cluster_configs,
        }
    }

    /// Applies one watch line; returns false for lines that are not changes (heartbeats).
    pub fn apply(&mut self, line: WatchLine) -> bool {
        match line.event {
            WatchEvent::Heartbeat | WatchEvent::Error { .. } => return false,
            WatchEvent::ClusterPut { cluster } => {
                self.changes.clusters.insert(cluster.name.clone());
                self.clusters.insert(cluster.name.clone(), cluster);
            }
            WatchEvent::ClusterDeleted { name } => {
                self.changes.clusters.insert(name.clone());
                self.clusters.remove(&name);
                self.leases.remove(&name);
                self.loads.remove(&name);
                self.cluster_configs.remove(&name);
            }
            WatchEvent::ServicePut {
                service,
                subsets,
                export_to,
            } => {
                let key = export_key(&service);
                let by = (key.1.clone(), key.2.clone());
                self.by_service
                    .entry(by.clone())
                    .or_default()
                    .insert(key.0.clone());
                self.changes.services.insert(by);
                match export_to.filter(|t| !t.is_empty()) {
                    Some(t) => self.audience.insert(key.clone(), t),
                    None => self.audience.remove(&key),
                };
                match subsets {
                    Some(s) => self.subsets.insert(key.clone(), Arc::from(s)),
                    None => self.subsets.remove(&key),
                };
                self.exports.insert(key, service);
            }
            WatchEvent::ServiceDeleted {
                cluster,
                namespace,
                service,
            } => {
                let by = (namespace.clone(), service.clone());
                if let Some(set) = self.by_service.get_mut(&by) {
                    set.remove(&cluster);
                    if set.is_empty() {
                        self.by_service.remove(&by);
                    }
                }
                self.changes.services.insert(by);
                let key = (cluster, namespace, service);
                self.subsets.remove(&key);
                self.audience.remove(&key);
                self.exports.remove(&key);
            }
            WatchEvent::LeaseRenewed { lease, load } => {
                // A renewal of a lease that had not lapsed (by the store's clock), with the
                // same TTL and the same load report, changes nothing a rebuild would show:
                // the cluster was live and stays live. Those are nearly every renewal, and at
                // a thousand clusters hundreds a second; the lease tick still notices any
                // liveness change within LEASE_EVAL.
                let same_load = self.loads.get(&lease.cluster).map(|l| &**l) == load.as_ref();
                let unbroken = self.leases.get(&lease.cluster).is_some_and(|old| {
                    old.ttl_ms == lease.ttl_ms
                        && lease.renewed_at >= old.renewed_at
                        && lease.renewed_at < old.renewed_at.saturating_add(old.ttl_ms)
                });
                match load {
                    Some(l) => self.loads.insert(lease.cluster.clone(), Arc::new(l)),
                    None => self.loads.remove(&lease.cluster),
                };
                self.leases.insert(lease.cluster.clone(), lease);
                self.revision = line.revision;
                return !(same_load && unbroken);
            }
            WatchEvent::LeaseWithdrawn { cluster } => {
                self.leases.remove(&cluster);
                self.loads.remove(&cluster);
            }
            WatchEvent::PolicyPut { policy } => {
                self.policies.insert(policy.id.clone(), policy);
            }
            WatchEvent::PolicyDeleted { id } => {
                self.policies.remove(&id);
            }
            WatchEvent::TrustBundlePut { bundle } => {
                self.bundles.insert(bundle.trust_domain.clone(), bundle);
            }
            WatchEvent::TrustBundleDeleted { trust_domain } => {
                self.bundles.remove(&trust_domain);
            }
            WatchEvent::SecurityPolicyPut { policy } => {
                self.security.insert(policy.id.clone(), policy);
            }
            WatchEvent::SecurityPolicyDeleted { id } => {
                self.security.remove(&id);
            }
            WatchEvent::RoutePut { route } => {
                self.routes.insert(route.id.clone(), route);
            }
            WatchEvent::RouteDeleted { id } => {
                self.routes.remove(&id);
            }
            WatchEvent::ResiliencePolicyPut { policy } => {
                self.resilience.insert(policy.id.clone(), *policy);
            }
            WatchEvent::ResiliencePolicyDeleted { id } => {
                self.resilience.remove(&id);
            }
            WatchEvent::JwtPolicyPut { policy } => {
                self.jwt.insert(policy.id.clone(), *policy);
            }
            WatchEvent::JwtPolicyDeleted { id } => {
                self.jwt.remove(&id);
            }
            WatchEvent::AuthorizationPolicyPut { policy } => {
                self.authorization.insert(policy.id.clone(), *policy);
            }
            WatchEvent::AuthorizationPolicyDeleted { id } => {
                self.authorization.remove(&id);
            }
            WatchEvent::MeshConfigPut { config } => self.mesh_config = *config,
            WatchEvent::ClusterConfigPut { cluster, config } => {
                if *config == MeshConfig::default() {
                    self.cluster_configs.remove(&cluster);
                } else {
                    self.cluster_configs.insert(cluster, *config);
                }
            }
            // The Raft group's members, and a newer server's kinds: not routing state here.
            WatchEvent::MemberChanged { .. } | WatchEvent::Unknown => {}
        }
        self.revision = line.revision;
        true
    }

    /// Is a cluster's lease fresh at `now_ms` (wall clock)?
    pub fn live(&self, cluster: &str, now_ms: u64) -> bool {
        self.leases
            .get(cluster)
            .is_some_and(|l| now_ms < l.renewed_at.saturating_add(l.ttl_ms))
    }

    /// Takes what changed since the last call, for the next rebuild.
    pub fn take_changes(&mut self) -> Changes {
        std::mem::take(&mut self.changes)
    }

    /// Everything of the remote table but its services and derived names (what
    /// the remote builder keeps between rebuilds): policies, routes and the rest, all small and
    /// built again on every change.
    pub fn build_policies(
        &self,
        me: &str,
        now_ms: u64,
        connected: bool,
        tables: &Tables,
    ) -> RemoteTable {
        let mut policies = HashMap::new();
        for p in self.policies.values() {
            if let Some(key) = ServiceKey::parse(&p.service) {
                let policy = RoutePolicy {
                    id: p.id.clone(),
                    failover_order: p.failover_order.clone(),
                    weights: p.weights.clone(),
                    overprovisioning_percent: p.overprovisioning_percent,
                    max_egress_percent: p.max_egress_percent,
                };
                policies.insert(key, Arc::new(policy));
            }
        }
        let mut security: HashMap<ServiceKey, Vec<SecurityPolicy>> = HashMap::new();
        for p in self.security.values() {
            if let Some(key) = ServiceKey::parse(&p.service) {
                security.entry(key).or_default().push(p.clone());
            }
        }
        let cluster_domains = self
            .clusters
            .values()
            .map(|c| (c.name.clone(), c.trust_domain.clone()))
            .collect();
        let mut routes = HashMap::new();
        for r in self.routes.values() {
            let Some(key) = ServiceKey::parse(&r.service) else {
                continue;
            };
            // Validated by the federation before it was stored; a newer server's route this
            // build cannot compile is left out, said once per change.
            match CompiledRoute::compile(r) {
                Ok(c) => {
                    routes.insert(key, Arc::new(c));
                }
                Err(e) => {
                    tracing::warn!(route = %r.id, field = %e.field, error = %e.message, "route not applied")
                }
            }
        }
        let mut resilience: HashMap<ServiceKey, ServicePolicies> = HashMap::new();
        for p in self.resilience.values() {
            let Some(key) = ServiceKey::parse(&p.service) else {
                continue;
            };
            let compiled = tables.policy_cache.compiled(p);
            let entry = resilience.entry(key).or_default();
            match &p.rule {
                None => entry.whole = Some(compiled),
                Some(r) => {
                    entry.rules.insert(r.clone(), compiled);
                }
            }
        }
        let mut jwt: HashMap<ServiceKey, ServiceJwt> = HashMap::new();
        for p in self.jwt.values() {
            let Some(key) = ServiceKey::parse(&p.service) else {
                continue;
            };
            let compiled = Arc::new(CompiledJwt::compile(p));
            let entry = jwt.entry(key).or_default();
            match &p.rule {
                None => entry.whole = Some(compiled),
                Some(r) => {
                    entry.rules.insert(r.clone(), compiled);
                }
            }
        }
        let mut authorization: HashMap<ServiceKey, Vec<CompiledAuthz>> = HashMap::new();
        for p in self.authorization.values() {
            if let Some(key) = ServiceKey::parse(&p.service) {
                authorization
                    .entry(key)
                    .or_default()
                    .push(CompiledAuthz::compile(p));
            }
        }
        RemoteTable {
            revision: self.revision,
            connected,
            services: HashMap::new(),
            policies,
            security,
            cluster_domains,
            registered_gateway: self.clusters.get(me).map(|c| c.gateway.clone()),
            routes,
            resilience: resilience
                .into_iter()
                .map(|(k, v)| (k, Arc::new(v)))
                .collect(),
            jwt: jwt.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
            authorization: authorization
                .into_iter()
                .map(|(k, v)| (k, Arc::from(v)))
                .collect(),
            derived: HashMap::new(),
            loads: self
                .loads
                .iter()
                .filter(|(c, _)| *c != me && self.live(c, now_ms))
                .map(|(c, l)| (c.clone(), l.clone()))
                .collect(),
        }
    }

    /// Liveness of every cluster at `now_ms`, to notice expiries between watch events.
    pub fn liveness(&self, now_ms: u64) -> Vec<bool> {
        self.clusters.keys().map(|c| self.live(c, now_ms)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing() -> RoutingCatalog {
        serde_json::from_value(serde_json::json!({
            "revision": 7,
            "now": 1,
            "clusters": [
                {"name": "a", "region": "r1", "zone": "z1", "network": "n", "gateway": "127.0.0.1:1", "trust_domain": "a", "labels": {}, "registered_at": 1},
                {"name": "b", "region": "r1", "zone": "z2", "network": "n", "gateway": "127.0.0.1:2", "trust_domain": "b", "labels": {}, "registered_at": 1}
            ],
            "exports": [
                {"cluster": "a", "namespace": "shop", "service": "cart", "ports": [], "healthy_endpoints": 2, "weight": 100, "updated_at": 1},
                {"cluster": "b", "namespace": "shop", "service": "cart", "ports": [], "healthy_endpoints": 3, "weight": 100, "updated_at": 1}
            ],
            "leases": [{"cluster": "b", "renewed_at": 1000, "ttl_ms": 500}],
            "policies": [],
            "bundles": [],
            "security_policies": []
        }))
        .unwrap()
    }

    fn line(v: serde_json::Value) -> WatchLine {
        serde_json::from_value(v).unwrap()
    }

    fn cart() -> ServiceKey {
        ServiceKey::new("shop", "cart")
    }

    #[test]
    fn remote_table_excludes_self_and_tracks_leases() {
        let view = CatalogView::from_listing(listing());
        let tables = Tables::default();
        let t = view.build("a", 1200, true, &tables);
        let cart = &t.services[&cart()];
        assert_eq!(cart.len(), 1);
        assert_eq!(&*cart[0].cluster, "b");
        assert!(cart[0].live);
        let t = view.build("a", 1500, true, &tables);
        assert!(!t.services[&self::cart()][0].live, "lease expired at 1500");
    }

    #[test]
    fn a_renewal_that_keeps_a_live_lease_live_needs_no_rebuild() {
        let mut view = CatalogView::from_listing(listing());
        let renew = |rev: u64, at: u64, ttl: u64, load: Option<serde_json::Value>| {
            let mut l = serde_json::json!({"type": "lease.renewed", "revision": rev,
                "lease": {"cluster": "b", "renewed_at": at, "ttl_ms": ttl}});
            if let Some(load) = load {
                l["load"] = load;
            }
            line(l)
        };
        assert!(
            view.apply(renew(8, 5000, 500, None)),
            "the old lease had lapsed"
        );
        assert!(!view.apply(renew(9, 5300, 500, None)), "renewed in time");
        assert_eq!(view.revision, 9, "the revision still moves on");
        assert!(view.live("b", 5700));
        assert!(view.apply(renew(10, 5300, 900, None)), "a new TTL");
        let load = || Some(serde_json::json!({"demand": {"p/all": 5.0}}));
        assert!(
            view.apply(renew(11, 5400, 900, load())),
            "a new load report"
        );
        assert!(!view.apply(renew(12, 5500, 900, load())), "the same report");
        assert!(
            view.apply(renew(13, 6500, 900, load())),
            "renewed after it lapsed"
        );
    }

    #[test]
    fn watch_lines_update_the_view() {
        let mut view = CatalogView::from_listing(listing());
        assert!(!view.apply(line(
            serde_json::json!({"type": "heartbeat", "revision": 7})
        )));
        view.apply(line(serde_json::json!({"type": "lease.renewed", "revision": 8, "lease": {"cluster": "b", "renewed_at": 5000, "ttl_ms": 500}})));
        assert!(view.live("b", 5100));
        view.apply(line(serde_json::json!({"type": "service.deleted", "revision": 9, "cluster": "b", "namespace": "shop", "service": "cart"})));
        assert_eq!(view.exports.len(), 1);
        view.apply(line(serde_json::json!({"type": "policy.put", "revision": 10, "policy": {"id": "p", "service": "shop/cart", "failover_order": [], "weights": {"a": 80, "b": 20}, "overprovisioning_percent": null, "max_egress_percent": null, "updated_at": 1}})));
        let t = view.build("a", 5100, true, &Tables::default());
        assert_eq!(t.policies[&cart()].weights["a"], 80);
        assert_eq!(t.revision, 10);
        view.apply(line(
            serde_json::json!({"type": "lease.withdrawn", "revision": 11, "cluster": "b"}),
        ));
        assert!(!view.live("b", 5100), "a withdrawn lease is not live");
        assert!(view.apply(line(
            serde_json::json!({"type": "mirror.put", "revision": 12})
        )));
        assert_eq!(view.revision, 12, "unknown kinds still move the revision");
    }

    #[test]
    fn load_reports_of_live_clusters_reach_the_table_until_a_renewal_without_one() {
        let mut view = CatalogView::from_listing(listing());
        let renew = |rev: u64, at: u64, load: Option<serde_json::Value>| {
            let mut l = serde_json::json!({"type": "lease.renewed", "revision": rev,
                "lease": {"cluster": "b", "renewed_at": at, "ttl_ms": 500}});
            if let Some(load) = load {
                l["load"] = load;
            }
            line(l)
        };
        view.apply(renew(
            8,
            5000,
            Some(serde_json::json!({"demand": {"p/all": 50.0}})),
        ));
        let t = view.build("a", 5100, true, &Tables::default());
        assert_eq!(t.loads["b"].demand["p/all"], 50.0);
        let t = view.build("b", 5100, true, &Tables::default());
        assert!(
            t.loads.is_empty(),
            "a gateway's own report is not another's"
        );
        let t = view.build("a", 6000, true, &Tables::default());
        assert!(
            t.loads.is_empty(),
            "an expired lease's report does not count"
        );
        view.apply(renew(9, 5200, None));
        let t = view.build("a", 5300, true, &Tables::default());
        assert!(t.loads.is_empty(), "a renewal without a report clears it");
    }

    #[test]
    fn subsets_published_with_an_export_reach_the_remote_table() {
        let mut view = CatalogView::from_listing(listing());
        let put = |rev: u64, subsets: serde_json::Value| {
            let mut l = serde_json::json!({"type": "service.put", "revision": rev, "service":
                {"cluster": "b", "namespace": "shop", "service": "cart", "ports": [], "healthy_endpoints": 3, "weight": 100, "updated_at": 2}});
            if !subsets.is_null() {
                l["subsets"] = subsets;
            }
            line(l)
        };
        view.apply(put(8, serde_json::json!([{"labels": {"version": "v2"}, "healthy_endpoints": 1}, {"labels": {}, "healthy_endpoints": 2}])));
        let t = view.build("a", 0, true, &Tables::default());
        let b = &t.services[&cart()][0];
        assert_eq!(&*b.cluster, "b");
        let v2 = [("version".to_string(), "v2".to_string())].into();
        assert_eq!(warden_federation::model::healthy_in(&b.subsets, &v2), 1);
        // An update from a gateway that sends none clears them; so does the export's removal.
        view.apply(put(9, serde_json::Value::Null));
        assert!(view.subsets.is_empty());
        view.apply(put(
            10,
            serde_json::json!([{"labels": {"version": "v2"}, "healthy_endpoints": 1}]),
        ));
        view.apply(line(serde_json::json!({"type": "service.deleted", "revision": 11, "cluster": "b", "namespace": "shop", "service": "cart"})));
        assert!(view.subsets.is_empty());
    }
}
