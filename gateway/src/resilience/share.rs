//! Mesh-wide rate limits divided among the gateways that see a service's traffic. Each gateway
//! measures the demand on each of its mesh-wide limits — requests that asked for a token,
//! admitted or not — over each lease renewal interval ([`Meter`], smoothed), reports it with
//! the renewal, and scales its buckets to its share ([`rebalance`]): its own demand over the
//! demand every live gateway reported. With no demand anywhere, each of the N gateways that
//! report the limit takes 1/N. A share never drops below [`MIN_SHARE`], so a gateway whose
//! callers just started can admit their first requests before the others learn of them (the
//! mesh may then pass up to `MIN_SHARE` × N over the limit for a renewal interval or two).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant;
use warden_federation::load::{LoadReport, MAX_ENTRIES, limit_key};

use super::CompiledPolicy;

/// The least share of a mesh-wide limit a gateway keeps.
pub const MIN_SHARE: f64 = 0.02;

/// Weight of the newest interval in the smoothed demand.
const SMOOTHING: f64 = 0.5;

/// Demand per mesh-wide limit, measured between samples.
#[derive(Debug, Default)]
pub struct Meter {
    /// By limit key: requests offered at the last sample, and the smoothed rate.
    last: HashMap<String, (u64, f64)>,
    at: Option<Instant>,
}

/// The mesh-wide limits of the live policies, with their report keys.
fn mesh_limits(
    policies: &[Arc<CompiledPolicy>],
) -> impl Iterator<Item = (String, &super::Limit)> + '_ {
    policies.iter().flat_map(|p| {
        p.limits
            .iter()
            .filter(|l| l.mesh)
            .map(move |l| (limit_key(&p.source.id, &l.name), l))
    })
}

impl Meter {
    /// Samples the mesh-wide limits of `policies` at `now`: the report to send with the next
    /// renewal, or `None` when no policy has such a limit. The first sample of a limit reports
    /// no demand yet.
    pub fn sample(&mut self, policies: &[Arc<CompiledPolicy>], now: Instant) -> Option<LoadReport> {
        let dt = self
            .at
            .map(|at| now.saturating_duration_since(at).as_secs_f64())
            .filter(|dt| *dt > 0.0);
        self.at = Some(now);
        let mut seen = HashMap::new();
        let mut report = LoadReport::default();
        for (key, l) in mesh_limits(policies) {
            let offered = l.buckets.offered();
            let smoothed = match (self.last.get(&key), dt) {
                (Some(&(before, smoothed)), Some(dt)) => {
                    // A recompiled policy starts counting afresh.
                    let n = offered.checked_sub(before).unwrap_or(offered);
                    SMOOTHING * (n as f64 / dt) + (1.0 - SMOOTHING) * smoothed
                }
                _ => 0.0,
            };
            if report.demand.len() < MAX_ENTRIES {
                report
                    .demand
                    .insert(key.clone(), (smoothed * 100.0).round() / 100.0);
            }
            seen.insert(key, (offered, smoothed));
        }
        self.last = seen;
        (!self.last.is_empty()).then_some(report)
    }
}

/// This gateway's share of one limit: its demand over everyone's.
pub fn share_of(mine: f64, others: &[f64]) -> f64 {
    let total = mine + others.iter().sum::<f64>();
    let share = match total > 0.0 {
        true => mine / total,
        false => 1.0 / (1 + others.len()) as f64,
    };
    share.clamp(MIN_SHARE, 1.0)
}

/// Scales each mesh-wide limit of `policies` to this gateway's share, given its own last
/// report and those of the other live clusters' gateways.
pub fn rebalance(
    policies: &[Arc<CompiledPolicy>],
    mine: &LoadReport,
    others: &HashMap<String, Arc<LoadReport>>,
) {
    for (key, l) in mesh_limits(policies) {
        let theirs: Vec<f64> = others
            .values()
            .filter_map(|r| r.demand.get(&key).copied())
            .collect();
        let own = mine.demand.get(&key).copied().unwrap_or(0.0);
        l.buckets.set_share(share_of(own, &theirs));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn policy() -> Arc<CompiledPolicy> {
        Arc::new(CompiledPolicy::compile(
            &serde_json::from_value(serde_json::json!({"id": "cart-limits",
                "service": "shop/cart", "rate_limits": [
                    {"name": "all", "requests": 100, "scope": "mesh"},
                    {"name": "here", "requests": 100}]}))
            .unwrap(),
        ))
    }

    #[test]
    fn shares_follow_demand_and_split_evenly_without_it() {
        assert_eq!(share_of(150.0, &[50.0]), 0.75);
        assert_eq!(share_of(0.0, &[0.0, 0.0]), 1.0 / 3.0);
        assert_eq!(share_of(0.0, &[100.0]), MIN_SHARE);
        assert_eq!(share_of(10.0, &[]), 1.0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_meter_reports_smoothed_demand_of_mesh_limits_only() {
        let ps = [policy()];
        let mut m = Meter::default();
        let first = m.sample(&ps, Instant::now()).unwrap();
        assert_eq!(first.demand.len(), 1, "the local limit is not reported");
        assert_eq!(first.demand["cart-limits/all"], 0.0);
        let all = &ps[0].limits[0];
        for _ in 0..40 {
            let _ = all.take("east", &Default::default(), Instant::now());
        }
        tokio::time::advance(Duration::from_millis(500)).await;
        let r = m.sample(&ps, Instant::now()).unwrap();
        // 80 requests/s over the interval, smoothed with the previous 0.
        assert_eq!(r.demand["cart-limits/all"], 40.0);
        let others = HashMap::from([(
            "west".to_string(),
            Arc::new(LoadReport {
                demand: [("cart-limits/all".to_string(), 120.0)].into(),
            }),
        )]);
        rebalance(&ps, &r, &others);
        assert_eq!(all.buckets.share(), 0.25);
        assert_eq!(
            ps[0].limits[1].buckets.share(),
            1.0,
            "local limits keep theirs"
        );
        assert!(
            m.sample(&[], Instant::now()).is_none(),
            "no mesh limit, no report"
        );
    }
}
