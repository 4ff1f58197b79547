//! Applying authorization-policy commands to the federation state: a policy is replaced
//! whole (a service may have many), an unchanged one writes no change, and every change is
//! one numbered entry in the history.

use crate::authz::AuthorizationPolicy;
use crate::change::ChangeEvent;
use crate::command::{CommandResult, Rejection};
use crate::state::FederationState;
use crate::stored::Stored;

impl FederationState {
    pub(crate) fn put_authorization(
        &mut self,
        policy: &Stored<AuthorizationPolicy>,
    ) -> CommandResult {
        let unchanged = self.authorization.get(&policy.id).is_some_and(|p| {
            let same_time = AuthorizationPolicy {
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
        self.authorization.insert(policy.id.clone(), policy.clone());
        let revision = self.record(
            policy.updated_at,
            ChangeEvent::AuthorizationPolicyPut(Box::new(policy.clone())),
        );
        CommandResult::Applied { revision }
    }

    pub(crate) fn delete_authorization(&mut self, id: &str, at: u64) -> CommandResult {
        if self.authorization.remove(id).is_none() {
            return CommandResult::Rejected(Rejection::NotFound(format!(
                "authorization policy {id:?}"
            )));
        }
        let revision = self.record(
            at,
            ChangeEvent::AuthorizationPolicyDeleted { id: id.to_string() },
        );
        CommandResult::Applied { revision }
    }
}
