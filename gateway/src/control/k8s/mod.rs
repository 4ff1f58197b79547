//! [`KubeDiscoveryActor`]: local services from the Kubernetes API.
//!
//! Four `kube` watchers with reflectors follow Services, EndpointSlices, ServiceExports
//! (multicluster.x-k8s.io/v1alpha1) and Pods — metadata only, for the labels of the Pods behind
//! endpoints — across the cluster. The watchers relist on their own after
//! a `410 Gone` or a dropped connection, and the reflector stores swap in the relisted state
//! whole, so a delete whose event was missed disappears from the stores too. Whenever the
//! stores change, the full desired set is recomputed from them ([`desired::desired`]) and
//! handed to the registry, which reconciles pools and exports; the publisher then
//! withdraws from the federation store whatever is no longer exported. Status conditions are
//! written on each ServiceExport ([`status`]).
//!
//! If the ServiceExport CRD is not installed, exports by annotation still work (logged once).

pub mod desired;
pub mod gateway_api;
pub mod import_sync;
pub mod imports;
pub mod policies;
pub mod routes;
pub mod status;
pub mod tcp_ports;

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{
    Api, ApiResource, DynamicObject, ListParams, PartialObjectMeta, Patch, PatchParams,
};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

use super::addresses::{EndpointGuard, describe};
use super::guard::{InjectPanic, guarded, on_restart, spawn_supervised};
use super::import_listeners::ServeImports;
use super::registry::{RegistryActor, SetServices};
use crate::config::{GatewayConfig, StaticService};
use crate::metrics::Metrics;
use desired::{Key, Outcome};
use warden_federation::client::FederationClient;

/// The MCS ServiceExport resource.
pub fn service_export_resource() -> ApiResource {
    ApiResource {
        group: "multicluster.x-k8s.io".into(),
        version: "v1alpha1".into(),
        api_version: "multicluster.x-k8s.io/v1alpha1".into(),
        kind: "ServiceExport".into(),
        plural: "serviceexports".into(),
    }
}

/// A Gateway API route resource (`httproutes`, `grpcroutes`).
pub fn route_resource(kind: gateway_api::Kind) -> ApiResource {
    let (kind, plural) = match kind {
        gateway_api::Kind::Http => ("HTTPRoute", "httproutes"),
        gateway_api::Kind::Grpc => ("GRPCRoute", "grpcroutes"),
    };
    ApiResource {
        group: "gateway.networking.k8s.io".into(),
        version: "v1".into(),
        api_version: "gateway.networking.k8s.io/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// A Warden policy resource (`wardentrafficpolicies`, `wardensecuritypolicies`).
pub fn policy_resource(kind: policies::PolicyKind) -> ApiResource {
    ApiResource {
        group: "warden.io".into(),
        version: "v1alpha1".into(),
        api_version: "warden.io/v1alpha1".into(),
        kind: kind.name().into(),
        plural: kind.plural().into(),
    }
}

/// How often this cluster's routes in the store are reconciled without any change.
const ROUTES_EVERY: Duration = Duration::from_secs(30);
/// How soon a route that conflicted or could not be written is tried again.
const ROUTES_RETRY: Duration = Duration::from_secs(2);

/// How often ServiceExport statuses are re-checked against the store without any change.
const STATUS_EVERY: Duration = Duration::from_secs(2);
/// Changes are gathered for this long before the desired set is recomputed.
const DEBOUNCE: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
enum KubeError {
    #[error("kubernetes client configuration: {0}")]
    Config(String),
    #[error("listing {resource}: {source}")]
    List {
        resource: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("the {0} watch stream ended")]
    Ended(&'static str),
}

#[derive(Clone, Copy)]
enum Res {
    Services = 0,
    EndpointSlices = 1,
    ServiceExports = 2,
    Pods = 3,
    HttpRoutes = 4,
    GrpcRoutes = 5,
    ServiceImports = 6,
    TrafficPolicies = 7,
    SecurityPolicies = 8,
}

impl Res {
    fn name(self) -> &'static str {
        match self {
            Res::Services => "services",
            Res::EndpointSlices => "endpointslices",
            Res::ServiceExports => "serviceexports",
            Res::Pods => "pods",
            Res::HttpRoutes => "httproutes",
            Res::GrpcRoutes => "grpcroutes",
            Res::ServiceImports => "serviceimports",
            Res::TrafficPolicies => "wardentrafficpolicies",
            Res::SecurityPolicies => "wardensecuritypolicies",
        }
    }
}

/// What a watch event means to the loop.
enum Ev {
    /// A (re)list started: counted as a relist.
    Relist,
    /// The list is complete: the store holds the full state.
    Listed,
    Apply,
    Delete,
}

fn ev<K>(e: &watcher::Event<K>) -> Ev {
    match e {
        watcher::Event::Init => Ev::Relist,
        watcher::Event::InitDone => Ev::Listed,
        watcher::Event::Apply(_) | watcher::Event::InitApply(_) => Ev::Apply,
        watcher::Event::Delete(_) => Ev::Delete,
    }
}

type Events = Pin<Box<dyn Stream<Item = (Res, Result<Ev, String>)> + Send>>;

/// A watcher with a reflector writing into `writer`, retried with backoff, tagged `res`.
fn follow<K>(res: Res, api: Api<K>, writer: reflector::store::Writer<K>) -> Events
where
    K: kube::Resource
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .map(move |r| (res, r.as_ref().map(ev).map_err(|e| e.to_string())));
    Box::pin(stream)
}

/// The objects of `store` in this gateway's namespaces, with their namespace and name.
fn in_scope(
    store: &Store<DynamicObject>,
    cfg: &GatewayConfig,
) -> Vec<(String, String, Arc<DynamicObject>)> {
    let scope = &cfg.discovery.kubernetes.namespaces;
    store
        .state()
        .into_iter()
        .filter_map(|o| {
            let (ns, name) = (o.metadata.namespace.clone()?, o.metadata.name.clone()?);
            (scope.is_empty() || scope.contains(&ns)).then_some((ns, name, o))
        })
        .collect()
}

/// A status merge patch: (resource, namespace, name, what the log calls it, patch).
type StatusPatch = (ApiResource, String, String, String, serde_json::Value);

/// Merge-patches each object's status.
async fn patch_statuses(client: &kube::Client, patches: Vec<StatusPatch>) {
    for (ar, ns, name, what, patch) in patches {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => tracing::info!(object = %what, "status updated"),
            Err(e) => tracing::warn!(object = %what, error = %e, "cannot update the status"),
        }
    }
}

