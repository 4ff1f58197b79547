//! [`PoolActor`]: one per local service. Owns endpoint membership and health (active probe
//! thresholds, passive outlier ejections: consecutive failures as they come, and once per
//! interval the success-rate, failure-percentage and latency conditions of the service's
//! resilience policy, `health::interval`) and publishes the service's immutable snapshot.
//!
//! Health flips are logged once, when they happen. When the last available endpoint goes away
//! the failover is counted and logged; when endpoints recover they ramp back in over the
//! failback window (the hysteresis is the healthy threshold plus the ramp).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::guard::{InjectPanic, backoff, guarded};
use crate::config::GatewayConfig;
use crate::health::interval::{self, Settings, Window};
use crate::health::{Flip, Outlier, ProbeState};
use crate::key::ServiceKey;
use crate::metrics::Metrics;
use crate::table::{InFlight, Labels, LocalEndpoint, LocalService, PortTargets, Tables};
use warden_federation::model::{MAX_SUBSETS, SubsetHealth};

/// An active probe result.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ProbeCompleted {
    pub addr: String,
    pub ok: bool,
}

/// A passive signal from the data path (a response or a connect failure).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RequestCompleted {
    pub addr: String,
    pub ok: bool,
    /// The connection was refused: also counts as a failed probe, so an endpoint with nothing
    /// listening is marked down after `unhealthy_threshold` refusals instead of waiting for the
    /// next probes. Recovery still needs `healthy_threshold` successful active probes.
    pub refused: bool,
    /// Time to the response head (µs), when a response came.
    pub latency_us: Option<u64>,
}

/// Several [`RequestCompleted`] at once, in the order they completed: the data path's
/// signals are handed over in batches, so the actor's thread is woken once per batch rather
/// than once per request.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RequestsCompleted(pub Vec<RequestCompleted>);

/// New membership from discovery: endpoints that stay keep their health state, new ones
/// start healthy (discovery lists only ready endpoints), gone ones leave the snapshot.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Update {
    pub endpoints: Vec<String>,
    /// Labels of the labelled endpoints, by address.
    pub labels: HashMap<String, Labels>,
    pub weight: u32,
    pub h2: bool,
    pub port: u16,
    pub ports: PortTargets,
    pub exported: bool,
    pub export_to: Arc<[String]>,
}

/// The service is gone: remove it from the routing table and stop. A retired pool never
/// publishes again, even if its supervisor restarts it before the last address drops.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retire;

/// Endpoint counts, for export publication.
#[derive(Message)]
#[rtype(result = "Counts")]
pub struct GetCounts;

/// What [`GetCounts`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    pub available: u32,
    pub total: u32,
    /// Available endpoints per label set, the largest sets first, at most [`MAX_SUBSETS`]
    /// (endpoints without labels count under the empty set).
    pub subsets: Vec<SubsetHealth>,
}

struct Endpoint {
    addr: String,
    labels: Option<Labels>,
    probe: ProbeState,
    outlier: Outlier,
    /// Requests since the last interval evaluation.
    window: Window,
    inflight: Arc<InFlight>,
    /// Last published availability, to log flips of the combined state once.
    was_available: bool,
}

impl Endpoint {
    fn new(addr: &str, labels: Option<Labels>, tables: &Tables) -> Self {
        Self {
            addr: addr.to_string(),
            labels,
            probe: ProbeState::new(),
            outlier: Outlier::default(),
            window: Window::default(),
            inflight: tables.inflight_for(addr),
            was_available: true,
        }
    }

    /// Healthy by active probes and not ejected by outlier detection.
    fn available(&self, now_ms: u64) -> bool {
        self.probe.healthy && !self.outlier.is_ejected(now_ms)
    }
}

/// What a pool serves: the service's endpoints and how to reach them.
pub struct Membership {
    pub endpoints: Vec<String>,
    /// Labels of the labelled endpoints, by address.
    pub labels: HashMap<String, Labels>,
    pub weight: u32,
    /// Endpoints speak HTTP/2 (h2c prior knowledge).
    pub h2: bool,
    /// The service port the endpoints serve.
    pub port: u16,
    /// Every port of the service and where it is served.
    pub ports: PortTargets,
    /// Other clusters may reach it.
    pub exported: bool,
    /// Only these clusters may (empty: every cluster).
    pub export_to: Arc<[String]>,
}

