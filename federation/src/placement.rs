//! Where each gateway sends a service's traffic now, and why: [`Placement`] is the compact,
//! typed form of a gateway's `/explain` (its priority levels, each level's healthy and traffic
//! share, the clusters in it, and the reason in words). A gateway attaches its placements to
//! a lease renewal when they changed, and at least every 30 s ([`PlacementReport`], at most
//! [`MAX_SERVICES`] services); the receiving node keeps the newest report per cluster in
//! memory for [`KEEP_MS`] ([`PlacementStore`]), never in the Raft log, and
//! `GET /api/v1/observability/placements` gathers them from every node.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::{FieldError, validate_dns_label, validate_service_ref};

/// Services one report holds at most (a gateway with more reports the first, by name).
pub const MAX_SERVICES: usize = 1000;
/// The JSON bytes a gateway puts in one report at most (the renewal's body has other reports
/// and a 1 MiB bound): the services past it wait for a gateway with fewer.
pub const REPORT_BUDGET: usize = 256 * 1024;
/// Levels, and clusters named per level, a placement holds at most (a level spanning more
/// clusters names the first and counts the rest in `clusters_omitted`).
pub const MAX_LEVELS: usize = 32;
pub const MAX_CLUSTERS: usize = 16;
/// Placements one answer holds at most, over all gateways (`truncated` says it was cut).
pub const MAX_ANSWER: usize = 10_000;
/// Longest reason kept, and longest level name (longer ones are refused in a report).
pub const MAX_TEXT: usize = 512;
pub const MAX_NAME: usize = 96;
/// A report not renewed for this long is dropped: its gateway stopped reporting here.
pub const KEEP_MS: u64 = 90_000;

/// One priority level (or, for a weighted split, one cluster) of a service's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlacementLevel {
    /// `local`, `same zone`, `same region`, `other regions`, `failover: <cluster>` (a
    /// failover order) or `weighted: <cluster>` (a policy's weights).
    pub name: String,
    /// Healthy share of the level, 0-1 (ramp-weighted for recovering endpoints).
    pub healthy_share: f64,
    /// Share of all traffic the level receives now, 0-1.
    pub traffic_share: f64,
    /// The remote clusters in the level (empty for the local level), the first
    /// [`MAX_CLUSTERS`] by name.
    pub clusters: Vec<String>,
    /// Clusters in the level beyond those named.
    #[serde(default)]
    pub clusters_omitted: u32,
}

/// How a gateway places one service's traffic right now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Placement {
    /// `namespace/service`.
    pub service: String,
    /// `priority` (locality levels or a failover order, spilling over) or `weighted`.
    pub mode: String,
    /// Why, in words (the same sentence as the gateway's `/explain`).
    pub reason: String,
    /// The plan's levels, the first [`MAX_LEVELS`] (those carrying traffic first).
    pub levels: Vec<PlacementLevel>,
    /// Levels beyond those given (none carrying traffic unless more than [`MAX_LEVELS`] do).
    #[serde(default)]
    pub levels_omitted: u32,
    /// Local endpoints that can take requests, and all local endpoints.
    pub local_available: u32,
    pub local_total: u32,
}

/// What a gateway sends with a lease renewal: every service it routes, replacing its last.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct PlacementReport {
    pub services: Vec<Placement>,
}

fn share(v: f64) -> bool {
    v.is_finite() && (0.0..=1.0).contains(&v)
}

impl PlacementReport {
    /// Bounds what a node keeps: [`MAX_SERVICES`] services, short texts, shares within 0-1.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.services.len() > MAX_SERVICES {
            return Err(FieldError::new(
                "placements.services",
                format!("at most {MAX_SERVICES} services"),
            ));
        }
        self.services
            .iter()
            .enumerate()
            .try_for_each(|(i, p)| p.check(i))
    }
}

impl Placement {
    /// The bounds of one placement, the `i`-th of its report (fields named from there).
    pub fn check(&self, i: usize) -> Result<(), FieldError> {
        let at = |f: &str| format!("placements.services[{i}].{f}");
        validate_service_ref(&at("service"), &self.service)?;
        if !matches!(self.mode.as_str(), "priority" | "weighted") {
            return Err(FieldError::new(at("mode"), "priority or weighted"));
        }
        if self.reason.len() > MAX_TEXT || self.reason.chars().any(char::is_control) {
            return Err(FieldError::new(
                at("reason"),
                format!("at most {MAX_TEXT} bytes, no control characters"),
            ));
        }
        if self.local_available > self.local_total {
            return Err(FieldError::new(
                at("local_available"),
                "at most local_total",
            ));
        }
        if self.levels.len() > MAX_LEVELS {
            return Err(FieldError::new(
                at("levels"),
                format!("at most {MAX_LEVELS} levels"),
            ));
        }
        for (j, l) in self.levels.iter().enumerate() {
            let at = |f: &str| format!("placements.services[{i}].levels[{j}].{f}");
            let printable = l.name.chars().all(|c| c.is_ascii_graphic() || c == ' ');
            if l.name.is_empty() || l.name.len() > MAX_NAME || !printable {
                return Err(FieldError::new(
                    at("name"),
                    format!("1-{MAX_NAME} printable ASCII characters"),
                ));
            }
            if !share(l.healthy_share) {
                return Err(FieldError::new(at("healthy_share"), "a number from 0 to 1"));
            }
            if !share(l.traffic_share) {
                return Err(FieldError::new(at("traffic_share"), "a number from 0 to 1"));
            }
            if l.clusters.len() > MAX_CLUSTERS {
                return Err(FieldError::new(
                    at("clusters"),
                    format!("at most {MAX_CLUSTERS} clusters"),
                ));
            }
            for (k, c) in l.clusters.iter().enumerate() {
                validate_dns_label(&at(&format!("clusters[{k}]")), c)?;
            }
        }
        Ok(())
    }
}

