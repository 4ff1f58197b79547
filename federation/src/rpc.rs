//! Messages between federation nodes besides Raft's own: requests forwarded to the leader.
//!
//! A follower that receives a write, a linearizable read or a membership change forwards it to
//! the leader over the Raft RPC port; the leader runs it locally (never forwarding again) and
//! answers with a [`ForwardResponse`].

use openraft::error::{ClientWriteError, RaftError};
use serde::{Deserialize, Serialize};

use crate::command::{Command, CommandResult};
use crate::types::{NodeId, NodeInfo};

/// What a follower asks the leader to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ForwardRequest {
    /// Boxed: a command is much larger than the other requests (serialized the same).
    Write(Box<Command>),
    /// Confirm leadership and return the log index a linearizable read must wait for.
    ReadIndex,
    AddMember {
        id: NodeId,
        node: NodeInfo,
        voter: bool,
    },
    RemoveMember {
        id: NodeId,
    },
    /// Sent by a leader that is stopping to the voter it chose as its successor: stand for
    /// election now ([`crate::handover`]). Never forwarded; appended last (positional codec).
    TakeLeadership,
    /// A peer asks for the golden signals gateways reported to this node (`window_s`, the
    /// service when given). Answered by any node, never forwarded.
    Signals {
        window_s: u64,
        service: Option<String>,
    },
    /// A peer asks for the recent requests gateways reported to this node. Answered by any
    /// node, never forwarded; appended last (positional codec).
    Recent(crate::stored::Stored<crate::recent::RecentQuery>),
    /// A peer asks for the placements gateways reported to this node. Answered by any node,
    /// never forwarded; appended last (positional codec).
    Placements(crate::stored::Stored<crate::placement::PlacementQuery>),
}

/// The leader's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ForwardResponse {
    /// Committed; the result and the log index of the entry.
    Written(CommandResult, u64),
    ReadIndex(Option<u64>),
    MembershipChanged,
    /// The receiver is not the leader (any more); `leader` is its best knowledge.
    NotLeader {
        leader: Option<(NodeId, NodeInfo)>,
    },
    /// The request failed on the leader for a reason worth showing the caller.
    Failed {
        unavailable: bool,
        message: String,
    },
    /// The answer to [`ForwardRequest::TakeLeadership`]: this node stands for election.
    Electing,
    /// The answer to [`ForwardRequest::Signals`] (JSON text: the edges flatten).
    Signals(crate::stored::Stored<Vec<crate::signals::ReportedEdge>>),
    /// The answer to [`ForwardRequest::Recent`] (JSON text: the records flatten).
    Recent(crate::stored::Stored<Vec<crate::recent::ReportedRecord>>),
    /// The answer to [`ForwardRequest::Placements`] (JSON text).
    Placements(crate::stored::Stored<crate::placement::PeerPlacements>),
}

impl ForwardResponse {
    /// The receiver is not the leader; `leader_id` and `leader_node` are its best knowledge.
    pub fn not_leader(leader_id: Option<NodeId>, leader_node: Option<NodeInfo>) -> Self {
        Self::NotLeader {
            leader: leader_id.zip(leader_node),
        }
    }

    /// Why the leader's Raft did not take a write or a membership change.
    pub fn write_refused(e: RaftError<NodeId, ClientWriteError<NodeId, NodeInfo>>) -> Self {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                Self::not_leader(f.leader_id, f.leader_node)
            }
            RaftError::APIError(e) => Self::Failed {
                unavailable: false,
                message: e.to_string(),
            },
            RaftError::Fatal(e) => Self::fatal(e),
        }
    }

    /// Raft cannot run the request now (stopped, fatal error).
    pub fn fatal(e: impl std::fmt::Display) -> Self {
        Self::Failed {
            unavailable: true,
            message: e.to_string(),
        }
    }
}
