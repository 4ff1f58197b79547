//! Applying the commands of the kinds stored as JSON documents (resilience, JWT and
//! authorization policies): written once for all of them through [`Document`]. A document is
//! replaced whole, an unchanged one writes no change, a kind may allow one per slot (service
//! and rule: 409 otherwise), and every change is one numbered entry in the history.

use std::collections::BTreeMap;

use crate::authn::JwtPolicy;
use crate::authz::AuthorizationPolicy;
use crate::change::ChangeEvent;
use crate::command::{CommandResult, Rejection};
use crate::resilience::ResiliencePolicy;
use crate::state::FederationState;
use crate::stored::Stored;

/// A kind of stored document.
pub(crate) trait Document: Clone + PartialEq + Sized {
    /// For messages: "resilience policy".
    const WHAT: &'static str;
    fn id(&self) -> &str;
    fn updated_at(&self) -> u64;
    fn with_updated_at(&self, at: u64) -> Self;
    /// Where only one may be (`ns/svc` or `ns/svc rule "r"`); `None` for kinds without a limit.
    fn slot(&self) -> Option<String>;
    fn map(state: &mut FederationState) -> &mut BTreeMap<String, Stored<Self>>;
    fn put_event(d: Stored<Self>) -> ChangeEvent;
    fn deleted_event(id: String) -> ChangeEvent;
}

impl FederationState {
    pub(crate) fn put_document<D: Document>(&mut self, d: &Stored<D>) -> CommandResult {
        let map = D::map(self);
        if let Some(slot) = d.slot()
            && let Some(other) = map
                .values()
                .find(|o| o.id() != d.id() && o.slot().as_ref() == Some(&slot))
        {
            return CommandResult::Rejected(Rejection::AlreadyExists(format!(
                "a {} for {slot} ({:?})",
                D::WHAT,
                other.id()
            )));
        }
        let unchanged = map
            .get(d.id())
            .is_some_and(|o| d.with_updated_at(o.updated_at()) == o.0);
        if unchanged {
            return CommandResult::Applied {
                revision: self.revision,
            };
        }
        map.insert(d.id().to_string(), d.clone());
        let revision = self.record(d.updated_at(), D::put_event(d.clone()));
        CommandResult::Applied { revision }
    }

    pub(crate) fn delete_document<D: Document>(&mut self, id: &str, at: u64) -> CommandResult {
        if D::map(self).remove(id).is_none() {
            return CommandResult::Rejected(Rejection::NotFound(format!("{} {id:?}", D::WHAT)));
        }
        let revision = self.record(at, D::deleted_event(id.to_string()));
        CommandResult::Applied { revision }
    }
}

impl Document for ResiliencePolicy {
    const WHAT: &'static str = "resilience policy";
    fn id(&self) -> &str {
        &self.id
    }
    fn updated_at(&self) -> u64 {
        self.updated_at
    }
    fn with_updated_at(&self, at: u64) -> Self {
        Self {
            updated_at: at,
            ..self.clone()
        }
    }
    fn slot(&self) -> Option<String> {
        Some(self.scope())
    }
    fn map(state: &mut FederationState) -> &mut BTreeMap<String, Stored<Self>> {
        &mut state.resilience
    }
    fn put_event(d: Stored<Self>) -> ChangeEvent {
        ChangeEvent::ResiliencePolicyPut(Box::new(d))
    }
    fn deleted_event(id: String) -> ChangeEvent {
        ChangeEvent::ResiliencePolicyDeleted { id }
    }
}

impl Document for JwtPolicy {
    const WHAT: &'static str = "JWT policy";
    fn id(&self) -> &str {
        &self.id
    }
    fn updated_at(&self) -> u64 {
        self.updated_at
    }
    fn with_updated_at(&self, at: u64) -> Self {
        Self {
            updated_at: at,
            ..self.clone()
        }
    }
    fn slot(&self) -> Option<String> {
        Some(self.scope())
    }
    fn map(state: &mut FederationState) -> &mut BTreeMap<String, Stored<Self>> {
        &mut state.jwt
    }
    fn put_event(d: Stored<Self>) -> ChangeEvent {
        ChangeEvent::JwtPolicyPut(Box::new(d))
    }
    fn deleted_event(id: String) -> ChangeEvent {
        ChangeEvent::JwtPolicyDeleted { id }
    }
}