/// One gateway's placements as a node answers them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GatewayPlacements {
    /// The cluster whose gateway reported them.
    pub cluster: String,
    /// When the node received the report (ms since the epoch, that node's clock).
    pub reported_at: u64,
    pub services: Vec<Placement>,
}

/// The answer of `GET /api/v1/observability/placements`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MeshPlacements {
    /// One entry per reporting gateway, by cluster name.
    pub gateways: Vec<GatewayPlacements>,
    /// Federation members asked (this node included) and those that answered.
    pub nodes_asked: usize,
    pub nodes_answered: usize,
    /// The answer reached [`MAX_ANSWER`] placements and was cut there: ask for one service
    /// or one cluster.
    pub truncated: bool,
}

/// Cuts `gateways` (by cluster name) to [`MAX_ANSWER`] placements in all, leaving out the
/// gateways past the cut; true when it cut.
pub fn cap(gateways: &mut Vec<GatewayPlacements>) -> bool {
    let mut left = MAX_ANSWER;
    for (i, g) in gateways.iter_mut().enumerate() {
        if g.services.len() > left {
            g.services.truncate(left);
            let keep = if left > 0 { i + 1 } else { i };
            gateways.truncate(keep);
            return true;
        }
        left -= g.services.len();
    }
    false
}

/// A node's answer to a peer: its gateways' placements, and whether it cut them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerPlacements {
    pub gateways: Vec<GatewayPlacements>,
    pub truncated: bool,
}

/// Which placements a query wants.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlacementQuery {
    /// Only this service (`namespace/service`).
    pub service: Option<String>,
    /// Only this cluster's gateway.
    pub cluster: Option<String>,
}

/// The newest report of each cluster that renewed through this node (bounded by the
/// registered clusters: the lease handler records only for renewals that succeeded).
#[derive(Debug, Default)]
pub struct PlacementStore(Mutex<HashMap<String, (u64, PlacementReport)>>);

impl PlacementStore {
    pub fn record(&self, cluster: &str, at: u64, report: PlacementReport) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(cluster.to_string(), (at, report));
    }

    /// Forgets a cluster's report (it was removed).
    pub fn forget(&self, cluster: &str) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.remove(cluster);
    }

    /// The reports received within [`KEEP_MS`] of `now`, filtered by `q`, by cluster (cut at
    /// [`MAX_ANSWER`] placements: `truncated`).
    pub fn query(&self, q: &PlacementQuery, now: u64) -> PeerPlacements {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|_, (at, _)| now.saturating_sub(*at) <= KEEP_MS);
        let mut out: Vec<GatewayPlacements> = m
            .iter()
            .filter(|(c, _)| q.cluster.as_ref().is_none_or(|want| want == *c))
            .map(|(cluster, (at, r))| GatewayPlacements {
                cluster: cluster.clone(),
                reported_at: *at,
                services: r
                    .services
                    .iter()
                    .filter(|p| q.service.as_ref().is_none_or(|s| *s == p.service))
                    .cloned()
                    .collect(),
            })
            .collect();
        out.sort_by(|a, b| a.cluster.cmp(&b.cluster));
        let truncated = cap(&mut out);
        PeerPlacements {
            gateways: out,
            truncated,
        }
    }
}

