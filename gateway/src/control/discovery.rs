//! [`DiscoveryActor`] (static discovery): makes this cluster and its local services known to
//! the federation.
//!
//! On start it registers the cluster (an existing registration is kept). Then, in a spawned
//! loop: it renews the cluster's lease every TTL/3, and publishes each exported service's
//! healthy endpoint count when it changes — at most once per `publish_interval_ms` per
//! service (debounced, so a flapping endpoint cannot flood the store) and at least every 30 s.
//! Once discovery has seen its full state, it reconciles the store with it — on every change
//! and every 30 s: exports of this cluster that discovery no longer lists are withdrawn.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde_json::json;

use arc_swap::ArcSwap;

use super::fed::FedClient;
use super::guard::{InjectPanic, guarded, on_restart, spawn_supervised};
use super::pool::{GetCounts, PoolActor};
use super::registry::ExportSet;
use crate::config::GatewayConfig;
use crate::metrics::Metrics;

/// A local service to export, with its pool.
#[derive(Clone)]
pub struct Export {
    pub namespace: String,
    pub name: String,
    pub ports: Vec<warden_federation::model::ServicePort>,
    pub weight: u32,
    pub pool: Addr<PoolActor>,
}

pub struct DiscoveryActor {
    cfg: Arc<GatewayConfig>,
    fed: FedClient,
    /// The east-west address other gateways use.
    advertise: String,
    /// This cluster's CA bundle, registered with the cluster when mTLS is on.
    ca_bundle: Option<String>,
    /// Loaded bundle versions are reported with each lease renewal (rotation status).
    trust: Option<Arc<warden_federation::trust::verify::TrustStore>>,
    exports: Arc<ArcSwap<ExportSet>>,
    metrics: Arc<Metrics>,
    restarts: u32,
    task: Option<tokio::task::AbortHandle>,
}

impl DiscoveryActor {
    pub fn new(
        cfg: Arc<GatewayConfig>,
        fed: FedClient,
        advertise: String,
        ca_bundle: Option<String>,
        trust: Option<Arc<warden_federation::trust::verify::TrustStore>>,
        exports: Arc<ArcSwap<ExportSet>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            cfg,
            fed,
            advertise,
            ca_bundle,
            trust,
            exports,
            metrics,
            restarts: 0,
            task: None,
        }
    }
}

