//! Warnings about objects that are valid one by one but probably not what their author meant,
//! given the mesh as the store holds it: a policy naming a service nobody exports or a
//! cluster nobody registered, a failover order with no healthy fallback, weight sent to a
//! cluster that does not export the service, an authorization policy that denies every
//! request, a route rule that an earlier rule shadows. `POST /api/v1/mesh/validate` answers
//! them beside the errors; nothing here refuses a write.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::authz::{AuthorizationPolicy, AuthzRule};
use crate::model::{AuthzAction, SecurityPolicy, TrafficPolicy};
use crate::route::{PathMatch, PathMatchKind, Route, RouteMatch};
use crate::state::FederationState;

/// One error or warning: the field it is about (a path into the bundle), a stable code and
/// what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Finding {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl Finding {
    pub fn new(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code: code.to_string(),
            message: message.into(),
        }
    }
}

/// What the checks read: the store's clusters and exports.
pub struct Mesh<'a> {
    pub state: &'a FederationState,
}

impl Mesh<'_> {
    fn registered(&self, cluster: &str) -> bool {
        self.state.clusters.contains_key(cluster)
    }

    /// Healthy endpoints `cluster` exports for `service` (`ns/svc`); `None` if it does not
    /// export it.
    fn exported(&self, cluster: &str, service: &str) -> Option<u32> {
        let (ns, svc) = service.split_once('/')?;
        self.state
            .exports
            .get(&(cluster.to_string(), ns.to_string(), svc.to_string()))
            .map(|e| e.healthy_endpoints)
    }

    fn anyone_exports(&self, service: &str) -> bool {
        let Some((ns, svc)) = service.split_once('/') else {
            return false;
        };
        self.state
            .exports
            .keys()
            .any(|(_, n, s)| n == ns && s == svc)
    }

    /// `unknown_service` when no cluster exports `service`.
    pub fn service(&self, field: &str, service: &str, out: &mut Vec<Finding>) {
        if !self.anyone_exports(service) {
            out.push(Finding::new(
                field,
                "unknown_service",
                format!("no cluster exports {service}"),
            ));
        }
    }

    fn cluster(&self, field: String, cluster: &str, out: &mut Vec<Finding>) {
        if !self.registered(cluster) {
            out.push(Finding::new(
                field,
                "unknown_cluster",
                format!("no cluster {cluster:?} is registered"),
            ));
        }
    }

    /// A traffic policy: unknown clusters, weight onto clusters that do not export the
    /// service, a failover order without a healthy fallback.
    pub fn traffic(&self, f: &str, p: &TrafficPolicy, out: &mut Vec<Finding>) {
        self.service(&format!("{f}.service"), &p.service, out);
        for (i, c) in p.failover_order.iter().enumerate() {
            self.cluster(format!("{f}.failover_order[{i}]"), c, out);
        }
        for (c, w) in &p.weights {
            self.cluster(format!("{f}.weights.{c}"), c, out);
            if *w > 0 && self.registered(c) && self.exported(c, &p.service).is_none() {
                out.push(Finding::new(
                    format!("{f}.weights.{c}"),
                    "weight_without_export",
                    format!(
                        "weight {w} goes to {c}, which does not export {}",
                        p.service
                    ),
                ));
            }
        }
        if !p.failover_order.is_empty() {
            let healthy: Vec<&str> = p
                .failover_order
                .iter()
                .filter(|c| self.exported(c, &p.service).is_some_and(|h| h > 0))
                .map(String::as_str)
                .collect();
            if healthy.len() < 2 {
                let now = match healthy.first() {
                    Some(c) => format!("only {c} has healthy endpoints for it now"),
                    None => "none of them has healthy endpoints for it now".to_string(),
                };
                out.push(Finding::new(
                    format!("{f}.failover_order"),
                    "no_healthy_fallback",
                    format!(
                        "the failover order leaves {} without a healthy fallback: {now}",
                        p.service
                    ),
                ));
            }
        }
    }

    pub fn security(&self, f: &str, p: &SecurityPolicy, out: &mut Vec<Finding>) {
        self.service(&format!("{f}.service"), &p.service, out);
        for (i, c) in p.sources.clusters.iter().enumerate() {
            self.cluster(format!("{f}.sources.clusters[{i}]"), c, out);
        }
    }

    /// An L7 authorization policy: unknown clusters; a deny whose rule holds for every
    /// request (no condition), which denies the whole service.
    pub fn authorization(&self, f: &str, p: &AuthorizationPolicy, out: &mut Vec<Finding>) {
        self.service(&format!("{f}.service"), &p.service, out);
        for (i, r) in p.rules.iter().enumerate() {
            for (j, c) in r.source_clusters.iter().enumerate() {
                self.cluster(format!("{f}.rules[{i}].source_clusters[{j}]"), c, out);
            }
            if p.action == AuthzAction::Deny && *r == AuthzRule::default() {
                out.push(Finding::new(
                    format!("{f}.rules[{i}]"),
                    "denies_everything",
                    format!(
                        "a deny rule without conditions denies every request to {}",
                        p.service
                    ),
                ));
            }
        }
    }

    /// A route: its service and its backends' services, and rules an earlier rule shadows.
    pub fn route(&self, f: &str, r: &Route, out: &mut Vec<Finding>) {
        self.service(&format!("{f}.service"), &r.service, out);
        for (j, rule) in r.rules.iter().enumerate() {
            for (b, backend) in rule.backends.iter().enumerate() {
                if let Some(s) = &backend.service {
                    self.service(&format!("{f}.rules[{j}].backends[{b}].service"), s, out);
                }
            }
            let earlier = r.rules[..j].iter().enumerate().find(|(_, a)| {
                a.matches.is_empty()
                    || (!rule.matches.is_empty()
                        && rule
                            .matches
                            .iter()
                            .all(|m| a.matches.iter().any(|am| covers(am, m))))
            });
            if let Some((i, _)) = earlier {
                out.push(Finding::new(
                    format!("{f}.rules[{j}]"),
                    "shadowed_rule",
                    format!("rules[{i}] matches every request this rule matches: it never decides"),
                ));
            }
        }
    }
}

