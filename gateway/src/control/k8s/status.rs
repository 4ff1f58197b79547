//! ServiceExport status: the `Valid`, `Exported`, `Conflict` and `EndpointsAccepted`
//! conditions that tell a user
//! what happened to an export (`kubectl get serviceexport -o yaml`). Pure: computes the
//! conditions and decides whether they changed; the caller patches the status subresource.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde_json::Value;
use warden_federation::model::ServicePort;
use warden_federation::wire::CatalogService;

use super::desired::Outcome;
use crate::control::addresses::describe;

/// What the federation store says about one of this cluster's exports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreView {
    /// The store lists this cluster's export.
    pub exported: bool,
    /// Other clusters exporting the same service with different ports: their names.
    pub conflicting: Vec<String>,
}

/// Reads the view of (`ns`, `name`) from the global catalog.
pub fn store_view(
    catalog: &[CatalogService],
    me: &str,
    ns: &str,
    name: &str,
    ours: &[ServicePort],
) -> StoreView {
    let mut view = StoreView::default();
    let key = |p: &[ServicePort]| {
        let mut v: Vec<(String, u16, String)> = p
            .iter()
            .map(|p| (p.name.clone(), p.port, format!("{:?}", p.protocol)))
            .collect();
        v.sort();
        v
    };
    let want = key(ours);
    for item in catalog {
        if item.namespace != ns || item.service != name {
            continue;
        }
        for c in &item.clusters {
            if c.cluster == me {
                view.exported = true;
                continue;
            }
            if key(&c.ports) != want {
                view.conflicting.push(c.cluster.clone());
            }
        }
    }
    view
}

pub fn cond(type_: &str, ok: bool, reason: &str, message: String, now: &Time) -> Condition {
    Condition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.into(),
        message,
        last_transition_time: now.clone(),
        observed_generation: None,
    }
}

/// The conditions for one ServiceExport.
pub fn conditions(outcome: Option<&Outcome>, view: &StoreView, now: &Time) -> Vec<Condition> {
    let mut out = Vec::new();
    match outcome.and_then(|o| o.invalid.clone()) {
        Some((reason, message)) => {
            out.push(cond("Valid", false, reason, message, now));
            out.push(cond(
                "Exported",
                false,
                "Invalid",
                "not exported: the export is not valid".into(),
                now,
            ));
        }
        None => {
            out.push(cond(
                "Valid",
                true,
                "Valid",
                "the Service can be exported".into(),
                now,
            ));
            out.push(if view.exported {
                cond(
                    "Exported",
                    true,
                    "Exported",
                    "the federation store lists this cluster's copy".into(),
                    now,
                )
            } else {
                cond(
                    "Exported",
                    false,
                    "Pending",
                    "waiting for the federation store to accept the export".into(),
                    now,
                )
            });
        }
    }
    let refused = outcome.map(|o| o.refused.as_slice()).unwrap_or(&[]);
    out.push(if refused.is_empty() {
        cond(
            "EndpointsAccepted",
            true,
            "Accepted",
            "every ready endpoint address may receive traffic".into(),
            now,
        )
    } else {
        cond(
            "EndpointsAccepted",
            false,
            "AddressRefused",
            format!(
                "{} endpoint address(es) refused: {}",
                refused.len(),
                describe(refused)
            ),
            now,
        )
    });
    out.push(if view.conflicting.is_empty() {
        cond(
            "Conflict",
            false,
            "NoConflict",
            "no other cluster exports different ports".into(),
            now,
        )
    } else {
        cond(
            "Conflict",
            true,
            "PortConflict",
            format!(
                "clusters {} export this service with different ports",
                view.conflicting.join(", ")
            ),
            now,
        )
    });
    out
}

/// The conditions to write, or `None` when `existing` (the object's `status.conditions`)
/// already says the same. A condition whose status did not change keeps its transition time.
pub fn changed(existing: &Value, mut next: Vec<Condition>) -> Option<Vec<Condition>> {
    let old: Vec<Condition> = serde_json::from_value(existing.clone()).unwrap_or_default();
    let mut same = old.len() == next.len();
    for c in &mut next {
        match old.iter().find(|o| o.type_ == c.type_) {
            Some(o) if o.status == c.status => {
                c.last_transition_time = o.last_transition_time.clone();
                same &= o.reason == c.reason && o.message == c.message;
            }
            _ => same = false,
        }
    }
    (!same).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use warden_federation::model::Protocol;

    fn port(p: u16) -> ServicePort {
        ServicePort {
            name: "http".into(),
            port: p,
            protocol: Protocol::Http,
        }
    }

    #[test]
    fn store_view_finds_ours_and_conflicts() {
        let entry = |c: &str, p: u16| json!({"cluster": c, "ports": [{"name": "http", "port": p, "protocol": "http"}], "healthy_endpoints": 1, "weight": 100, "updated_at": 1});
        let catalog: Vec<CatalogService> = serde_json::from_value(
            json!([{"namespace": "shop", "service": "cart", "clusters": [
                entry("a", 80), entry("b", 80), entry("c", 81)
            ]}]),
        )
        .unwrap();
        let v = store_view(&catalog, "a", "shop", "cart", &[port(80)]);
        assert!(v.exported);
        assert_eq!(v.conflicting, vec!["c"]);
        let v = store_view(&catalog, "z", "shop", "other", &[port(80)]);
        assert_eq!(v, StoreView::default());
    }

    #[test]
    fn unchanged_conditions_are_not_rewritten_and_keep_their_time() {
        let t0 = Time(k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap());
        let t1 = Time(k8s_openapi::jiff::Timestamp::from_second(2_000).unwrap());
        let ok = Outcome {
            service: None,
            invalid: None,
            refused: Vec::new(),
        };
        let view = StoreView {
            exported: true,
            conflicting: vec![],
        };
        let first = conditions(Some(&ok), &view, &t0);
        let existing = serde_json::to_value(&first).unwrap();
        assert!(changed(&existing, conditions(Some(&ok), &view, &t1)).is_none());
        let pending = StoreView::default();
        let next = changed(&existing, conditions(Some(&ok), &pending, &t1)).unwrap();
        let valid = next.iter().find(|c| c.type_ == "Valid").unwrap();
        assert_eq!(
            valid.last_transition_time, t0,
            "unchanged status keeps its time"
        );
        let exported = next.iter().find(|c| c.type_ == "Exported").unwrap();
        assert_eq!(
            (exported.status.as_str(), &exported.last_transition_time),
            ("False", &t1)
        );
        assert!(changed(&Value::Null, first).is_some());
    }
}