impl Document for AuthorizationPolicy {
    const WHAT: &'static str = "authorization policy";
    fn id(&self) -> &str {
        &self.id
    }
    fn updated_at(&self) -> u64 {
        self.updated_at
    }
    fn with_updated_at(&self, at: u64) -> Self {
        Self {
            updated_at: at,
            ..self.clone()
        }
    }
    fn slot(&self) -> Option<String> {
        None
    }
    fn map(state: &mut FederationState) -> &mut BTreeMap<String, Stored<Self>> {
        &mut state.authorization
    }
    fn put_event(d: Stored<Self>) -> ChangeEvent {
        ChangeEvent::AuthorizationPolicyPut(Box::new(d))
    }
    fn deleted_event(id: String) -> ChangeEvent {
        ChangeEvent::AuthorizationPolicyDeleted { id }
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

    #[test]
    fn the_state_before_audiences_still_decodes_and_an_audience_goes_with_its_export() {
        use crate::audience::ExportAudience;
        use crate::state_legacy::WithoutAudience;
        use warden_raft_store::codec;
        let mut old = WithoutAudience::default();
        old.before.before.before.before.revision = 9;
        old.resilience
            .insert("a".into(), policy("a", "shop/cart", None));
        let s = FederationState::decode_state(&codec::encode(&old).unwrap()).unwrap();
        assert_eq!((s.revision, s.resilience.len()), (9, 1));
        assert!(s.export_audience.is_empty());

        let mut s = FederationState::default();
        s.apply(
            1,
            &Command::RegisterCluster {
                cluster: serde_json::from_value(serde_json::json!({"name": "east",
                    "region": "r", "zone": "z", "network": "n", "gateway": "127.0.0.1:1",
                    "trust_domain": "east.test", "labels": {}, "registered_at": 1}))
                .unwrap(),
                ca_bundle_pem: None,
            },
        );
        let export: crate::model::ServiceExport = serde_json::from_value(serde_json::json!({
            "cluster": "east", "namespace": "shop", "service": "cart", "ports": [],
            "healthy_endpoints": 1, "weight": 100, "updated_at": 2}))
        .unwrap();
        let to_west = Stored(ExportAudience {
            export_to: vec!["west".into()],
        });
        s.apply(
            2,
            &Command::ExportServiceTo {
                export: export.clone(),
                subsets: vec![],
                audience: to_west.clone(),
            },
        );
        let key = ("east".to_string(), "shop".to_string(), "cart".to_string());
        assert_eq!(s.export_audience[&key], to_west);
        assert!(matches!(
            &s.history.back().unwrap().event,
            ChangeEvent::ServicePutTo { audience, .. } if **audience == to_west
        ));
        let back = FederationState::decode_state(&codec::encode(&s).unwrap()).unwrap();
        assert_eq!(back.export_audience, s.export_audience);
        // Exported again for everyone: the audience goes.
        s.apply(3, &Command::ExportService { export });
        assert!(s.export_audience.is_empty());
    }

    #[test]
    fn authorization_policies_are_many_per_service() {
        let mut s = FederationState::default();
        let authz = |id: &str| {
            Stored(
                serde_json::from_value::<AuthorizationPolicy>(serde_json::json!({
                    "id": id, "service": "shop/cart", "action": "deny",
                    "rules": [{"methods": ["DELETE"]}], "updated_at": 1
                }))
                .unwrap(),
            )
        };
        for (i, id) in ["a", "b"].into_iter().enumerate() {
            let put = Command::PutAuthorizationPolicy { policy: authz(id) };
            assert_eq!(
                s.apply(i as u64, &put),
                CommandResult::Applied {
                    revision: i as u64 + 1
                }
            );
        }
        assert_eq!(s.authorization.len(), 2);
    }
}
