//! What gateways tell this node about themselves when they renew their cluster's lease — the
//! east-west address each advertises — kept in memory only: soft state, never in the Raft log
//! (it would add nothing to agree on, and a write per renewal). Each node knows what the
//! gateways renewing through it said; `warden check` asks every member and takes the newest.

use std::collections::HashMap;
use std::sync::Mutex;

/// An advertised address and when this node heard it (ms since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    pub gateway: String,
    pub seen_at: u64,
}

/// Advertised addresses by cluster.
#[derive(Debug, Default)]
pub struct Advertised(Mutex<HashMap<String, Advert>>);

impl Advertised {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Advert>> {
        // Plain data: a panic elsewhere cannot leave it half-updated.
        match self.0.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        }
    }

    /// Records what `cluster`'s gateway advertised with a renewal at `at`.
    pub fn record(&self, cluster: &str, gateway: &str, at: u64) {
        self.map().insert(
            cluster.to_string(),
            Advert {
                gateway: gateway.to_string(),
                seen_at: at,
            },
        );
    }

    /// Forgets a cluster (its lease was withdrawn).
    pub fn forget(&self, cluster: &str) {
        self.map().remove(cluster);
    }

    pub fn get(&self, cluster: &str) -> Option<Advert> {
        self.map().get(cluster).cloned()
    }
}
