//! Cluster credentials: each registered cluster gets its own API token,
//! `<cluster>.<secret>`, that may act for that cluster only (its lease, its exports and
//! health, its gateway address, its own trust domain's bundle; see `api::scope`). Only the
//! SHA-256 of the secret is stored and replicated; a new credential replaces the old one.

use crate::command::{CommandResult, Rejection};
use crate::model::ClusterCredential;
use crate::state::{ChangeEvent, FederationState};
use crate::trust::digest::sha256_hex;

/// A freshly issued credential: the token to hand out once, and what the store keeps.
pub struct Issued {
    pub token: String,
    pub stored: ClusterCredential,
}

/// Issues a credential for `cluster` (32 random bytes of secret).
pub fn issue(cluster: &str, now_ms: u64) -> Option<Issued> {
    let secret = random_hex(32)?;
    Some(Issued {
        token: format!("{cluster}.{secret}"),
        stored: ClusterCredential {
            secret_sha256: sha256_hex(secret.as_bytes()),
            issued_at: now_ms,
        },
    })
}

/// The cluster a token names and its secret, if it has the credential's shape.
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let (cluster, secret) = token.split_once('.')?;
    (!cluster.is_empty() && secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some((cluster, secret))
}

/// `n` random bytes, hex; `None` if the system has no randomness to give.
pub fn random_hex(n: usize) -> Option<String> {
    use ring::rand::SecureRandom;
    let mut buf = vec![0u8; n];
    ring::rand::SystemRandom::new().fill(&mut buf).ok()?;
    Some(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Constant-time equality (the comparison time does not depend on where bytes differ).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl FederationState {
    /// Whether `secret` is the current credential of `cluster`.
    pub fn credential_matches(&self, cluster: &str, secret: &str) -> bool {
        self.credentials.get(cluster).is_some_and(|c| {
            same(
                sha256_hex(secret.as_bytes()).as_bytes(),
                c.secret_sha256.as_bytes(),
            )
        })
    }

    /// Keeps `credential` for `cluster` when `registered` applied.
    pub(crate) fn keep_credential(
        &mut self,
        registered: &CommandResult,
        cluster: &str,
        credential: &ClusterCredential,
    ) {
        if matches!(registered, CommandResult::Applied { .. }) {
            self.credentials
                .insert(cluster.to_string(), credential.clone());
        }
    }

    /// Replaces the credential of a registered cluster. The change is announced as the
    /// cluster put again (unchanged): watchers see a revision, never a hash.
    pub(crate) fn set_credential(
        &mut self,
        cluster: &str,
        credential: &ClusterCredential,
    ) -> CommandResult {
        let Some(c) = self.clusters.get(cluster).cloned() else {
            return CommandResult::Rejected(Rejection::NotFound(format!("cluster {cluster:?}")));
        };
        self.credentials
            .insert(cluster.to_string(), credential.clone());
        let revision = self.record_change(credential.issued_at, ChangeEvent::ClusterPut(c));
        CommandResult::Applied { revision }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_cluster_and_only_its_hash_is_kept() {
        let a = issue("east", 5).unwrap();
        let b = issue("east", 6).unwrap();
        assert_ne!(a.token, b.token);
        let (cluster, secret) = parse(&a.token).unwrap();
        assert_eq!(cluster, "east");
        assert!(!a.stored.secret_sha256.contains(secret));
        assert_eq!(a.stored.secret_sha256, sha256_hex(secret.as_bytes()));
        assert!(parse("east.short").is_none());
        assert!(parse("no-dot").is_none());
        assert!(parse(&format!(".{secret}")).is_none());
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"ab", b"abc"));
    }

    #[test]
    fn registration_keeps_the_credential_reissue_replaces_it_removal_drops_it() {
        use crate::command::Command;
        use crate::model::Cluster;
        use warden_raft_store::StateMachineCore;
        let cluster = Cluster {
            name: "east".into(),
            region: "r".into(),
            zone: "z".into(),
            network: "n".into(),
            gateway: "127.0.0.1:1".into(),
            trust_domain: "east.test".into(),
            labels: Default::default(),
            registered_at: 1,
        };
        let mut s = FederationState::default();
        let first = issue("east", 1).unwrap();
        let r = s.apply(
            1,
            &Command::RegisterClusterWithCredential {
                cluster: cluster.clone(),
                ca_bundle_pem: None,
                credential: first.stored.clone(),
            },
        );
        assert!(matches!(r, CommandResult::Applied { .. }));
        let secret = |i: &Issued| parse(&i.token).unwrap().1.to_string();
        assert!(s.credential_matches("east", &secret(&first)));
        assert!(!s.credential_matches("west", &secret(&first)));
        // A second registration of the name is refused and keeps the first credential.
        let other = issue("east", 2).unwrap();
        let r = s.apply(
            2,
            &Command::RegisterClusterWithCredential {
                cluster: cluster.clone(),
                ca_bundle_pem: None,
                credential: other.stored.clone(),
            },
        );
        assert!(matches!(r, CommandResult::Rejected(_)));
        assert!(s.credential_matches("east", &secret(&first)));
        let rev = s.revision;
        let r = s.apply(
            3,
            &Command::SetClusterCredential {
                cluster: "east".into(),
                credential: other.stored.clone(),
            },
        );
        assert!(matches!(r, CommandResult::Applied { revision } if revision == rev + 1));
        assert!(!s.credential_matches("east", &secret(&first)));
        assert!(s.credential_matches("east", &secret(&other)));
        let r = s.apply(
            4,
            &Command::SetClusterCredential {
                cluster: "west".into(),
                credential: other.stored.clone(),
            },
        );
        assert!(matches!(r, CommandResult::Rejected(Rejection::NotFound(_))));
        s.apply(
            5,
            &Command::RemoveCluster {
                name: "east".into(),
                at: 5,
            },
        );
        assert!(s.credentials.is_empty());
    }
}
