//! Policy as Kubernetes resources: every `WardenTrafficPolicy` and `WardenSecurityPolicy`
//! (`warden.io/v1alpha1`, namespaced; `spec.service` names a Service of the same namespace) is
//! written to the federation store under this cluster's id for it (`k8s-<cluster>-<12 hex>`,
//! which the cluster's own credential may write), and deleted when its object goes — also one
//! left behind while the gateway was down, found by listing the store. The REST API and the
//! objects never overwrite each other: their ids differ, and where the store holds one
//! traffic policy per service, the one written first stays; the other object is `Conflicted`
//! (retried, so it applies once the first goes). Each object's status says `Accepted` (its
//! spec translates), `Programmed` (the store holds it) and `Conflicted`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use warden_federation::client::{ClientError, FederationClient};
use warden_federation::model::{AuthzAction, AuthzSources};
use warden_federation::route::cluster_owns_route;
use warden_federation::trust::digest::sha256_hex;
use warden_federation::wire::{PolicyBody, SecurityBody};

/// The two kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PolicyKind {
    Traffic,
    Security,
}

impl PolicyKind {
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Traffic => "WardenTrafficPolicy",
            PolicyKind::Security => "WardenSecurityPolicy",
        }
    }
    pub fn plural(self) -> &'static str {
        match self {
            PolicyKind::Traffic => "wardentrafficpolicies",
            PolicyKind::Security => "wardensecuritypolicies",
        }
    }
}

/// One object as the store holds it.
#[derive(Debug, Clone)]
pub struct Obj {
    pub kind: PolicyKind,
    pub namespace: String,
    pub name: String,
    pub generation: Option<i64>,
    pub spec: serde_json::Value,
}

/// (kind, namespace, name).
pub type ObjKey = (PolicyKind, String, String);