struct Stores {
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    exports: Store<DynamicObject>,
    /// Pod metadata: the labels endpoints carry.
    pods: Store<PartialObjectMeta<Pod>>,
    /// Gateway API routes (empty when their CRDs are not installed).
    http_routes: Store<DynamicObject>,
    grpc_routes: Store<DynamicObject>,
    /// ServiceImports (empty unless imports are on and the CRD is installed).
    imports: Store<DynamicObject>,
    /// Warden policy objects (empty when their CRDs are not installed).
    traffic_policies: Store<DynamicObject>,
    security_policies: Store<DynamicObject>,
}

impl Stores {
    /// Every HTTPRoute and GRPCRoute in this gateway's namespaces.
    fn route_objects(&self, cfg: &GatewayConfig) -> Vec<(routes::Obj, serde_json::Value)> {
        let mut out = Vec::new();
        for (kind, store) in [
            (gateway_api::Kind::Http, &self.http_routes),
            (gateway_api::Kind::Grpc, &self.grpc_routes),
        ] {
            for (ns, name, o) in in_scope(store, cfg) {
                let obj = routes::Obj {
                    kind,
                    namespace: ns,
                    name,
                    spec: o.data["spec"].clone(),
                };
                out.push((obj, o.data["status"].clone()));
            }
        }
        out
    }

    /// Every Warden policy object in this gateway's namespaces, with its status.
    fn policy_objects(&self, cfg: &GatewayConfig) -> Vec<(policies::Obj, serde_json::Value)> {
        let mut out = Vec::new();
        for (kind, store) in [
            (policies::PolicyKind::Traffic, &self.traffic_policies),
            (policies::PolicyKind::Security, &self.security_policies),
        ] {
            for (ns, name, o) in in_scope(store, cfg) {
                let obj = policies::Obj {
                    kind,
                    namespace: ns,
                    name,
                    generation: o.metadata.generation,
                    spec: o.data["spec"].clone(),
                };
                out.push((obj, o.data["status"].clone()));
            }
        }
        out
    }

    fn export_keys(&self) -> desired::Exports {
        self.exports
            .state()
            .iter()
            .filter_map(|o| {
                let key = Key::new(o.metadata.namespace.clone()?, o.metadata.name.clone()?);
                Some((key, o.metadata.annotations.clone().unwrap_or_default()))
            })
            .collect()
    }

