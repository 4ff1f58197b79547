//! [`LeaderClock`]: when this node last became leader, read from its Raft metrics. A
//! leader's vote lease (openraft refuses every vote for `election_timeout_max` after the
//! election) runs from then; the hand-over on a graceful stop waits it out.

use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use crate::types::{NodeId, Raft};

/// When this node last became leader, and in which term: read from its Raft metrics by a
/// task that ends with Raft. The reading comes a little after openraft's own (the metrics
/// are published after the vote is), so a lease computed from it ends no earlier than
/// openraft's.
#[derive(Clone, Default)]
pub struct LeaderClock(Arc<Mutex<Option<(u64, Instant)>>>);

impl LeaderClock {
    /// Starts watching `raft` (whose id is `id`).
    pub fn track(raft: &Raft, id: NodeId) -> Self {
        let clock = Self::default();
        let mut metrics = raft.metrics();
        let slot = clock.0.clone();
        tokio::spawn(async move {
            loop {
                let (leader, term) = {
                    let m = metrics.borrow_and_update();
                    (m.current_leader, m.current_term)
                };
                if leader == Some(id) {
                    let mut s = slot.lock().unwrap_or_else(|p| p.into_inner());
                    if s.is_none_or(|(t, _)| t != term) {
                        *s = Some((term, Instant::now()));
                    }
                }
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        });
        clock
    }

    /// When this node became leader in `term`, if the clock saw it.
    pub fn elected_in(&self, term: u64) -> Option<Instant> {
        let s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        s.filter(|(t, _)| *t == term).map(|(_, at)| at)
    }
}