pub struct PoolActor {
    pub key: ServiceKey,
    label: String,
    cfg: Arc<GatewayConfig>,
    tables: Tables,
    metrics: Arc<Metrics>,
    endpoints: Vec<Endpoint>,
    weight: u32,
    h2: bool,
    port: u16,
    ports: PortTargets,
    exported: bool,
    export_to: Arc<[String]>,
    had_available: bool,
    /// The snapshot last published: an unchanged one is not published again.
    published: Option<LocalService>,
    restarts: u32,
    retired: bool,
    /// When the interval conditions were last evaluated (ms since start).
    interval_at: u64,
}

impl PoolActor {
    pub fn new(
        key: ServiceKey,
        m: Membership,
        cfg: Arc<GatewayConfig>,
        tables: Tables,
        metrics: Arc<Metrics>,
    ) -> Self {
        let endpoints = m
            .endpoints
            .iter()
            .map(|a| Endpoint::new(a, m.labels.get(a).cloned(), &tables))
            .collect();
        Self {
            label: key.to_string(),
            key,
            cfg,
            tables,
            metrics,
            endpoints,
            weight: m.weight,
            h2: m.h2,
            port: m.port,
            ports: m.ports,
            exported: m.exported,
            export_to: m.export_to,
            had_available: true,
            published: None,
            restarts: 0,
            retired: false,
            interval_at: 0,
        }
    }

    /// The outlier settings in force: the service's resilience policy over the live
    /// settings (`[outlier]`, or the store's mesh or cluster document).
    fn outlier_settings(&self) -> Settings {
        let live = self.tables.settings.load();
        let remote = self.tables.remote.load();
        let policy = remote
            .resilience
            .get(&self.key)
            .and_then(|p| p.whole.as_ref())
            .and_then(|p| p.source.outlier_detection.as_ref());
        Settings::resolve(
            (
                live.consecutive_failures.value,
                live.base_ejection_ms.value,
                live.max_ejection_percent.value,
            ),
            policy,
        )
    }

    /// Once per interval: ejects the endpoints the interval conditions single out (within the
    /// ejection cap) and starts a new window.
    fn judge_interval(&mut self) {
        let s = self.outlier_settings();
        let Some(cfg) = s.interval else {
            return;
        };
        let now = self.now_ms();
        if now.saturating_sub(self.interval_at) < cfg.interval_ms {
            return;
        }
        self.interval_at = now;
        let windows: Vec<Window> = self.endpoints.iter().map(|e| e.window).collect();
        for e in &mut self.endpoints {
            e.window = Window::default();
        }
        let total = self.endpoints.len();
        for (i, reason) in interval::outliers(&windows, &cfg) {
            let ejected = self
                .endpoints
                .iter()
                .filter(|e| e.outlier.is_ejected(now))
                .count();
            if self.endpoints[i].outlier.is_ejected(now)
                || (ejected + 1) * 100 > s.max_percent as usize * total
            {
                continue;
            }
            self.endpoints[i].outlier.eject(now, s.base_ms);
            self.metrics
                .outlier_ejections
                .with_label_values(&[self.label.as_str(), reason.label()])
                .inc();
            let w = windows[i];
            tracing::warn!(service = %self.label, endpoint = %self.endpoints[i].addr, reason = reason.label(),
                requests = w.requests, failures = w.failures, "outlier: ejected");
        }
    }

    fn now_ms(&self) -> u64 {
        self.tables.started.0.elapsed().as_millis() as u64
    }

    /// The live health thresholds: (healthy, unhealthy).
    fn thresholds(&self) -> (u32, u32) {
        let s = self.tables.settings.load();
        (s.healthy_threshold.value, s.unhealthy_threshold.value)
    }

