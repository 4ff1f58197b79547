//! Immutable routing snapshots the data path reads lock-free, and the handles that publish them.
//!
//! Two tables, each behind an `ArcSwap`: the [`LocalTable`] (this cluster's services and the
//! health of their endpoints, published by the pool actors) and the [`RemoteTable`] (what the
//! federation says about other clusters, published by the catalog watcher). A request loads
//! each once. In-flight counters live in `Arc<AtomicU32>` that survive republishing, so
//! least-request balancing sees every request in flight.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;
use serde::Serialize;
use warden_federation::model::SubsetHealth;

use crate::key::ServiceKey;

/// Requests in flight to one target; shared across snapshots.
#[derive(Debug, Default)]
pub struct InFlight(AtomicU32);

impl InFlight {
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
    /// Counts a request until the guard drops.
    pub fn track(self: &Arc<Self>) -> InFlightGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        InFlightGuard(self.clone())
    }
}

/// Decrements the in-flight count on drop.
pub struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One local endpoint as the data path sees it.
#[derive(Debug, Clone)]
pub struct LocalEndpoint {
    pub addr: String,
    /// Its labels, for route subsets (`None`: unlabelled).
    pub labels: Option<Labels>,
    /// Healthy by active probes and not ejected by outlier detection.
    pub available: bool,
    /// 0.0–1.0: grows from 0 to 1 over the failback ramp after the endpoint recovers.
    pub ramp: f64,
    pub inflight: Arc<InFlight>,
}

/// Same address, state and counter: publishing it again would change nothing.
impl PartialEq for LocalEndpoint {
    fn eq(&self, o: &Self) -> bool {
        self.addr == o.addr
            && self.labels == o.labels
            && self.available == o.available
            && self.ramp == o.ramp
            && Arc::ptr_eq(&self.inflight, &o.inflight)
    }
}

/// An endpoint's labels, shared between snapshots.
pub type Labels = Arc<std::collections::BTreeMap<String, String>>;

/// A local service.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalService {
    pub endpoints: Vec<LocalEndpoint>,
    pub weight: u32,
    /// Endpoints speak HTTP/2 (h2c prior knowledge): services exported as `http2` or `grpc`.
    pub h2: bool,
    /// The service port the endpoints serve (the service's first port).
    pub port: u16,
    /// Where every port of the service is served (the first on each endpoint's own port).
    pub ports: PortTargets,
    /// Published to the federation: only then may other clusters reach it.
    pub exported: bool,
    /// Only these clusters may reach it (empty: every cluster).
    pub export_to: Arc<[String]>,
}

/// `addr` (`host:port`, `[v6]:port`) on another port.
pub fn with_port(addr: &str, port: u16) -> Option<String> {
    let (host, _) = addr.rsplit_once(':')?;
    Some(format!("{host}:{port}"))
}

/// A local endpoint's address for a port served at `target` (its own address for the first).
pub fn local_addr(
    addr: &str,
    target: Option<crate::config::TargetPort>,
) -> std::borrow::Cow<'_, str> {
    match target
        .filter(|t| !t.own)
        .and_then(|t| with_port(addr, t.port))
    {
        Some(moved) => std::borrow::Cow::Owned(moved),
        None => std::borrow::Cow::Borrowed(addr),
    }
}

/// Each service port and where the endpoints serve it.
pub type PortTargets = Arc<[(u16, crate::config::TargetPort)]>;

impl LocalService {
    /// Where the endpoints serve service port `port`; `None`: not a port of the service.
    pub fn target(&self, port: u16) -> Option<crate::config::TargetPort> {
        self.ports.iter().find(|(p, _)| *p == port).map(|(_, t)| *t)
    }

    pub fn available_count(&self) -> usize {
        self.endpoints.iter().filter(|e| e.available).count()
    }
}

/// Local services, published by the pool actors.
#[derive(Debug, Clone, Default)]
pub struct LocalTable {
    pub services: HashMap<ServiceKey, Arc<LocalService>>,
}

