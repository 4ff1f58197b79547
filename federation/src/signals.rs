//! Golden signals as they travel: what a gateway computes per edge over a window
//! ([`Window`], [`EdgeSignals`]), the report it attaches to a lease renewal every 10 s
//! ([`SignalsReport`]), and what a federation node keeps of the reports it received
//! ([`SignalStore`], in memory: soft state, never through the Raft log). A node answers
//! `GET /api/v1/observability/metrics` from its own store and its peers'.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::FieldError;

/// Edges one window of a report holds at most.
pub const MAX_EDGES: usize = 512;
/// A report older than this is left out of answers (its gateway stopped reporting).
pub const STALE_MS: u64 = 60_000;

/// One edge over one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EdgeSignals {
    pub service: String,
    pub src_cluster: String,
    pub dst_cluster: String,
    pub requests: u64,
    /// 5xx answers and requests that failed without an upstream answer.
    pub errors: u64,
    pub requests_per_second: f64,
    pub error_rate: f64,
    /// Latency in milliseconds (absent without answered requests).
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// HTTP body bytes over the window, callers to upstreams and back (0 from a gateway that
    /// does not count them).
    #[serde(default)]
    pub request_bytes: u64,
    #[serde(default)]
    pub response_bytes: u64,
}

/// Every edge a gateway saw over a window, and the seconds the window covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Window {
    pub window_s: u64,
    pub covered_s: f64,
    pub edges: Vec<EdgeSignals>,
}

/// What a gateway sends with a lease renewal: its 1-minute and 5-minute windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SignalsReport {
    pub windows: Vec<Window>,
}

impl SignalsReport {
    /// Bounds what a node keeps: two windows, [`MAX_EDGES`] edges each, short labels.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.windows.len() > 2 {
            return Err(FieldError::new("signals.windows", "at most 2 windows"));
        }
        for (i, w) in self.windows.iter().enumerate() {
            if w.window_s != 60 && w.window_s != 300 {
                return Err(FieldError::new(
                    format!("signals.windows[{i}].window_s"),
                    "60 or 300",
                ));
            }
            if w.edges.len() > MAX_EDGES {
                return Err(FieldError::new(
                    format!("signals.windows[{i}].edges"),
                    format!("at most {MAX_EDGES} edges"),
                ));
            }
            for (j, e) in w.edges.iter().enumerate() {
                let long = [&e.service, &e.src_cluster, &e.dst_cluster]
                    .iter()
                    .any(|s| s.len() > 253);
                if long {
                    return Err(FieldError::new(
                        format!("signals.windows[{i}].edges[{j}]"),
                        "names are at most 253 bytes",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// An edge as a node answers it: which cluster's gateway reported it, and how long ago.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReportedEdge {
    pub reported_by: String,
    pub age_ms: u64,
    #[serde(flatten)]
    pub edge: EdgeSignals,
}

/// The latest report of each cluster this node received (bounded by the registered
/// clusters: the lease handler records only for clusters that renewed successfully).
#[derive(Debug, Default)]
pub struct SignalStore(Mutex<HashMap<String, (u64, SignalsReport)>>);

impl SignalStore {
    /// Keeps the newest window of each length a cluster reported (a report may carry only
    /// the 1-minute window; its 5-minute one stays as last reported).
    pub fn record(&self, cluster: &str, at_ms: u64, report: SignalsReport) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (at, kept) = m
            .entry(cluster.to_string())
            .or_insert_with(|| (at_ms, SignalsReport { windows: vec![] }));
        *at = at_ms;
        for w in report.windows {
            match kept.windows.iter_mut().find(|k| k.window_s == w.window_s) {
                Some(k) => *k = w,
                None => kept.windows.push(w),
            }
        }
        // Bounded like a report: the two window lengths a gateway sends.
        kept.windows.sort_by_key(|w| w.window_s);
        kept.windows.truncate(2);
    }

    /// The edges of `window_s` windows reported within [`STALE_MS`] of `now_ms`, for
    /// `service` when given.
    pub fn edges(&self, window_s: u64, service: Option<&str>, now_ms: u64) -> Vec<ReportedEdge> {
        let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<ReportedEdge> = m
            .iter()
            .filter(|(_, (at, _))| now_ms.saturating_sub(*at) <= STALE_MS)
            .flat_map(|(cluster, (at, r))| {
                r.windows
                    .iter()
                    .filter(|w| w.window_s == window_s)
                    .flat_map(|w| w.edges.iter())
                    .filter(|e| service.is_none_or(|s| e.service == s))
                    .map(|e| ReportedEdge {
                        reported_by: cluster.clone(),
                        age_ms: now_ms.saturating_sub(*at),
                        edge: e.clone(),
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort_by(|a, b| {
            (
                &a.reported_by,
                &a.edge.service,
                &a.edge.src_cluster,
                &a.edge.dst_cluster,
            )
                .cmp(&(
                    &b.reported_by,
                    &b.edge.service,
                    &b.edge.src_cluster,
                    &b.edge.dst_cluster,
                ))
        });
        out
    }
}

/// The mesh-wide answer of `GET /api/v1/observability/metrics`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MeshSignals {
    pub window_s: u64,
    /// Each edge as the gateway of `reported_by` saw it (the newest report of each cluster).
    pub edges: Vec<ReportedEdge>,
    /// Federation members asked (this node included) and those that answered.
    pub nodes_asked: usize,
    pub nodes_answered: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(window_s: u64, requests: u64) -> Window {
        Window {
            window_s,
            covered_s: window_s as f64,
            edges: vec![EdgeSignals {
                service: "shop/cart".into(),
                src_cluster: "east".into(),
                dst_cluster: "west".into(),
                requests,
                errors: 0,
                requests_per_second: 1.0,
                error_rate: 0.0,
                p50_ms: None,
                p90_ms: None,
                p99_ms: None,
                request_bytes: 0,
                response_bytes: 0,
            }],
        }
    }

    #[test]
    fn a_report_with_one_window_keeps_the_other_as_last_reported() {
        let store = SignalStore::default();
        let both = SignalsReport {
            windows: vec![window(60, 1), window(300, 5)],
        };
        store.record("east", 1_000, both);
        let one = SignalsReport {
            windows: vec![window(60, 2)],
        };
        store.record("east", 3_000, one);
        let (m, f) = (store.edges(60, None, 3_000), store.edges(300, None, 3_000));
        assert_eq!((m.len(), f.len()), (1, 1));
        assert_eq!((m[0].edge.requests, f[0].edge.requests), (2, 5));
        assert_eq!(
            f[0].age_ms, 0,
            "the cluster's report is as fresh as its newest"
        );
    }

    #[test]
    fn only_the_two_window_lengths_are_taken() {
        let r = SignalsReport {
            windows: vec![window(60, 1), window(7, 1)],
        };
        assert_eq!(
            r.validate().unwrap_err().field,
            "signals.windows[1].window_s"
        );
    }
}