    /// What to export, with the endpoints `guard` refuses taken out (and kept in the
    /// outcome, for the log and the ServiceExport status).
    fn desired(&self, cfg: &GatewayConfig, guard: &EndpointGuard) -> BTreeMap<Key, Outcome> {
        let services = self.services.state();
        let slices = self.slices.state();
        let pods = |ns: &str, name: &str| {
            let pod = self.pods.get(&reflector::ObjectRef::new(name).within(ns))?;
            pod.metadata.labels.clone()
        };
        let mut out = desired::desired(
            &cfg.discovery.kubernetes,
            services.iter().map(|s| s.as_ref()),
            slices.iter().map(|s| s.as_ref()),
            &self.export_keys(),
            &pods,
        );
        for o in out.values_mut() {
            if let Some(s) = o.service.take() {
                let (s, refused) = guard.filter(s);
                o.service = Some(s);
                o.refused = refused;
            }
        }
        out
    }
}

async fn run(
    cfg: Arc<GatewayConfig>,
    fed: FederationClient,
    registry: Addr<RegistryActor>,
    metrics: Arc<Metrics>,
    guard: Arc<EndpointGuard>,
    import_listeners: Option<Recipient<ServeImports>>,
) -> Result<(), KubeError> {
    let client = kube::Client::try_default()
        .await
        .map_err(|e| KubeError::Config(e.to_string()))?;
    let ar = service_export_resource();
    let exports_api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let crd = match exports_api.list(&ListParams::default().limit(1)).await {
        Ok(_) => true,
        Err(kube::Error::Api(s)) if s.code == 404 => {
            tracing::warn!(
                "the ServiceExport CRD is not installed: only Services annotated warden.io/export=\"true\" are exported"
            );
            false
        }
        Err(source) => {
            return Err(KubeError::List {
                resource: "serviceexports",
                source,
            });
        }
    };
    let (svc_r, svc_w) = reflector::store::<Service>();
    let (sl_r, sl_w) = reflector::store::<EndpointSlice>();
    let ex_w = reflector::store::Writer::<DynamicObject>::new(ar.clone());
    let (pod_r, pod_w) = reflector::store::<PartialObjectMeta<Pod>>();
    let http_ar = route_resource(gateway_api::Kind::Http);
    let grpc_ar = route_resource(gateway_api::Kind::Grpc);
    let http_w = reflector::store::Writer::<DynamicObject>::new(http_ar.clone());
    let grpc_w = reflector::store::Writer::<DynamicObject>::new(grpc_ar.clone());
    let imp_ar = import_sync::service_import_resource();
    let imp_w = reflector::store::Writer::<DynamicObject>::new(imp_ar.clone());
    let tp_ar = policy_resource(policies::PolicyKind::Traffic);
    let sp_ar = policy_resource(policies::PolicyKind::Security);
    let tp_w = reflector::store::Writer::<DynamicObject>::new(tp_ar.clone());
    let sp_w = reflector::store::Writer::<DynamicObject>::new(sp_ar.clone());
    let stores = Stores {
        services: svc_r,
        slices: sl_r,
        exports: ex_w.as_reader(),
        pods: pod_r,
        http_routes: http_w.as_reader(),
        grpc_routes: grpc_w.as_reader(),
        imports: imp_w.as_reader(),
        traffic_policies: tp_w.as_reader(),
        security_policies: sp_w.as_reader(),
    };
    let mut streams: Vec<Events> = vec![
        follow(Res::Services, Api::all(client.clone()), svc_w),
        follow(Res::EndpointSlices, Api::all(client.clone()), sl_w),
        // Metadata-only requests: the labels, not the Pods' specs and statuses.
        follow(Res::Pods, Api::all(client.clone()), pod_w),
    ];
    if crd {
        streams.push(follow(Res::ServiceExports, exports_api, ex_w));
    }
    let http_api: Api<DynamicObject> = Api::all_with(client.clone(), &http_ar);
    let grpc_api: Api<DynamicObject> = Api::all_with(client.clone(), &grpc_ar);
    let http_crd = installed(&http_api, "httproutes").await?;
    let grpc_crd = installed(&grpc_api, "grpcroutes").await?;
    if http_crd {
        streams.push(follow(Res::HttpRoutes, http_api, http_w));
    }
    if grpc_crd {
        streams.push(follow(Res::GrpcRoutes, grpc_api, grpc_w));
    }
    let imp_api: Api<DynamicObject> = Api::all_with(client.clone(), &imp_ar);
    let imports_on =
        cfg.discovery.kubernetes.imports && installed(&imp_api, "serviceimports").await?;
    if imports_on {
        streams.push(follow(Res::ServiceImports, imp_api, imp_w));
    } else if cfg.discovery.kubernetes.imports {
        tracing::warn!("the ServiceImport CRD is not installed: no service is imported");
    }
    let tp_api: Api<DynamicObject> = Api::all_with(client.clone(), &tp_ar);
    let sp_api: Api<DynamicObject> = Api::all_with(client.clone(), &sp_ar);
    let tp_crd = installed(&tp_api, "wardentrafficpolicies").await?;
    let sp_crd = installed(&sp_api, "wardensecuritypolicies").await?;
    if tp_crd {
        streams.push(follow(Res::TrafficPolicies, tp_api, tp_w));
    }
    if sp_crd {
        streams.push(follow(Res::SecurityPolicies, sp_api, sp_w));
    }
    let mut events = futures::stream::select_all(streams);
    let mut listed = [
        false,
        false,
        !crd,
        false,
        !http_crd,
        !grpc_crd,
        !imports_on,
        !tp_crd,
        !sp_crd,
    ];
    let mut policy_sync = policies::PolicySync::new(&cfg.cluster.name);
    let mut policies_dirty = true;
    let mut next_policies_full = Instant::now();
    let mut next_policies_retry = Instant::now();
    let mut next_imports = Instant::now();
    let mut route_sync = routes::RouteSync::new(&cfg.cluster.name);
    let mut routes_dirty = true;
    let mut next_routes_full = Instant::now();
    let mut next_routes_retry = Instant::now();
    let mut dirty_since: Option<Instant> = None;
    let mut last_sent: Option<Vec<StaticService>> = None;
    let mut outcomes = BTreeMap::new();
    let mut next_status = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let me = cfg.cluster.name.clone();
    loop {
        tokio::select! {
            e = events.next() => {
                let Some((res, e)) = e else { return Err(KubeError::Ended("kubernetes")) };
                match e {
                    Ok(e) => {
                        let name = match e {
                            Ev::Relist => "relist",
                            Ev::Listed => { listed[res as usize] = true; "listed" }
                            Ev::Apply => "apply",
                            Ev::Delete => "delete",
                        };
                        metrics.kube_events.with_label_values(&[res.name(), name]).inc();
                        if matches!(e, Ev::Relist) {
                            tracing::info!(resource = res.name(), "listing");
                        }
                        dirty_since.get_or_insert_with(Instant::now);
                    }
                    Err(err) => {
                        metrics.kube_events.with_label_values(&[res.name(), "error"]).inc();
                        tracing::warn!(resource = res.name(), error = %err, "watch failed; retrying with backoff");
                    }
                }
            }
            _ = tick.tick() => {
                let now = Instant::now();
                if !listed.iter().all(|l| *l) {
                    continue;
                }
                if dirty_since.is_some_and(|t| now.duration_since(t) >= DEBOUNCE) {
                    dirty_since = None;
                    routes_dirty = true;
                    policies_dirty = true;
                    let next = stores.desired(&cfg, &guard);
                    for (key, o) in &next {
                        let before = outcomes.get(key).map(|o: &Outcome| &o.refused);
                        if !o.refused.is_empty() && before != Some(&o.refused) {
                            tracing::warn!(service = %format!("{}/{}", key.namespace, key.name), refused = %describe(&o.refused), "endpoints refused");
                        }
                    }
                    outcomes = next;
                    let services: Vec<StaticService> =
                        outcomes.values().filter_map(|o| o.service.clone()).collect();
                    if last_sent.as_ref() != Some(&services) {
                        tracing::info!(exported = services.len(), "kubernetes state changed; reconciling");
                        registry.do_send(SetServices(services.clone()));
                        last_sent = Some(services);
                        next_status = now;
                    }
                }
                let retry = route_sync.waiting() && now >= next_routes_retry;
                if (http_crd || grpc_crd) && (routes_dirty || retry || now >= next_routes_full) {
                    let full = now >= next_routes_full;
                    routes_dirty = false;
                    next_routes_retry = now + ROUTES_RETRY;
                    if full {
                        next_routes_full = now + ROUTES_EVERY;
                    }
                    sync_routes(&client, &fed, &cfg, &stores, &mut route_sync, full).await;
                }
                let retry = policy_sync.waiting() && now >= next_policies_retry;
                if (tp_crd || sp_crd) && (policies_dirty || retry || now >= next_policies_full) {
                    let full = now >= next_policies_full;
                    policies_dirty = false;
                    next_policies_retry = now + ROUTES_RETRY;
                    if full {
                        next_policies_full = now + ROUTES_EVERY;
                    }
                    sync_policies(&client, &fed, &cfg, &stores, &mut policy_sync, full).await;
                }
                if imports_on && now >= next_imports {
                    next_imports = now + STATUS_EVERY;
                    let tcp = sync_imports(&client, &fed, &cfg, &stores).await;
                    if let (Some(tcp), Some(l)) = (tcp, &import_listeners) {
                        let by_pod_port = tcp.into_iter().map(|((k, p), pod)| (pod, (k, p)));
                        l.do_send(ServeImports(by_pod_port.collect()));
                    }
                }
                if crd && cfg.discovery.kubernetes.write_status && now >= next_status {
                    next_status = now + STATUS_EVERY;
                    write_statuses(&client, &fed, &me, &stores, &outcomes).await;
                }
            }
        }
    }
}

