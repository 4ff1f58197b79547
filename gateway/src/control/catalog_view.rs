//! The federation catalog as one gateway knows it, and the [`RemoteTable`] built from it.
//! Pure: fed by the listing and by watch lines, evaluated against a given wall-clock time.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use warden_federation::model::{
    Cluster, Lease, SecurityPolicy, ServiceExport, TrafficPolicy, TrustBundle,
};

use crate::table::{RemoteCluster, RemoteTable, RoutePolicy, ServiceKey, Tables};

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
}

fn items<T: serde::de::DeserializeOwned>(v: &Value, key: &str) -> Result<Vec<T>, String> {
    serde_json::from_value(v.get(key).cloned().unwrap_or(Value::Array(vec![])))
        .map_err(|e| format!("catalog field {key}: {e}"))
}

impl CatalogView {
    /// Builds a view from `GET /api/v1/catalog`.
    pub fn from_listing(v: &Value) -> Result<Self, String> {
        let mut view = CatalogView {
            revision: v["revision"].as_u64().ok_or("catalog without revision")?,
            ..Default::default()
        };
        for c in items::<Cluster>(v, "clusters")? {
            view.clusters.insert(c.name.clone(), c);
        }
        for e in items::<ServiceExport>(v, "exports")? {
            view.exports.insert(
                (e.cluster.clone(), e.namespace.clone(), e.service.clone()),
                e,
            );
        }
        for l in items::<Lease>(v, "leases")? {
            view.leases.insert(l.cluster.clone(), l);
        }
        for p in items::<TrafficPolicy>(v, "policies")? {
            view.policies.insert(p.id.clone(), p);
        }
        for b in items::<TrustBundle>(v, "bundles")? {
            view.bundles.insert(b.trust_domain.clone(), b);
        }
        for p in items::<SecurityPolicy>(v, "security_policies")? {
            view.security.insert(p.id.clone(), p);
        }
        Ok(view)
    }

    /// Applies one watch line; returns false for lines that are not changes (heartbeats).
    pub fn apply(&mut self, v: &Value) -> Result<bool, String> {
        let ty = v["type"].as_str().unwrap_or("");
        let parse = |key: &str| {
            v.get(key)
                .cloned()
                .ok_or_else(|| format!("{ty} without {key}"))
        };
        match ty {
            "heartbeat" => return Ok(false),
            "error" => {
                return Err(format!(
                    "watch error: {}",
                    v["code"].as_str().unwrap_or("unknown")
                ));
            }
            "cluster.put" => {
                let c: Cluster =
                    serde_json::from_value(parse("cluster")?).map_err(|e| e.to_string())?;
                self.clusters.insert(c.name.clone(), c);
            }
            "cluster.deleted" => {
                let name = v["name"].as_str().unwrap_or("");
                self.clusters.remove(name);
                self.leases.remove(name);
            }
            "service.put" => {
                let e: ServiceExport =
                    serde_json::from_value(parse("service")?).map_err(|e| e.to_string())?;
                self.exports.insert(
                    (e.cluster.clone(), e.namespace.clone(), e.service.clone()),
                    e,
                );
            }
            "service.deleted" => {
                let key = (
                    v["cluster"].as_str().unwrap_or("").to_string(),
                    v["namespace"].as_str().unwrap_or("").to_string(),
                    v["service"].as_str().unwrap_or("").to_string(),
                );
                self.exports.remove(&key);
            }
            "lease.renewed" => {
                let l: Lease =
                    serde_json::from_value(parse("lease")?).map_err(|e| e.to_string())?;
                self.leases.insert(l.cluster.clone(), l);
            }
            "policy.put" => {
                let p: TrafficPolicy =
                    serde_json::from_value(parse("policy")?).map_err(|e| e.to_string())?;
                self.policies.insert(p.id.clone(), p);
            }
            "policy.deleted" => {
                self.policies.remove(v["id"].as_str().unwrap_or(""));
            }
            "trust_bundle.put" => {
                let b: TrustBundle =
                    serde_json::from_value(parse("bundle")?).map_err(|e| e.to_string())?;
                self.bundles.insert(b.trust_domain.clone(), b);
            }
            "security_policy.put" => {
                let p: SecurityPolicy =
                    serde_json::from_value(parse("policy")?).map_err(|e| e.to_string())?;
                self.security.insert(p.id.clone(), p);
            }
            "security_policy.deleted" => {
                self.security.remove(v["id"].as_str().unwrap_or(""));
            }
            "trust_bundle.deleted" => {
                self.bundles
                    .remove(v["trust_domain"].as_str().unwrap_or(""));
            }
            _ => {} // future kinds: not routing state
        }
        if let Some(r) = v["revision"].as_u64() {
            self.revision = r;
        }
        Ok(true)
    }

    /// Is a cluster's lease fresh at `now_ms` (wall clock)?
    pub fn live(&self, cluster: &str, now_ms: u64) -> bool {
        self.leases
            .get(cluster)
            .is_some_and(|l| now_ms < l.renewed_at.saturating_add(l.ttl_ms))
    }

