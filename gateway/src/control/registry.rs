//! [`RegistryActor`]: owns the set of local services. Discovery (the `[[services]]` tables, or
//! Kubernetes) hands it the full desired set; it starts a supervised [`PoolActor`] for each new
//! service, updates the membership of existing ones, retires the gone ones, keeps the health
//! checker's targets in step, and publishes two shared views: the pools by service (for the
//! data path's passive signals) and the [`ExportSet`] the publisher reconciles with the
//! federation store.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use arc_swap::ArcSwap;

use super::exports::{Export, ExportSet};
use super::guard::guarded;
use super::health_checker::{HealthCheckerActor, ProbeTarget, SetTargets};
use super::pool::{Membership, PoolActor, Retire, Update};
use crate::config::{GatewayConfig, StaticService};
use crate::key::ServiceKey;
use crate::metrics::Metrics;
use crate::table::{Labels, Tables};

/// Views shared with the data path and the publisher.
#[derive(Clone, Default)]
pub struct Shared {
    pub pools: Arc<ArcSwap<HashMap<ServiceKey, Addr<PoolActor>>>>,
    pub exports: Arc<ArcSwap<ExportSet>>,
}

/// The full desired set of local services (replaces the previous one).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetServices(pub Vec<StaticService>);

/// Whether a service's endpoints speak HTTP/2 (h2c prior knowledge).
pub fn speaks_h2(s: &StaticService) -> bool {
    use warden_federation::model::Protocol;
    s.ports
        .first()
        .is_some_and(|p| matches!(p.protocol, Protocol::Http2 | Protocol::Grpc))
}

/// The key of a configured or discovered service.
pub fn key_of(s: &StaticService) -> ServiceKey {
    ServiceKey::new(&s.namespace, &s.name)
}

/// The labels of `s`'s labelled endpoints, shared by every snapshot that carries them.
fn shared_labels(s: &StaticService) -> HashMap<String, Labels> {
    s.labels
        .iter()
        .map(|(addr, l)| (addr.clone(), Arc::new(l.clone())))
        .collect()
}

/// What a pool of `s` serves.
fn membership(s: &StaticService) -> Membership {
    Membership {
        endpoints: s.endpoints.clone(),
        labels: shared_labels(s),
        weight: s.weight,
        h2: speaks_h2(s),
        port: s.ports.first().map(|p| p.port).unwrap_or(0),
        ports: s
            .ports
            .iter()
            .filter_map(|p| Some((p.port, s.target_of(p.port)?)))
            .collect(),
        exported: s.export,
        export_to: s.export_to.iter().cloned().collect(),
    }
}

/// Starts a supervised pool for `s`.
pub fn spawn_pool(
    s: &StaticService,
    cfg: &Arc<GatewayConfig>,
    tables: &Tables,
    metrics: &Arc<Metrics>,
) -> Addr<PoolActor> {
    let (key, m, c, t, mx) = (
        key_of(s),
        membership(s),
        cfg.clone(),
        tables.clone(),
        metrics.clone(),
    );
    Supervisor::start(move |_| PoolActor::new(key, m, c, t, mx))
}

/// The probe targets of one service's endpoints.
pub fn probe_targets(s: &StaticService, pool: &Addr<PoolActor>) -> Vec<ProbeTarget> {
    s.endpoints
        .iter()
        .map(|e| ProbeTarget {
            addr: e.clone(),
            probe: s.probe.clone(),
            pool: pool.clone(),
        })
        .collect()
}

fn export_of(s: &StaticService, pool: &Addr<PoolActor>) -> Export {
    Export {
        namespace: s.namespace.clone(),
        name: s.name.clone(),
        ports: s.ports.clone(),
        weight: s.weight,
        export_to: s.export_to.clone(),
        pool: pool.clone(),
    }
}

pub struct RegistryActor {
    cfg: Arc<GatewayConfig>,
    tables: Tables,
    metrics: Arc<Metrics>,
    health: Addr<HealthCheckerActor>,
    services: HashMap<ServiceKey, (StaticService, Addr<PoolActor>)>,
    shared: Shared,
    restarts: u32,
}

impl RegistryActor {
    /// `initial`: services whose pools already run (static discovery); `synced` says whether
    /// they are the complete set.
    pub fn new(
        cfg: Arc<GatewayConfig>,
        tables: Tables,
        metrics: Arc<Metrics>,
        health: Addr<HealthCheckerActor>,
        initial: Vec<(StaticService, Addr<PoolActor>)>,
        synced: bool,
        shared: Shared,
    ) -> Self {
        let mut me = Self {
            cfg,
            tables,
            metrics,
            health,
            services: initial
                .into_iter()
                .map(|(s, a)| (key_of(&s), (s, a)))
                .collect(),
            shared,
            restarts: 0,
        };
        me.publish(synced);
        me
    }

    fn publish(&mut self, synced: bool) {
        let pools = self
            .services
            .iter()
            .map(|(k, (_, a))| (k.clone(), a.clone()))
            .collect();
        self.shared.pools.store(Arc::new(pools));
        let mut items: Vec<Export> = self
            .services
            .values()
            .filter(|(s, _)| s.export)
            .map(|(s, a)| export_of(s, a))
            .collect();
        items.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        let generation = self.shared.exports.load().generation + 1;
        self.shared.exports.store(Arc::new(ExportSet {
            synced,
            generation,
            items,
        }));
    }

    fn apply(&mut self, desired: Vec<StaticService>) {
        let mut next: HashMap<ServiceKey, (StaticService, Addr<PoolActor>)> = HashMap::new();
        for s in desired {
            let key = key_of(&s);
            let addr = match self.services.remove(&key) {
                Some((old, addr)) => {
                    if old.endpoints != s.endpoints
                        || old.labels != s.labels
                        || old.weight != s.weight
                        || old.ports != s.ports
                        || old.port_targets != s.port_targets
                        || old.export_to != s.export_to
                        || old.export != s.export
                    {
                        let m = membership(&s);
                        addr.do_send(Update {
                            endpoints: m.endpoints,
                            labels: m.labels,
                            weight: m.weight,
                            h2: m.h2,
                            port: m.port,
                            ports: m.ports,
                            exported: m.exported,
                            export_to: m.export_to,
                        });
                    }
                    if old.endpoints != s.endpoints || old.probe != s.probe {
                        self.health.do_send(SetTargets {
                            service: key.clone(),
                            targets: probe_targets(&s, &addr),
                        });
                    }
                    addr
                }
                None => {
                    tracing::info!(service = %key, endpoints = s.endpoints.len(), "service discovered");
                    let addr = spawn_pool(&s, &self.cfg, &self.tables, &self.metrics);
                    self.health.do_send(SetTargets {
                        service: key.clone(),
                        targets: probe_targets(&s, &addr),
                    });
                    addr
                }
            };
            next.insert(key, (s, addr));
        }
        for (key, (_, addr)) in self.services.drain() {
            self.health.do_send(SetTargets {
                service: key,
                targets: Vec::new(),
            });
            addr.do_send(Retire);
        }
        self.services = next;
        self.publish(true);
    }
}

impl Actor for RegistryActor {
    type Context = Context<Self>;
}

impl Supervised for RegistryActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.restarts += 1;
        self.metrics
            .actor_restarts
            .with_label_values(&["registry"])
            .inc();
        tracing::warn!(restarts = self.restarts, "registry actor restarting");
    }
}

impl Handler<SetServices> for RegistryActor {
    type Result = ();
    fn handle(&mut self, m: SetServices, ctx: &mut Context<Self>) {
        guarded("registry", ctx, || self.apply(m.0));
    }
}
