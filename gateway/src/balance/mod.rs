//! Pure balancing: which priority, which cluster, which endpoint. No I/O, no clocks.
//!
//! Priorities follow Envoy's semantics: level 0 is this cluster's endpoints, then remote
//! clusters by locality (same zone, same region, others) or in a policy's explicit failover
//! order. A level keeps `min(1, healthy_share × overprovisioning)` of the traffic; the rest
//! spills to the next level. With cross-cluster weights in a policy, traffic is split across
//! the available clusters by weight instead. Within local endpoints: power of two choices on
//! in-flight requests.

use std::borrow::Cow;

use serde::Serialize;

use crate::table::{LocalService, RemoteCluster, RoutePolicy};

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Index into the local service's endpoints.
    Local(usize),
    /// Index into the remote clusters list.
    Remote(usize),
}

/// This gateway's own locality.
#[derive(Debug, Clone)]
pub struct Locality {
    pub cluster: String,
    pub region: String,
    pub zone: String,
}

/// One priority level and the share of traffic it gets.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    /// Fixed names for locality levels (no allocation on the request path); policy levels
    /// name their cluster.
    pub name: Cow<'static, str>,
    /// Local endpoints are level 0 only; remote levels list cluster indexes.
    pub local: bool,
    pub clusters: Vec<usize>,
    /// Healthy share of this level, 0–1 (ramp-weighted for recovering local endpoints).
    pub healthy_share: f64,
    /// Share of all traffic this level receives, 0–1.
    pub load: f64,
}

/// How a plan spreads traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Locality priorities (or a failover order) with Envoy's spill semantics.
    Priority,
    /// A policy's cross-cluster weights.
    Weighted,
}

/// The routing decision for a service, before the random draw.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub mode: Mode,
    pub levels: Vec<Level>,
}

impl Plan {
    /// True when nothing anywhere can take the request.
    pub fn is_empty(&self) -> bool {
        self.levels.iter().all(|l| l.load <= 0.0)
    }
}

/// Inputs of [`plan`].
pub struct Inputs<'a> {
    pub me: &'a Locality,
    pub local: Option<&'a LocalService>,
    pub remotes: &'a [RemoteCluster],
    pub policy: Option<&'a RoutePolicy>,
    pub overprovisioning_percent: u32,
    /// Targets to skip (already failed in this request).
    pub exclude: &'a [Target],
}

fn local_share(local: Option<&LocalService>, exclude: &[Target]) -> f64 {
    let Some(l) = local else { return 0.0 };
    if l.endpoints.is_empty() {
        return 0.0;
    }
    let healthy: f64 = l
        .endpoints
        .iter()
        .enumerate()
        .filter(|(i, e)| e.available && !exclude.contains(&Target::Local(*i)))
        .map(|(_, e)| e.ramp)
        .sum();
    healthy / l.endpoints.len() as f64
}

fn remote_ok(r: &RemoteCluster, i: usize, exclude: &[Target]) -> bool {
    r.available() && !exclude.contains(&Target::Remote(i))
}

/// Computes the levels and their loads.
pub fn plan(inp: &Inputs<'_>) -> Plan {
    let over = inp
        .policy
        .and_then(|p| p.overprovisioning_percent)
        .unwrap_or(inp.overprovisioning_percent) as f64
        / 100.0;
    if let Some(p) = inp.policy.filter(|p| !p.weights.is_empty()) {
        return weighted_plan(inp, p);
    }
    // Priority levels.
    let mut levels = vec![Level {
        name: Cow::Borrowed("local"),
        local: true,
        clusters: vec![],
        healthy_share: local_share(inp.local, inp.exclude),
        load: 0.0,
    }];
    let remote_levels: Vec<(Cow<'static, str>, Vec<usize>)> =
        match inp.policy.filter(|p| !p.failover_order.is_empty()) {
            Some(p) => p
                .failover_order
                .iter()
                .filter(|c| **c != inp.me.cluster)
                .filter_map(|c| {
                    inp.remotes
                        .iter()
                        .position(|r| *r.cluster == **c)
                        .map(|i| (Cow::Owned(format!("failover: {c}")), vec![i]))
                })
                .collect(),
            None => {
                let mut zone = vec![];
                let mut region = vec![];
                let mut other = vec![];
                for (i, r) in inp.remotes.iter().enumerate() {
                    if *r.region == *inp.me.region && *r.zone == *inp.me.zone {
                        zone.push(i);
                    } else if *r.region == *inp.me.region {
                        region.push(i);
                    } else {
                        other.push(i);
                    }
                }
                [
                    ("same zone", zone),
                    ("same region", region),
                    ("other regions", other),
                ]
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(n, v)| (Cow::Borrowed(n), v))
                .collect()
            }
        };
    for (name, clusters) in remote_levels {
        let total: f64 = clusters
            .iter()
            .map(|i| inp.remotes[*i].weight.max(1) as f64)
            .sum();
        let ok: f64 = clusters
            .iter()
            .filter(|i| remote_ok(&inp.remotes[**i], **i, inp.exclude))
            .map(|i| inp.remotes[*i].weight.max(1) as f64)
            .sum();
        levels.push(Level {
            name,
            local: false,
            clusters,
            healthy_share: if total > 0.0 { ok / total } else { 0.0 },
            load: 0.0,
        });
    }
    // Envoy: each level takes min(1, share × overprovisioning) of what is left.
    let avail: Vec<f64> = levels
        .iter()
        .map(|l| (l.healthy_share * over).min(1.0))
        .collect();
    let total: f64 = avail.iter().sum();
    if total > 0.0 {
        let mut left = 1.0f64;
        for (l, a) in levels.iter_mut().zip(&avail) {
            let take = a.min(left);
            l.load = take;
            left -= take;
        }
        if left > 1e-9 {
            // Not enough healthy capacity anywhere: spread the rest in proportion.
            for (l, a) in levels.iter_mut().zip(&avail) {
                l.load += left * a / total;
            }
        }
    }
    apply_egress_cap(&mut levels, inp.policy);
    Plan {
        mode: Mode::Priority,
        levels,
    }
}

