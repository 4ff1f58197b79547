//! Applying route commands to the federation state: a service has at most one route, a route
//! is replaced whole, and every change is one numbered entry in the history.

use crate::change::ChangeEvent;
use crate::command::{CommandResult, Rejection};
use crate::route::Route;
use crate::state::{FederationState, service_taken};

impl FederationState {
    pub(crate) fn put_route(&mut self, route: &Route) -> CommandResult {
        let others = self.routes.values().map(|r| (&r.id, &r.service));
        if let Some(taken) = service_taken(others, &route.id, &route.service, "route") {
            return taken;
        }
        let unchanged = self.routes.get(&route.id).is_some_and(|r| {
            let same_time = Route {
                updated_at: r.updated_at,
                ..route.clone()
            };
            same_time == *r
        });
        if unchanged {
            return CommandResult::Applied {
                revision: self.revision,
            };
        }
        self.routes.insert(route.id.clone(), route.clone());
        let revision = self.record(route.updated_at, ChangeEvent::RoutePut(route.clone()));
        CommandResult::Applied { revision }
    }

    pub(crate) fn delete_route(&mut self, id: &str, at: u64) -> CommandResult {
        if self.routes.remove(id).is_none() {
            return CommandResult::Rejected(Rejection::NotFound(format!("route {id:?}")));
        }
        let revision = self.record(at, ChangeEvent::RouteDeleted { id: id.to_string() });
        CommandResult::Applied { revision }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;
    use warden_raft_store::StateMachineCore;

    fn route(id: &str, service: &str) -> Route {
        serde_json::from_value(serde_json::json!({
            "id": id, "service": service, "updated_at": 5,
            "rules": [{"backends": [{"subset": {"version": "v1"}}]}]
        }))
        .unwrap()
    }

    #[test]
    fn one_route_per_service_and_each_change_numbered() {
        let mut s = FederationState::default();
        let put = |r: Route| Command::PutRoute { route: r };
        assert_eq!(
            s.apply(1, &put(route("a", "shop/cart"))),
            CommandResult::Applied { revision: 1 }
        );
        // The same route again changes nothing.
        assert_eq!(
            s.apply(2, &put(route("a", "shop/cart"))),
            CommandResult::Applied { revision: 1 }
        );
        assert!(matches!(
            s.apply(3, &put(route("b", "shop/cart"))),
            CommandResult::Rejected(Rejection::AlreadyExists(_))
        ));
        assert_eq!(
            s.apply(4, &put(route("b", "shop/other"))),
            CommandResult::Applied { revision: 2 }
        );
        let del = |id: &str| Command::DeleteRoute {
            id: id.into(),
            at: 9,
        };
        assert_eq!(
            s.apply(5, &del("a")),
            CommandResult::Applied { revision: 3 }
        );
        assert!(matches!(
            s.apply(6, &del("a")),
            CommandResult::Rejected(Rejection::NotFound(_))
        ));
        assert_eq!(s.routes.len(), 1);
        let last = s.history.back().unwrap();
        assert_eq!(last.event, ChangeEvent::RouteDeleted { id: "a".into() });
    }

    #[test]
    fn snapshots_of_both_earlier_shapes_still_decode() {
        use crate::state_legacy::{WithoutCredentials, WithoutRoutes};
        use warden_raft_store::codec;
        let v0 = WithoutCredentials {
            revision: 3,
            ..Default::default()
        };
        let mut v1 = WithoutRoutes {
            before: WithoutCredentials {
                revision: 4,
                ..Default::default()
            },
            ..Default::default()
        };
        v1.credentials.insert(
            "east".into(),
            crate::model::ClusterCredential {
                secret_sha256: "ab".into(),
                issued_at: 1,
            },
        );
        let s0 = FederationState::decode_state(&codec::encode(&v0).unwrap()).unwrap();
        assert_eq!((s0.revision, s0.credentials.len()), (3, 0));
        let s1 = FederationState::decode_state(&codec::encode(&v1).unwrap()).unwrap();
        assert_eq!((s1.revision, s1.credentials.len()), (4, 1));
        let mut now = FederationState::default();
        now.routes.insert("a".into(), route("a", "shop/cart"));
        let back = FederationState::decode_state(&codec::encode(&now).unwrap()).unwrap();
        assert_eq!(back.routes.len(), 1);
    }
}
