//! Applying the mesh configuration commands: the mesh-wide document and each cluster's
//! overrides are replaced whole; an unchanged document writes no change, and every change is
//! one numbered entry in the history (`mesh_config.put`, `cluster_config.put` on the watch).

use crate::change::ChangeEvent;
use crate::command::{CommandResult, Rejection};
use crate::mesh_config::MeshConfig;
use crate::state::FederationState;
use crate::stored::Stored;

impl FederationState {
    pub(crate) fn put_mesh_config(
        &mut self,
        config: &Stored<MeshConfig>,
        at: u64,
    ) -> CommandResult {
        if self.extra.config.mesh == config.0 {
            return CommandResult::Applied {
                revision: self.revision,
            };
        }
        let revision = self.record(at, ChangeEvent::MeshConfigPut(Box::new(config.clone())));
        let c = &mut self.extra.0.config;
        c.mesh = config.0.clone();
        c.mesh_revision = revision;
        CommandResult::Applied { revision }
    }

    pub(crate) fn put_cluster_config(
        &mut self,
        cluster: &str,
        config: &Stored<MeshConfig>,
        at: u64,
    ) -> CommandResult {
        if !self.clusters.contains_key(cluster) {
            return CommandResult::Rejected(Rejection::NotFound(format!("cluster {cluster:?}")));
        }
        let current = self.extra.config.clusters.get(cluster);
        let empty = config.0 == MeshConfig::default();
        if current == Some(&config.0) || (current.is_none() && empty) {
            return CommandResult::Applied {
                revision: self.revision,
            };
        }
        let revision = self.record(
            at,
            ChangeEvent::ClusterConfigPut {
                cluster: cluster.to_string(),
                config: Box::new(config.clone()),
            },
        );
        let clusters = &mut self.extra.0.config.clusters;
        if empty {
            clusters.remove(cluster);
        } else {
            clusters.insert(cluster.to_string(), config.0.clone());
        }
        CommandResult::Applied { revision }
    }
}

#[cfg(test)]
mod tests {
    use warden_raft_store::StateMachineCore;

    use super::*;
    use crate::command::Command;
    use crate::mesh_config::{DefaultAction, TimeoutSettings};

    fn config(per_try: u64) -> Stored<MeshConfig> {
        Stored(MeshConfig {
            timeouts: TimeoutSettings {
                per_try_ms: Some(per_try),
                overall_ms: None,
            },
            ..Default::default()
        })
    }

    #[test]
    fn mesh_config_is_replaced_whole_and_an_unchanged_one_writes_nothing() {
        let mut s = FederationState::default();
        let r = s.apply(
            1,
            &Command::PutMeshConfig {
                config: config(50),
                at: 1,
            },
        );
        assert_eq!(r, CommandResult::Applied { revision: 1 });
        assert_eq!(s.extra.config.mesh_revision, 1);
        let r = s.apply(
            2,
            &Command::PutMeshConfig {
                config: config(50),
                at: 2,
            },
        );
        assert_eq!(r, CommandResult::Applied { revision: 1 }, "unchanged");
        let mut other = MeshConfig::default();
        other.authz.default = Some(DefaultAction::Deny);
        s.apply(
            3,
            &Command::PutMeshConfig {
                config: Stored(other.clone()),
                at: 3,
            },
        );
        assert_eq!(s.extra.config.mesh, other, "replaced, not merged");
        assert_eq!(s.revision, 2);
    }

    #[test]
    fn the_state_before_the_extra_document_still_decodes() {
        use crate::state_legacy::WithoutExtra;
        use warden_raft_store::codec;
        let mut old = WithoutExtra::default();
        old.before.before.before.before.before.revision = 11;
        let s = FederationState::decode_state(&codec::encode(&old).unwrap()).unwrap();
        assert_eq!(s.revision, 11);
        assert_eq!(s.extra.0, crate::state::Extra::default());
    }

    #[test]
    fn cluster_config_needs_the_cluster_and_survives_a_snapshot() {
        use warden_raft_store::codec;
        let mut s = FederationState::default();
        let put = |c: &str, cfg| Command::PutClusterConfig {
            cluster: c.to_string(),
            config: cfg,
            at: 1,
        };
        assert!(matches!(
            s.apply(1, &put("east", config(5))),
            CommandResult::Rejected(Rejection::NotFound(_))
        ));
        s.clusters.insert(
            "east".into(),
            crate::model::Cluster {
                name: "east".into(),
                region: "r".into(),
                zone: "z".into(),
                network: "n".into(),
                gateway: "127.0.0.1:15008".into(),
                trust_domain: "east.test".into(),
                labels: Default::default(),
                registered_at: 10,
            },
        );
        s.apply(2, &put("east", config(5)));
        let bytes = codec::encode(&s).unwrap();
        let back = FederationState::decode_state(&bytes).unwrap();
        assert_eq!(back.extra.config.clusters["east"], config(5).0);
        s.apply(3, &put("east", Stored(MeshConfig::default())));
        assert!(
            s.extra.config.clusters.is_empty(),
            "an empty document removes it"
        );
        assert_eq!(s.revision, 2);
    }
}
