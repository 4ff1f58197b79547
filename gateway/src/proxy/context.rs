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
use super::error::ProxyError;
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
    /// A raw TCP listener.
    Tcp(TcpSource),
}

/// Which service a raw TCP listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpSource {
    /// Route `listeners.tcp[i]` of the configuration.
    Config(usize),
    /// The import listener on this pod port (see `control::import_listeners`): the service
    /// is looked up per connection in [`crate::table::Tables::tcp_imports`].
    Import(u16),
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
    /// Time to the response head (µs), when a response came.
    pub latency_us: Option<u64>,
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
    /// The HTTP server with the listener limits (header time and size, h2 streams, resets).
    pub server: hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    /// Tunnels (raw TCP, east-west CONNECT) open at once, shared by every worker.
    pub tunnels: Arc<tokio::sync::Semaphore>,
}

/// What every worker's [`ProxyCtx`] shares; each worker builds its own clients, budget and
/// server from it.
#[derive(Clone)]
pub struct ProxyParts {
    pub tables: Tables,
    pub me: Locality,
    pub cfg: Arc<GatewayConfig>,
    pub metrics: Arc<Metrics>,
    pub passive: mpsc::Sender<PassiveSignal>,
    pub tls: Option<Arc<TlsCtx>>,
    pub drain: Drain,
    /// Tunnels (raw TCP, east-west CONNECT) open at once, across every worker.
    pub tunnels: Arc<tokio::sync::Semaphore>,
}

impl ProxyCtx {
    pub fn new(parts: &ProxyParts) -> Arc<Self> {
        let ProxyParts {
            tables,
            me,
            cfg,
            metrics,
            passive,
            tls,
            drain,
            tunnels,
        } = parts.clone();
        let l = &cfg.limits;
        let clients = Clients::new(
            Duration::from_millis(cfg.timeouts.connect_ms),
            l.max_header_bytes,
        );
        let mut server = warden_federation::limits::ServerLimits {
            header_read_timeout: Duration::from_millis(l.header_read_timeout_ms),
            max_header_bytes: l.max_header_bytes,
            max_concurrent_streams: l.max_concurrent_streams,
            max_pending_reset_streams: l.max_pending_reset_streams,
            h2_keepalive: Duration::from_millis(l.h2_keepalive_ms),
        }
        .builder();
        // HTTP/2 extended CONNECT (RFC 8441): how upgrades cross the east-west hop.
        server.http2().enable_connect_protocol();
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
            server,
            tunnels,
        })
    }

    /// One of the gateway's tunnel permits (a CONNECT tunnel, an upgraded stream), held until
    /// the stream ends; none left is an error at once, never a queue.
    pub fn tunnel_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ProxyError> {
        let max = self.cfg.limits.max_tunnels;
        self.tunnels
            .clone()
            .try_acquire_owned()
            .map_err(|_| ProxyError::TunnelLimit { max })
    }

    /// Reports an attempt's outcome to the service's pool; bounded and non-blocking: if the
    /// control plane is behind, the signal is dropped.
    pub fn signal(&self, service: &ServiceKey, endpoint: &str, ok: bool, refused: bool) {
        self.signal_timed(service, endpoint, ok, refused, None)
    }

    /// [`Self::signal`] with the time to the response head, for latency outlier detection.
    pub fn signal_timed(
        &self,
        service: &ServiceKey,
        endpoint: &str,
        ok: bool,
        refused: bool,
        latency_us: Option<u64>,
    ) {
        let _ = self.passive.try_send(PassiveSignal {
            service: service.clone(),
            endpoint: endpoint.to_string(),
            ok,
            refused,
            latency_us,
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
    /// The verified identity of the calling workload (outbound listener with
    /// `listeners.outbound_tls`, when it presented a certificate).
    pub workload: Option<Arc<SpiffeId>>,
    /// The calling cluster: this one for local callers; on the east-west hop the claimed
    /// one once verified (registered with the peer's trust domain), else `None`.
    pub src_cluster: Option<String>,
    /// The caller speaks gRPC: errors are answered as gRPC statuses.
    pub grpc: bool,
    pub trace: TraceContext,
    /// One access line is written for this request.
    pub access_log: bool,
    /// The trace is sampled (`telemetry.sample_per_million`): the request is recorded.
    pub sampled: bool,
    /// Method and URI for the access line and the recorded span, kept only when either may
    /// be written (the URI's clone shares its bytes).
    pub detail: Option<(Method, http::Uri)>,
    /// The service the request names, once named.
    pub service: Option<ServiceKey>,
    /// The cluster of the last target tried.
    pub dst: Option<String>,
    /// The endpoint (local) or remote gateway of the last target tried.
    pub endpoint: Option<String>,
    pub retries: u32,
    /// The service port the request names (`None`: the service's first).
    pub port: Option<u16>,
    /// The verified JWT's claims, once a JWT policy checked the token.
    pub claims: Option<Arc<crate::authn::Claims>>,
}

/// The label value of a service or cluster that is not known (or not verified).
pub const UNKNOWN: &str = "unknown";

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
        uri: &http::Uri,
        headers: &HeaderMap,
    ) -> Self {
        // A TLS client of the outbound listener is a workload, of the east-west one a gateway.
        let (peer, workload) = match listener {
            Listener::Outbound => (None, peer),
            _ => (peer, None),
        };
        // East-west: set by authorization, from the verified peer.
        let src_cluster = match listener {
            Listener::Outbound | Listener::Tcp(_) => Some(ctx.me.cluster.clone()),
            Listener::EastWest => None,
        };
        let settings = ctx.tables.settings.load();
        let access_log = settings.access_log.value
            && tracing::enabled!(target: "warden::access", tracing::Level::INFO);
        let trace = TraceContext::from_headers(headers);
        let records = ctx.tables.telemetry.records();
        let sampled = records
            && crate::telemetry::sampled(&trace.trace_id, settings.sample_per_million.value);
        // A request that is not sampled may still be recorded if it fails: keep the detail
        // whenever anything records.
        let detail = (access_log || records).then(|| (method.clone(), uri.clone()));
        Self {
            listener,
            started: Instant::now(),
            peer,
            workload,
            src_cluster,
            grpc: is_grpc(headers),
            trace,
            access_log,
            sampled,
            detail,
            service: None,
            dst: None,
            endpoint: None,
            retries: 0,
            port: None,
            claims: None,
        }
    }

    /// The service label: `ns/svc` of a known service, else `unknown` (bounded: a label never
    /// comes from an unknown name a client made up).
    pub fn service_label(&self) -> String {
        self.service
            .as_ref()
            .map(|k| k.to_string())
            .unwrap_or_else(|| UNKNOWN.into())
    }

    /// The source-cluster label: a verified cluster, else `unknown`.
    pub fn src_label(&self) -> &str {
        self.src_cluster.as_deref().unwrap_or(UNKNOWN)
    }
}