/// Another cluster's copy of a service, reached through that cluster's gateway.
#[derive(Debug, Clone, Serialize)]
pub struct RemoteCluster {
    /// Shared by every export of the cluster in one routing table (a rebuild copies no string).
    pub cluster: Arc<str>,
    pub region: Arc<str>,
    pub zone: Arc<str>,
    pub gateway: Arc<str>,
    /// The remote gateway must present an identity of this trust domain.
    pub trust_domain: Arc<str>,
    pub healthy_endpoints: u32,
    /// Healthy endpoints per label set, as the cluster's gateway published them (empty when it
    /// published none: then no subset of a route is sent there).
    pub subsets: Arc<[SubsetHealth]>,
    pub weight: u32,
    /// The cluster's lease is fresh (or leases are not in use for it).
    pub live: bool,
    #[serde(skip)]
    pub inflight: Arc<InFlight>,
}

impl RemoteCluster {
    pub fn available(&self) -> bool {
        self.live && self.healthy_endpoints > 0
    }
}

/// A traffic policy for one service, from the federation store.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RoutePolicy {
    pub id: String,
    /// Explicit failover order of clusters (replaces locality priorities).
    pub failover_order: Vec<String>,
    /// Cross-cluster weights: split traffic on purpose (the local cluster may be listed).
    pub weights: BTreeMap<String, u32>,
    /// Overrides the overprovisioning factor (percent) for this service.
    pub overprovisioning_percent: Option<u32>,
    /// Cap on the share (percent) of this cluster's traffic that may leave it while local
    /// endpoints can serve.
    pub max_egress_percent: Option<u32>,
}

/// What the federation says about other clusters.
#[derive(Debug, Clone, Default)]
pub struct RemoteTable {
    /// Store revision this table reflects.
    pub revision: u64,
    /// Whether the watch stream is connected (routing continues from the last table if not).
    pub connected: bool,
    pub services: HashMap<ServiceKey, Arc<[RemoteCluster]>>,
    pub policies: HashMap<ServiceKey, Arc<RoutePolicy>>,
    /// Authorization policies by service.
    pub security: HashMap<ServiceKey, Vec<warden_federation::model::SecurityPolicy>>,
    /// Registered trust domain of each cluster, to check a caller's claimed source cluster.
    pub cluster_domains: HashMap<String, String>,
    /// The east-west address the federation has for this gateway's own cluster.
    pub registered_gateway: Option<String>,
    /// L7 routes by the service they decide, compiled once per change.
    pub routes: HashMap<ServiceKey, Arc<crate::route::CompiledRoute>>,
    /// Resilience policies by the service they act on, compiled once per change.
    pub resilience: HashMap<ServiceKey, Arc<crate::resilience::ServicePolicies>>,
    /// JWT policies by the service they guard, compiled once per change.
    pub jwt: HashMap<ServiceKey, Arc<crate::authn::ServiceJwt>>,
    /// L7 authorization policies by the service they guard, compiled once per change.
    pub authorization: HashMap<ServiceKey, Arc<[crate::access::CompiledAuthz]>>,
    /// The demand other live clusters' gateways last reported on mesh-wide rate limits.
    pub loads: HashMap<String, Arc<warden_federation::load::LoadReport>>,
    /// The derived Service name (`ns/derived-<hash>`) of each exported service, to the service.
    pub derived: HashMap<ServiceKey, ServiceKey>,
}

/// How a derived Service's name ends, or — for a long service name — starts (see
/// `control/k8s/imports.rs`).
pub const DERIVED_SUFFIX: &str = "-clusterset";
pub const DERIVED_PREFIX: &str = "derived-";

