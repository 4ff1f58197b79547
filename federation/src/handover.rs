//! Leadership hand-over on a graceful stop: a leader asked to stop first makes an up-to-date
//! voter the leader, so the federation takes writes again within a few round trips instead of
//! waiting out the leader lease and an election timeout (0.6–0.8 s with the default timings).
//!
//! openraft 0.9 has no transfer call; this is built from what it has. A follower refuses to
//! vote while it still hears from its leader (the leader lease), but the leader's own vote
//! lease dates from its election, so the leader grants a vote for a higher term to a
//! candidate whose log is at least as long as its own, and steps down. With the leader's
//! vote and its own, the candidate has a quorum of three. So the leader:
//!
//! 1. stops standing for election itself, and holds its write proposer
//!    ([`crate::batch::WriteBatcher::hold`]): forwarded writes are answered "not the leader"
//!    and their sender retries until it reaches the successor; the proposals already in
//!    flight are waited for, so the log stops growing (an entry appended after step 2 would
//!    make the candidate's log shorter than the leader's, and the leader would refuse it);
//! 2. waits until a voter has every entry of its log (matched index = last index, all applied);
//! 3. waits until its own vote lease has run out: for `election_timeout_max_ms` after its
//!    election a leader refuses every vote ([`crate::leader_clock::LeaderClock`]), which matters when leaders are
//!    stopped in quick succession, as in a rolling restart;
//! 4. asks that voter to stand ([`ForwardRequest::TakeLeadership`] on the Raft RPC port);
//! 5. waits until it hears from a new leader.
//!
//! Every step is bounded; if one fails (no voter caught up, a peer from before this feature
//! that cannot decode the request), the node stops anyway and the others elect a leader as
//! after a crash.

use std::time::Duration;

use tokio::time::Instant;

use crate::node::FederationNode;
use crate::rpc::{ForwardRequest, ForwardResponse};
use crate::types::{NodeId, NodeInfo};

/// How long a stopping leader spends handing over at most, past the end of its vote lease.
pub const BUDGET: Duration = Duration::from_secs(1);

/// Added to the vote lease: the clock reads the election a little late, never early, but
/// the two nodes' timers are not the same timer.
const LEASE_MARGIN: Duration = Duration::from_millis(10);

/// How a hand-over ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// This node was not the leader: nothing to hand over.
    NotLeader,
    /// This node is the only voter.
    Alone,
    /// `to` leads now.
    HandedOver { to: NodeId },
    /// Not done within the budget, or refused: why.
    Failed(String),
}

/// Hands leadership to an up-to-date voter, within [`BUDGET`]. Call it after the API has
/// stopped and before Raft shuts down: the proposer stays held afterwards.
pub async fn hand_over(node: &FederationNode) -> Outcome {
    let now = Instant::now();
    let m = node.raft.metrics().borrow().clone();
    if m.current_leader != Some(node.id) {
        return Outcome::NotLeader;
    }
    if m.membership_config
        .membership()
        .voter_ids()
        .all(|v| v == node.id)
    {
        return Outcome::Alone;
    }
    // openraft's leader lease is `election_timeout_max`; when the clock missed the election
    // (it cannot, short of a task that never ran), the whole lease is assumed still to run.
    let lease = Duration::from_millis(node.raft.config().election_timeout_max) + LEASE_MARGIN;
    let lease_end = node.leader_clock.elected_in(m.current_term).unwrap_or(now) + lease;
    let deadline = lease_end.max(now) + BUDGET;
    node.batcher
        .hold(deadline.saturating_duration_since(Instant::now()))
        .await;
    // Once it has stepped down, this node must not stand again and win its leadership back.
    node.raft.runtime_config().elect(false);
    let Some((to, info)) = caught_up_voter(node, deadline).await else {
        return Outcome::Failed("no voter caught up with the log within the budget".into());
    };
    tokio::time::sleep_until(lease_end).await;
    let remaining = deadline.saturating_duration_since(Instant::now());
    match node
        .rpc
        .forward(&info, &ForwardRequest::TakeLeadership, remaining)
        .await
    {
        Ok(ForwardResponse::Electing) => {}
        Ok(other) => return Outcome::Failed(format!("node {to} answered {other:?}")),
        Err(e) => return Outcome::Failed(format!("node {to}: {e}")),
    }
    let remaining = deadline.saturating_duration_since(Instant::now());
    let new_leader = node
        .raft
        .wait(Some(remaining))
        .metrics(
            |m| m.current_leader.is_some_and(|l| l != node.id),
            "a new leader after the hand-over",
        )
        .await;
    match new_leader {
        Ok(m) => Outcome::HandedOver {
            to: m.current_leader.unwrap_or(to),
        },
        Err(e) => Outcome::Failed(format!("no new leader within the budget: {e}")),
    }
}

/// Waits (polling the metrics) until a voter other than this node holds every entry of this
/// node's log and this node has applied them all; answers that voter.
async fn caught_up_voter(node: &FederationNode, deadline: Instant) -> Option<(NodeId, NodeInfo)> {
    loop {
        let m = node.raft.metrics().borrow().clone();
        let last = m.last_log_index;
        let applied = m.last_applied.map(|l| l.index);
        let membership = m.membership_config.membership();
        if applied == last
            && let Some(replication) = &m.replication
        {
            let found = membership.voter_ids().filter(|v| *v != node.id).find(|v| {
                replication
                    .get(v)
                    .is_some_and(|l| l.map(|l| l.index) == last)
            });
            if let Some(v) = found
                && let Some(info) = membership.get_node(&v)
            {
                return Some((v, info.clone()));
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