/// Merges answers from several nodes: the newest report of each cluster, by cluster name.
pub fn newest_per_cluster(all: Vec<GatewayPlacements>) -> Vec<GatewayPlacements> {
    let mut by: HashMap<String, GatewayPlacements> = HashMap::new();
    for g in all {
        match by.get(&g.cluster) {
            Some(have) if have.reported_at >= g.reported_at => {}
            _ => {
                by.insert(g.cluster.clone(), g);
            }
        }
    }
    let mut out: Vec<GatewayPlacements> = by.into_values().collect();
    out.sort_by(|a, b| a.cluster.cmp(&b.cluster));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placement(service: &str, local: f64) -> Placement {
        Placement {
            service: service.into(),
            mode: "priority".into(),
            reason: "because".into(),
            levels: vec![
                PlacementLevel {
                    name: "local".into(),
                    healthy_share: local,
                    traffic_share: local,
                    clusters: vec![],
                    clusters_omitted: 0,
                },
                PlacementLevel {
                    name: "region".into(),
                    healthy_share: 1.0,
                    traffic_share: 1.0 - local,
                    clusters: vec!["central".into()],
                    clusters_omitted: 0,
                },
            ],
            levels_omitted: 0,
            local_available: 1,
            local_total: 2,
        }
    }

    #[test]
    fn keeps_the_newest_report_and_drops_silent_ones() {
        let s = PlacementStore::default();
        let report = |local| PlacementReport {
            services: vec![placement("shop/cart", local), placement("shop/pay", 1.0)],
        };
        s.record("east", 1_000, report(1.0));
        s.record("east", 2_000, report(0.5));
        s.record("west", 1_500, report(1.0));
        let q = PlacementQuery {
            service: Some("shop/cart".into()),
            cluster: None,
        };
        let got = s.query(&q, 3_000).gateways;
        assert_eq!(
            got.iter().map(|g| g.cluster.as_str()).collect::<Vec<_>>(),
            ["east", "west"]
        );
        assert_eq!(got[0].services, vec![placement("shop/cart", 0.5)]);
        assert_eq!(got[0].reported_at, 2_000);
        // West stopped reporting: gone once KEEP_MS passed.
        let later = s
            .query(&PlacementQuery::default(), 1_500 + KEEP_MS + 1)
            .gateways;
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].cluster, "east");
        s.forget("east");
        assert!(
            s.query(&PlacementQuery::default(), 2_000)
                .gateways
                .is_empty()
        );
    }

    #[test]
    fn merging_keeps_each_clusters_newest() {
        let g = |cluster: &str, at| GatewayPlacements {
            cluster: cluster.into(),
            reported_at: at,
            services: vec![placement("shop/cart", at as f64 / 10.0)],
        };
        let merged =
            newest_per_cluster(vec![g("west", 5), g("east", 3), g("east", 7), g("east", 4)]);
        assert_eq!(merged, vec![g("east", 7), g("west", 5)]);
    }

    #[test]
    fn an_answer_is_cut_at_its_bound() {
        let g = |cluster: &str, n: usize| GatewayPlacements {
            cluster: cluster.into(),
            reported_at: 1,
            services: vec![placement("shop/cart", 1.0); n],
        };
        let mut small = vec![g("a", 3), g("b", 0)];
        assert!(!cap(&mut small));
        assert_eq!(small.len(), 2, "a gateway routing nothing stays listed");
        let mut exact = vec![g("a", MAX_ANSWER - 3), g("b", 3)];
        assert!(!cap(&mut exact), "exactly the bound: nothing cut");
        let mut big = vec![g("a", MAX_ANSWER - 1), g("empty", 0), g("b", 5), g("c", 5)];
        assert!(cap(&mut big));
        let kept: Vec<(&str, usize)> = big
            .iter()
            .map(|g| (g.cluster.as_str(), g.services.len()))
            .collect();
        assert_eq!(kept, [("a", MAX_ANSWER - 1), ("empty", 0), ("b", 1)]);
    }

    #[test]
    fn reports_are_bounded_and_checked() {
        let ok = PlacementReport {
            services: vec![placement("shop/cart", 1.0)],
        };
        assert!(ok.validate().is_ok());
        let field = |f: &dyn Fn(&mut PlacementReport)| {
            let mut r = ok.clone();
            f(&mut r);
            r.validate().unwrap_err().field
        };
        assert_eq!(
            field(&|r| r.services[0].service = "cart".into()),
            "placements.services[0].service"
        );
        assert_eq!(
            field(&|r| r.services[0].mode = "random".into()),
            "placements.services[0].mode"
        );
        assert_eq!(
            field(&|r| r.services[0].levels[1].traffic_share = f64::NAN),
            "placements.services[0].levels[1].traffic_share"
        );
        assert_eq!(
            field(&|r| r.services[0].levels[0].healthy_share = 1.5),
            "placements.services[0].levels[0].healthy_share"
        );
        assert_eq!(
            field(&|r| r.services[0].local_available = 3),
            "placements.services[0].local_available"
        );
        assert_eq!(
            field(&|r| r.services[0].reason = "x".repeat(MAX_TEXT + 1)),
            "placements.services[0].reason"
        );
        assert_eq!(
            field(&|r| r.services[0].reason = "ok\u{1b}[2J".into()),
            "placements.services[0].reason"
        );
        assert_eq!(
            field(&|r| r.services[0].levels[1].name = "zone\n".into()),
            "placements.services[0].levels[1].name"
        );
        assert_eq!(
            field(
                &|r| r.services[0].levels[1].clusters = vec!["central".into(), "Not A Name".into()]
            ),
            "placements.services[0].levels[1].clusters[1]"
        );
        assert_eq!(
            field(&|r| r.services = vec![placement("shop/cart", 1.0); MAX_SERVICES + 1]),
            "placements.services"
        );
    }
}
