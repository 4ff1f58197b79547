//! The control plane: supervised actix actors that own lifecycle and membership and publish
//! immutable snapshots for the data path. No hyper types cross into their messages.
//!
//! [`start`] wires a gateway: binds the listeners, starts one [`pool::PoolActor`] per local
//! service (through the [`registry::RegistryActor`]), the
//! [`health_checker::HealthCheckerActor`], a [`listener::ListenerActor`] per listener, the
//! [`catalog::CatalogWatcherActor`], the [`publisher::PublisherActor`] (registration, lease,
//! exports), the [`jwks::JwksActor`] (JWT key sets), Kubernetes discovery (with the
//! [`import_listeners::ImportListenersActor`] for imported TCP ports) and the certificate
//! actor when configured — each under an
//! actix `Supervisor` — plus the admin server. It must run inside an actix `System`.
//! [`GatewayHandle::drain`] stops it gracefully.

pub mod addresses;
pub mod catalog;
pub mod catalog_view;
pub mod certificate;
pub mod exports;
pub mod guard;
pub mod health_checker;
pub mod import_listeners;
pub mod jwks;
pub mod k8s;
pub mod listener;
pub mod placement_reports;
pub mod pool;
pub mod publisher;
pub mod registry;
pub mod remote_build;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::{Addr, Recipient, Supervisor};
use tokio::sync::mpsc;
use warden_federation::client::FederationClient;

use crate::balance::Locality;
use crate::config::GatewayConfig;
use crate::drain::Drain;
use crate::key::ServiceKey;
use crate::metrics::Metrics;
use crate::proxy::context::{Listener, PassiveSignal, ProxyCtx, TcpSource};
use crate::proxy::mtls::TlsCtx;
use crate::table::Tables;
use guard::InjectPanic;
use listener::{ListenerActor, StopAccepting};
use publisher::{PublisherActor, Withdraw};

