//! Where this gateway sends a service's traffic now and why, typed
//! ([`warden_federation::placement::Placement`]): the plan's levels with their healthy and
//! traffic shares, the clusters in each, and the reason in words. `/explain` shows it with the
//! endpoint detail around it; the publisher reports every service's placement with the lease
//! renewals, so any federation node (and the console) shows each gateway's.

use warden_federation::placement::{
    MAX_CLUSTERS, MAX_LEVELS, MAX_SERVICES, MAX_TEXT, Placement, PlacementLevel, PlacementReport,
    REPORT_BUDGET,
};

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
    // More levels than a report holds (a weight per cluster, say): those carrying traffic
    // first, each group in the plan's order.
    let mut order: Vec<&balance::Level> = plan.levels.iter().collect();
    if order.len() > MAX_LEVELS {
        order.sort_by_key(|l| l.load <= 0.0);
    }
    let levels_omitted = order.len().saturating_sub(MAX_LEVELS) as u32;
    let levels = order
        .into_iter()
        .take(MAX_LEVELS)
        .map(|l| PlacementLevel {
            name: l.name.to_string(),
            healthy_share: rounded(l.healthy_share),
            traffic_share: rounded(l.load),
            clusters: l
                .clusters
                .iter()
                .take(MAX_CLUSTERS)
                .filter_map(|i| remotes.get(*i))
                .map(|r| r.cluster.to_string())
                .collect(),
            clusters_omitted: l.clusters.len().saturating_sub(MAX_CLUSTERS) as u32,
        })
        .collect();
    let mut reason = reason(&plan, view.policy.as_deref());
    if reason.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    let local = view.local.as_deref();
    Placement {
        service: key.to_string(),
        mode: match plan.mode {
            Mode::Priority => "priority",
            Mode::Weighted => "weighted",
        }
        .to_string(),
        reason,
        levels,
        levels_omitted,
        local_available: local.map_or(0, |l| l.available_count() as u32),
        local_total: local.map_or(0, |l| l.endpoints.len() as u32),
    }
}

/// Every service this gateway can route (local or exported by another cluster), by name, at
/// most [`MAX_SERVICES`] and [`REPORT_BUDGET`] bytes; one the node would refuse is left out
/// (never the renewal).
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
    let mut services = Vec::new();
    let mut bytes = 0;
    for k in &keys {
        let view = ServiceView::load(tables, k, Listener::Outbound);
        if view.missing(k, Listener::Outbound).is_some() {
            continue;
        }
        let p = placement(k, &view, me, overprovisioning_percent);
        if let Err(e) = p.check(services.len()) {
            tracing::debug!(service = %k, error = %e.message, "placement left out of the report");
            continue;
        }
        bytes += serde_json::to_vec(&p).map_or(0, |v| v.len());
        if bytes > REPORT_BUDGET || services.len() == MAX_SERVICES {
            break;
        }
        services.push(p);
    }
    PlacementReport { services }
}

#[cfg(test)]
mod tests {
    use super::super::view::fixtures::{me, remote, tables};
    use super::*;

    #[test]
    fn a_failed_over_service_names_where_it_goes_and_why() {
        let (t, key) = tables(&[false, false], vec![remote("west", "z2", 3)]);
        let r = report(&t, &me(), 100);
        assert_eq!(r.services.len(), 1);
        let p = &r.services[0];
        assert_eq!(
            (p.service.as_str(), p.mode.as_str()),
            ("shop/cart", "priority")
        );
        assert_eq!((p.local_available, p.local_total), (0, 2));
        assert_eq!(p.levels[0].traffic_share, 0.0);
        let to: Vec<_> = p.levels.iter().filter(|l| l.traffic_share > 0.0).collect();
        assert_eq!(to.len(), 1);
        assert_eq!(
            (to[0].clusters.clone(), to[0].traffic_share),
            (vec!["west".to_string()], 1.0)
        );
        assert!(
            p.reason.starts_with("local capacity is short"),
            "{}",
            p.reason
        );
        let view = ServiceView::load(&t, &key, Listener::Outbound);
        assert_eq!(placement(&key, &view, &me(), 100), *p);
        assert!(r.validate().is_ok());
    }

    #[test]
    fn a_level_of_many_clusters_names_the_first_and_counts_the_rest() {
        let many = (0..40)
            .map(|i| remote(&format!("c{i:02}"), "z2", 1))
            .collect();
        let (t, _) = tables(&[false], many);
        let r = report(&t, &me(), 100);
        let level = r.services[0]
            .levels
            .iter()
            .find(|l| !l.clusters.is_empty())
            .expect("a remote level");
        assert_eq!(level.clusters.len(), MAX_CLUSTERS);
        assert_eq!(level.clusters_omitted as usize, 40 - MAX_CLUSTERS);
        assert!(
            r.validate().is_ok(),
            "the node takes what the gateway sends"
        );
    }

    #[test]
    fn past_the_level_bound_the_levels_carrying_traffic_stay() {
        // A weighted split onto the last two of 40 clusters: one level per cluster.
        let many = (0..40)
            .map(|i| remote(&format!("c{i:02}"), "z2", 1))
            .collect();
        let (t, key) = tables(&[false], many);
        let weights = [("c38".to_string(), 50), ("c39".to_string(), 50)].into();
        let mut remote = (**t.remote.load()).clone();
        remote.policies.insert(
            key.clone(),
            std::sync::Arc::new(RoutePolicy {
                id: "split".into(),
                weights,
                ..Default::default()
            }),
        );
        t.remote.store(std::sync::Arc::new(remote));
        let p = &report(&t, &me(), 100).services[0];
        assert_eq!(p.mode, "weighted");
        assert_eq!(p.levels.len(), MAX_LEVELS);
        assert_eq!(p.levels_omitted as usize, 41 - MAX_LEVELS);
        let carried: f64 = p.levels.iter().map(|l| l.traffic_share).sum();
        assert!((carried - 1.0).abs() < 1e-6, "{:?}", p.levels);
        assert!(report(&t, &me(), 100).validate().is_ok());
    }
}