async fn register(
    cfg: &GatewayConfig,
    fed: &FedClient,
    advertise: &str,
    ca_bundle: Option<&str>,
) -> Result<(), String> {
    let c = &cfg.cluster;
    let body = json!({
        "name": c.name, "region": c.region, "zone": c.zone, "network": c.network,
        "gateway": advertise, "trust_domain": c.trust_domain, "ca_bundle_pem": ca_bundle,
    });
    let publish_bundle = || async {
        // An existing cluster registered without a bundle: publish ours, never replace one
        // (rotation goes through the trust API).
        let Some(pem) = ca_bundle else { return Ok(()) };
        let have = fed
            .get("/api/v1/trust/bundles")
            .await
            .map_err(|e| e.to_string())?;
        let known = have["items"].as_array().is_some_and(|a| {
            a.iter()
                .any(|b| b["trust_domain"] == c.trust_domain.as_str())
        });
        if !known {
            fed.put(
                &format!("/api/v1/trust/bundles/{}", c.trust_domain),
                &json!({ "ca_bundle_pem": pem }),
            )
            .await
            .map_err(|e| e.to_string())?;
            tracing::info!(trust_domain = %c.trust_domain, "trust bundle published");
        }
        Ok::<(), String>(())
    };
    match fed.post("/api/v1/clusters", &body).await {
        Ok(_) => {
            tracing::info!(cluster = %c.name, gateway = advertise, "cluster registered");
            Ok(())
        }
        Err(warden_federation::client::ClientError::Api { status: 409, .. }) => {
            publish_bundle().await
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Removes from the store every export of this cluster that discovery no longer lists —
/// including ones removed while this gateway was down or whose watch event was missed.
async fn prune(fed: &FedClient, me: &str, set: &ExportSet) -> Result<usize, String> {
    let catalog = fed
        .get("/api/v1/services")
        .await
        .map_err(|e| e.to_string())?;
    let mut removed = 0;
    for item in catalog["items"].as_array().into_iter().flatten() {
        let (Some(ns), Some(svc)) = (item["namespace"].as_str(), item["service"].as_str()) else {
            continue;
        };
        let ours = item["clusters"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["cluster"] == me));
        let wanted = set.items.iter().any(|e| e.namespace == ns && e.name == svc);
        if !ours || wanted {
            continue;
        }
        match fed
            .delete(&format!("/api/v1/clusters/{me}/services/{ns}/{svc}"))
            .await
        {
            Ok(_) | Err(warden_federation::client::ClientError::Api { status: 404, .. }) => {
                tracing::info!(service = %format!("{ns}/{svc}"), "export withdrawn");
                removed += 1;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(removed)
}

async fn run(
    cfg: Arc<GatewayConfig>,
    fed: FedClient,
    advertise: String,
    ca_bundle: Option<String>,
    trust: Option<Arc<warden_federation::trust::verify::TrustStore>>,
    exports: Arc<ArcSwap<ExportSet>>,
) {
    let me = cfg.cluster.name.clone();
    let ttl = cfg.federation.lease_ttl_ms;
    let renew_every = Duration::from_millis((ttl / 3).max(100));
    let min_gap = Duration::from_millis(cfg.federation.publish_interval_ms);
    let refresh = Duration::from_secs(30);
    if cfg.cluster.register {
        let mut attempt = 0u32;
        while let Err(e) = register(&cfg, &fed, &advertise, ca_bundle.as_deref()).await {
            attempt += 1;
            if attempt == 1 || attempt.is_multiple_of(20) {
                tracing::warn!(error = %e, "cannot register the cluster yet; retrying");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let mut published: HashMap<(String, String), (u32, Instant)> = HashMap::new();
    let mut next_lease = Instant::now();
    // Generation of the export set last reconciled with the store, and when to do it anyway.
    let mut pruned_generation = None;
    let mut next_prune = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let now = Instant::now();
        if now >= next_lease {
            let versions = trust.as_ref().map(|t| t.versions()).unwrap_or_default();
            match fed
                .put(
                    &format!("/api/v1/clusters/{me}/lease"),
                    &json!({ "ttl_ms": ttl, "trust_versions": versions }),
                )
                .await
            {
                Ok(_) => next_lease = now + renew_every,
                Err(e) => {
                    tracing::warn!(error = %e, "lease renewal failed");
                    next_lease = now + Duration::from_millis(200);
                }
            }
        }
        let set = exports.load_full();
        published.retain(|(ns, name), _| {
            set.items
                .iter()
                .any(|e| &e.namespace == ns && &e.name == name)
        });
        for ex in &set.items {
            let key = (ex.namespace.clone(), ex.name.clone());
            let Ok((healthy, _total)) = ex.pool.send(GetCounts).await else {
                continue;
            };
            let due = match published.get(&key) {
                None => true,
                Some((last, at)) => {
                    (*last != healthy && now.duration_since(*at) >= min_gap)
                        || now.duration_since(*at) >= refresh
                }
            };
            if !due {
                continue;
            }
            let path = format!(
                "/api/v1/clusters/{me}/services/{}/{}",
                ex.namespace, ex.name
            );
            let body =
                json!({ "ports": ex.ports, "healthy_endpoints": healthy, "weight": ex.weight });
            match fed.put(&path, &body).await {
                Ok(_) => {
                    if published.get(&key).map(|p| p.0) != Some(healthy) {
                        tracing::info!(service = %format!("{}/{}", ex.namespace, ex.name), healthy, "export published");
                    }
                    published.insert(key, (healthy, now));
                }
                Err(e) => tracing::warn!(error = %e, "export publication failed"),
            }
        }
        if set.synced && (pruned_generation != Some(set.generation) || now >= next_prune) {
            match prune(&fed, &me, &set).await {
                Ok(_) => {
                    pruned_generation = Some(set.generation);
                    next_prune = now + refresh;
                }
                Err(e) => tracing::warn!(error = %e, "cannot reconcile exports with the store yet"),
            }
        }
    }
}

impl Actor for DiscoveryActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let (cfg, fed, adv, exports) = (
            self.cfg.clone(),
            self.fed.clone(),
            self.advertise.clone(),
            self.exports.clone(),
        );
        let bundle = self.ca_bundle.clone();
        let trust = self.trust.clone();
        let work = run(cfg, fed, adv, bundle, trust, exports);
        self.task = Some(spawn_supervised("discovery", self.restarts, ctx, work));
    }
}

impl Supervised for DiscoveryActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        on_restart(
            "discovery",
            &mut self.restarts,
            &mut self.task,
            &self.metrics,
        );
    }
}

impl Handler<InjectPanic> for DiscoveryActor {
    type Result = ();
    fn handle(&mut self, _: InjectPanic, ctx: &mut Context<Self>) {
        guarded("discovery", ctx, || panic!("injected panic in discovery"));
    }
}