    /// The remote table for a gateway of cluster `me`.
    pub fn build(&self, me: &str, now_ms: u64, connected: bool, tables: &Tables) -> RemoteTable {
        let mut services: HashMap<ServiceKey, Vec<RemoteCluster>> = HashMap::new();
        for ((cluster, ns, svc), e) in &self.exports {
            if cluster == me {
                continue;
            }
            let Some(c) = self.clusters.get(cluster) else {
                continue;
            };
            services
                .entry((ns.clone(), svc.clone()))
                .or_default()
                .push(RemoteCluster {
                    cluster: cluster.clone(),
                    region: c.region.clone(),
                    zone: c.zone.clone(),
                    gateway: c.gateway.clone(),
                    trust_domain: c.trust_domain.clone(),
                    healthy_endpoints: e.healthy_endpoints,
                    weight: e.weight,
                    live: self.live(cluster, now_ms),
                    inflight: tables.inflight_for(&format!("cluster:{cluster}")),
                });
        }
        let mut policies = HashMap::new();
        for p in self.policies.values() {
            if let Some((ns, svc)) = p.service.split_once('/') {
                policies.insert(
                    (ns.to_string(), svc.to_string()),
                    RoutePolicy {
                        id: p.id.clone(),
                        failover_order: p.failover_order.clone(),
                        weights: p.weights.clone(),
                        overprovisioning_percent: p.overprovisioning_percent,
                        max_egress_percent: p.max_egress_percent,
                    },
                );
            }
        }
        let mut security: HashMap<ServiceKey, Vec<SecurityPolicy>> = HashMap::new();
        for p in self.security.values() {
            if let Some((ns, svc)) = p.service.split_once('/') {
                security
                    .entry((ns.to_string(), svc.to_string()))
                    .or_default()
                    .push(p.clone());
            }
        }
        let cluster_domains = self
            .clusters
            .values()
            .map(|c| (c.name.clone(), c.trust_domain.clone()))
            .collect();
        RemoteTable {
            revision: self.revision,
            connected,
            services,
            policies,
            security,
            cluster_domains,
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
    use serde_json::json;

    fn listing() -> Value {
        json!({
            "revision": 7,
            "clusters": [
                {"name": "a", "region": "r1", "zone": "z1", "network": "n", "gateway": "127.0.0.1:1", "trust_domain": "a", "labels": {}, "registered_at": 1},
                {"name": "b", "region": "r1", "zone": "z2", "network": "n", "gateway": "127.0.0.1:2", "trust_domain": "b", "labels": {}, "registered_at": 1}
            ],
            "exports": [
                {"cluster": "a", "namespace": "shop", "service": "cart", "ports": [], "healthy_endpoints": 2, "weight": 100, "updated_at": 1},
                {"cluster": "b", "namespace": "shop", "service": "cart", "ports": [], "healthy_endpoints": 3, "weight": 100, "updated_at": 1}
            ],
            "leases": [{"cluster": "b", "renewed_at": 1000, "ttl_ms": 500}],
            "policies": []
        })
    }

    #[test]
    fn remote_table_excludes_self_and_tracks_leases() {
        let view = CatalogView::from_listing(&listing()).unwrap();
        let tables = Tables::default();
        let t = view.build("a", 1200, true, &tables);
        let cart = &t.services[&("shop".to_string(), "cart".to_string())];
        assert_eq!(cart.len(), 1);
        assert_eq!(cart[0].cluster, "b");
        assert!(cart[0].live);
        let t = view.build("a", 1500, true, &tables);
        assert!(
            !t.services[&("shop".to_string(), "cart".to_string())][0].live,
            "lease expired at 1500"
        );
    }

    #[test]
    fn watch_lines_update_the_view() {
        let mut view = CatalogView::from_listing(&listing()).unwrap();
        assert!(
            !view
                .apply(&json!({"type": "heartbeat", "revision": 7}))
                .unwrap()
        );
        view.apply(&json!({"type": "lease.renewed", "revision": 8, "lease": {"cluster": "b", "renewed_at": 5000, "ttl_ms": 500}})).unwrap();
        assert!(view.live("b", 5100));
        view.apply(&json!({"type": "service.deleted", "revision": 9, "cluster": "b", "namespace": "shop", "service": "cart"})).unwrap();
        assert_eq!(view.exports.len(), 1);
        view.apply(&json!({"type": "policy.put", "revision": 10, "policy": {"id": "p", "service": "shop/cart", "failover_order": [], "weights": {"a": 80, "b": 20}, "overprovisioning_percent": null, "max_egress_percent": null, "updated_at": 1}})).unwrap();
        let t = view.build("a", 5100, true, &Tables::default());
        assert_eq!(
            t.policies[&("shop".to_string(), "cart".to_string())].weights["a"],
            80
        );
        assert_eq!(t.revision, 10);
        assert!(
            view.apply(&json!({"type": "error", "code": "revision_compacted"}))
                .is_err()
        );
    }
}
