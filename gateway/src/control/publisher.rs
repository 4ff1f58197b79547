//! [`PublisherActor`]: makes this cluster and its local services known to the federation —
//! what other clusters learn about it.
//!
//! On start it registers the cluster (an existing registration is kept). Then, in a spawned
//! loop: it renews the cluster's lease every TTL/3 (reporting the trust bundles it loaded and
//! the east-west address it advertises), and publishes each exported service's healthy
//! endpoint count when it changes — at most once per `publish_interval_ms` per service
//! (debounced, so a flapping endpoint cannot flood the store) and at least every 30 s. Once
//! discovery has seen its full state, it reconciles the store with it — on every change and
//! every 30 s: exports of this cluster that discovery no longer lists are withdrawn.
//!
//! A registration that points at another gateway address than this gateway advertises is
//! reported (log, `/readyz`, `warden check`) and, when this gateway manages its registration
//! (`cluster.register`), names its address explicitly (`cluster.advertise`) and holds a
//! credential for it, corrected. [`Withdraw`] (on drain) stops renewing — no renewal can follow
//! it — and, unless `federation.withdraw_lease_on_drain` is off (several gateway replicas behind
//! one address), withdraws the lease, so other clusters stop sending here at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use arc_swap::ArcSwap;
use warden_federation::client::{ClientError, FederationClient};
use warden_federation::load::LoadReport;
use warden_federation::trust::verify::TrustStore;
use warden_federation::wire::{ExportBody, LeaseBody, RegisterCluster};

use super::exports::ExportSet;
use super::guard::{InjectPanic, guarded, on_restart, spawn_supervised};
use super::placement_reports::PlacementReports;
use super::pool::{Counts, GetCounts};
use crate::balance::Locality;
use crate::config::Credential;
use crate::config::GatewayConfig;
use crate::key::ServiceKey;
use crate::metrics::Metrics;
use crate::resilience::share::{self, Meter};
use crate::table::Tables;

/// Recent requests go with a renewal at most this often ([`crate::telemetry`]): at 1,000
/// clusters and the report's 64 records, at most ~13,000 records a second across the nodes.
const RECENT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Stop publishing and withdraw the lease; answers once the store took it (or could not).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Withdraw;

pub struct PublisherActor {
    job: Arc<Job>,
    metrics: Arc<Metrics>,
    restarts: u32,
    task: Option<tokio::task::AbortHandle>,
    /// The lease was withdrawn (draining): a restart must not start renewing again.
    withdrawn: bool,
}

/// What the loop needs.
struct Job {
    cfg: Arc<GatewayConfig>,
    fed: FederationClient,
    /// The east-west address other gateways should use.
    advertise: String,
    /// This cluster's CA bundle, registered with the cluster when mTLS is on.
    ca_bundle: Option<String>,
    /// Loaded bundle versions are reported with each lease renewal (rotation status).
    trust: Option<Arc<TrustStore>>,
    exports: Arc<ArcSwap<ExportSet>>,
    /// The federation's view, for this cluster's registered gateway address.
    tables: Tables,
    /// Set by [`Withdraw`]: no renewal may start after it.
    withdrawn: AtomicBool,
    /// Held while a renewal is in flight, so a withdrawal waits for it to land first.
    renewing: tokio::sync::Mutex<()>,
    /// The node accepts `gateway` in lease renewals (an older one refuses the field).
    report_gateway: AtomicBool,
    /// The node accepts `load` in lease renewals.
    report_load: AtomicBool,
    /// The node accepts `signals` in lease renewals.
    report_signals: AtomicBool,
    /// The number of the last signals report sent.
    signals_sent: std::sync::atomic::AtomicU64,
    /// The node accepts `recent` in lease renewals.
    report_recent: AtomicBool,
    /// The number of the last recent request reported, and when the last report went.
    recent_sent: std::sync::atomic::AtomicU64,
    recent_at: std::sync::Mutex<Option<std::time::Instant>>,
    /// Where this gateway places each service's traffic, as last reported.
    placements: PlacementReports,
    /// Demand on mesh-wide rate limits, and the last report sent (the share follows it).
    meter: std::sync::Mutex<(Meter, Option<LoadReport>)>,
}

