//! Wiring a federation node from its config: [`start`] opens the store, binds the Raft RPC
//! and REST listeners, starts Raft and, for a bootstrapping node with an empty store,
//! initializes the federation. [`RunningNode::drain`] stops it gracefully.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openraft::{Config, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::watch;
use warden_raft_store::{LogStore, StateMachineStore};

use crate::config::{NodeConfig, NodeTls};
use crate::network::{NetworkFactory, RpcClient};
use crate::node::FederationNode;
use crate::state::{DATA_FORMAT, FederationState};
use crate::trust::files::CertFiles;
use crate::trust::tls::Identity;
use crate::types::{NodeId, NodeInfo, Raft};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Store(#[from] warden_raft_store::StoreError),
    #[error("raft storage: {0}")]
    Storage(#[source] Box<openraft::StorageError<NodeId>>),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("raft config: {0}")]
    RaftConfig(#[source] Box<openraft::ConfigError>),
    #[error("raft: {0}")]
    Raft(String),
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("tls: {0}")]
    Tls(#[from] crate::trust::TrustError),
}

// openraft's errors are large; boxed, so every `Result<_, StartError>` stays small.
impl From<openraft::StorageError<NodeId>> for StartError {
    fn from(e: openraft::StorageError<NodeId>) -> Self {
        Self::Storage(Box::new(e))
    }
}

impl From<openraft::ConfigError> for StartError {
    fn from(e: openraft::ConfigError) -> Self {
        Self::RaftConfig(Box::new(e))
    }
}

/// A started node and how to stop it.
pub struct RunningNode {
    pub node: Arc<FederationNode>,
    pub api_addr: SocketAddr,
    pub raft_addr: SocketAddr,
    /// Stops the API server (and ends watch streams).
    api_stop: watch::Sender<bool>,
    /// Stops the Raft RPC server and background work, after Raft itself.
    raft_stop: watch::Sender<bool>,
    /// The servers end once every connection they accepted has closed.
    api_server: tokio::task::JoinHandle<()>,
    raft_server: tokio::task::JoinHandle<()>,
    /// Background work stopped with the node (certificate reload).
    tasks: Vec<tokio::task::JoinHandle<()>>,
    drain_timeout: Duration,
}

impl RunningNode {
    /// Stops gracefully: stops accepting, lets requests in flight finish (watch streams end)
    /// for up to the configured drain time, then closes what is left and stops Raft.
    pub async fn shutdown(self) {
        let deadline = self.drain_timeout;
        self.drain(deadline).await;
    }

    /// Like [`RunningNode::shutdown`] with an explicit deadline. The API goes first; Raft RPC
    /// keeps being served meanwhile, so peers see no missed heartbeats (and call no election)
    /// until Raft itself stops. A leader hands leadership to an up-to-date voter before Raft
    /// stops ([`crate::handover`]), so writes move on at once.
    pub async fn drain(mut self, deadline: Duration) {
        let _ = self.api_stop.send(true);
        if tokio::time::timeout(deadline, &mut self.api_server)
            .await
            .is_err()
        {
            tracing::warn!(
                deadline_ms = deadline.as_millis() as u64,
                "API requests still in flight at the drain deadline: closing them"
            );
            self.api_server.abort();
        }
        let started = std::time::Instant::now();
        match crate::handover::hand_over(&self.node).await {
            crate::handover::Outcome::HandedOver { to } => tracing::info!(
                to,
                ms = started.elapsed().as_millis() as u64,
                "handed leadership over before stopping"
            ),
            crate::handover::Outcome::Failed(why) => tracing::warn!(
                %why,
                "could not hand leadership over; the others elect a leader as after a crash"
            ),
            crate::handover::Outcome::NotLeader | crate::handover::Outcome::Alone => {}
        }
        if let Err(e) = self.node.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        let _ = self.raft_stop.send(true);
        if tokio::time::timeout(Duration::from_secs(1), &mut self.raft_server)
            .await
            .is_err()
        {
            self.raft_server.abort();
        }
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

async fn bind(addr: &str) -> Result<(TcpListener, SocketAddr), StartError> {
    let err = |source| StartError::Bind {
        addr: addr.to_string(),
        source,
    };
    let l = TcpListener::bind(addr).await.map_err(err)?;
    let a = l.local_addr().map_err(err)?;
    Ok((l, a))
}

/// The node's TLS pieces, when `[tls]` is configured.
struct NodeTlsParts {
    rpc_client: rustls::ClientConfig,
    raft_acceptor: tokio_rustls::TlsAcceptor,
    api_acceptor: tokio_rustls::TlsAcceptor,
    /// The pin join tokens carry: hex SHA-256 of the federation CA certificate.
    ca_pin: String,
    /// The federation's trust domain (this node's identity's).
    domain: String,
    /// Reloads both identities when the files are replaced.
    reload: tokio::task::JoinHandle<()>,
}

fn tls_parts(t: &NodeTls, stop: watch::Receiver<bool>) -> Result<NodeTlsParts, StartError> {
    use crate::trust::tls;
    let loaded = crate::trust::files::load(&t.cert, &t.key, &t.ca_bundle)?;
    let client = tls::client_config(
        loaded.identity.clone(),
        loaded.store.clone(),
        &loaded.id.trust_domain,
        &[b"h2"],
    )?;
    let server = tls::server_config(loaded.identity.clone(), loaded.store.clone(), &[b"h2"])?;
    // The API serves the node's certificate with the CA behind it, and lets clients without
    // a certificate in (the bearer token authenticates writes).
    let chain = format!("{}{}", loaded.cert_pem, loaded.bundle_pem);
    let (api_identity, _) = Identity::from_pem(&chain, &loaded.key_pem)?;
    let api = tls::server_config_optional_client(
        api_identity.clone(),
        loaded.store,
        &[b"h2", b"http/1.1"],
    )?;
    let ca_der = crate::trust::spiffe::first_cert_der(&loaded.bundle_pem)?;
    tracing::info!(spiffe_id = %loaded.id, "raft rpc over mTLS, api over TLS");
    Ok(NodeTlsParts {
        rpc_client: (*client).clone(),
        raft_acceptor: tokio_rustls::TlsAcceptor::from(server),
        api_acceptor: tokio_rustls::TlsAcceptor::from(api),
        ca_pin: crate::trust::digest::sha256_hex(&ca_der),
        domain: loaded.id.trust_domain.clone(),
        reload: tokio::spawn(reload_certificates(
            t.clone(),
            loaded.identity,
            api_identity,
            stop,
        )),
    })
}

fn raft_config(cfg: &NodeConfig) -> Result<Arc<Config>, StartError> {
    let t = &cfg.raft;
    let c = Config {
        cluster_name: "warden-federation".into(),
        heartbeat_interval: t.heartbeat_ms,
        election_timeout_min: t.election_timeout_min_ms,
        election_timeout_max: t.election_timeout_max_ms,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(t.snapshot_after_logs),
        max_in_snapshot_log_to_keep: t.keep_logs_after_snapshot,
        install_snapshot_timeout: 10_000,
        // A chunk and its envelope must fit in what peers accept.
        snapshot_max_chunk_size: (t.max_rpc_bytes / 2) as u64,
        ..Default::default()
    }
    .validate()?;
    Ok(Arc::new(c))
}

/// Starts a node from its configuration.
pub async fn start(cfg: NodeConfig) -> Result<RunningNode, StartError> {
    cfg.validate()?;
    for addr in cfg.plaintext_exposed() {
        tracing::warn!(%addr, "insecure_plaintext: listening without TLS on a non-loopback address; anyone who reaches it can act as a federation member");
    }
    let admin_token = cfg.resolve_admin_token()?;
    let db = warden_raft_store::open(&cfg.data_dir, DATA_FORMAT)?;
    let log = LogStore::new(db.clone());
    let sm: StateMachineStore<crate::types::TypeConfig, FederationState> =
        StateMachineStore::new(db)?;
    let state = sm.state();

    let (raft_listener, raft_addr) = bind(&cfg.raft_listen).await?;
    let (api_listener, api_addr) = bind(&cfg.api_listen).await?;
    let info = NodeInfo {
        raft_addr: cfg
            .raft_advertise
            .clone()
            .unwrap_or_else(|| raft_addr.to_string()),
        api_addr: cfg
            .api_advertise
            .clone()
            .unwrap_or_else(|| api_addr.to_string()),
    };

    let (api_stop, api_stopped) = watch::channel(false);
    let (raft_stop, _) = watch::channel(false);
    // mTLS between members: this node's identity and the federation's bundle.
    let tls = cfg
        .tls
        .as_ref()
        .map(|t| tls_parts(t, raft_stop.subscribe()))
        .transpose()?;
    let rpc = RpcClient::new(tls.as_ref().map(|t| t.rpc_client.clone()))?;
    let network = NetworkFactory {
        client: rpc.clone(),
        self_id: cfg.node_id,
    };
    let raft = Raft::new(cfg.node_id, raft_config(&cfg)?, network, log, sm)
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;

    let metrics = crate::metrics::NodeMetrics::new();
    let batcher = crate::batch::WriteBatcher::start(crate::batch::Proposer {
        raft: raft.clone(),
        rpc: rpc.clone(),
        id: cfg.node_id,
        proposals: metrics.proposals.clone(),
        proposed_writes: metrics.proposed_writes.clone(),
        max_bytes: cfg.raft.max_rpc_bytes / 4,
    });
    let node = Arc::new(FederationNode {
        id: cfg.node_id,
        info: info.clone(),
        raft: raft.clone(),
        state,
        rpc,
        write_timeout: Duration::from_millis(cfg.write_timeout_ms),
        admin_token,
        shutdown: api_stopped,
        ca_pin: tls.as_ref().map(|t| t.ca_pin.clone()),
        admin_spiffe_ids: cfg.admin_spiffe_ids.clone(),
        metrics,
        advertised: Default::default(),
        own_domain: tls.as_ref().map(|t| t.domain.clone()),
        // Ten joins a minute per address, from at most 4096 addresses at a time.
        join_attempts: crate::ratelimit::PerSource::new(10, 60_000, 4096),
        max_rpc_bytes: cfg.raft.max_rpc_bytes,
        limits: cfg.limits.clone(),
        batcher,
        signals: Default::default(),
        recent: Default::default(),
        placements: Default::default(),
        leader_clock: crate::leader_clock::LeaderClock::track(&raft, cfg.node_id),
    });

    let (raft_tls, api_tls, tasks) = match tls {
        Some(t) => (Some(t.raft_acceptor), Some(t.api_acceptor), vec![t.reload]),
        None => (None, None, vec![]),
    };
    let raft_server = crate::server::spawn_raft_server(
        raft_listener,
        node.clone(),
        raft_stop.subscribe(),
        raft_tls,
    );
    let api_server =
        crate::server::spawn_api_server(api_listener, node.clone(), api_stop.subscribe(), api_tls);

    initialize(&cfg, &raft, &info).await?;
    tracing::info!(node_id = cfg.node_id, api = %api_addr, raft = %raft_addr, "federation node started");
    Ok(RunningNode {
        node,
        api_addr,
        raft_addr,
        api_stop,
        raft_stop,
        api_server,
        raft_server,
        tasks,
        drain_timeout: Duration::from_millis(cfg.drain_timeout_ms),
    })
}

/// Founds the federation (a bootstrapping node with an empty store), or checks that this
/// node's addresses match the membership it restarts into.
async fn initialize(cfg: &NodeConfig, raft: &Raft, info: &NodeInfo) -> Result<(), StartError> {
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;
    if cfg.bootstrap && !initialized {
        let mut members = BTreeMap::new();
        members.insert(cfg.node_id, info.clone());
        for m in &cfg.initial_members {
            members.insert(
                m.id,
                NodeInfo {
                    raft_addr: m.raft_addr.clone(),
                    api_addr: m.api_addr.clone(),
                },
            );
        }
        tracing::info!(members = members.len(), "bootstrapping a new federation");
        raft.initialize(members)
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;
    } else if initialized {
        let metrics = raft.metrics().borrow().clone();
        if let Some(known) = metrics
            .membership_config
            .membership()
            .get_node(&cfg.node_id)
            && known != info
        {
            tracing::warn!(configured = %info, in_membership = %known,
                "this node's advertised addresses differ from the membership; peers will use the membership's");
        }
    }
    Ok(())
}

/// Reloads this node's certificate when its files change: new handshakes on the Raft port and
/// the API use it, established connections keep theirs.
async fn reload_certificates(
    t: NodeTls,
    raft: Arc<Identity>,
    api: Arc<Identity>,
    mut stop: watch::Receiver<bool>,
) {
    let mut files = CertFiles::new(&t.cert, &t.key);
    loop {
        tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let Some(((cert, key), at)) = files.changed() else {
            continue;
        };
        let Ok(bundle) = std::fs::read_to_string(&t.ca_bundle) else {
            continue;
        };
        match (
            raft.replace(&cert, &key),
            api.replace(&format!("{cert}{bundle}"), &key),
        ) {
            (Ok(id), Ok(_)) => {
                files.mark_loaded(at);
                tracing::info!(spiffe_id = %id, "node certificate reloaded");
            }
            // A half-written pair is retried at the next check.
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "node certificate files changed but do not load yet")
            }
        }
    }
}