/// Whether the CRD behind `api` is installed (a 404 says it is not, logged once).
async fn installed(api: &Api<DynamicObject>, resource: &'static str) -> Result<bool, KubeError> {
    match api.list(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => {
            tracing::info!(resource, "CRD not installed: its objects are not followed");
            Ok(false)
        }
        Err(source) => Err(KubeError::List { resource, source }),
    }
}

/// Writes this cluster's Kubernetes routes to the store and each object's status.
async fn sync_routes(
    client: &kube::Client,
    fed: &FederationClient,
    cfg: &GatewayConfig,
    stores: &Stores,
    sync: &mut routes::RouteSync,
    full: bool,
) {
    let objects = stores.route_objects(cfg);
    let mut known: BTreeSet<Key> = stores
        .services
        .state()
        .iter()
        .filter_map(|s| {
            Some(Key::new(
                s.metadata.namespace.clone()?,
                s.metadata.name.clone()?,
            ))
        })
        .collect();
    if let Ok(c) = fed.services().await {
        known.extend(c.items.iter().map(|s| Key::new(&s.namespace, &s.service)));
    }
    let objs: Vec<routes::Obj> = objects.iter().map(|(o, _)| o.clone()).collect();
    sync.sync(fed, &objs, &known, full).await;
    if !cfg.discovery.kubernetes.write_status {
        return;
    }
    let now =
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    let patches = objects.iter().filter_map(|(o, status)| {
        let v = sync
            .verdicts
            .get(&(o.kind, o.namespace.clone(), o.name.clone()))?;
        let patch = routes::status_patch(v, status, &now)?;
        let what = format!("{} {}/{}", o.kind.name(), o.namespace, o.name);
        Some((
            route_resource(o.kind),
            o.namespace.clone(),
            o.name.clone(),
            what,
            patch,
        ))
    });
    patch_statuses(client, patches.collect()).await;
}