impl PublisherActor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: Arc<GatewayConfig>,
        fed: FederationClient,
        advertise: String,
        ca_bundle: Option<String>,
        trust: Option<Arc<TrustStore>>,
        exports: Arc<ArcSwap<ExportSet>>,
        tables: Tables,
        metrics: Arc<Metrics>,
    ) -> Self {
        let placements = PlacementReports::new(
            Locality {
                cluster: cfg.cluster.name.clone(),
                region: cfg.cluster.region.clone(),
                zone: cfg.cluster.zone.clone(),
            },
            cfg.routing.overprovisioning_percent,
        );
        Self {
            job: Arc::new(Job {
                cfg,
                fed,
                advertise,
                ca_bundle,
                trust,
                exports,
                tables,
                withdrawn: AtomicBool::new(false),
                renewing: tokio::sync::Mutex::new(()),
                report_gateway: AtomicBool::new(true),
                report_load: AtomicBool::new(true),
                report_signals: AtomicBool::new(true),
                signals_sent: Default::default(),
                report_recent: AtomicBool::new(true),
                recent_sent: Default::default(),
                recent_at: Default::default(),
                placements,
                meter: Default::default(),
            }),
            metrics,
            restarts: 0,
            task: None,
            withdrawn: false,
        }
    }
}

impl Job {
    fn registration(&self) -> RegisterCluster {
        let c = &self.cfg.cluster;
        RegisterCluster {
            name: c.name.clone(),
            region: c.region.clone(),
            zone: c.zone.clone(),
            network: c.network.clone(),
            gateway: self.advertise.clone(),
            trust_domain: c.trust_domain.clone(),
            ca_bundle_pem: self.ca_bundle.clone(),
            labels: Default::default(),
        }
    }

