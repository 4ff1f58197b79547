//! Kubernetes routes into the federation store: every `HTTPRoute`/`GRPCRoute` whose parent is
//! a Service is translated ([`super::gateway_api`]) and written under this cluster's id for
//! it (`k8s-<cluster>-<12 hex>`, which the cluster's own credential may write); a route whose
//! object is gone is deleted — also one left behind while the gateway was down, found by
//! listing the store. Each object gets its verdict for the status: `Accepted` (written, or why
//! not: a field Warden cannot express, or another route of the same service — one route per
//! service) and `ResolvedRefs` (every backend Service known here or in the catalog).

use std::collections::{BTreeMap, BTreeSet};

use warden_federation::client::{ClientError, FederationClient};
use warden_federation::route::cluster_owns_route;
use warden_federation::wire::RouteBody;

use super::gateway_api::{Kind, Spec, parent_service, route_id, translate};
use crate::key::ServiceKey;

/// One object as the store holds it.
#[derive(Debug, Clone)]
pub struct Obj {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub spec: serde_json::Value,
}

/// (kind, namespace, name).
pub type ObjKey = (Kind, String, String);

/// What the status of one object says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The Service parent (`None`: none found, which `accepted` explains).
    pub parent: Option<(String, String)>,
    pub accepted: (bool, &'static str, String),
    pub resolved: (bool, &'static str, String),
}

/// Follows the objects and keeps the store's routes of this cluster in step.
pub struct RouteSync {
    me: String,
    /// Routes this gateway wrote, by id (the JSON it wrote), and each object's verdict.
    written: BTreeMap<String, String>,
    pub verdicts: BTreeMap<ObjKey, Verdict>,
}

impl RouteSync {
    pub fn new(me: &str) -> Self {
        Self {
            me: me.to_string(),
            written: BTreeMap::new(),
            verdicts: BTreeMap::new(),
        }
    }

    /// Writes what changed; with `full`, also lists the store and removes this cluster's
    /// routes that no object wants any more. `known` are the services that exist (this
    /// cluster's Services and the catalog's).
    pub async fn sync(
        &mut self,
        fed: &FederationClient,
        objs: &[Obj],
        known: &BTreeSet<ServiceKey>,
        full: bool,
    ) {
        // Plan every object first, so that a route whose object is gone is deleted before
        // another object's route for the same service is written.
        let mut planned = Vec::new();
        let mut verdicts = BTreeMap::new();
        for o in objs {
            let key = (o.kind, o.namespace.clone(), o.name.clone());
            let id = route_id(&self.me, o.kind, &o.namespace, &o.name);
            let spec: Result<Spec, _> = serde_json::from_value(o.spec.clone());
            let plan = spec
                .map_err(|e| ("spec".to_string(), e.to_string()))
                .and_then(|spec| {
                    let parent =
                        parent_service(&spec, &o.namespace).map_err(|u| (u.field, u.message))?;
                    let body = translate(o.kind, &o.namespace, &parent, &spec)
                        .map_err(|u| (u.field, u.message))?;
                    Ok((parent, body))
                });
            match plan {
                Ok((parent, body)) => planned.push((key, id, parent, body)),
                Err((field, message)) => {
                    let parent = serde_json::from_value::<Spec>(o.spec.clone())
                        .ok()
                        .and_then(|s| parent_service(&s, &o.namespace).ok());
                    verdicts.insert(
                        key,
                        Verdict {
                            parent,
                            accepted: (false, "UnsupportedValue", format!("{field}: {message}")),
                            resolved: (false, "Refused", "the route was not applied".into()),
                        },
                    );
                }
            }
        }
        let wanted: BTreeSet<String> = planned.iter().map(|p| p.1.clone()).collect();
        let gone: Vec<String> = self
            .written
            .keys()
            .filter(|id| !wanted.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            self.delete(fed, &id).await;
        }
        for (key, id, parent, body) in planned {
            let resolved = resolved(&parent, &body, known);
            let previous = self.verdicts.get(&key).map(|v| v.accepted.clone());
            let accepted = self.write(fed, &id, &body, previous).await;
            verdicts.insert(
                key,
                Verdict {
                    parent: Some(parent),
                    accepted,
                    resolved,
                },
            );
        }
        self.verdicts = verdicts;
        if full {
            match fed.routes().await {
                Ok(list) => {
                    for r in list.items {
                        if cluster_owns_route(&self.me, &r.id) && !wanted.contains(&r.id) {
                            self.delete(fed, &r.id).await;
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "cannot list routes to reconcile yet"),
            }
        }
    }

    /// Puts route `id` unless this gateway wrote the same already; the `Accepted` verdict.
    async fn write(
        &mut self,
        fed: &FederationClient,
        id: &str,
        body: &RouteBody,
        previous: Option<(bool, &'static str, String)>,
    ) -> (bool, &'static str, String) {
        let json = serde_json::to_string(body).unwrap_or_default();
        if self.written.get(id) == Some(&json)
            && let Some(p) = previous
        {
            return p;
        }
        match fed.put_route(id, body).await {
            Ok(_) => {
                tracing::info!(route = %id, service = %body.service, "route from Kubernetes applied");
                self.written.insert(id.to_string(), json);
                (true, "Accepted", format!("applied as route {id}"))
            }
            Err(ClientError::Conflict { message, .. }) => {
                self.written.remove(id);
                (false, "Conflicted", message)
            }
            Err(ClientError::BadRequest { field, message, .. }) => {
                self.written.remove(id);
                let f = field.map(|f| format!("{f}: ")).unwrap_or_default();
                (false, "UnsupportedValue", format!("{f}{message}"))
            }
            Err(e) => {
                tracing::warn!(route = %id, error = %e, "cannot write a route from Kubernetes yet");
                (false, "Pending", format!("not written yet: {e}"))
            }
        }
    }

    /// Some object is waiting: its route conflicted with another or could not be written.
    /// Worth another try soon (the conflicting route may be gone by then).
    pub fn waiting(&self) -> bool {
        self.verdicts
            .values()
            .any(|v| matches!(v.accepted.1, "Conflicted" | "Pending"))
    }

    async fn delete(&mut self, fed: &FederationClient, id: &str) {
        match fed.delete_route(id).await {
            Ok(()) | Err(ClientError::NotFound { .. }) => {
                tracing::info!(route = %id, "route from Kubernetes removed");
                self.written.remove(id);
            }
            Err(e) => tracing::warn!(route = %id, error = %e, "cannot remove a route yet"),
        }
    }
}

/// `ResolvedRefs`: the parent and every backend Service exist.
fn resolved(
    parent: &(String, String),
    body: &RouteBody,
    known: &BTreeSet<ServiceKey>,
) -> (bool, &'static str, String) {
    let mut missing: Vec<String> = Vec::new();
    let parent_key = ServiceKey::new(&parent.0, &parent.1);
    for b in body.rules.iter().flat_map(|r| &r.backends) {
        let key = match &b.service {
            Some(s) => ServiceKey::parse(s),
            None => Some(parent_key.clone()),
        };
        if let Some(k) = key
            && !known.contains(&k)
        {
            missing.push(k.to_string());
        }
    }
    missing.sort();
    missing.dedup();
    if missing.is_empty() {
        (true, "ResolvedRefs", "every backend Service exists".into())
    } else {
        (
            false,
            "BackendNotFound",
            format!(
                "no Service {} in this cluster or the mesh",
                missing.join(", ")
            ),
        )
    }
}

/// The controller Warden names in a route's `status.parents`.
pub const CONTROLLER: &str = "warden.io/gateway";

/// The merge patch of an object's status for `v`, or `None` when its conditions say the same
/// already (so writing the status does not start another round).
pub fn status_patch(
    v: &Verdict,
    status: &serde_json::Value,
    now: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> Option<serde_json::Value> {
    let (ns, name) = v.parent.clone().unwrap_or_default();
    let existing = status["parents"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["controllerName"] == CONTROLLER))
        .map(|p| p["conditions"].clone())
        .unwrap_or(serde_json::Value::Null);
    let (a, ar, am) = v.accepted.clone();
    let (r, rr, rm) = v.resolved.clone();
    let next = vec![
        super::status::cond("Accepted", a, ar, am, now),
        super::status::cond("ResolvedRefs", r, rr, rm, now),
    ];
    let conditions = super::status::changed(&existing, next)?;
    Some(serde_json::json!({"status": {"parents": [{
        "parentRef": {"group": "", "kind": "Service", "namespace": ns, "name": name},
        "controllerName": CONTROLLER,
        "conditions": conditions,
    }]}}))
}