/// Writes this cluster's Warden policy objects to the store, and each object's status.
async fn sync_policies(
    client: &kube::Client,
    fed: &FederationClient,
    cfg: &GatewayConfig,
    stores: &Stores,
    sync: &mut policies::PolicySync,
    full: bool,
) {
    let objects = stores.policy_objects(cfg);
    let objs: Vec<policies::Obj> = objects.iter().map(|(o, _)| o.clone()).collect();
    sync.sync(fed, &objs, full).await;
    if !cfg.discovery.kubernetes.write_status {
        return;
    }
    let now =
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    let patches = objects.iter().filter_map(|(o, status)| {
        let v = sync
            .verdicts
            .get(&(o.kind, o.namespace.clone(), o.name.clone()))?;
        let patch = policies::status_patch(v, status, &now)?;
        let what = format!("{} {}/{}", o.kind.name(), o.namespace, o.name);
        Some((
            policy_resource(o.kind),
            o.namespace.clone(),
            o.name.clone(),
            what,
            patch,
        ))
    });
    patch_statuses(client, patches.collect()).await;
}

/// Keeps the ServiceImports, derived Services and their slices of the mesh's services;
/// the pod ports of imported TCP ports (`None`: no catalog, nothing changes).
async fn sync_imports(
    client: &kube::Client,
    fed: &FederationClient,
    cfg: &GatewayConfig,
    stores: &Stores,
) -> Option<tcp_ports::TcpPorts> {
    let catalog = match fed.services().await {
        Ok(c) => c.items,
        Err(e) => {
            tracing::debug!(error = %e, "no catalog for imports yet");
            return None;
        }
    };
    let seen = import_sync::Observed {
        services: &stores.services,
        slices: &stores.slices,
        imports: &stores.imports,
    };
    let tcp = import_sync::sync(
        client,
        &cfg.discovery.kubernetes,
        &cfg.cluster.name,
        &seen,
        &catalog,
    )
    .await;
    Some(tcp)
}

