//! Applying resilience-policy commands to the federation state: at most one policy per
//! (service, rule), a policy is replaced whole, an unchanged one writes no change, and every
//! change is one numbered entry in the history.

use crate::change::ChangeEvent;
use crate::command::{CommandResult, Rejection};
use crate::resilience::ResiliencePolicy;
use crate::state::FederationState;
use crate::stored::Stored;

impl FederationState {
    pub(crate) fn put_resilience(&mut self, policy: &Stored<ResiliencePolicy>) -> CommandResult {
        if let Some(other) = self
            .resilience
            .values()
            .find(|p| p.id != policy.id && p.service == policy.service && p.rule == policy.rule)
        {
            let scope = policy.scope();
            return CommandResult::Rejected(Rejection::AlreadyExists(format!(
                "a resilience policy for {scope} ({:?})",
                other.id
            )));
        }
        let unchanged = self.resilience.get(&policy.id).is_some_and(|p| {
            let same_time = ResiliencePolicy {
                updated_at: p.updated_at,
                ..policy.0.clone()
            };
            same_time == p.0
        });
        if unchanged {
            return CommandResult::Applied {
                revision: self.revision,
            };
        }
        self.resilience.insert(policy.id.clone(), policy.clone());
        let revision = self.record(
            policy.updated_at,
            ChangeEvent::ResiliencePolicyPut(Box::new(policy.clone())),
        );
        CommandResult::Applied { revision }
    }

    pub(crate) fn delete_resilience(&mut self, id: &str, at: u64) -> CommandResult {
        if self.resilience.remove(id).is_none() {
            return CommandResult::Rejected(Rejection::NotFound(format!(
                "resilience policy {id:?}"
            )));
        }
        let revision = self.record(
            at,
            ChangeEvent::ResiliencePolicyDeleted { id: id.to_string() },
        );
        CommandResult::Applied { revision }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;
    use warden_raft_store::StateMachineCore;

    fn policy(id: &str, service: &str, rule: Option<&str>) -> Stored<ResiliencePolicy> {
        Stored(
            serde_json::from_value(serde_json::json!({
                "id": id, "service": service, "rule": rule, "updated_at": 5,
                "rate_limits": [{"requests": 10}]
            }))
            .unwrap(),
        )
    }

    #[test]
    fn one_policy_per_service_and_rule_each_change_numbered() {
        let mut s = FederationState::default();
        let put = |p| Command::PutResiliencePolicy { policy: p };
        let applied = |revision| CommandResult::Applied { revision };
        assert_eq!(s.apply(1, &put(policy("a", "shop/cart", None))), applied(1));
        assert_eq!(
            s.apply(2, &put(policy("a", "shop/cart", None))),
            applied(1),
            "the same policy again changes nothing"
        );
        assert!(matches!(
            s.apply(3, &put(policy("b", "shop/cart", None))),
            CommandResult::Rejected(Rejection::AlreadyExists(_))
        ));
        assert_eq!(
            s.apply(4, &put(policy("b", "shop/cart", Some("canary")))),
            applied(2),
            "a rule's policy sits beside the service's"
        );
        let del = |id: &str| Command::DeleteResiliencePolicy {
            id: id.into(),
            at: 9,
        };
        assert_eq!(s.apply(5, &del("a")), applied(3));
        assert!(matches!(
            s.apply(6, &del("a")),
            CommandResult::Rejected(Rejection::NotFound(_))
        ));
        assert_eq!(
            s.history.back().unwrap().event,
            ChangeEvent::ResiliencePolicyDeleted { id: "a".into() }
        );
    }

    #[test]
    fn the_previous_shape_still_decodes_and_the_current_round_trips() {
        use crate::state_legacy::{WithoutResilience, WithoutSubsets};
        use warden_raft_store::codec;
        let mut old = WithoutResilience {
            before: WithoutSubsets::default(),
            ..Default::default()
        };
        old.before.before.before.revision = 8;
        old.export_subsets
            .insert(("east".into(), "shop".into(), "cart".into()), vec![]);
        let s = FederationState::decode_state(&codec::encode(&old).unwrap()).unwrap();
        assert_eq!((s.revision, s.export_subsets.len()), (8, 1));
        assert!(s.resilience.is_empty());
        let mut now = FederationState::default();
        now.resilience
            .insert("a".into(), policy("a", "shop/cart", None));
        let back = FederationState::decode_state(&codec::encode(&now).unwrap()).unwrap();
        assert_eq!(back.resilience["a"], policy("a", "shop/cart", None));
    }
}
