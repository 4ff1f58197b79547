//! The I/O half of ServiceImports: keeps in the cluster the objects [`super::imports`]
//! describes. Each round it compares what the reflector stores hold with what is wanted and
//! creates, replaces (with the stored `resourceVersion`: a 409 from a concurrent writer — the
//! other gateway replica — is left to the next round) or deletes — deletes only objects that
//! carry the owner labels, and never changes one that does not. A derived Service's ClusterIP
//! (allocated by the API server) goes into its ServiceImport's `spec.ips`. Each round also
//! answers which pod ports serve which imported TCP port ([`super::tcp_ports`]), for the
//! gateway's import listeners.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::json;
use warden_federation::wire::CatalogService;

use super::desired::{Key, SERVICE_NAME_LABEL};
use super::imports::{
    Import, derived_service, derived_slice, import_conditions, import_labels, import_spec, imports,
    owned, served_ports,
};
use super::status;
use super::tcp_ports::{self, TcpPorts};
use crate::config::KubernetesSection;

/// The ServiceImport resource.
pub fn service_import_resource() -> kube::api::ApiResource {
    kube::api::ApiResource {
        group: "multicluster.x-k8s.io".into(),
        version: "v1alpha1".into(),
        api_version: "multicluster.x-k8s.io/v1alpha1".into(),
        kind: "ServiceImport".into(),
        plural: "serviceimports".into(),
    }
}

/// What a round reads.
pub struct Observed<'a> {
    pub services: &'a Store<Service>,
    pub slices: &'a Store<EndpointSlice>,
    pub imports: &'a Store<DynamicObject>,
}

/// The ready addresses of the gateway Service's endpoints and the pod port of its
/// `gateway_port_name` port; `None` when that port is not known yet.
pub fn gateway_target(
    cfg: &KubernetesSection,
    slices: &Store<EndpointSlice>,
) -> Option<(Vec<String>, u16)> {
    let (ns, name) = cfg.gateway_service.split_once('/')?;
    let mut addresses = BTreeSet::new();
    let mut port = None;
    for s in slices.state() {
        let labels = s.metadata.labels.as_ref();
        if s.metadata.namespace.as_deref() != Some(ns)
            || labels
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
                .map(String::as_str)
                != Some(name)
        {
            continue;
        }
        let p = s
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(cfg.gateway_port_name.as_str()))
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok());
        let Some(p) = p else { continue };
        port = Some(p);
        for e in &s.endpoints {
            if e.conditions.as_ref().and_then(|c| c.ready) != Some(false) {
                addresses.extend(e.addresses.iter().cloned());
            }
        }
    }
    Some((addresses.into_iter().collect(), port?))
}