/// Does every request `b` matches also match `a`?
fn covers(a: &RouteMatch, b: &RouteMatch) -> bool {
    let method = match (&a.method, &b.method) {
        (None, _) => true,
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        (Some(_), None) => false,
    };
    let grpc = a.grpc.is_none() || a.grpc == b.grpc;
    method
        && grpc
        && path_covers(a.path.as_ref(), b.path.as_ref())
        && a.headers.iter().all(|h| b.headers.contains(h))
        && a.query_params.iter().all(|q| b.query_params.contains(q))
}

fn path_covers(a: Option<&PathMatch>, b: Option<&PathMatch>) -> bool {
    let prefix_of = |a: &PathMatch, path: &str| {
        let p = a.value.trim_end_matches('/');
        a.kind == PathMatchKind::PathPrefix
            && (p.is_empty() || path == p || path.starts_with(&format!("{p}/")))
    };
    match (a, b) {
        (None, _) => true,
        (Some(a), None) => prefix_of(a, "/"),
        (Some(a), Some(b)) => {
            a == b || (b.kind != PathMatchKind::RegularExpression && prefix_of(a, &b.value))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route(rules: serde_json::Value) -> Route {
        serde_json::from_value(json!({"id": "r", "service": "shop/cart", "rules": rules,
            "updated_at": 1}))
        .unwrap()
    }

    fn shadowed(rules: serde_json::Value) -> Vec<String> {
        let state = FederationState::default();
        let mut out = Vec::new();
        Mesh { state: &state }.route("routes[0]", &route(rules), &mut out);
        out.into_iter()
            .filter(|f| f.code == "shadowed_rule")
            .map(|f| f.field)
            .collect()
    }

    #[test]
    fn a_rule_is_shadowed_only_when_an_earlier_one_matches_all_it_matches() {
        let b = json!([{"weight": 1}]);
        let prefix = |p: &str| json!({"path": {"type": "PathPrefix", "value": p}});
        let exact = |p: &str| json!({"path": {"type": "Exact", "value": p}});
        // /api covers /api/v2 and /api exactly, not /apix.
        assert_eq!(
            shadowed(json!([
                {"matches": [prefix("/api")], "backends": b},
                {"matches": [prefix("/api/v2"), exact("/api")], "backends": b},
                {"matches": [prefix("/apix")], "backends": b},
            ])),
            vec!["routes[0].rules[1]"]
        );
        // A rule without matches takes everything after it.
        assert_eq!(
            shadowed(json!([{"backends": b}, {"matches": [prefix("/x")], "backends": b}])),
            vec!["routes[0].rules[1]"]
        );
        // A method or header condition narrows: not shadowing.
        assert!(
            shadowed(json!([
                {"matches": [{"path": {"type": "PathPrefix", "value": "/"}, "method": "GET"}], "backends": b},
                {"matches": [prefix("/a")], "backends": b},
            ]))
            .is_empty()
        );
        // A catch-all after specific rules is fine.
        assert!(
            shadowed(json!([{"matches": [prefix("/a")], "backends": b}, {"backends": b}]))
                .is_empty()
        );
    }
}
