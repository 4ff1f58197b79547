//! Where this gateway sends a service's traffic now and why, typed
//! ([`warden_federation::placement::Placement`]): the plan's levels with their healthy and
//! traffic shares, the clusters in each, and the reason in words. `/explain` shows it with the
//! endpoint detail around it; the publisher reports every service's placement with the lease
//! renewals, so any federation node (and the console) shows each gateway's.

use warden_federation::placement::{MAX_SERVICES, Placement, PlacementLevel, PlacementReport};

use super::context::Listener;
use super::view::ServiceView;
use crate::balance::{self, Locality, Mode, Plan};
use crate::key::ServiceKey;
use crate::table::{RoutePolicy, Tables};

/// Shares are reported to three decimals: a ramp's every step is not a new report.
fn rounded(v: f64) -> f64 {
    ((v * 1000.0).round() / 1000.0).clamp(0.0, 1.0)
}

/// Why the plan places traffic as it does, in one sentence.
pub fn reason(plan: &Plan, policy: Option<&RoutePolicy>) -> String {
    if plan.is_empty() {
        "no healthy endpoint in any cluster: requests get 503 no_healthy_upstream".to_string()
    } else if plan.levels.first().is_some_and(|l| l.load >= 0.999) {
        "local endpoints are healthy: all traffic stays in this cluster".to_string()
    } else if plan.mode == Mode::Weighted {
        format!(
            "traffic policy {:?} splits traffic by cross-cluster weights",
            policy.map(|p| p.id.clone()).unwrap_or_default()
        )
    } else {
        "local capacity is short: traffic spills to the next priority levels in the shares shown"
            .to_string()
    }
}

/// The placement of `view` (the service `key`) as this gateway plans it.
pub fn placement(
    key: &ServiceKey,
    view: &ServiceView,
    me: &Locality,
    overprovisioning_percent: u32,
) -> Placement {
    let remotes = view.remotes();
    let plan = balance::plan(&view.inputs(me, overprovisioning_percent, &[]));
    let levels = plan
        .levels
        .iter()
        .map(|l| PlacementLevel {
            name: l.name.to_string(),
            healthy_share: rounded(l.healthy_share),
            traffic_share: rounded(l.load),
            clusters: l
                .clusters
                .iter()
                .filter_map(|i| remotes.get(*i))
                .map(|r| r.cluster.to_string())
                .collect(),
        })
        .collect();
    let local = view.local.as_deref();
    Placement {
        service: key.to_string(),
        mode: match plan.mode {
            Mode::Priority => "priority",
            Mode::Weighted => "weighted",
        }
        .to_string(),
        reason: reason(&plan, view.policy.as_deref()),
        levels,
        local_available: local.map_or(0, |l| l.available_count() as u32),
        local_total: local.map_or(0, |l| l.endpoints.len() as u32),
    }
}

/// Every service this gateway can route (local or exported by another cluster), by name, at
/// most [`MAX_SERVICES`].
pub fn report(tables: &Tables, me: &Locality, overprovisioning_percent: u32) -> PlacementReport {
    let mut keys: Vec<ServiceKey> = {
        let local = tables.local.load();
        let remote = tables.remote.load();
        local
            .services
            .keys()
            .chain(remote.services.keys())
            .cloned()
            .collect()
    };
    keys.sort();
    keys.dedup();
    keys.truncate(MAX_SERVICES);
    let services = keys
        .iter()
        .filter_map(|k| {
            let view = ServiceView::load(tables, k, Listener::Outbound);
            view.missing(k, Listener::Outbound)
                .is_none()
                .then(|| placement(k, &view, me, overprovisioning_percent))
        })
        .collect();
    PlacementReport { services }
}