fn ns_name(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<(String, String)> {
    Some((meta.namespace.clone()?, meta.name.clone()?))
}

/// One round: every import's objects made or corrected, and Warden's objects of imports that
/// are gone deleted. Errors are logged; the next round tries again. Returns the pod port of
/// each imported raw TCP port this cluster serves.
pub async fn sync(
    client: &kube::Client,
    cfg: &KubernetesSection,
    me: &str,
    seen: &Observed<'_>,
    catalog: &[CatalogService],
) -> TcpPorts {
    let wanted = imports(catalog, &cfg.namespaces, me);
    // An import whose derived name a foreign Service holds gets nothing (and no pod port).
    let taken = |imp: &Import| {
        seen.services
            .get(&ObjectRef::new(&imp.derived).within(&imp.key.namespace))
            .is_some_and(|s| !owned(s.metadata.labels.as_ref()))
    };
    let servable: Vec<Import> = wanted.iter().filter(|i| !taken(i)).cloned().collect();
    let held = tcp_ports::held(seen.services.state().iter().map(|s| s.as_ref()));
    let tcp = tcp_ports::allocate(&servable, &held, cfg.import_tcp_ports);
    let target = gateway_target(cfg, seen.slices);
    if target.is_none() {
        tracing::debug!(gateway_service = %cfg.gateway_service, "the gateway's own endpoints are not known yet: derived Services wait");
    }
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    // A Service needs a port: an import with none served has no derived objects.
    let serves = |imp: &Import| !served_ports(imp, 0, &tcp).is_empty();
    for imp in &wanted {
        let (ip, taken) = match &target {
            Some((addrs, port)) if serves(imp) => {
                derived(client, seen, imp, addrs, *port, &tcp).await
            }
            _ => (None, taken(imp)),
        };
        let conds = import_conditions(imp, taken, &tcp, cfg.import_tcp_ports);
        service_import(client, seen, imp, ip.as_deref(), conds, &now).await;
    }
    let with_derived: Vec<&Import> = wanted.iter().filter(|i| serves(i)).collect();
    collect(client, seen, &wanted, &with_derived).await;
    tcp
}

/// Makes or corrects the derived Service and its slice; (its ClusterIP, whether the name is
/// taken by an object Warden did not make).
async fn derived(
    client: &kube::Client,
    seen: &Observed<'_>,
    imp: &Import,
    addrs: &[String],
    port: u16,
    tcp: &TcpPorts,
) -> (Option<String>, bool) {
    let ns = &imp.key.namespace;
    let at = ObjectRef::new(&imp.derived).within(ns);
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let want = derived_service(imp, port, tcp);
    let ip = match seen.services.get(&at) {
        Some(s) if !owned(s.metadata.labels.as_ref()) => return (None, true),
        Some(s) => {
            let ip = s.spec.as_ref().and_then(|p| p.cluster_ip.clone());
            let same = s.spec.as_ref().map(|p| &p.ports) == want.spec.as_ref().map(|p| &p.ports)
                && s.metadata.labels == want.metadata.labels;
            if !same {
                let mut next = want.clone();
                next.metadata.resource_version = s.metadata.resource_version.clone();
                if let Some(spec) = next.spec.as_mut() {
                    spec.cluster_ip = ip.clone();
                }
                written(
                    "replace",
                    "service",
                    ns,
                    &imp.derived,
                    services
                        .replace(&imp.derived, &PostParams::default(), &next)
                        .await,
                );
            }
            ip
        }
        None => match services.create(&PostParams::default(), &want).await {
            Ok(s) => {
                tracing::info!(service = %imp.key, derived = %imp.derived, "derived Service created");
                s.spec.and_then(|p| p.cluster_ip)
            }
            Err(e) => {
                tracing::warn!(service = %imp.key, error = %e, "cannot create the derived Service");
                None
            }
        },
    };
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let want = derived_slice(imp, addrs, port, tcp);
    match seen.slices.get(&ObjectRef::new(&imp.derived).within(ns)) {
        Some(s) if !owned(s.metadata.labels.as_ref()) => {}
        Some(s) => {
            let same = s.endpoints == want.endpoints
                && s.ports == want.ports
                && s.metadata.labels == want.metadata.labels;
            if !same {
                let mut next = want;
                next.metadata.resource_version = s.metadata.resource_version.clone();
                written(
                    "replace",
                    "endpointslice",
                    ns,
                    &imp.derived,
                    slices
                        .replace(&imp.derived, &PostParams::default(), &next)
                        .await,
                );
            }
        }
        None => written(
            "create",
            "endpointslice",
            ns,
            &imp.derived,
            slices.create(&PostParams::default(), &want).await,
        ),
    }
    (ip, false)
}

/// Makes or corrects the ServiceImport and its status.
async fn service_import(
    client: &kube::Client,
    seen: &Observed<'_>,
    imp: &Import,
    ip: Option<&str>,
    conditions: Vec<super::imports::Condition>,
    now: &Time,
) {
    let ns = &imp.key.namespace;
    let name = &imp.key.name;
    let ar = service_import_resource();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    let existing = seen
        .imports
        .get(&ObjectRef::new_with(name, ar.clone()).within(ns));
    let spec = match serde_json::to_value(import_spec(imp, ip)) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "cannot encode a ServiceImport");
            return;
        }
    };
    let mut obj = DynamicObject::new(name, &ar).within(ns);
    obj.metadata.labels = Some(import_labels());
    obj.data = json!({ "spec": spec });
    let current = match existing {
        Some(e) if !owned(e.metadata.labels.as_ref()) => {
            tracing::debug!(service = %imp.key, "a ServiceImport Warden did not make: left alone");
            return;
        }
        Some(e) => {
            if e.data["spec"] != obj.data["spec"] || e.metadata.labels != obj.metadata.labels {
                obj.metadata.resource_version = e.metadata.resource_version.clone();
                written(
                    "replace",
                    "serviceimport",
                    ns,
                    name,
                    api.replace(name, &PostParams::default(), &obj).await,
                );
            }
            e.data["status"].clone()
        }
        None => {
            match api.create(&PostParams::default(), &obj).await {
                Ok(_) => {
                    tracing::info!(service = %imp.key, clusters = ?imp.clusters, "ServiceImport created")
                }
                Err(e) => {
                    tracing::warn!(service = %imp.key, error = %e, "cannot create the ServiceImport");
                    return;
                }
            }
            serde_json::Value::Null
        }
    };
    let next: Vec<_> = conditions
        .into_iter()
        .map(|(t, ok, reason, message)| status::cond(t, ok, reason, message, now))
        .collect();
    let clusters: Vec<_> = imp
        .clusters
        .iter()
        .map(|c| json!({ "cluster": c }))
        .collect();
    let conds = status::changed(&current["conditions"], next);
    if conds.is_none() && current["clusters"] == json!(clusters) {
        return;
    }
    let conds = match conds {
        Some(c) => serde_json::to_value(c).unwrap_or_default(),
        None => current["conditions"].clone(),
    };
    let patch = Patch::Merge(json!({ "status": { "clusters": clusters, "conditions": conds } }));
    written(
        "patch status of",
        "serviceimport",
        ns,
        name,
        api.patch_status(name, &PatchParams::default(), &patch)
            .await,
    );
}

