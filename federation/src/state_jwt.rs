//! Applying JWT-policy commands to the federation state: at most one policy per
//! (service, rule), a policy is replaced whole, an unchanged one writes no change, and every
//! change is one numbered entry in the history.

use crate::authn::JwtPolicy;
use crate::change::ChangeEvent;
use crate::command::{CommandResult, Rejection};
use crate::state::FederationState;
use crate::stored::Stored;

impl FederationState {
    pub(crate) fn put_jwt(&mut self, policy: &Stored<JwtPolicy>) -> CommandResult {
        if let Some(other) = self
            .resilience
            .values()
            .find(|p| p.id != policy.id && p.service == policy.service && p.rule == policy.rule)
        {
            let scope = policy.scope();
            return CommandResult::Rejected(Rejection::AlreadyExists(format!(
                "a JWT policy for {scope} ({:?})",
                other.id
            )));
        }
        let unchanged = self.jwt.get(&policy.id).is_some_and(|p| {
            let same_time = JwtPolicy {
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
        self.jwt.insert(policy.id.clone(), policy.clone());
        let revision = self.record(
            policy.updated_at,
            ChangeEvent::JwtPolicyPut(Box::new(policy.clone())),
        );
        CommandResult::Applied { revision }
    }

    pub(crate) fn delete_jwt(&mut self, id: &str, at: u64) -> CommandResult {
        if self.jwt.remove(id).is_none() {
            return CommandResult::Rejected(Rejection::NotFound(format!("JWT policy {id:?}")));
        }
        let revision = self.record(at, ChangeEvent::JwtPolicyDeleted { id: id.to_string() });
        CommandResult::Applied { revision }
    }
}