fn weighted_plan(inp: &Inputs<'_>, p: &RoutePolicy) -> Plan {
    let mut levels = Vec::new();
    let local_w = p.weights.get(&inp.me.cluster).copied().unwrap_or(0) as f64;
    let local_ok = local_share(inp.local, inp.exclude) > 0.0;
    levels.push(Level {
        name: Cow::Borrowed("local"),
        local: true,
        clusters: vec![],
        healthy_share: local_share(inp.local, inp.exclude),
        load: if local_ok { local_w } else { 0.0 },
    });
    for (i, r) in inp.remotes.iter().enumerate() {
        let w = p.weights.get(&*r.cluster).copied().unwrap_or(0) as f64;
        let ok = remote_ok(r, i, inp.exclude);
        levels.push(Level {
            name: Cow::Owned(format!("weighted: {}", r.cluster)),
            local: false,
            clusters: vec![i],
            healthy_share: if ok { 1.0 } else { 0.0 },
            load: if ok { w } else { 0.0 },
        });
    }
    let sum: f64 = levels.iter().map(|l| l.load).sum();
    if sum > 0.0 {
        for l in &mut levels {
            l.load /= sum;
        }
    }
    apply_egress_cap(&mut levels, Some(p));
    Plan {
        mode: Mode::Weighted,
        levels,
    }
}

/// While local endpoints can serve, at most `max_egress_percent` of traffic leaves.
fn apply_egress_cap(levels: &mut [Level], policy: Option<&RoutePolicy>) {
    let Some(cap) = policy.and_then(|p| p.max_egress_percent) else {
        return;
    };
    let cap = (cap.min(100) as f64) / 100.0;
    let local_load = levels.first().map(|l| l.load).unwrap_or(0.0);
    let local_ok = levels
        .first()
        .map(|l| l.healthy_share > 0.0)
        .unwrap_or(false);
    let egress = 1.0 - local_load;
    if !local_ok || egress <= cap || egress <= 0.0 {
        return;
    }
    let scale = cap / egress;
    for l in levels.iter_mut().skip(1) {
        l.load *= scale;
    }
    if let Some(l) = levels.first_mut() {
        l.load = 1.0 - cap;
    }
}

/// Draws a target from a plan. `r1`, `r2`, `r3` are uniform in [0, 1).
pub fn pick(plan: &Plan, inp: &Inputs<'_>, r1: f64, r2: f64, r3: f64) -> Option<Target> {
    let mut acc = 0.0;
    let mut level = None;
    for l in &plan.levels {
        acc += l.load;
        if r1 < acc && l.load > 0.0 {
            level = Some(l);
            break;
        }
    }
    // Rounding: fall back to the last level with load.
    let level = level.or_else(|| plan.levels.iter().rev().find(|l| l.load > 0.0))?;
    if level.local {
        return pick_local(inp.local?, inp.exclude, r2, r3).map(Target::Local);
    }
    let ok: Vec<usize> = level
        .clusters
        .iter()
        .copied()
        .filter(|i| remote_ok(&inp.remotes[*i], *i, inp.exclude))
        .collect();
    // Within a level, clusters share by export weight × healthy endpoints: a cluster with half
    // its endpoints down takes half the traffic, instead of all or nothing.
    let capacity =
        |i: usize| inp.remotes[i].weight.max(1) as f64 * inp.remotes[i].healthy_endpoints as f64;
    let total: f64 = ok.iter().map(|i| capacity(*i)).sum();
    let mut acc = 0.0;
    for i in &ok {
        acc += capacity(*i) / total;
        if r2 < acc {
            return Some(Target::Remote(*i));
        }
    }
    ok.last().map(|i| Target::Remote(*i))
}