/// Deletes Warden's import objects whose service the mesh no longer exports, and the derived
/// objects of imports that serve no port.
async fn collect(
    client: &kube::Client,
    seen: &Observed<'_>,
    wanted: &[Import],
    with_derived: &[&Import],
) {
    let imports: BTreeSet<(String, String)> = wanted
        .iter()
        .map(|i| (i.key.namespace.clone(), i.key.name.clone()))
        .collect();
    let derived: BTreeSet<(String, String)> = with_derived
        .iter()
        .map(|i| (i.key.namespace.clone(), i.derived.clone()))
        .collect();
    for s in seen.services.state() {
        if let Some((ns, name)) = ns_name(&s.metadata)
            .filter(|k| owned(s.metadata.labels.as_ref()) && !derived.contains(k))
        {
            let api: Api<Service> = Api::namespaced(client.clone(), &ns);
            written(
                "delete",
                "service",
                &ns,
                &name,
                api.delete(&name, &DeleteParams::default()).await,
            );
        }
    }
    for s in seen.slices.state() {
        if let Some((ns, name)) = ns_name(&s.metadata)
            .filter(|k| owned(s.metadata.labels.as_ref()) && !derived.contains(k))
        {
            let api: Api<EndpointSlice> = Api::namespaced(client.clone(), &ns);
            written(
                "delete",
                "endpointslice",
                &ns,
                &name,
                api.delete(&name, &DeleteParams::default()).await,
            );
        }
    }
    let ar = service_import_resource();
    for o in seen.imports.state() {
        if let Some((ns, name)) = ns_name(&o.metadata)
            .filter(|k| owned(o.metadata.labels.as_ref()) && !imports.contains(k))
        {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
            written(
                "delete",
                "serviceimport",
                &ns,
                &name,
                api.delete(&name, &DeleteParams::default()).await,
            );
            tracing::info!(service = %Key::new(&ns, &name), "no cluster exports it any more: import removed");
        }
    }
}

/// Logs a write's outcome (a 409 is a concurrent writer: the next round sees its result).
fn written<T>(what: &str, kind: &str, ns: &str, name: &str, r: Result<T, kube::Error>) {
    match r {
        Ok(_) => tracing::debug!(object = %format!("{kind} {ns}/{name}"), "{what} done"),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            tracing::debug!(object = %format!("{kind} {ns}/{name}"), "{what}: changed meanwhile, next round")
        }
        Err(e) => {
            tracing::warn!(object = %format!("{kind} {ns}/{name}"), error = %e, "cannot {what} the object")
        }
    }
}
