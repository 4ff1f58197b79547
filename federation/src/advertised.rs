//! What gateways tell this node about themselves when they renew their cluster's lease — the
//! east-west address each advertises — kept in memory only: soft state, never in the Raft log
//! (it would add nothing to agree on, and a write per renewal). Each node knows what the
//! gateways renewing through it said; `warden check` asks every member and takes the newest.
//! Each renewal's credential kind (admin token or the cluster's own) is kept the same way, so
//! `warden check` can name the clusters whose gateways still write with the admin token.

use std::collections::HashMap;
use std::sync::Mutex;

/// An advertised address and when this node heard it (ms since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    pub gateway: String,
    pub seen_at: u64,
}

/// Advertised addresses by cluster, and the credential each cluster last renewed with.
#[derive(Debug, Default)]
pub struct Advertised(
    Mutex<HashMap<String, Advert>>,
    Mutex<HashMap<String, Renewal>>,
);

/// Which credential a renewal came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    Admin,
    Cluster,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Admin => "admin",
            CredentialKind::Cluster => "cluster",
        }
    }
}

/// The credential of a cluster's last renewal through this node, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renewal {
    pub credential: CredentialKind,
    pub seen_at: u64,
}

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

    /// Records the credential a renewal of `cluster` came with.
    pub fn renewed_with(&self, cluster: &str, credential: CredentialKind, at: u64) {
        let mut m = match self.1.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        m.insert(
            cluster.to_string(),
            Renewal {
                credential,
                seen_at: at,
            },
        );
    }

    pub fn renewal(&self, cluster: &str) -> Option<Renewal> {
        let m = match self.1.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        m.get(cluster).copied()
    }

    pub fn get(&self, cluster: &str) -> Option<Advert> {
        self.map().get(cluster).cloned()
    }
}
