//! A federation node: Raft wired to the redb store, the RPC network and the two listeners.
//!
//! [`start`] opens the store, binds the Raft RPC and REST listeners, starts Raft and, for a
//! bootstrapping node with an empty store, initializes the federation. [`FederationNode`] is
//! what handlers use: local reads of the applied state, and writes, linearizable reads and
//! membership changes that run on the leader — forwarded there when this node is a follower.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{ChangeMembers, Config, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;
use warden_raft_store::{LogStore, SharedState, StateMachineStore};

use crate::command::{Command, CommandResult};
use crate::config::NodeConfig;
use crate::network::{CallError, NetworkFactory, RpcClient};
use crate::rpc::{ForwardRequest, ForwardResponse};
use crate::state::FederationState;
use crate::types::{NodeId, NodeInfo, Raft};

/// Why a leader operation did not complete.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// No leader could commit within the deadline (lost quorum, election in progress).
    #[error("no quorum: {0}")]
    NoQuorum(String),
    /// The operation cannot run now (Raft stopped, leader connection broke mid-request).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The leader refused the operation (e.g. a membership change already in progress).
    #[error("{0}")]
    Refused(String),
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Store(#[from] warden_raft_store::StoreError),
    #[error("raft storage: {0}")]
    Storage(#[from] openraft::StorageError<NodeId>),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("raft config: {0}")]
    RaftConfig(#[from] openraft::ConfigError),
    #[error("raft: {0}")]
    Raft(String),
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("tls: {0}")]
    Tls(String),
}

/// The shared core every handler holds.
pub struct FederationNode {
    pub id: NodeId,
    /// This node's advertised addresses.
    pub info: NodeInfo,
    pub raft: Raft,
    /// The applied federation state; reads never go through Raft.
    pub state: SharedState<FederationState>,
    pub rpc: RpcClient,
    /// Bound on writes and consistent reads; past it the API answers 503.
    pub write_timeout: Duration,
    pub admin_token: String,
    /// Flips to true when shutdown begins; long-lived streams end on it.
    pub shutdown: watch::Receiver<bool>,
    /// Hex SHA-256 of the federation CA certificate the API is served under (with TLS): the
    /// pin that join tokens carry.
    pub ca_pin: Option<String>,
    /// Client identities allowed to write without the bearer token.
    pub admin_spiffe_ids: Vec<String>,
    pub metrics: crate::metrics::NodeMetrics,
}

/// A started node and how to stop it.
pub struct RunningNode {
    pub node: Arc<FederationNode>,
    pub api_addr: SocketAddr,
    pub raft_addr: SocketAddr,
    shutdown_tx: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningNode {
    /// Stops the listeners and Raft; returns when both are down.
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        if let Err(e) = self.node.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

async fn bind(addr: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// Starts a node from its configuration.
pub async fn start(cfg: NodeConfig) -> Result<RunningNode, StartError> {
    cfg.validate()?;
    let admin_token = cfg.resolve_admin_token()?;
    let db = warden_raft_store::open(&cfg.data_dir)?;
    let log = LogStore::new(db.clone());
    let sm: StateMachineStore<crate::types::TypeConfig, FederationState> =
        StateMachineStore::new(db)?;
    let state = sm.state();

    let raft_listener = bind(&cfg.raft_listen).await?;
    let api_listener = bind(&cfg.api_listen).await?;
    let raft_addr = raft_listener
        .local_addr()
        .map_err(|source| StartError::Bind {
            addr: cfg.raft_listen.clone(),
            source,
        })?;
    let api_addr = api_listener
        .local_addr()
        .map_err(|source| StartError::Bind {
            addr: cfg.api_listen.clone(),
            source,
        })?;
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

    let t = &cfg.raft;
    let raft_config = Config {
        cluster_name: "warden-federation".into(),
        heartbeat_interval: t.heartbeat_ms,
        election_timeout_min: t.election_timeout_min_ms,
        election_timeout_max: t.election_timeout_max_ms,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(t.snapshot_after_logs),
        max_in_snapshot_log_to_keep: t.keep_logs_after_snapshot,
        install_snapshot_timeout: 10_000,
        ..Default::default()
    }
    .validate()?;
    // mTLS between members: this node's identity and the federation's bundle.
    let mut ca_pin = None;
    // (raft identity, api identity) to reload when the certificate files are replaced.
    let mut reloadable = None;
    let (rpc_tls, raft_acceptor, api_acceptor) = match &cfg.tls {
        None => (None, None, None),
        Some(t) => {
            let read = |p: &std::path::Path| {
                std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
            };
            let (cert, key, bundle) = (
                read(&t.cert).map_err(StartError::Tls)?,
                read(&t.key).map_err(StartError::Tls)?,
                read(&t.ca_bundle).map_err(StartError::Tls)?,
            );
            let (identity, id) = crate::trust::tls::Identity::from_pem(&cert, &key)
                .map_err(|e| StartError::Tls(e.to_string()))?;
            let store = crate::trust::verify::TrustStore::new();
            store
                .set(&id.trust_domain, &bundle, 0)
                .map_err(|e| StartError::Tls(e.to_string()))?;
            let client = crate::trust::tls::client_config(
                identity.clone(),
                store.clone(),
                &id.trust_domain,
                &[b"h2"],
            )
            .map_err(|e| StartError::Tls(e.to_string()))?;
            let server =
                crate::trust::tls::server_config(identity.clone(), store.clone(), &[b"h2"])
                    .map_err(|e| StartError::Tls(e.to_string()))?;
            // The API serves the node's certificate with the CA behind it, and lets clients
            // without a certificate in (the bearer token authenticates writes).
            let (api_identity, _) =
                crate::trust::tls::Identity::from_pem(&format!("{cert}{bundle}"), &key)
                    .map_err(|e| StartError::Tls(e.to_string()))?;
            reloadable = Some((t.clone(), identity.clone(), api_identity.clone()));
            let api = crate::trust::tls::server_config_optional_client(
                api_identity,
                store,
                &[b"h2", b"http/1.1"],
            )
            .map_err(|e| StartError::Tls(e.to_string()))?;
            let ca_der = crate::trust::spiffe::first_cert_der(&bundle)
                .map_err(|e| StartError::Tls(e.to_string()))?;
            ca_pin = Some(crate::api::join::sha256_hex(&ca_der));
            tracing::info!(spiffe_id = %id, "raft rpc over mTLS, api over TLS");
            (
                Some((*client).clone()),
                Some(tokio_rustls::TlsAcceptor::from(server)),
                Some(tokio_rustls::TlsAcceptor::from(api)),
            )
        }
    };
    let rpc = RpcClient::new(rpc_tls)?;
    let network = NetworkFactory {
        client: rpc.clone(),
        self_id: cfg.node_id,
    };
    let raft = Raft::new(cfg.node_id, Arc::new(raft_config), network, log, sm)
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let node = Arc::new(FederationNode {
        id: cfg.node_id,
        info: info.clone(),
        raft: raft.clone(),
        state,
        rpc,
        write_timeout: Duration::from_millis(cfg.write_timeout_ms),
        admin_token,
        shutdown: shutdown_rx,
        ca_pin,
        admin_spiffe_ids: cfg.admin_spiffe_ids.clone(),
        metrics: crate::metrics::NodeMetrics::new(),
    });

    let mut tasks = vec![];
    if let Some((t, raft_id, api_id)) = reloadable {
        tasks.push(tokio::spawn(reload_certificates(
            t,
            raft_id,
            api_id,
            shutdown_tx.subscribe(),
        )));
    }
    tasks.extend([
        crate::server::spawn_raft_server(
            raft_listener,
            node.clone(),
            shutdown_tx.subscribe(),
            raft_acceptor,
        ),
        crate::server::spawn_api_server(
            api_listener,
            node.clone(),
            shutdown_tx.subscribe(),
            api_acceptor,
        ),
    ]);

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
            && *known != info
        {
            tracing::warn!(configured = %info, in_membership = %known,
                "this node's advertised addresses differ from the membership; peers will use the membership's");
        }
    }
    tracing::info!(node_id = cfg.node_id, api = %api_addr, raft = %raft_addr, "federation node started");
    Ok(RunningNode {
        node,
        api_addr,
        raft_addr,
        shutdown_tx,
        tasks,
    })
}

/// Reloads this node's certificate when its files change (rotated by `warden trust issue` or
/// cert-manager): new handshakes on the Raft port and the API use it, established connections
/// keep theirs.
async fn reload_certificates(
    t: crate::config::NodeTls,
    raft: Arc<crate::trust::tls::Identity>,
    api: Arc<crate::trust::tls::Identity>,
    mut stop: watch::Receiver<bool>,
) {
    let mtimes = || {
        let m = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        Some((m(&t.cert)?, m(&t.key)?))
    };
    let mut loaded = mtimes();
    loop {
        tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let now = mtimes();
        if now.is_none() || now == loaded {
            continue;
        }
        let read = |p: &std::path::Path| std::fs::read_to_string(p).ok();
        let (Some(cert), Some(key), Some(bundle)) =
            (read(&t.cert), read(&t.key), read(&t.ca_bundle))
        else {
            continue;
        };
        match (
            raft.replace(&cert, &key),
            api.replace(&format!("{cert}{bundle}"), &key),
        ) {
            (Ok(id), Ok(_)) => {
                loaded = now;
                tracing::info!(spiffe_id = %id, "node certificate reloaded");
            }
            // A half-written pair is retried at the next check.
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "node certificate files changed but do not load yet")
            }
        }
    }
}

fn not_leader(leader_id: Option<NodeId>, leader_node: Option<NodeInfo>) -> ForwardResponse {
    ForwardResponse::NotLeader {
        leader: leader_id.zip(leader_node),
    }
}

fn fatal(e: impl std::fmt::Display) -> ForwardResponse {
    ForwardResponse::Failed {
        unavailable: true,
        message: e.to_string(),
    }
}

impl FederationNode {
    /// Runs a leader operation on this node only; answers `NotLeader` if it is not the leader.
    pub async fn run_local(&self, req: &ForwardRequest) -> ForwardResponse {
        match req {
            ForwardRequest::Write(cmd) => match self.raft.client_write(cmd.clone()).await {
                Ok(resp) => ForwardResponse::Written(resp.data, resp.log_id.index),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                    not_leader(f.leader_id, f.leader_node)
                }
                Err(RaftError::APIError(e)) => ForwardResponse::Failed {
                    unavailable: false,
                    message: e.to_string(),
                },
                Err(RaftError::Fatal(e)) => fatal(e),
            },
            ForwardRequest::ReadIndex => match self.raft.ensure_linearizable().await {
                Ok(log_id) => ForwardResponse::ReadIndex(log_id.map(|l| l.index)),
                Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                    not_leader(f.leader_id, f.leader_node)
                }
                Err(RaftError::APIError(e)) => fatal(e),
                Err(RaftError::Fatal(e)) => fatal(e),
            },
            ForwardRequest::AddMember { id, node, voter } => {
                let r = self.raft.add_learner(*id, node.clone(), true).await;
                let r = match r {
                    Ok(_) if *voter => {
                        self.raft
                            .change_membership(
                                ChangeMembers::AddVoterIds(BTreeSet::from([*id])),
                                false,
                            )
                            .await
                    }
                    other => other,
                };
                self.membership_result(r)
            }
            ForwardRequest::RemoveMember { id } => {
                let is_voter = self
                    .raft
                    .metrics()
                    .borrow()
                    .membership_config
                    .membership()
                    .voter_ids()
                    .any(|v| v == *id);
                let change = if is_voter {
                    ChangeMembers::RemoveVoters(BTreeSet::from([*id]))
                } else {
                    ChangeMembers::RemoveNodes(BTreeSet::from([*id]))
                };
                let r = self.raft.change_membership(change, false).await;
                self.membership_result(r)
            }
        }
    }

    fn membership_result<T>(
        &self,
        r: Result<T, RaftError<NodeId, ClientWriteError<NodeId, NodeInfo>>>,
    ) -> ForwardResponse {
        match r {
            Ok(_) => ForwardResponse::MembershipChanged,
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                not_leader(f.leader_id, f.leader_node)
            }
            Err(RaftError::APIError(e)) => ForwardResponse::Failed {
                unavailable: false,
                message: e.to_string(),
            },
            Err(RaftError::Fatal(e)) => fatal(e),
        }
    }

    /// Runs a leader operation here or on the leader, within `timeout`.
    ///
    /// A request is re-sent only when it certainly did not reach a leader (no leader known,
    /// the target said it is not the leader, or the connection was refused); a connection
    /// that breaks after sending makes the outcome unknown and is reported, not retried.
    pub async fn leader_op(
        &self,
        req: ForwardRequest,
        timeout: Duration,
    ) -> Result<ForwardResponse, NodeError> {
        let deadline = Instant::now() + timeout;
        let no_quorum = || {
            NodeError::NoQuorum(format!(
                "no leader committed the request within {} ms; a write may still be applied later",
                timeout.as_millis()
            ))
        };
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(no_quorum());
            }
            let local = tokio::time::timeout(remaining, self.run_local(&req))
                .await
                .map_err(|_| no_quorum())?;
            let leader = match local {
                ForwardResponse::NotLeader { leader } => leader,
                ForwardResponse::Failed {
                    unavailable: true,
                    message,
                } => return Err(NodeError::Unavailable(message)),
                ForwardResponse::Failed { message, .. } => return Err(NodeError::Refused(message)),
                other => return Ok(other),
            };
            let Some((leader_id, leader_node)) = leader.filter(|(id, _)| *id != self.id) else {
                // No leader known yet (election in progress): wait a little and ask again.
                tokio::time::sleep(Duration::from_millis(50).min(remaining)).await;
                continue;
            };
            match self.rpc.forward(&leader_node, &req, remaining).await {
                Ok(ForwardResponse::NotLeader { .. }) => {
                    tokio::time::sleep(Duration::from_millis(50).min(remaining)).await;
                }
                Ok(ForwardResponse::Failed {
                    unavailable: true,
                    message,
                }) => return Err(NodeError::Unavailable(message)),
                Ok(ForwardResponse::Failed { message, .. }) => {
                    return Err(NodeError::Refused(message));
                }
                Ok(other) => return Ok(other),
                Err(CallError::Timeout { .. }) => return Err(no_quorum()),
                Err(CallError::Transport { source, .. }) if source.is_connect() => {
                    tracing::debug!(leader_id, error = %source, "leader unreachable; retrying");
                    tokio::time::sleep(Duration::from_millis(50).min(remaining)).await;
                }
                Err(e) => {
                    return Err(NodeError::Unavailable(format!(
                        "forwarding to leader {leader_id} failed; the outcome is unknown: {e}"
                    )));
                }
            }
        }
    }

    /// Waits until this node has applied `index`, so a read here sees that entry.
    async fn wait_applied(&self, index: Option<u64>, deadline: Instant) -> Result<(), NodeError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        self.raft
            .wait(Some(remaining))
            .applied_index_at_least(index, "read-your-writes")
            .await
            .map(|_| ())
            .map_err(|e| NodeError::NoQuorum(format!("not caught up within the deadline: {e}")))
    }

    /// Proposes a command; returns once it is committed and applied on this node.
    pub async fn write(&self, cmd: Command) -> Result<CommandResult, NodeError> {
        let deadline = Instant::now() + self.write_timeout;
        match self
            .leader_op(ForwardRequest::Write(cmd), self.write_timeout)
            .await?
        {
            ForwardResponse::Written(result, index) => {
                self.wait_applied(Some(index), deadline).await?;
                Ok(result)
            }
            other => Err(NodeError::Unavailable(format!(
                "unexpected answer {other:?}"
            ))),
        }
    }

    /// Makes the next local read linearizable: confirms the leader and waits to catch up.
    pub async fn linearize(&self) -> Result<(), NodeError> {
        let deadline = Instant::now() + self.write_timeout;
        match self
            .leader_op(ForwardRequest::ReadIndex, self.write_timeout)
            .await?
        {
            ForwardResponse::ReadIndex(index) => self.wait_applied(index, deadline).await,
            other => Err(NodeError::Unavailable(format!(
                "unexpected answer {other:?}"
            ))),
        }
    }

    /// Adds a member (as a learner that catches up, then a voter unless `voter` is false).
    pub async fn add_member(
        &self,
        id: NodeId,
        node: NodeInfo,
        voter: bool,
    ) -> Result<(), NodeError> {
        let timeout = self.write_timeout.max(Duration::from_secs(30));
        self.leader_op(ForwardRequest::AddMember { id, node, voter }, timeout)
            .await
            .map(|_| ())
    }

    /// Removes a member.
    pub async fn remove_member(&self, id: NodeId) -> Result<(), NodeError> {
        self.leader_op(ForwardRequest::RemoveMember { id }, self.write_timeout)
            .await
            .map(|_| ())
    }
}