    /// Registers the cluster; an existing registration is kept, and only its missing bundle
    /// is published (rotation goes through the trust API).
    async fn register(&self) -> Result<(), ClientError> {
        let c = &self.cfg.cluster;
        // A cluster credential exists only for a registered cluster (and cannot register one).
        let registered = match self.cfg.credential() {
            Some(Credential::Cluster(_)) => Err(ClientError::Conflict {
                code: "already_exists".into(),
                message: "registered already (this gateway holds its credential)".into(),
            }),
            _ => self.fed.register_cluster(&self.registration()).await,
        };
        match registered {
            Ok(_) => {
                tracing::info!(cluster = %c.name, gateway = %self.advertise, "cluster registered");
                Ok(())
            }
            Err(ClientError::Conflict { .. }) => {
                let Some(pem) = &self.ca_bundle else {
                    return Ok(());
                };
                let known = self
                    .fed
                    .bundles()
                    .await?
                    .items
                    .iter()
                    .any(|b| b.trust_domain == c.trust_domain);
                if !known {
                    self.fed.put_bundle(&c.trust_domain, pem).await?;
                    tracing::info!(trust_domain = %c.trust_domain, "trust bundle published");
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Compares the registered gateway address with the advertised one and corrects it when
    /// this gateway manages its registration; `reported` remembers the mismatch last logged.
    async fn check_registration(&self, reported: &mut Option<String>) {
        let registered = self.tables.remote.load().registered_gateway.clone();
        let Some(registered) = registered else { return };
        if registered == self.advertise {
            if reported.take().is_some() {
                tracing::info!(gateway = %registered, "registered gateway address matches the advertised one again");
            }
            return;
        }
        let cluster = &self.cfg.cluster.name;
        if reported.as_deref() != Some(registered.as_str()) {
            tracing::warn!(
                cluster = %cluster,
                registered = %registered,
                advertised = %self.advertise,
                "the federation sends this cluster's traffic to its registered gateway address, which is not the address this gateway advertises"
            );
            *reported = Some(registered.clone());
        }
        // Only an address the operator named replaces a registration: one derived from the
        // listener (a pod IP, a wildcard) may be the wrong one to give other clusters.
        if !self.cfg.cluster.register
            || self.cfg.cluster.advertise.is_none()
            || self.cfg.credential().is_none()
        {
            return;
        }
        match self.fed.set_cluster_gateway(cluster, &self.advertise).await {
            Ok(_) => tracing::warn!(
                cluster = %cluster,
                from = %registered,
                to = %self.advertise,
                "registered gateway address corrected to the advertised one"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot correct the registered gateway address"),
        }
    }

    /// Removes from the store every export of this cluster that discovery no longer lists —
    /// including ones removed while this gateway was down or whose watch event was missed.
    async fn prune(&self, set: &ExportSet) -> Result<usize, ClientError> {
        let me = &self.cfg.cluster.name;
        let catalog = self.fed.services().await?;
        let mut removed = 0;
        for item in catalog.items {
            let ours = item.clusters.iter().any(|c| &c.cluster == me);
            let wanted = set
                .items
                .iter()
                .any(|e| e.namespace == item.namespace && e.name == item.service);
            if !ours || wanted {
                continue;
            }
            match self.fed.unexport(me, &item.namespace, &item.service).await {
                Ok(()) | Err(ClientError::NotFound { .. }) => {
                    let key = ServiceKey::new(&item.namespace, &item.service);
                    tracing::info!(service = %key, "export withdrawn");
                    removed += 1;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// Renews the lease, unless it was withdrawn; `Ok(false)` once withdrawn.
    async fn renew(&self) -> Result<bool, ClientError> {
        let _in_flight = self.renewing.lock().await;
        if self.withdrawn.load(Ordering::Acquire) {
            return Ok(false);
        }
        let mut body = LeaseBody {
            ttl_ms: self.cfg.federation.lease_ttl_ms,
            trust_versions: self
                .trust
                .as_ref()
                .map(|t| t.versions().into_iter().collect())
                .unwrap_or_default(),
            gateway: self
                .report_gateway
                .load(Ordering::Relaxed)
                .then(|| self.advertise.clone()),
            load: self
                .report_load
                .load(Ordering::Relaxed)
                .then(|| self.sample_load())
                .flatten(),
            signals: self
                .report_signals
                .load(Ordering::Relaxed)
                .then(|| self.tables.signals.report_after(&self.signals_sent))
                .flatten(),
            recent: self
                .report_recent
                .load(Ordering::Relaxed)
                .then(|| self.recent_due())
                .flatten(),
            placements: self.placements.due(&self.tables),
        };
        let me = &self.cfg.cluster.name;
        let renewed = match self.fed.renew_lease(me, &body).await {
            // A node from before the field: renew without it from now on.
            Err(ClientError::BadRequest { field: Some(f), .. }) if f == "gateway" => {
                self.report_gateway.store(false, Ordering::Relaxed);
                body.gateway = None;
                self.fed.renew_lease(me, &body).await.map(|_| true)
            }
            // A node from before golden signals: renew without them from now on.
            Err(ClientError::BadRequest { field: Some(f), .. }) if f == "signals" => {
                self.report_signals.store(false, Ordering::Relaxed);
                body.signals = None;
                self.fed.renew_lease(me, &body).await.map(|_| true)
            }
            // A node from before recent requests: renew without them from now on.
            Err(ClientError::BadRequest { field: Some(f), .. }) if f == "recent" => {
                self.report_recent.store(false, Ordering::Relaxed);
                body.recent = None;
                self.fed.renew_lease(me, &body).await.map(|_| true)
            }
            Err(ClientError::BadRequest { field: Some(f), .. }) if f == "load" => {
                tracing::warn!(
                    "the federation node does not take load reports: mesh-wide rate limits act as local ones"
                );
                self.report_load.store(false, Ordering::Relaxed);
                body.load = None;
                self.fed.renew_lease(me, &body).await.map(|_| true)
            }
            // A node from before placements: renew without them from now on; one that refused
            // this report (another version's bounds): renew without it this time.
            Err(ClientError::BadRequest {
                field: Some(f),
                message,
                ..
            }) if f.starts_with("placements") => {
                if f == "placements" {
                    self.placements.refused();
                } else if let Some(report) = body.placements.take() {
                    // Not again until it changes (or the resend interval passes).
                    tracing::warn!(field = %f, %message, "the federation node refused the placements report");
                    self.placements.sent(report);
                }
                body.placements = None;
                self.fed.renew_lease(me, &body).await.map(|_| true)
            }
            r => r.map(|_| true),
        };
        if let (Ok(_), Some(p)) = (&renewed, body.placements) {
            self.placements.sent(p);
        }
        renewed
    }

    /// The recent requests since the last report, at most every [`RECENT_EVERY`]; `None`
    /// before then or when there are none.
    fn recent_due(&self) -> Option<warden_federation::recent::RecentReport> {
        let mut at = self.recent_at.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        if at.is_some_and(|t| now.duration_since(t) < RECENT_EVERY) {
            return None;
        }
        let report = self.tables.telemetry.report_after(&self.recent_sent)?;
        *at = Some(now);
        Some(report)
    }

    /// Measures the demand on mesh-wide rate limits since the last renewal; `None` when no
    /// policy has one.
    fn sample_load(&self) -> Option<LoadReport> {
        let policies = self.tables.policy_cache.live();
        let mut m = match self.meter.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let report = m.0.sample(&policies, tokio::time::Instant::now());
        m.1 = report.clone();
        report
    }

    /// Scales mesh-wide rate limits to this gateway's share of the demand last reported.
    fn rebalance(&self) {
        let m = match self.meter.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if let Some(mine) = &m.1 {
            let policies = self.tables.policy_cache.live();
            share::rebalance(&policies, mine, &self.tables.remote.load().loads);
        }
    }

    async fn run(self: Arc<Self>) {
        let ttl = self.cfg.federation.lease_ttl_ms;
        let renew_every = Duration::from_millis((ttl / 3).max(100));
        let min_gap = Duration::from_millis(self.cfg.federation.publish_interval_ms);
        let refresh = Duration::from_secs(30);
        if self.cfg.cluster.register {
            let mut attempt = 0u32;
            while let Err(e) = self.register().await {
                attempt += 1;
                if attempt == 1 || attempt.is_multiple_of(20) {
                    tracing::warn!(error = %e, "cannot register the cluster yet; retrying");
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        let mut published: HashMap<ServiceKey, (Counts, Instant)> = HashMap::new();
        let mut next_lease = Instant::now();
        let mut mismatch: Option<String> = None;
        // Generation of the export set last reconciled with the store, and when to do it anyway.
        let mut pruned_generation = None;
        let mut next_prune = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            let now = Instant::now();
            if now >= next_lease {
                match self.renew().await {
                    Ok(false) => return,
                    Ok(true) => next_lease = now + renew_every,
                    Err(e) => {
                        tracing::warn!(error = %e, "lease renewal failed");
                        next_lease = now + Duration::from_millis(200);
                    }
                }
                self.check_registration(&mut mismatch).await;
            }
            self.rebalance();
            let set = self.exports.load_full();
            published.retain(|k, _| {
                set.items
                    .iter()
                    .any(|e| e.namespace == k.namespace && e.name == k.name)
            });
            for ex in &set.items {
                let key = ServiceKey::new(&ex.namespace, &ex.name);
                let Ok(counts) = ex.pool.send(GetCounts).await else {
                    continue;
                };
                let due = match published.get(&key) {
                    None => true,
                    Some((last, at)) => {
                        (*last != counts && now.duration_since(*at) >= min_gap)
                            || now.duration_since(*at) >= refresh
                    }
                };
                if !due {
                    continue;
                }
                let healthy = counts.available;
                let body = ExportBody {
                    ports: ex.ports.clone(),
                    healthy_endpoints: healthy,
                    weight: ex.weight,
                    subsets: counts.subsets.clone(),
                    export_to: ex.export_to.clone(),
                };
                let me = &self.cfg.cluster.name;
                match self.fed.export(me, &ex.namespace, &ex.name, &body).await {
                    Ok(_) => {
                        if published.get(&key).map(|p| p.0.available) != Some(healthy) {
                            tracing::info!(service = %key, healthy, "export published");
                        }
                        published.insert(key, (counts, now));
                    }
                    Err(e) => tracing::warn!(error = %e, "export publication failed"),
                }
            }
            if set.synced && (pruned_generation != Some(set.generation) || now >= next_prune) {
                match self.prune(&set).await {
                    Ok(_) => {
                        pruned_generation = Some(set.generation);
                        next_prune = now + refresh;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reconcile exports with the store yet")
                    }
                }
            }
        }
    }
}

impl Actor for PublisherActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.withdrawn {
            return;
        }
        let work = self.job.clone().run();
        self.task = Some(spawn_supervised("publisher", self.restarts, ctx, work));
    }
}

impl Supervised for PublisherActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        on_restart(
            "publisher",
            &mut self.restarts,
            &mut self.task,
            &self.metrics,
        );
    }
}

impl Handler<Withdraw> for PublisherActor {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, _: Withdraw, _ctx: &mut Context<Self>) -> Self::Result {
        // No renewal may follow the withdrawal.
        self.withdrawn = true;
        if let Some(t) = self.task.take() {
            t.abort();
        }
        let job = self.job.clone();
        Box::pin(async move {
            let cluster = &job.cfg.cluster.name;
            match job.fed.withdraw_lease(cluster).await {
                Ok(()) => {
                    tracing::info!(cluster = %cluster, "lease withdrawn: other clusters stop sending here")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot withdraw the lease; it expires by itself")
                }
            }
        })
    }
}

impl Handler<InjectPanic> for PublisherActor {
    type Result = ();
    fn handle(&mut self, _: InjectPanic, ctx: &mut Context<Self>) {
        guarded("publisher", ctx, || panic!("injected panic in publisher"));
    }
}
