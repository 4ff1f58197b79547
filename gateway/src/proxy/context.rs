//! What a request runs with: [`ProxyCtx`], shared by every connection of a data-path worker
//! (routing tables, config, clients, the retry budget, the passive-signal channel), and
//! [`RequestCtx`], the one per-request record each stage reads and fills in — no tuples, no
//! out-parameters.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method};
use tokio::sync::mpsc;
use tokio::time::Instant;
use warden_federation::trust::spiffe::SpiffeId;

use super::budget::RetryBudget;
use super::client::Clients;
use super::mtls::TlsCtx;
use super::respond::is_grpc;
use super::trace::TraceContext;
use crate::balance::Locality;
use crate::config::GatewayConfig;
use crate::drain::Drain;
use crate::key::ServiceKey;
use crate::metrics::Metrics;
use crate::table::Tables;

/// Which listener a connection arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Outbound,
    EastWest,
    /// Raw TCP route `listeners.tcp[i]`.
    Tcp(usize),
}

impl Listener {
    pub fn name(self) -> &'static str {
        match self {
            Listener::Outbound => "outbound",
            Listener::EastWest => "eastwest",
            Listener::Tcp(_) => "tcp",
        }
    }
}

/// A passive health signal from the data path.
#[derive(Debug, Clone)]
pub struct PassiveSignal {
    pub service: ServiceKey,
    pub endpoint: String,
    pub ok: bool,
    /// The connection was refused: counts as a failed health probe too.
    pub refused: bool,
}

/// Everything a request needs; shared by every connection of one data-path worker.
pub struct ProxyCtx {
    pub tables: Tables,
    pub me: Locality,
    pub cfg: Arc<GatewayConfig>,
    pub metrics: Arc<Metrics>,
    /// Pooled upstream clients (local endpoints, remote gateways).
    pub clients: Clients,
    passive: mpsc::Sender<PassiveSignal>,
    pub budget: RetryBudget,
    /// mTLS for the east-west hop (listener and client), when configured.
    pub tls: Option<Arc<TlsCtx>>,
    /// Tells open connections to finish and close on shutdown.
    pub drain: Drain,
}

impl ProxyCtx {
    pub fn new(
        tables: Tables,
        me: Locality,
        cfg: Arc<GatewayConfig>,
        metrics: Arc<Metrics>,
        passive: mpsc::Sender<PassiveSignal>,
        tls: Option<Arc<TlsCtx>>,
        drain: Drain,
    ) -> Arc<Self> {
        let clients = Clients::new(Duration::from_millis(cfg.timeouts.connect_ms));
        let budget = RetryBudget::new(
            cfg.retries.budget_percent,
            cfg.retries.min_retries_per_second,
        );
        Arc::new(Self {
            tables,
            me,
            cfg,
            metrics,
            clients,
            passive,
            budget,
            tls,
            drain,
        })
    }

    /// Reports an attempt's outcome to the service's pool; bounded and non-blocking: if the
    /// control plane is behind, the signal is dropped.
    pub fn signal(&self, service: &ServiceKey, endpoint: &str, ok: bool, refused: bool) {
        let _ = self.passive.try_send(PassiveSignal {
            service: service.clone(),
            endpoint: endpoint.to_string(),
            ok,
            refused,
        });
    }
}

/// One request as it moves through the stages.
#[derive(Debug)]
pub struct RequestCtx {
    pub listener: Listener,
    pub started: Instant,
    /// The verified mTLS identity of the peer gateway (east-west with mTLS).
    pub peer: Option<Arc<SpiffeId>>,
    /// The calling cluster: this one for local callers; the east-west header's claim
    /// otherwise (bounded, for labels).
    pub src_cluster: String,
    /// The caller speaks gRPC: errors are answered as gRPC statuses.
    pub grpc: bool,
    pub trace: TraceContext,
    /// Method and path for the access line, copied only when the line will be written.
    pub access: Option<(Method, String)>,
    /// The service the request names, once named.
    pub service: Option<ServiceKey>,
    /// The cluster of the last target tried.
    pub dst: Option<String>,
    /// The endpoint (local) or remote gateway of the last target tried.
    pub endpoint: Option<String>,
    pub retries: u32,
}

/// Header carrying the calling cluster on the east-west hop.
pub const SOURCE_HEADER: &str = "x-warden-source-cluster";

impl RequestCtx {
    /// The context of a request with `headers` arriving on `listener` of a gateway in
    /// cluster `me`.
    pub fn new(
        ctx: &ProxyCtx,
        listener: Listener,
        peer: Option<Arc<SpiffeId>>,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Self {
        let src_cluster = match listener {
            Listener::Outbound | Listener::Tcp(_) => ctx.me.cluster.clone(),
            Listener::EastWest => headers
                .get(SOURCE_HEADER)
                .and_then(|v| v.to_str().ok())
                .filter(|v| v.len() <= 63)
                .unwrap_or("unknown")
                .to_string(),
        };
        let access = (ctx.cfg.telemetry.access_log
            && tracing::enabled!(target: "warden::access", tracing::Level::INFO))
        .then(|| (method.clone(), path.to_string()));
        Self {
            listener,
            started: Instant::now(),
            peer,
            src_cluster,
            grpc: is_grpc(headers),
            trace: TraceContext::from_headers(headers),
            access,
            service: None,
            dst: None,
            endpoint: None,
            retries: 0,
        }
    }

    /// The service label (`ns/svc`, or `-` before the service is named).
    pub fn service_label(&self) -> String {
        self.service
            .as_ref()
            .map(|k| k.to_string())
            .unwrap_or_else(|| "-".into())
    }
}
