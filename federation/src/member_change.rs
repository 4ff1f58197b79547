//! [`MemberChange`]: a change to the Raft group's members, as the store records it once the
//! change committed. Membership lives in Raft's own log entries, not in the store's state, so
//! the API proposes [`crate::command::Command::RecordMemberChange`] after each change: it
//! gets a revision, a watch event (`member.changed`) and, made through the API, an audit
//! record naming who made it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What changed in the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum MemberChange {
    /// The node joined (or was confirmed at the same addresses), as voter or learner.
    Added {
        id: u64,
        raft_addr: String,
        api_addr: String,
        voter: bool,
    },
    /// The node left the group.
    Removed { id: u64 },
}

impl MemberChange {
    /// The member the change is about.
    pub fn id(&self) -> u64 {
        match self {
            MemberChange::Added { id, .. } | MemberChange::Removed { id } => *id,
        }
    }
}
