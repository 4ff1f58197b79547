//! [`CatalogWatcherActor`]: follows the federation store and publishes the remote routing
//! table.
//!
//! It lists `GET /api/v1/catalog` (one consistent revision), then follows
//! `GET /api/v1/watch?from_revision=R`, applying each change and republishing. Lease expiries
//! are re-evaluated every 250 ms even without events. When the store is unreachable the
//! gateway keeps routing from its last table (marked disconnected) and retries other nodes
//! with backoff; a compacted revision triggers a fresh listing. The follow loop runs in a
//! spawned task; if it dies, the actor stops and the supervisor restarts it.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::StreamExt;
use warden_federation::client::{ClientError, FederationClient};
use warden_federation::clock::now_ms;
use warden_federation::trust::verify::TrustStore;

use super::catalog_view::CatalogView;
use super::guard::{InjectPanic, guarded, on_restart, spawn_supervised};
use super::remote_build::RemoteBuilder;
use crate::metrics::Metrics;
use crate::table::Tables;

/// How often lease liveness is re-evaluated without events.
pub const LEASE_EVAL: Duration = Duration::from_millis(250);
/// The shortest gap between two routing rebuilds while changes keep coming.
pub const MIN_REBUILD_GAP: Duration = Duration::from_millis(1);

pub struct CatalogWatcherActor {
    me: String,
    /// This cluster's trust domain: its bundle is never taken from the store.
    own_domain: String,
    fed: FederationClient,
    tables: Tables,
    metrics: Arc<Metrics>,
    /// Where federated CA bundles go, when mTLS is on.
    trust: Option<Arc<TrustStore>>,
    restarts: u32,
    task: Option<tokio::task::AbortHandle>,
}

impl CatalogWatcherActor {
    pub fn new(
        me: String,
        own_domain: String,
        fed: FederationClient,
        tables: Tables,
        metrics: Arc<Metrics>,
        trust: Option<Arc<TrustStore>>,
    ) -> Self {
        Self {
            me,
            own_domain,
            fed,
            tables,
            metrics,
            trust,
            restarts: 0,
            task: None,
        }
    }
}

/// Why following the store stopped.
#[derive(Debug, thiserror::Error)]
enum FollowError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("watch stream silent for {0:?}")]
    Silent(Duration),
}

struct Follower {
    me: String,
    own_domain: String,
    fed: FederationClient,
    tables: Tables,
    metrics: Arc<Metrics>,
    trust: Option<Arc<TrustStore>>,
    /// The services of the last table, redone per change for what the change touched.
    builder: std::sync::Mutex<RemoteBuilder>,
}

impl Follower {
    /// Publishes the routing table for `view`; returns how long the rebuild took.
    fn publish(&self, view: &mut CatalogView, connected: bool) -> Duration {
        self.publish_at(view, connected, now_ms())
    }

    /// Loads federated CA bundles whose version changed into the trust store — never this
    /// gateway's own domain's: that one comes from its own files only, so nobody who can write to
    /// the store can make this gateway trust a CA for its own identities.
    fn sync_bundles(&self, view: &CatalogView) {
        let Some(store) = &self.trust else { return };
        let loaded = store.versions();
        for (td, b) in &view.bundles {
            if *td == self.own_domain {
                continue;
            }
            if loaded.get(td) != Some(&b.version) {
                match store.set(td, &b.ca_bundle_pem, b.version) {
                    Ok(()) => {
                        tracing::info!(trust_domain = %td, version = b.version, "trust bundle loaded")
                    }
                    Err(e) => {
                        tracing::warn!(trust_domain = %td, error = %e, "unusable trust bundle ignored")
                    }
                }
            }
        }
        for td in loaded.keys() {
            // Version 0 is the bootstrap bundle from the config file; keep it until the store
            // has one for that domain.
            if *td != self.own_domain
                && !view.bundles.contains_key(td)
                && loaded.get(td) != Some(&0)
            {
                store.remove(td);
                tracing::warn!(trust_domain = %td, "trust bundle removed");
            }
        }
    }

    /// Publishes with lease liveness judged at `now_ms`.
    fn publish_at(&self, view: &mut CatalogView, connected: bool, now_ms: u64) -> Duration {
        self.sync_bundles(view);
        let started = std::time::Instant::now();
        let changes = view.take_changes();
        let table = {
            // Only this task builds; a panic mid-build leaves a builder that may be behind the
            // view, so after one everything is built again.
            let mut builder = match self.builder.lock() {
                Ok(b) => b,
                Err(p) => {
                    let mut b = p.into_inner();
                    *b = RemoteBuilder::default();
                    b
                }
            };
            builder.build(view, changes, &self.me, now_ms, connected, &self.tables)
        };
        let settings = self
            .tables
            .file_settings
            .with_store(&view.mesh_config, view.cluster_configs.get(&self.me));
        if **self.tables.settings.load() != settings {
            tracing::info!(revision = view.revision, "settings from the store applied");
            self.tables.settings.store(Arc::new(settings));
        }
        let took = started.elapsed();
        self.metrics.routing_rebuild.observe(took.as_secs_f64());
        self.metrics
            .federation_revision
            .with_label_values(&["revision"])
            .set(view.revision as i64);
        self.metrics
            .federation_revision
            .with_label_values(&["connected"])
            .set(connected as i64);
        self.tables.remote.store(Arc::new(table));
        took
    }