/// Power of two choices over in-flight requests among available endpoints; recovering
/// endpoints (ramp < 1) are chosen with probability `ramp` when drawn.
fn pick_local(l: &LocalService, exclude: &[Target], r2: f64, r3: f64) -> Option<usize> {
    let ok: Vec<usize> = (0..l.endpoints.len())
        .filter(|i| l.endpoints[*i].available && !exclude.contains(&Target::Local(*i)))
        .collect();
    match ok.len() {
        0 => None,
        1 => Some(ok[0]),
        n => {
            let a = ok[((r2 * n as f64) as usize).min(n - 1)];
            let mut b = ok[((r3 * n as f64) as usize).min(n - 1)];
            if a == b {
                b = ok[(((r3 * n as f64) as usize) + 1) % n];
            }
            let (ea, eb) = (&l.endpoints[a], &l.endpoints[b]);
            // Ramp: a recovering endpoint looks busier in proportion to how new it is.
            let cost = |e: &crate::table::LocalEndpoint| {
                (e.inflight.get() as f64 + 1.0) / e.ramp.max(0.05)
            };
            Some(if cost(ea) <= cost(eb) { a } else { b })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{InFlight, LocalEndpoint};
    use std::sync::Arc;

    fn me() -> Locality {
        Locality {
            cluster: "a".into(),
            region: "r1".into(),
            zone: "z1".into(),
        }
    }

    fn local(avail: &[bool]) -> LocalService {
        LocalService {
            endpoints: avail
                .iter()
                .enumerate()
                .map(|(i, a)| LocalEndpoint {
                    addr: format!("127.0.0.1:{}", 1000 + i),
                    labels: None,
                    available: *a,
                    ramp: 1.0,
                    inflight: Arc::new(InFlight::default()),
                })
                .collect(),
            weight: 100,
            h2: false,
            port: 80,
            ports: Arc::from([]),
            exported: true,
            export_to: Arc::from([]),
        }
    }

    fn remote(name: &str, region: &str, zone: &str, healthy: u32) -> RemoteCluster {
        RemoteCluster {
            cluster: name.into(),
            region: region.into(),
            zone: zone.into(),
            gateway: format!("{name}:15008").into(),
            trust_domain: format!("{name}.td").into(),
            healthy_endpoints: healthy,
            subsets: Arc::from([]),
            weight: 100,
            live: true,
            inflight: Arc::new(InFlight::default()),
        }
    }

    fn inputs<'a>(
        me: &'a Locality,
        l: Option<&'a LocalService>,
        r: &'a [RemoteCluster],
        p: Option<&'a RoutePolicy>,
    ) -> Inputs<'a> {
        Inputs {
            me,
            local: l,
            remotes: r,
            policy: p,
            overprovisioning_percent: 140,
            exclude: &[],
        }
    }

    #[test]
    fn healthy_local_takes_everything() {
        let (m, l) = (me(), local(&[true, true]));
        let r = [remote("b", "r1", "z2", 2)];
        let p = plan(&inputs(&m, Some(&l), &r, None));
        assert_eq!(p.levels[0].load, 1.0);
        assert!(matches!(
            pick(&p, &inputs(&m, Some(&l), &r, None), 0.99, 0.3, 0.7),
            Some(Target::Local(_))
        ));
    }

    #[test]
    fn locality_orders_remote_levels_and_spill_follows_health() {
        let (m, l) = (me(), local(&[false, false]));
        let r = [
            remote("far", "r2", "z9", 3),
            remote("near", "r1", "z2", 3),
            remote("zone", "r1", "z1", 0),
        ];
        let p = plan(&inputs(&m, Some(&l), &r, None));
        let names: Vec<&str> = p.levels.iter().map(|l| l.name.as_ref()).collect();
        assert_eq!(
            names,
            ["local", "same zone", "same region", "other regions"]
        );
        // Local is down and the same-zone cluster has no healthy endpoints: same region takes all.
        assert_eq!(p.levels[2].load, 1.0);
        assert_eq!(
            pick(&p, &inputs(&m, Some(&l), &r, None), 0.5, 0.5, 0.5),
            Some(Target::Remote(1))
        );
    }

    #[test]
    fn partial_local_health_spills_in_envoy_proportions() {
        let (m, l) = (me(), local(&[true, false, false, false])); // 25 % healthy
        let r = [remote("b", "r1", "z2", 2)];
        let p = plan(&inputs(&m, Some(&l), &r, None));
        assert!((p.levels[0].load - 0.35).abs() < 1e-9, "{p:?}"); // 0.25 × 1.4
        assert!((p.levels[1].load - 0.65).abs() < 1e-9);
    }

    #[test]
    fn nothing_healthy_is_an_empty_plan() {
        let (m, l) = (me(), local(&[false]));
        let r = [remote("b", "r1", "z2", 0)];
        let p = plan(&inputs(&m, Some(&l), &r, None));
        assert!(p.is_empty());
        assert_eq!(
            pick(&p, &inputs(&m, Some(&l), &r, None), 0.1, 0.1, 0.1),
            None
        );
    }

    #[test]
    fn expired_lease_removes_a_cluster() {
        let (m, l) = (me(), local(&[false]));
        let mut r = [remote("b", "r1", "z2", 2), remote("c", "r2", "z3", 2)];
        r[0].live = false;
        let p = plan(&inputs(&m, Some(&l), &r, None));
        assert_eq!(
            pick(&p, &inputs(&m, Some(&l), &r, None), 0.2, 0.2, 0.2),
            Some(Target::Remote(1))
        );
    }

    #[test]
    fn weights_split_and_egress_cap_limits() {
        let (m, l) = (me(), local(&[true, true]));
        let r = [remote("b", "r1", "z2", 2)];
        let mut pol = RoutePolicy::default();
        pol.weights.insert("a".into(), 80);
        pol.weights.insert("b".into(), 20);
        let p = plan(&inputs(&m, Some(&l), &r, Some(&pol)));
        assert!((p.levels[0].load - 0.8).abs() < 1e-9);
        assert!((p.levels[1].load - 0.2).abs() < 1e-9);
        pol.max_egress_percent = Some(10);
        let p = plan(&inputs(&m, Some(&l), &r, Some(&pol)));
        assert!((p.levels[1].load - 0.1).abs() < 1e-9);
        // The cap does not apply when local cannot serve.
        let down = local(&[false, false]);
        let p = plan(&inputs(&m, Some(&down), &r, Some(&pol)));
        assert!((p.levels[1].load - 1.0).abs() < 1e-9);
    }

    #[test]
    fn failover_order_replaces_locality() {
        let (m, l) = (me(), local(&[false]));
        let r = [remote("near", "r1", "z1", 2), remote("far", "r9", "z9", 2)];
        let pol = RoutePolicy {
            failover_order: vec!["far".into(), "near".into()],
            ..Default::default()
        };
        let p = plan(&inputs(&m, Some(&l), &r, Some(&pol)));
        assert_eq!(
            pick(&p, &inputs(&m, Some(&l), &r, Some(&pol)), 0.5, 0.5, 0.5),
            Some(Target::Remote(1))
        );
    }

    #[test]
    fn remote_share_follows_healthy_endpoint_counts() {
        let (m, l) = (me(), local(&[false]));
        let r = [remote("b", "r1", "z2", 1), remote("c", "r1", "z3", 3)];
        let inp = inputs(&m, Some(&l), &r, None);
        let p = plan(&inp);
        // b has 1 of 4 healthy endpoints in the level: draws below 0.25 go to b, the rest to c.
        assert_eq!(pick(&p, &inp, 0.5, 0.2, 0.5), Some(Target::Remote(0)));
        assert_eq!(pick(&p, &inp, 0.5, 0.3, 0.5), Some(Target::Remote(1)));
    }

    #[test]
    fn exclusion_moves_to_the_next_target() {
        let (m, l) = (me(), local(&[true]));
        let r = [remote("b", "r1", "z2", 2)];
        let ex = [Target::Local(0)];
        let inp = Inputs {
            exclude: &ex,
            ..inputs(&m, Some(&l), &r, None)
        };
        let p = plan(&inp);
        assert_eq!(pick(&p, &inp, 0.1, 0.1, 0.1), Some(Target::Remote(0)));
    }

    #[test]
    fn p2c_prefers_the_less_loaded() {
        let l = local(&[true, true]);
        let _busy: Vec<_> = (0..5).map(|_| l.endpoints[0].inflight.track()).collect();
        for (r2, r3) in [(0.1, 0.9), (0.9, 0.1)] {
            assert_eq!(pick_local(&l, &[], r2, r3), Some(1));
        }
    }
}