/// Patches the conditions of every ServiceExport whose conditions changed.
async fn write_statuses(
    client: &kube::Client,
    fed: &FederationClient,
    me: &str,
    stores: &Stores,
    outcomes: &BTreeMap<Key, Outcome>,
) {
    let catalog = match fed.services().await {
        Ok(c) => c.items,
        Err(e) => {
            tracing::debug!(error = %e, "no catalog for ServiceExport status yet");
            return;
        }
    };
    let now =
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    let ar = service_export_resource();
    for obj in stores.exports.state() {
        let (Some(ns), Some(name)) = (obj.metadata.namespace.clone(), obj.metadata.name.clone())
        else {
            continue;
        };
        let Some(outcome) = outcomes.get(&Key::new(&ns, &name)) else {
            continue; // out of this gateway's namespaces
        };
        let ports = outcome
            .service
            .as_ref()
            .map(|s| s.ports.clone())
            .unwrap_or_default();
        let view = status::store_view(&catalog, me, &ns, &name, &ports);
        let next = status::conditions(Some(outcome), &view, &now);
        let Some(conds) = status::changed(&obj.data["status"]["conditions"], next) else {
            continue;
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
        let patch = Patch::Merge(json!({ "status": { "conditions": conds } }));
        match api
            .patch_status(&name, &PatchParams::default(), &patch)
            .await
        {
            Ok(_) => tracing::info!(serviceexport = %format!("{ns}/{name}"), "status updated"),
            Err(e) => {
                tracing::warn!(serviceexport = %format!("{ns}/{name}"), error = %e, "cannot update status")
            }
        }
    }
}

pub struct KubeDiscoveryActor {
    cfg: Arc<GatewayConfig>,
    fed: FederationClient,
    registry: Addr<RegistryActor>,
    metrics: Arc<Metrics>,
    guard: Arc<EndpointGuard>,
    /// Told, each imports round, which pod ports serve imported TCP ports.
    import_listeners: Option<Recipient<ServeImports>>,
    restarts: u32,
    task: Option<tokio::task::AbortHandle>,
}

impl KubeDiscoveryActor {
    pub fn new(
        cfg: Arc<GatewayConfig>,
        fed: FederationClient,
        registry: Addr<RegistryActor>,
        metrics: Arc<Metrics>,
        guard: Arc<EndpointGuard>,
        import_listeners: Option<Recipient<ServeImports>>,
    ) -> Self {
        Self {
            cfg,
            fed,
            registry,
            metrics,
            guard,
            import_listeners,
            restarts: 0,
            task: None,
        }
    }
}

impl Actor for KubeDiscoveryActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let (cfg, fed, reg, m, g) = (
            self.cfg.clone(),
            self.fed.clone(),
            self.registry.clone(),
            self.metrics.clone(),
            self.guard.clone(),
        );
        let il = self.import_listeners.clone();
        let work = async move {
            if let Err(e) = run(cfg, fed, reg, m, g, il).await {
                tracing::error!(error = %e, "kubernetes discovery stopped; restarting");
            }
        };
        self.task = Some(spawn_supervised("kube_discovery", self.restarts, ctx, work));
    }
}

impl Supervised for KubeDiscoveryActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        on_restart(
            "kube_discovery",
            &mut self.restarts,
            &mut self.task,
            &self.metrics,
        );
    }
}

impl Handler<InjectPanic> for KubeDiscoveryActor {
    type Result = ();
    fn handle(&mut self, _: InjectPanic, ctx: &mut Context<Self>) {
        guarded("kube_discovery", ctx, || {
            panic!("injected panic in kube_discovery")
        });
    }
}