    /// Publishes the snapshot and the gauges; logs flips and failovers once.
    fn publish(&mut self) {
        if self.retired {
            return;
        }
        let now = self.now_ms();
        let ramp_ms = self.tables.settings.load().failback_ramp_ms.value;
        let mut eps = Vec::with_capacity(self.endpoints.len());
        let (mut healthy, mut unhealthy, mut ejected) = (0i64, 0i64, 0i64);
        for e in &mut self.endpoints {
            let is_ejected = e.outlier.is_ejected(now);
            let available = e.available(now);
            match (e.probe.healthy, is_ejected) {
                (_, true) => ejected += 1,
                (true, false) => healthy += 1,
                (false, false) => unhealthy += 1,
            }
            if available != e.was_available {
                if available {
                    tracing::info!(service = %self.label, endpoint = %e.addr, "endpoint available again");
                } else {
                    tracing::warn!(service = %self.label, endpoint = %e.addr, ejected = is_ejected, "endpoint unavailable");
                }
                e.was_available = available;
            }
            eps.push(LocalEndpoint {
                addr: e.addr.clone(),
                labels: e.labels.clone(),
                available,
                ramp: e.probe.ramp(now, ramp_ms),
                inflight: e.inflight.clone(),
            });
        }
        let any = healthy > 0;
        if self.had_available && !any {
            self.metrics
                .failovers
                .with_label_values(&[self.label.as_str()])
                .inc();
            tracing::warn!(service = %self.label, "no local endpoint available: failing over to other clusters");
        } else if !self.had_available && any {
            tracing::info!(service = %self.label, "local endpoints available again: failing back");
        }
        self.had_available = any;
        let cluster = self.cfg.cluster.name.as_str();
        for (state, n) in [
            ("healthy", healthy),
            ("unhealthy", unhealthy),
            ("ejected", ejected),
        ] {
            self.metrics
                .endpoints
                .with_label_values(&[self.label.as_str(), cluster, state])
                .set(n);
        }
        let snapshot = LocalService {
            endpoints: eps,
            weight: self.weight,
            h2: self.h2,
            port: self.port,
            ports: self.ports.clone(),
            exported: self.exported,
            export_to: self.export_to.clone(),
        };
        if self.published.as_ref() == Some(&snapshot) {
            return;
        }
        self.tables.publish_local(&self.key, Some(snapshot.clone()));
        self.published = Some(snapshot);
    }

    fn find(&mut self, addr: &str) -> Option<usize> {
        self.endpoints.iter().position(|e| e.addr == addr)
    }
}

impl Actor for PoolActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.retired {
            return;
        }
        self.publish();
        // Ramps and ejection expiries change over time without any message.
        let tick = Duration::from_millis(200);
        let delay = backoff(self.restarts);
        ctx.run_later(delay, move |_, ctx| {
            ctx.run_interval(tick, |act, _| {
                act.judge_interval();
                act.publish()
            });
        });
    }
}

impl Supervised for PoolActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        if self.retired {
            return; // stopped on purpose; it stays idle until its last address drops
        }
        self.restarts += 1;
        self.metrics
            .actor_restarts
            .with_label_values(&["upstream_pool"])
            .inc();
        tracing::warn!(service = %self.label, restarts = self.restarts, "pool actor restarting");
    }
}

impl Handler<ProbeCompleted> for PoolActor {
    type Result = ();
    fn handle(&mut self, m: ProbeCompleted, ctx: &mut Context<Self>) {
        let label = self.label.clone();
        guarded("upstream_pool", ctx, || {
            let now = self.now_ms();
            let (h, u) = self.thresholds();
            let Some(i) = self.find(&m.addr) else { return };
            if let Some(flip) = self.endpoints[i].probe.record(m.ok, now, h, u) {
                match flip {
                    Flip::BecameHealthy => {
                        tracing::info!(service = %label, endpoint = %m.addr, "probe: healthy")
                    }
                    Flip::BecameUnhealthy => {
                        tracing::warn!(service = %label, endpoint = %m.addr, "probe: unhealthy")
                    }
                }
                self.publish();
            }
        });
    }
}

