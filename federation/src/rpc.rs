//! Messages between federation nodes besides Raft's own: requests forwarded to the leader.
//!
//! A follower that receives a write, a linearizable read or a membership change forwards it to
//! the leader over the Raft RPC port; the leader runs it locally (never forwarding again) and
//! answers with a [`ForwardResponse`].

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
}
