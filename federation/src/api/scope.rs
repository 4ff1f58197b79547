//! What a cluster credential may do: read, and write what is that cluster's own — its lease,
//! its exports (with their health), its registered gateway address, its own trust domain's
//! bundle (bundle status travels with the lease), the routes and the traffic and security
//! policies its gateway makes from the cluster's Kubernetes objects (`HTTPRoute`/`GRPCRoute`,
//! `WardenTrafficPolicy`, `WardenSecurityPolicy`: ids `k8s-<cluster>-<12 hex>`), and issuing
//! itself a new credential. Every other write needs the admin token or an admin
//! identity.

use axum::http::Method;

use crate::paths;
use crate::route::cluster_owns_route;

/// Whether the credential of `cluster` may make this request; the refusal says why.
/// `owner_of` names the cluster that holds a trust domain.
pub fn cluster_may(
    method: &Method,
    path: &str,
    cluster: &str,
    owner_of: impl Fn(&str) -> Option<String>,
) -> Result<(), String> {
    if matches!(*method, Method::GET | Method::HEAD) {
        return Ok(());
    }
    let rest = path
        .strip_prefix(paths::PREFIX)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or("");
    let segs: Vec<&str> = rest.split('/').collect();
    let own = |c: &str| c == cluster;
    let allowed = match (method, segs.as_slice()) {
        (&Method::PUT | &Method::DELETE, ["clusters", c, "lease"]) => own(c),
        (&Method::PUT, ["clusters", c, "gateway"]) => own(c),
        (&Method::POST, ["clusters", c, "credential"]) => own(c),
        (&Method::PUT | &Method::DELETE, ["clusters", c, "services", _ns, _svc]) => own(c),
        (&Method::PUT, ["trust", "bundles", td]) => owner_of(td).as_deref() == Some(cluster),
        // Routes its gateway makes from the cluster's own Kubernetes objects.
        (&Method::PUT | &Method::DELETE, ["routes", id]) => cluster_owns_route(cluster, id),
        // Policies its gateway makes from the cluster's own Kubernetes objects.
        (&Method::PUT | &Method::DELETE, ["traffic", "policies", id])
        | (&Method::PUT | &Method::DELETE, ["security", "policies", id]) => {
            cluster_owns_route(cluster, id)
        }
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(format!(
            "the credential of cluster {cluster} may only read and write that cluster's own lease, exports, gateway address, trust bundle and the routes and policies made from its Kubernetes objects (k8s-{cluster}-<12 hex>); {method} {path} needs the admin token"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn may(method: Method, path: &str) -> bool {
        let owner = |td: &str| (td == "east.test").then(|| "east".to_string());
        cluster_may(&method, path, "east", owner).is_ok()
    }

    #[test]
    fn a_cluster_writes_only_what_is_its_own() {
        assert!(may(Method::GET, &paths::cluster("west")));
        assert!(may(Method::GET, paths::CATALOG));
        assert!(may(Method::PUT, &paths::lease("east")));
        assert!(may(Method::DELETE, &paths::lease("east")));
        assert!(may(Method::PUT, &paths::export("east", "shop", "cart")));
        assert!(may(Method::DELETE, &paths::export("east", "shop", "cart")));
        assert!(may(Method::PUT, &paths::cluster_gateway("east")));
        assert!(may(Method::PUT, &paths::bundle("east.test")));
        assert!(may(Method::POST, &paths::cluster_credential("east")));

        assert!(!may(Method::PUT, &paths::lease("west")));
        assert!(!may(Method::PUT, &paths::export("west", "shop", "cart")));
        assert!(!may(Method::PUT, &paths::cluster_gateway("west")));
        assert!(!may(Method::PUT, &paths::bundle("west.test")));
        assert!(!may(Method::POST, &paths::cluster_credential("west")));
        assert!(!may(Method::POST, paths::CLUSTERS));
        assert!(!may(Method::DELETE, &paths::cluster("east")));
        assert!(may(
            Method::PUT,
            &paths::traffic_policy("k8s-east-0123456789ab")
        ));
        assert!(may(
            Method::DELETE,
            &paths::security_policy("k8s-east-0123456789ab")
        ));
        assert!(!may(
            Method::PUT,
            &paths::traffic_policy("k8s-west-0123456789ab")
        ));
        assert!(!may(Method::PUT, &paths::security_policy("cart-west")));
        assert!(!may(Method::POST, paths::SECURITY_POLICIES));
        assert!(!may(Method::POST, paths::TRAFFIC_POLICIES));
        assert!(!may(Method::POST, paths::JOIN_TOKENS));
        assert!(!may(Method::POST, paths::MEMBERS));
        // Routes: only the Kubernetes ones of its own, by the exact id shape.
        assert!(may(Method::PUT, &paths::route("k8s-east-0123456789ab")));
        assert!(may(Method::DELETE, &paths::route("k8s-east-0123456789ab")));
        assert!(!may(Method::PUT, &paths::route("k8s-west-0123456789ab")));
        assert!(!may(Method::PUT, &paths::route("k8s-east-2-0123456789ab")));
        assert!(!may(Method::PUT, &paths::route("k8s-east-0123456789abc")));
        assert!(!may(Method::PUT, &paths::route("k8s-east-0123456789AB")));
        assert!(!may(Method::PUT, &paths::route("cart-canary")));
        assert!(!may(Method::POST, paths::ROUTES));
        assert!(!may(Method::POST, paths::RESILIENCE_POLICIES));
        assert!(!may(
            Method::PUT,
            &paths::resilience_policy("k8s-east-0123456789ab")
        ));
        // Path tricks name no route of its own.
        assert!(!may(
            Method::PUT,
            "/api/v1/clusters/east/lease/../../west/lease"
        ));
        assert!(!may(Method::PUT, "/api/v1//clusters/east/lease"));
    }
}