impl PoolActor {
    /// One completed request's passive signal: the endpoint's outcome window, consecutive
    /// failures and ejection, a refused connection as a failed probe.
    fn completed(&mut self, m: &RequestCompleted) {
        let now = self.now_ms();
        let s = self.outlier_settings();
        let (threshold, base, max_pct) = (s.consecutive, s.base_ms, s.max_percent as usize);
        let total = self.endpoints.len();
        let ejected = self
            .endpoints
            .iter()
            .filter(|e| e.outlier.is_ejected(now))
            .count();
        let Some(i) = self.find(&m.addr) else { return };
        self.endpoints[i].window.record(m.ok, m.latency_us);
        if m.ok {
            self.endpoints[i].outlier.success();
            return;
        }
        if m.refused {
            let (h, u) = self.thresholds();
            if self.endpoints[i].probe.record(false, now, h, u).is_some() {
                tracing::warn!(service = %self.label, endpoint = %m.addr, "connection refused: unhealthy");
                self.publish();
            }
        }
        let may_eject = (ejected + 1) * 100 <= max_pct * total;
        if self.endpoints[i]
            .outlier
            .failure(now, threshold, base, may_eject)
        {
            self.metrics
                .outlier_ejections
                .with_label_values(&[self.label.as_str(), "consecutive_failures"])
                .inc();
            tracing::warn!(service = %self.label, endpoint = %m.addr, "outlier: ejected");
            self.publish();
        }
    }
}

impl Handler<RequestCompleted> for PoolActor {
    type Result = ();
    fn handle(&mut self, m: RequestCompleted, ctx: &mut Context<Self>) {
        guarded("upstream_pool", ctx, || self.completed(&m));
    }
}

impl Handler<RequestsCompleted> for PoolActor {
    type Result = ();
    fn handle(&mut self, m: RequestsCompleted, ctx: &mut Context<Self>) {
        guarded("upstream_pool", ctx, || {
            for r in &m.0 {
                self.completed(r);
            }
        });
    }
}

impl Handler<Update> for PoolActor {
    type Result = ();
    fn handle(&mut self, m: Update, ctx: &mut Context<Self>) {
        guarded("upstream_pool", ctx, || {
            let mut old: Vec<Endpoint> = std::mem::take(&mut self.endpoints);
            for addr in &m.endpoints {
                let labels = m.labels.get(addr).cloned();
                let e = match old.iter().position(|e| &e.addr == addr) {
                    Some(i) => Endpoint {
                        labels,
                        ..old.swap_remove(i)
                    },
                    None => Endpoint::new(addr, labels, &self.tables),
                };
                self.endpoints.push(e);
            }
            for gone in &old {
                tracing::info!(service = %self.label, endpoint = %gone.addr, "endpoint removed by discovery");
            }
            self.weight = m.weight;
            self.h2 = m.h2;
            self.port = m.port;
            self.ports = m.ports;
            self.exported = m.exported;
            self.export_to = m.export_to;
            self.publish();
        });
    }
}

impl Handler<Retire> for PoolActor {
    type Result = ();
    fn handle(&mut self, _: Retire, ctx: &mut Context<Self>) {
        self.tables.publish_local(&self.key, None);
        for state in ["healthy", "unhealthy", "ejected"] {
            let cluster = self.cfg.cluster.name.as_str();
            let _ =
                self.metrics
                    .endpoints
                    .remove_label_values(&[self.label.as_str(), cluster, state]);
        }
        self.retired = true;
        tracing::info!(service = %self.label, "service removed by discovery");
        ctx.stop();
    }
}

impl Handler<GetCounts> for PoolActor {
    type Result = MessageResult<GetCounts>;
    fn handle(&mut self, _: GetCounts, _: &mut Context<Self>) -> Self::Result {
        let now = self.now_ms();
        let mut by_labels: BTreeMap<BTreeMap<String, String>, u32> = BTreeMap::new();
        let mut available = 0u32;
        for e in self.endpoints.iter().filter(|e| e.available(now)) {
            available += 1;
            let labels = e.labels.as_deref().cloned().unwrap_or_default();
            *by_labels.entry(labels).or_default() += 1;
        }
        let mut subsets: Vec<SubsetHealth> = by_labels
            .into_iter()
            .map(|(labels, healthy_endpoints)| SubsetHealth {
                labels,
                healthy_endpoints,
            })
            .collect();
        // Stable order (by count, then by labels), so an unchanged pool publishes nothing new.
        subsets.sort_by_key(|s| std::cmp::Reverse(s.healthy_endpoints));
        if subsets.len() > MAX_SUBSETS {
            tracing::warn!(service = %self.label, sets = subsets.len(), "more label sets than an export carries; the smallest are not published");
            subsets.truncate(MAX_SUBSETS);
        }
        MessageResult(Counts {
            available,
            total: self.endpoints.len() as u32,
            subsets,
        })
    }
}

