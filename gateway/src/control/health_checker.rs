//! [`HealthCheckerActor`]: active probes of local endpoints (TCP connect, or HTTP GET of a
//! path expecting 2xx) on an interval, each bounded by a timeout. Results go to the owning
//! pool actor, which applies the thresholds.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::guard::{InjectPanic, backoff, guarded};
use super::pool::{PoolActor, ProbeCompleted};
use crate::key::ServiceKey;
use crate::metrics::Metrics;
use crate::settings::Settings;

/// One endpoint to probe.
#[derive(Clone)]
pub struct ProbeTarget {
    pub addr: String,
    /// `tcp` or an HTTP path.
    pub probe: String,
    pub pool: Addr<PoolActor>,
}

/// Replaces the probe targets of one service (empty: stop probing it).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetTargets {
    pub service: ServiceKey,
    pub targets: Vec<ProbeTarget>,
}

pub struct HealthCheckerActor {
    targets: HashMap<ServiceKey, Vec<ProbeTarget>>,
    /// The live settings: the interval and timeout are read before every round.
    settings: Arc<ArcSwap<Settings>>,
    http: Client<HttpConnector, Empty<Bytes>>,
    metrics: Arc<Metrics>,
    restarts: u32,
}

impl HealthCheckerActor {
    pub fn new(
        targets: HashMap<ServiceKey, Vec<ProbeTarget>>,
        settings: Arc<ArcSwap<Settings>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        // No connect timeout of its own: each probe, connect included, is bounded by the
        // live `health.timeout_ms`.
        let conn = HttpConnector::new();
        Self {
            targets,
            settings,
            http: Client::builder(TokioExecutor::new()).build(conn),
            metrics,
            restarts: 0,
        }
    }

    fn interval(&self) -> Duration {
        Duration::from_millis(self.settings.load().health_interval_ms.value)
    }

    /// Probes every target, then schedules the next round after the interval in force.
    fn round(&mut self, ctx: &mut Context<Self>) {
        self.probe_all();
        let every = self.interval();
        ctx.run_later(every, |act, ctx| act.round(ctx));
    }

    fn probe_all(&self) {
        let timeout = Duration::from_millis(self.settings.load().health_timeout_ms.value);
        for t in self.targets.values().flatten().cloned() {
            let http = self.http.clone();
            tokio::spawn(async move {
                let ok = tokio::time::timeout(timeout, probe(&http, &t))
                    .await
                    .unwrap_or(false);
                t.pool.do_send(ProbeCompleted {
                    addr: t.addr.clone(),
                    ok,
                });
            });
        }
    }
}

async fn probe(http: &Client<HttpConnector, Empty<Bytes>>, t: &ProbeTarget) -> bool {
    if t.probe == "tcp" {
        return tokio::net::TcpStream::connect(t.addr.as_str())
            .await
            .is_ok();
    }
    let Ok(uri) = format!("http://{}{}", t.addr, t.probe).parse::<http::Uri>() else {
        return false;
    };
    match http.get(uri).await {
        Ok(r) => r.status().is_success(),
        Err(_) => false,
    }
}

impl Actor for HealthCheckerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_later(backoff(self.restarts), |act, ctx| act.round(ctx));
    }
}

impl Supervised for HealthCheckerActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.restarts += 1;
        self.metrics
            .actor_restarts
            .with_label_values(&["health_checker"])
            .inc();
        tracing::warn!(restarts = self.restarts, "health checker restarting");
    }
}

impl Handler<SetTargets> for HealthCheckerActor {
    type Result = ();
    fn handle(&mut self, m: SetTargets, _: &mut Context<Self>) {
        if m.targets.is_empty() {
            self.targets.remove(&m.service);
        } else {
            self.targets.insert(m.service, m.targets);
        }
    }
}

impl Handler<InjectPanic> for HealthCheckerActor {
    type Result = ();
    fn handle(&mut self, _: InjectPanic, ctx: &mut Context<Self>) {
        guarded("health_checker", ctx, || {
            panic!("injected panic in health_checker")
        });
    }
}