/// Why a gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot bind {what} listener {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("tls: {0}")]
    Tls(String),
    #[error("tls: {0}")]
    Trust(#[from] warden_federation::trust::TrustError),
    #[error("federation client: {0}")]
    Client(#[from] warden_federation::client::ClientError),
    #[error("{0}")]
    Telemetry(#[from] crate::telemetry::TelemetryError),
}

/// A running gateway.
pub struct GatewayHandle {
    pub outbound: SocketAddr,
    pub eastwest: SocketAddr,
    pub admin: SocketAddr,
    /// Bound addresses of `listeners.tcp`, in order.
    pub tcp: Vec<SocketAddr>,
    pub tables: Tables,
    pub metrics: Arc<Metrics>,
    listeners: Vec<Addr<ListenerActor>>,
    /// The listeners of imported TCP ports (Kubernetes imports only).
    import_listeners: Option<Addr<import_listeners::ImportListenersActor>>,
    publisher: Addr<PublisherActor>,
    drain: Drain,
}

impl GatewayHandle {
    /// Drains the gateway: withdraws the cluster's lease (other clusters stop sending here
    /// at once), stops accepting connections, and lets requests in flight finish for up to
    /// `deadline`. Returns whether every connection had ended by then.
    pub async fn drain(&self, deadline: Duration) -> bool {
        let until = tokio::time::Instant::now() + deadline;
        let left = || until.saturating_duration_since(tokio::time::Instant::now());
        tracing::info!(
            deadline_ms = deadline.as_millis() as u64,
            "draining: withdrawing the lease, refusing new connections"
        );
        // Readiness fails first, so load balancers stop sending while the rest happens.
        self.drain.announce();
        let bound = left().min(Duration::from_secs(3));
        if tokio::time::timeout(bound, self.publisher.send(Withdraw))
            .await
            .is_err()
        {
            tracing::warn!("the lease withdrawal did not finish in time; it expires by itself");
        }
        for l in &self.listeners {
            let _ = tokio::time::timeout(left(), l.send(StopAccepting)).await;
        }
        if let Some(l) = &self.import_listeners {
            let _ = tokio::time::timeout(left(), l.send(StopAccepting)).await;
        }
        self.drain.start();
        let open = self.drain.open();
        let done = self.drain.wait(left()).await;
        if done {
            tracing::info!(connections = open, "drained: every connection finished");
        } else {
            tracing::warn!(
                still_open = self.drain.open(),
                "drain deadline reached with connections open: closing them"
            );
        }
        done
    }
}

fn bind(what: &'static str, addr: &str) -> Result<std::net::TcpListener, StartError> {
    let err = |source| StartError::Bind {
        what,
        addr: addr.to_string(),
        source,
    };
    let at = std::net::ToSocketAddrs::to_socket_addrs(addr)
        .map_err(err)?
        .next()
        .ok_or_else(|| err(std::io::Error::other("the address resolves to nothing")))?;
    listener::bind(at).map_err(err)
}

fn local_addr(what: &'static str, l: &std::net::TcpListener) -> Result<SocketAddr, StartError> {
    l.local_addr().map_err(|source| StartError::Bind {
        what,
        addr: "?".into(),
        source,
    })
}

/// Passive signals waiting for the pools at most; more are dropped (best effort).
const PASSIVE_QUEUE: usize = 4096;
/// How long passive signals gather before they go to the pools: the delay an outlier
/// ejection may take on top of the failures that cause it.
const PASSIVE_BATCH: Duration = Duration::from_millis(2);

/// Starts every actor and listener of a gateway. Call inside an actix `System`.
pub async fn start(cfg: GatewayConfig) -> Result<GatewayHandle, StartError> {
    let cfg = Arc::new(cfg);
    let metrics = Arc::new(Metrics::new());
    let mut tables = Tables::with_settings(crate::settings::Settings::from_file(&cfg));
    tables.telemetry = Arc::new(crate::telemetry::Telemetry::start(
        &cfg.telemetry,
        &cfg.cluster.name,
        metrics.clone(),
    )?);
    if cfg.telemetry.signals {
        // The golden signals' sampler: copies counters the data path keeps anyway; it cannot
        // fail (a poisoned ring is taken as it is), so it needs no supervisor.
        let (signals, metrics) = (tables.signals.clone(), metrics.clone());
        actix::spawn(async move {
            let mut every = tokio::time::interval(crate::signals::EVERY);
            loop {
                every.tick().await;
                signals.sample(&metrics);
            }
        });
    }
    let me = Locality {
        cluster: cfg.cluster.name.clone(),
        region: cfg.cluster.region.clone(),
        zone: cfg.cluster.zone.clone(),
    };
    let outbound_sock = bind("outbound", &cfg.listeners.outbound)?;
    let eastwest_sock = bind("east-west", &cfg.listeners.eastwest)?;
    let admin_sock = bind("admin", &cfg.listeners.admin)?;
    let (outbound, eastwest, admin) = (
        local_addr("outbound", &outbound_sock)?,
        local_addr("east-west", &eastwest_sock)?,
        local_addr("admin", &admin_sock)?,
    );
    let mut tcp_socks = Vec::new();
    let mut tcp = Vec::new();
    for r in &cfg.listeners.tcp {
        let sock = bind("tcp", &r.listen)?;
        tcp.push(local_addr("tcp", &sock)?);
        tcp_socks.push(sock);
    }
    // Endpoints never point at this gateway's own listeners (nor, unless allowed, at
    // loopback or link-local addresses).
    let mut guard = addresses::EndpointGuard::new(
        &cfg.discovery,
        [outbound, eastwest, admin]
            .into_iter()
            .chain(tcp.iter().copied())
            .collect(),
    );
    if cfg.discovery.kubernetes.imports {
        guard = guard.with_import_ports(outbound.ip(), cfg.discovery.kubernetes.import_tcp_ports);
    }
    let guard = Arc::new(guard);
    let advertise = cfg
        .cluster
        .advertise
        .clone()
        .unwrap_or_else(|| eastwest.to_string());
    if eastwest.ip().is_unspecified() && cfg.cluster.advertise.is_none() {
        tracing::warn!(%eastwest, "the east-west listener is bound to a wildcard address and cluster.advertise is unset: other clusters cannot reach this gateway at the address it would register; set cluster.advertise");
    }

    let mut hooks: HashMap<String, Recipient<InjectPanic>> = HashMap::new();

    // Pools, one per local service of the `[[services]]` tables (Kubernetes discovery adds
    // its services through the registry once it has listed the cluster).
    let mut initial = Vec::new();
    let mut probes: HashMap<ServiceKey, Vec<health_checker::ProbeTarget>> = HashMap::new();
    for s in &cfg.services {
        let (s, refused) = guard.filter(s.clone());
        if !refused.is_empty() {
            tracing::warn!(service = %registry::key_of(&s), refused = %addresses::describe(&refused), "endpoints refused");
        }
        let s = &s;
        let addr = registry::spawn_pool(s, &cfg, &tables, &metrics);
        hooks.insert(
            format!("pool:{}/{}", s.namespace, s.name),
            addr.clone().recipient(),
        );
        probes.insert(registry::key_of(s), registry::probe_targets(s, &addr));
        initial.push((s.clone(), addr));
    }
    let shared = registry::Shared::default();

    // Passive signals: a bounded channel from the data path, handed to the pools in batches
    // (one message per pool every PASSIVE_BATCH at most), so that a request does not wake
    // the actors' thread: under load that hand-off was the data path's largest cost.
    let (passive_tx, mut passive_rx) = mpsc::channel::<PassiveSignal>(PASSIVE_QUEUE);
    let routes = shared.pools.clone();
    tokio::spawn(async move {
        let mut got = Vec::with_capacity(256);
        while passive_rx.recv_many(&mut got, PASSIVE_QUEUE).await > 0 {
            let mut batches: HashMap<ServiceKey, Vec<pool::RequestCompleted>> = HashMap::new();
            for sig in got.drain(..) {
                batches
                    .entry(sig.service)
                    .or_default()
                    .push(pool::RequestCompleted {
                        addr: sig.endpoint,
                        ok: sig.ok,
                        refused: sig.refused,
                        latency_us: sig.latency_us,
                    });
            }
            let pools = routes.load();
            for (service, batch) in batches {
                if let Some(p) = pools.get(&service) {
                    p.do_send(pool::RequestsCompleted(batch));
                }
            }
            tokio::time::sleep(PASSIVE_BATCH).await;
        }
    });

    // mTLS on the east-west hop: this gateway's identity, and a trust store seeded with its
    // own domain's bundle (the others arrive from the federation store).
    let (tls, own_bundle) = match &cfg.tls {
        None => (None, None),
        Some(t) => {
            let loaded = warden_federation::trust::files::load(&t.cert, &t.key, &t.ca_bundle)?;
            if loaded.id.trust_domain != cfg.cluster.trust_domain {
                return Err(StartError::Tls(format!(
                    "the certificate's trust domain {} is not this cluster's ({})",
                    loaded.id.trust_domain, cfg.cluster.trust_domain
                )));
            }
            let ctx = TlsCtx::new(
                loaded.identity,
                loaded.id,
                loaded.store,
                Duration::from_millis(cfg.timeouts.connect_ms),
                cfg.listeners.outbound_tls,
            )?;
            (Some(ctx), Some(loaded.bundle_pem))
        }
    };
    if let Some(t) = &tls {
        tokio::spawn(t.clone().follow_trust());
    }
    let drain = Drain::default();
    // One tunnel budget for the whole gateway, shared by every worker's context.
    let tunnels = Arc::new(tokio::sync::Semaphore::new(cfg.limits.max_tunnels));
    let parts = crate::proxy::context::ProxyParts {
        tables: tables.clone(),
        me: me.clone(),
        cfg: cfg.clone(),
        metrics: metrics.clone(),
        passive: passive_tx.clone(),
        tls: tls.clone(),
        drain: drain.clone(),
        tunnels,
    };
    let proxy = ProxyCtx::new(&parts);
    // Per-core mode: one arbiter per core, each with its own proxy context (connection pools).
    let workers: Vec<(actix::ArbiterHandle, Arc<ProxyCtx>)> = match cfg.runtime.data_path {
        crate::config::DataPathThreads::Shared => Vec::new(),
        crate::config::DataPathThreads::PerCore => {
            let n = cfg
                .runtime
                .workers
                .unwrap_or_else(|| {
                    std::thread::available_parallelism()
                        .map(|n| n.get())
                        .unwrap_or(1)
                })
                .max(1);
            (0..n)
                .map(|_| {
                    let arbiter = actix::Arbiter::new().handle();
                    (arbiter, ProxyCtx::new(&parts))
                })
                .collect()
        }
    };

    let hc = {
        let (settings, m) = (tables.settings.clone(), metrics.clone());
        Supervisor::start(move |_| health_checker::HealthCheckerActor::new(probes, settings, m))
    };
    hooks.insert("health_checker".into(), hc.clone().recipient());
    let kube = cfg.discovery.source == crate::config::DiscoverySource::Kubernetes;
    let registry = {
        let (c, t, m, h, sh) = (
            cfg.clone(),
            tables.clone(),
            metrics.clone(),
            hc,
            shared.clone(),
        );
        Supervisor::start(move |_| registry::RegistryActor::new(c, t, m, h, initial, !kube, sh))
    };

    let mut listeners = vec![
        (
            "listener_outbound".to_string(),
            outbound_sock,
            Listener::Outbound,
        ),
        (
            "listener_eastwest".to_string(),
            eastwest_sock,
            Listener::EastWest,
        ),
    ];
    for (i, sock) in tcp_socks.into_iter().enumerate() {
        listeners.push((
            format!("listener_tcp_{i}"),
            sock,
            Listener::Tcp(TcpSource::Config(i)),
        ));
    }
    // A connection cap above the open-file limit never binds: accepts fail first (EMFILE).
    if let Some(files) = warden_federation::limits::raise_open_files()
        && cfg.limits.max_connections as u64 >= files
    {
        tracing::warn!(
            max_connections = cfg.limits.max_connections,
            open_files = files,
            "limits.max_connections is not below the process's open-file limit; raise the limit (ulimit -n) or lower max_connections"
        );
    }
    let mut listener_addrs = Vec::new();
    for (name, sock, kind) in listeners {
        let (p, m, w) = (proxy.clone(), metrics.clone(), workers.clone());
        let hook = name.clone();
        let addr =
            Supervisor::start(move |_| ListenerActor::new(name, sock, kind, p, m).per_core(w));
        hooks.insert(hook, addr.clone().recipient());
        listener_addrs.push(addr);
    }

    let credential = cfg.credential();
    if let Some(crate::config::Credential::Admin(_)) = &credential {
        tracing::warn!(
            "this gateway writes to the federation with the admin token; give it its cluster's own credential (federation.cluster_token or WARDEN_CLUSTER_TOKEN; `warden cluster credential --name {}`) and take the admin token away",
            cfg.cluster.name
        );
    }
    let token = credential.as_ref().map(|c| c.token().to_string());
    let fed_ca = match &cfg.federation.ca_bundle {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| StartError::Tls(format!("{}: {e}", p.display())))?,
        ),
        None => None,
    };
    let fed = FederationClient::new(&cfg.federation.endpoints, token, fed_ca.as_deref())?;
    let cw = {
        let (me, f, t, m) = (
            cfg.cluster.name.clone(),
            fed.clone(),
            tables.clone(),
            metrics.clone(),
        );
        let trust = tls.as_ref().map(|t| t.store.clone());
        let td = cfg.cluster.trust_domain.clone();
        Supervisor::start(move |_| catalog::CatalogWatcherActor::new(me, td, f, t, m, trust))
    };
    hooks.insert("catalog_watcher".into(), cw.recipient());
    let jwks = {
        let (t, m) = (tables.clone(), metrics.clone());
        Supervisor::start(move |_| jwks::JwksActor::new(t, m))
    };
    hooks.insert("jwks".into(), jwks.recipient());
    let publisher = {
        let (c, f, m, t) = (cfg.clone(), fed.clone(), metrics.clone(), tables.clone());
        let trust = tls.as_ref().map(|t| t.store.clone());
        let exports = shared.exports.clone();
        let adv = advertise.clone();
        Supervisor::start(move |_| PublisherActor::new(c, f, adv, own_bundle, trust, exports, t, m))
    };
    hooks.insert("publisher".into(), publisher.clone().recipient());
    let import_listeners = (kube && cfg.discovery.kubernetes.imports).then(|| {
        let (p, m, w) = (proxy.clone(), metrics.clone(), workers.clone());
        let host = outbound.ip();
        Supervisor::start(move |_| import_listeners::ImportListenersActor::new(host, p, m, w))
    });
    if kube {
        let (c, f, m, g) = (cfg.clone(), fed.clone(), metrics.clone(), guard.clone());
        let il = import_listeners.clone().map(|a| a.recipient());
        let kd = Supervisor::start(move |_| k8s::KubeDiscoveryActor::new(c, f, registry, m, g, il));
        hooks.insert("kube_discovery".into(), kd.recipient());
    }
    if let (Some(t), Some(ctx)) = (cfg.tls.clone(), tls.as_ref()) {
        let (identity, m) = (ctx.identity.clone(), metrics.clone());
        let cert = Supervisor::start(move |_| certificate::CertificateActor::new(t, identity, m));
        hooks.insert("certificate".into(), cert.recipient());
    }

    crate::admin::spawn(
        admin_sock,
        crate::admin::AdminState {
            ctx: proxy.clone(),
            hooks: cfg.test_hooks.then_some(Arc::new(hooks)),
            advertise,
        },
    )
    .map_err(|source| StartError::Bind {
        what: "admin",
        addr: admin.to_string(),
        source,
    })?;
    tracing::info!(cluster = %cfg.cluster.name, %outbound, %eastwest, %admin, "gateway started");
    Ok(GatewayHandle {
        outbound,
        eastwest,
        admin,
        tcp,
        tables,
        metrics,
        listeners: listener_addrs,
        import_listeners,
        publisher,
        drain,
    })
}