/// The store id of an object of this cluster.
pub fn policy_id(me: &str, kind: PolicyKind, ns: &str, name: &str) -> String {
    let h = sha256_hex(format!("{}/{ns}/{name}", kind.name()).as_bytes());
    format!("k8s-{me}-{}", &h[..12])
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TrafficSpec {
    service: String,
    #[serde(default)]
    failover_order: Vec<String>,
    #[serde(default)]
    weights: BTreeMap<String, u32>,
    #[serde(default)]
    overprovisioning_percent: Option<u32>,
    #[serde(default)]
    max_egress_percent: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SourcesSpec {
    #[serde(default)]
    trust_domains: Vec<String>,
    #[serde(default)]
    spiffe_ids: Vec<String>,
    #[serde(default)]
    clusters: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SecuritySpec {
    service: String,
    action: AuthzAction,
    sources: SourcesSpec,
}

/// What an object becomes in the store.
#[derive(Debug, Clone)]
pub enum Body {
    Traffic(PolicyBody),
    Security(SecurityBody),
}

/// The store body of an object; the error is the spec's problem.
pub fn translate(o: &Obj) -> Result<Body, String> {
    let service = |s: &str| match s.contains('/') {
        true => Err(format!(
            "spec.service: {s:?} — name a Service of this namespace, without one"
        )),
        false => Ok(format!("{}/{s}", o.namespace)),
    };
    match o.kind {
        PolicyKind::Traffic => {
            let s: TrafficSpec =
                serde_json::from_value(o.spec.clone()).map_err(|e| format!("spec: {e}"))?;
            Ok(Body::Traffic(PolicyBody {
                id: None,
                service: service(&s.service)?,
                failover_order: s.failover_order,
                weights: s.weights,
                overprovisioning_percent: s.overprovisioning_percent,
                max_egress_percent: s.max_egress_percent,
            }))
        }
        PolicyKind::Security => {
            let s: SecuritySpec =
                serde_json::from_value(o.spec.clone()).map_err(|e| format!("spec: {e}"))?;
            Ok(Body::Security(SecurityBody {
                id: None,
                service: service(&s.service)?,
                action: s.action,
                sources: AuthzSources {
                    trust_domains: s.sources.trust_domains,
                    spiffe_ids: s.sources.spiffe_ids,
                    clusters: s.sources.clusters,
                },
            }))
        }
    }
}

/// What the status of one object says: (holds, reason, message) of each condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub id: String,
    pub accepted: (bool, &'static str, String),
    pub programmed: (bool, &'static str, String),
    pub conflicted: (bool, &'static str, String),
    pub generation: Option<i64>,
}

impl Verdict {
    fn of(id: &str, generation: Option<i64>, outcome: Outcome) -> Self {
        let ok = |r: &'static str, m: String| (true, r, m);
        let no = |r: &'static str, m: String| (false, r, m);
        let (accepted, programmed, conflicted) = match outcome {
            Outcome::Written => (
                ok("Accepted", "the spec is valid".into()),
                ok("Programmed", format!("in the federation store as {id}")),
                no("NoConflict", String::new()),
            ),
            Outcome::Invalid(m) => (
                no("Invalid", m),
                no("Invalid", "not written".into()),
                no("NoConflict", String::new()),
            ),
            Outcome::Conflicted(m) => (
                ok("Accepted", "the spec is valid".into()),
                no(
                    "Conflicted",
                    "not written: another policy holds the service".into(),
                ),
                (true, "Conflicted", m),
            ),
            Outcome::Pending(m) => (
                ok("Accepted", "the spec is valid".into()),
                no("Pending", m),
                no("NoConflict", String::new()),
            ),
        };
        Verdict {
            id: id.to_string(),
            accepted,
            programmed,
            conflicted,
            generation,
        }
    }
}

enum Outcome {
    Written,
    Invalid(String),
    Conflicted(String),
    Pending(String),
}

/// Follows the objects and keeps this cluster's policies in the store in step.
pub struct PolicySync {
    me: String,
    /// Policies this gateway wrote, by (kind, id): the JSON it wrote.
    written: BTreeMap<(PolicyKind, String), String>,
    pub verdicts: BTreeMap<ObjKey, Verdict>,
}

impl PolicySync {
    pub fn new(me: &str) -> Self {
        Self {
            me: me.to_string(),
            written: BTreeMap::new(),
            verdicts: BTreeMap::new(),
        }
    }

    /// An object is waiting: conflicted or not written yet; worth another try soon.
    pub fn waiting(&self) -> bool {
        self.verdicts
            .values()
            .any(|v| matches!(v.programmed.1, "Conflicted" | "Pending"))
    }

    /// Writes what changed and deletes what no object wants; with `full`, also lists the store
    /// for this cluster's policies left behind.
    pub async fn sync(&mut self, fed: &FederationClient, objs: &[Obj], full: bool) {
        let mut planned = Vec::new();
        let mut verdicts = BTreeMap::new();
        for o in objs {
            let key = (o.kind, o.namespace.clone(), o.name.clone());
            let id = policy_id(&self.me, o.kind, &o.namespace, &o.name);
            match translate(o) {
                Ok(body) => planned.push((key, id, o.generation, body)),
                Err(m) => {
                    verdicts.insert(key, Verdict::of(&id, o.generation, Outcome::Invalid(m)));
                }
            }
        }
        let wanted: BTreeSet<(PolicyKind, String)> =
            planned.iter().map(|p| (p.0.0, p.1.clone())).collect();
        let gone: Vec<(PolicyKind, String)> = self
            .written
            .keys()
            .filter(|k| !wanted.contains(*k))
            .cloned()
            .collect();
        for (kind, id) in gone {
            self.delete(fed, kind, &id).await;
        }
        for (key, id, generation, body) in planned {
            let outcome = self.write(fed, key.0, &id, &body).await;
            verdicts.insert(key, Verdict::of(&id, generation, outcome));
        }
        self.verdicts = verdicts;
        if full {
            let mut stored = Vec::new();
            match fed.traffic_policies().await {
                Ok(l) => stored.extend(l.items.into_iter().map(|p| (PolicyKind::Traffic, p.id))),
                Err(e) => tracing::debug!(error = %e, "cannot list traffic policies yet"),
            }
            match fed.security_policies().await {
                Ok(l) => stored.extend(l.items.into_iter().map(|p| (PolicyKind::Security, p.id))),
                Err(e) => tracing::debug!(error = %e, "cannot list security policies yet"),
            }
            for (kind, id) in stored {
                if cluster_owns_route(&self.me, &id) && !wanted.contains(&(kind, id.clone())) {
                    self.delete(fed, kind, &id).await;
                }
            }
        }
    }

    async fn write(
        &mut self,
        fed: &FederationClient,
        kind: PolicyKind,
        id: &str,
        body: &Body,
    ) -> Outcome {
        let json = match body {
            Body::Traffic(b) => serde_json::to_string(b),
            Body::Security(b) => serde_json::to_string(b),
        }
        .unwrap_or_default();
        let key = (kind, id.to_string());
        if self.written.get(&key) == Some(&json) {
            return Outcome::Written;
        }
        let put = match body {
            Body::Traffic(b) => fed.put_traffic_policy(id, b).await.map(|_| ()),
            Body::Security(b) => fed.put_security_policy(id, b).await.map(|_| ()),
        };
        match put {
            Ok(()) => {
                tracing::info!(policy = %id, kind = kind.name(), "policy from Kubernetes applied");
                self.written.insert(key, json);
                Outcome::Written
            }
            Err(ClientError::Conflict { message, .. }) => {
                self.written.remove(&key);
                Outcome::Conflicted(message)
            }
            Err(ClientError::BadRequest { field, message, .. }) => {
                self.written.remove(&key);
                let f = field.map(|f| format!("{f}: ")).unwrap_or_default();
                Outcome::Invalid(format!("{f}{message}"))
            }
            Err(e) => {
                tracing::warn!(policy = %id, error = %e, "cannot write a policy from Kubernetes yet");
                Outcome::Pending(format!("not written yet: {e}"))
            }
        }
    }

    async fn delete(&mut self, fed: &FederationClient, kind: PolicyKind, id: &str) {
        let r = match kind {
            PolicyKind::Traffic => fed.delete_traffic_policy(id).await,
            PolicyKind::Security => fed.delete_security_policy(id).await,
        };
        match r {
            Ok(()) | Err(ClientError::NotFound { .. }) => {
                tracing::info!(policy = %id, kind = kind.name(), "policy from Kubernetes removed");
                self.written.remove(&(kind, id.to_string()));
            }
            Err(e) => tracing::warn!(policy = %id, error = %e, "cannot remove a policy yet"),
        }
    }
}

/// The merge patch of an object's status for `v`, or `None` when it says the same already.
pub fn status_patch(
    v: &Verdict,
    status: &serde_json::Value,
    now: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> Option<serde_json::Value> {
    let cond = |t: &str, c: &(bool, &'static str, String)| {
        let mut c = super::status::cond(t, c.0, c.1, c.2.clone(), now);
        c.observed_generation = v.generation;
        c
    };
    let next = vec![
        cond("Accepted", &v.accepted),
        cond("Programmed", &v.programmed),
        cond("Conflicted", &v.conflicted),
    ];
    let conditions = super::status::changed(&status["conditions"], next);
    if conditions.is_none() && status["policyId"] == v.id.as_str() {
        return None;
    }
    let conditions = match conditions {
        Some(c) => serde_json::to_value(c).unwrap_or_default(),
        None => status["conditions"].clone(),
    };
    Some(serde_json::json!({"status": {"policyId": v.id, "conditions": conditions}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(kind: PolicyKind, spec: serde_json::Value) -> Obj {
        Obj {
            kind,
            namespace: "shop".into(),
            name: "cart".into(),
            generation: Some(2),
            spec,
        }
    }

    #[test]
    fn specs_translate_to_store_bodies_and_bad_ones_are_named() {
        let t = translate(&obj(
            PolicyKind::Traffic,
            serde_json::json!({"service": "cart", "weights": {"east": 80, "west": 20}}),
        ))
        .unwrap();
        let Body::Traffic(b) = t else { panic!() };
        assert_eq!((b.service.as_str(), b.weights["east"]), ("shop/cart", 80));
        let s = translate(&obj(
            PolicyKind::Security,
            serde_json::json!({"service": "cart", "action": "deny",
                "sources": {"clusters": ["west"]}}),
        ))
        .unwrap();
        let Body::Security(b) = s else { panic!() };
        assert_eq!(b.sources.clusters, ["west"]);
        let e = translate(&obj(
            PolicyKind::Traffic,
            serde_json::json!({"service": "other/cart"}),
        ))
        .unwrap_err();
        assert!(e.starts_with("spec.service"), "{e}");
        let e = translate(&obj(
            PolicyKind::Traffic,
            serde_json::json!({"service": "cart", "wieghts": {}}),
        ))
        .unwrap_err();
        assert!(e.contains("wieghts"), "{e}");
        assert!(cluster_owns_route(
            "east",
            &policy_id("east", PolicyKind::Traffic, "shop", "cart")
        ));
        assert_ne!(
            policy_id("east", PolicyKind::Traffic, "shop", "cart"),
            policy_id("east", PolicyKind::Security, "shop", "cart")
        );
    }
}