    /// Lists and follows until an error; `view` keeps what to route from.
    async fn follow_once(&self, view: &mut Option<CatalogView>) -> Result<(), FollowError> {
        if view.is_none() {
            let mut v = CatalogView::from_listing(self.fed.catalog().await?);
            self.publish(&mut v, true);
            tracing::info!(
                revision = v.revision,
                clusters = v.clusters.len(),
                "catalog listed"
            );
            *view = Some(v);
        }
        let Some(v) = view.as_mut() else {
            return Ok(());
        };
        let mut stream = match self.fed.watch(v.revision).await {
            Ok(s) => s.ready_chunks(1024),
            Err(ClientError::RevisionCompacted { message }) => {
                *view = None;
                return Err(ClientError::RevisionCompacted { message }.into());
            }
            Err(e) => return Err(e.into()),
        };
        // The first line (a heartbeat at least) marks the stream live.
        let mut first = true;
        let mut tick = tokio::time::interval(LEASE_EVAL);
        let mut last_live = v.liveness(now_ms());
        // Heartbeats come every 10 s; silence for 3 of them means a dead stream. The timer is
        // reset by each line only (the lease tick below must not keep it from firing).
        let silence = Duration::from_secs(30);
        let quiet = tokio::time::sleep(silence);
        tokio::pin!(quiet);
        // Changes not yet in the routing table, and when the next rebuild may run: a rebuild
        // waits at least as long as the last one took (and MIN_REBUILD_GAP), so a stream of
        // changes costs the gateway at most about half its time in rebuilds, whatever the
        // mesh's size; a change after a quiet spell is published at once.
        let mut dirty = false;
        let next_rebuild = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(next_rebuild);
        loop {
            tokio::select! {
                _ = &mut quiet => {
                    self.fed.prefer_next();
                    return Err(FollowError::Silent(silence));
                }
                _ = &mut next_rebuild, if dirty => {
                    let took = self.publish(v, true);
                    dirty = false;
                    last_live = v.liveness(now_ms());
                    next_rebuild.as_mut().reset(tokio::time::Instant::now() + took.max(MIN_REBUILD_GAP));
                }
                lines = stream.next() => {
                    // Every line already here comes in one chunk: a burst of changes (a
                    // thousand clusters' exports after a reconnect, say) costs one rebuild.
                    let Some(lines) = lines else { return Ok(()) };
                    quiet.as_mut().reset(tokio::time::Instant::now() + silence);
                    let mut changed = std::mem::take(&mut first);
                    let mut failed = None;
                    for line in lines {
                        match line {
                            Ok(line) => changed |= v.apply(line),
                            Err(e) => {
                                failed = Some(e);
                                break;
                            }
                        }
                    }
                    dirty |= changed;
                    if let Some(e) = failed {
                        if dirty {
                            self.publish(v, true);
                        }
                        if matches!(e, ClientError::RevisionCompacted { .. }) {
                            *view = None;
                        } else {
                            self.fed.prefer_next();
                        }
                        return Err(e.into());
                    }
                }
                _ = tick.tick() => {
                    let live = v.liveness(now_ms());
                    if live != last_live {
                        tracing::info!("cluster lease liveness changed");
                        self.publish(v, true);
                        last_live = live;
                    }
                }
            }
        }
    }

    async fn run(self) {
        let mut view: Option<CatalogView> = None;
        let mut failures = 0u32;
        // While the store is unreachable, lease liveness is judged as of the moment the
        // connection was lost: without renewals to see, letting every remote lease lapse would
        // cut all cross-cluster traffic because of our own partition from the store.
        let mut frozen_at: Option<u64> = None;
        loop {
            let started = std::time::Instant::now();
            let err = self.follow_once(&mut view).await.err();
            // A stream that ran for a while was a success, whatever ended it.
            if started.elapsed() > Duration::from_secs(5) {
                failures = 0;
                frozen_at = None;
            }
            if let Some(e) = err {
                failures += 1;
                let at = *frozen_at.get_or_insert_with(now_ms);
                if failures == 1 || failures.is_multiple_of(20) {
                    tracing::warn!(error = %e, failures, "federation watch interrupted; routing from the last table");
                }
                if let Some(v) = &mut view {
                    self.publish_at(v, false, at);
                }
            }
            tokio::time::sleep(Duration::from_millis(
                (100 * (1u64 << failures.min(4))).min(2_000),
            ))
            .await;
        }
    }
}

impl Actor for CatalogWatcherActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let follower = Follower {
            me: self.me.clone(),
            own_domain: self.own_domain.clone(),
            fed: self.fed.clone(),
            tables: self.tables.clone(),
            metrics: self.metrics.clone(),
            trust: self.trust.clone(),
            builder: std::sync::Mutex::new(RemoteBuilder::default()),
        };
        self.task = Some(spawn_supervised(
            "catalog_watcher",
            self.restarts,
            ctx,
            follower.run(),
        ));
    }
}

impl Supervised for CatalogWatcherActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        on_restart(
            "catalog_watcher",
            &mut self.restarts,
            &mut self.task,
            &self.metrics,
        );
    }
}

impl Handler<InjectPanic> for CatalogWatcherActor {
    type Result = ();
    fn handle(&mut self, _: InjectPanic, ctx: &mut Context<Self>) {
        guarded("catalog_watcher", ctx, || {
            panic!("injected panic in catalog_watcher")
        });
    }
}
