//! [`FederationNode`]: what the API handlers hold — local reads of the applied state, and
//! writes, linearizable reads and membership changes that run on the leader, forwarded there
//! when this node is a follower. Wiring a node from its config is in [`crate::startup`].

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::ChangeMembers;
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use tokio::sync::watch;
use tokio::time::Instant;
use warden_raft_store::{SharedState, StateMachineCore};

use crate::command::{Command, CommandResult};
use crate::network::{CallError, RpcClient};
use crate::rpc::{ForwardRequest, ForwardResponse, ForwardResponse as Fr};
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
    /// What gateways renewing through this node advertised (soft state).
    pub advertised: crate::advertised::Advertised,
    /// The federation's own trust domain (its members' certificates), with `[tls]`: no
    /// cluster may claim it.
    pub own_domain: Option<String>,
    /// Join attempts per source address (joins carry no admin credential).
    pub join_attempts: crate::ratelimit::PerSource,
    /// Largest Raft RPC body this node accepts.
    pub max_rpc_bytes: usize,
    /// Bounds of the API and Raft listeners.
    pub limits: crate::config::NodeLimits,
    /// Proposes this node's writes as leader, concurrent ones together.
    pub batcher: crate::batch::WriteBatcher,
    /// The golden signals gateways reported with their renewals to this node.
    pub signals: crate::signals::SignalStore,
    /// The recent requests gateways reported with their renewals to this node.
    pub recent: crate::recent::RecentStore,
    /// Where each gateway renewing through this node places each service's traffic.
    pub placements: crate::placement::PlacementStore,
    /// When this node last became leader (its vote lease runs from then).
    pub leader_clock: crate::leader_clock::LeaderClock,
}

impl FederationNode {
    /// Runs a leader operation on this node only; answers `NotLeader` if it is not the leader.
    pub async fn run_local(&self, req: &ForwardRequest) -> ForwardResponse {
        match req {
            ForwardRequest::Write(cmd) => self.batcher.write((**cmd).clone()).await,
            ForwardRequest::ReadIndex => match self.raft.ensure_linearizable().await {
                Ok(log_id) => ForwardResponse::ReadIndex(log_id.map(|l| l.index)),
                Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                    Fr::not_leader(f.leader_id, f.leader_node)
                }
                Err(RaftError::APIError(e)) => Fr::fatal(e),
                Err(RaftError::Fatal(e)) => Fr::fatal(e),
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
            ForwardRequest::Signals { window_s, service } => {
                ForwardResponse::Signals(crate::stored::Stored(self.signals.edges(
                    *window_s,
                    service.as_deref(),
                    crate::clock::now_ms(),
                )))
            }
            ForwardRequest::Recent(q) => {
                ForwardResponse::Recent(crate::stored::Stored(self.recent.query(q)))
            }
            ForwardRequest::Placements(q) => ForwardResponse::Placements(crate::stored::Stored(
                self.placements.query(q, crate::clock::now_ms()),
            )),
            ForwardRequest::TakeLeadership => match self.raft.trigger().elect().await {
                Ok(()) => ForwardResponse::Electing,
                Err(e) => Fr::fatal(e),
            },
        }
    }

    fn membership_result<T>(
        &self,
        r: Result<T, RaftError<NodeId, ClientWriteError<NodeId, NodeInfo>>>,
    ) -> ForwardResponse {
        match r {
            Ok(_) => ForwardResponse::MembershipChanged,
            Err(e) => Fr::write_refused(e),
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
    /// Proposes `cmd` and answers once it is applied here; in a dry run
    /// ([`crate::dry_run`]), applies it to a copy of the state instead and proposes nothing.
    pub async fn write(&self, cmd: Command) -> Result<CommandResult, NodeError> {
        if crate::dry_run::active() {
            let mut copy = self
                .state
                .read()
                .map_err(|_| NodeError::Unavailable("state lock poisoned".into()))?
                .clone();
            return Ok(copy.apply(0, &cmd));
        }
        let cmd = crate::audit::wrap(cmd, crate::clock::now_ms());
        let deadline = Instant::now() + self.write_timeout;
        match self
            .leader_op(ForwardRequest::Write(Box::new(cmd)), self.write_timeout)
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