/// Shared handles to both tables.
#[derive(Clone, Default)]
pub struct Tables {
    pub local: Arc<ArcSwap<LocalTable>>,
    pub remote: Arc<ArcSwap<RemoteTable>>,
    /// In-flight counters by target (endpoint address or `cluster:<name>`), reused across
    /// snapshots while any snapshot or pool holds them; forgotten once none does.
    inflight: Arc<std::sync::Mutex<HashMap<String, std::sync::Weak<InFlight>>>>,
    /// When the gateway started; ramp and lease decisions use monotonic time from here.
    pub started: Arc<StartTime>,
    /// Compiled resilience policies, kept (with their counters) while unchanged.
    pub policy_cache: Arc<crate::resilience::PolicyCache>,
    /// JWKS key sets by location, published by the JWKS actor.
    pub jwks: Arc<ArcSwap<crate::authn::KeySets>>,
    /// Key sets a token named an unknown key of: the JWKS actor fetches them again (at most
    /// every few seconds each). Locations come from policies, never from requests.
    pub jwks_wanted: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// What each import listener serves, by its pod port (published by the import
    /// listeners' actor before it opens a port, cleared after it closes one).
    pub tcp_imports: Arc<ArcSwap<TcpImports>>,
    /// The live settings with their sources (published by the catalog watcher; the file's
    /// values until it has listed the store).
    pub settings: Arc<ArcSwap<crate::settings::Settings>>,
    /// The file's layer of the settings, under the store's documents.
    pub file_settings: Arc<crate::settings::Settings>,
    /// Samples of the request counters for the golden signals' windows.
    pub signals: Arc<crate::signals::Signals>,
    /// The ring of recent requests and the span exporter.
    pub telemetry: Arc<crate::telemetry::Telemetry>,
}

impl Tables {
    /// Empty tables whose settings start as (and stay layered over) `file`.
    pub fn with_settings(file: crate::settings::Settings) -> Self {
        Self {
            settings: Arc::new(ArcSwap::from_pointee(file.clone())),
            file_settings: Arc::new(file),
            ..Self::default()
        }
    }
}

/// (service, port) by the pod port of an import listener.
pub type TcpImports = BTreeMap<u16, (ServiceKey, u16)>;

/// The process start instant.
#[derive(Debug)]
pub struct StartTime(pub Instant);

impl Default for StartTime {
    fn default() -> Self {
        Self(Instant::now())
    }
}

impl Tables {
    /// The in-flight counter of a target, created on first use (control plane only).
    /// Counters of targets no snapshot holds any more are dropped on the way.
    pub fn inflight_for(&self, target: &str) -> Arc<InFlight> {
        let mut m = match self.inflight.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if let Some(live) = m.get(target).and_then(std::sync::Weak::upgrade) {
            return live;
        }
        m.retain(|_, w| w.strong_count() > 0);
        let fresh = Arc::new(InFlight::default());
        m.insert(target.to_string(), Arc::downgrade(&fresh));
        fresh
    }

    /// Targets with an in-flight counter still held somewhere.
    pub fn inflight_targets(&self) -> usize {
        let m = match self.inflight.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        m.values().filter(|w| w.strong_count() > 0).count()
    }

    /// Replaces one local service (or removes it with `None`).
    pub fn publish_local(&self, key: &ServiceKey, svc: Option<LocalService>) {
        self.local.rcu(|t| {
            let mut t = LocalTable::clone(t);
            match &svc {
                Some(s) => {
                    t.services.insert(key.clone(), Arc::new(s.clone()));
                }
                None => {
                    t.services.remove(key);
                }
            }
            t
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_counters_are_shared_while_held_and_forgotten_after() {
        let t = Tables::default();
        let a = t.inflight_for("10.0.0.1:80");
        let again = t.inflight_for("10.0.0.1:80");
        let _g = a.track();
        assert_eq!(again.get(), 1, "one counter per target across snapshots");
        drop(_g);
        drop((a, again));
        let _b = t.inflight_for("10.0.0.2:80");
        assert_eq!(
            t.inflight_targets(),
            1,
            "the removed endpoint's counter is gone"
        );
    }
}