impl Handler<InjectPanic> for PoolActor {
    type Result = ();
    fn handle(&mut self, _: InjectPanic, ctx: &mut Context<Self>) {
        guarded("upstream_pool", ctx, || {
            panic!("injected panic in upstream_pool")
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(tables: &Tables) -> PoolActor {
        let cfg: GatewayConfig = toml::from_str(
            "[cluster]\nname = \"east\"\nregion = \"r\"\nzone = \"z\"\ntrust_domain = \"east.test\"\n\
             [federation]\nendpoints = [\"http://127.0.0.1:9\"]\n\
             [listeners]\noutbound = \"127.0.0.1:0\"\neastwest = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n",
        )
        .unwrap();
        let v2: Labels = Arc::new([("version".to_string(), "v2".to_string())].into());
        let m = Membership {
            endpoints: vec!["10.0.0.1:80".into(), "10.0.0.2:80".into()],
            labels: [("10.0.0.2:80".to_string(), v2)].into(),
            weight: 100,
            h2: false,
            port: 80,
            ports: Arc::from([]),
            exported: true,
            export_to: Arc::from([]),
        };
        PoolActor::new(
            ServiceKey::new("shop", "cart"),
            m,
            Arc::new(cfg),
            tables.clone(),
            Arc::new(Metrics::new()),
        )
    }

    /// The counts for export publication group the available endpoints by their labels.
    #[test]
    fn counts_group_available_endpoints_by_label_set() {
        let tables = Tables::default();
        let p = pool(&tables);
        let sys = actix::System::new();
        sys.block_on(async move {
            let addr = p.start();
            let c = addr.send(GetCounts).await.unwrap();
            assert_eq!((c.available, c.total), (2, 2));
            let sets: Vec<(Option<&str>, u32)> = c
                .subsets
                .iter()
                .map(|s| {
                    (
                        s.labels.get("version").map(String::as_str),
                        s.healthy_endpoints,
                    )
                })
                .collect();
            assert_eq!(sets, [(None, 1), (Some("v2"), 1)]);
        });
        // A down endpoint is in no set.
        let mut p = pool(&tables);
        p.endpoints[1].probe.healthy = false;
        let sys = actix::System::new();
        sys.block_on(async move {
            let c = p.start().send(GetCounts).await.unwrap();
            assert_eq!((c.available, c.total), (1, 2));
            assert_eq!(c.subsets.len(), 1);
            assert!(c.subsets[0].labels.is_empty());
        });
    }

    /// The periodic publish replaces the table only when the snapshot changed: readers keep
    /// the same `Arc` while nothing happens, and see a new one after a health flip.
    #[test]
    fn an_unchanged_snapshot_is_not_published_again() {
        let tables = Tables::default();
        let mut p = pool(&tables);
        p.publish();
        let first = tables.local.load_full();
        assert_eq!(first.services.len(), 1);
        // Labelled endpoints carry their labels into the snapshot; the others none.
        let eps = &first.services[&ServiceKey::new("shop", "cart")].endpoints;
        assert!(eps[0].labels.is_none());
        assert_eq!(
            eps[1].labels.as_deref().map(|l| l["version"].as_str()),
            Some("v2")
        );
        p.publish();
        p.publish();
        assert!(
            Arc::ptr_eq(&first, &tables.local.load_full()),
            "no change, no publish"
        );
        let now = p.now_ms();
        for _ in 0..p.cfg.health.unhealthy_threshold {
            p.endpoints[0].probe.record(false, now, 1, 1);
        }
        p.publish();
        let after = tables.local.load_full();
        assert!(!Arc::ptr_eq(&first, &after), "a flip publishes");
        let svc = &after.services[&ServiceKey::new("shop", "cart")];
        assert!(!svc.endpoints[0].available && svc.endpoints[1].available);
    }
}
