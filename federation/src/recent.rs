//! Recent requests as they travel: what a gateway recorded of a request it served
//! ([`RequestRecord`]: sampled ones and every 5xx), the batch it attaches to a lease renewal
//! at most every 5 s ([`RecentReport`], at most [`MAX_REPORT`] records), and what a federation
//! node keeps of them ([`RecentStore`]: the newest [`KEEP_PER_CLUSTER`] per cluster, in memory,
//! never through the Raft log). It answers "what just happened", not a log store:
//! `GET /api/v1/observability/traces` and `/logs` query it on every node.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::FieldError;

/// Records one report holds at most.
pub const MAX_REPORT: usize = 64;
/// Records a node keeps per cluster (the newest).
pub const KEEP_PER_CLUSTER: usize = 128;
/// Longest path, service or endpoint kept (longer ones are refused in a report).
pub const MAX_TEXT: usize = 512;

/// One request as the gateway of a cluster served it: one span of its trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RequestRecord {
    /// W3C trace id (32 lowercase hex digits).
    pub trace_id: String,
    /// This hop's span id (16 hex digits).
    pub span_id: String,
    /// The caller's span, when the request carried a `traceparent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    /// When the request arrived, milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub duration_ms: f64,
    /// outbound, eastwest or tcp.
    pub listener: String,
    pub method: String,
    pub path: String,
    /// `namespace/service`, or `unknown`.
    pub service: String,
    pub src_cluster: String,
    /// The cluster of the last target tried (`none` when none was).
    pub dst_cluster: String,
    /// The endpoint or remote gateway of the last target tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    pub status: u16,
    pub retries: u32,
    /// Why the gateway answered itself (a gateway error's cause), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a gateway sends with a lease renewal: the records since its last report.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct RecentReport {
    pub records: Vec<RequestRecord>,
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl RecentReport {
    /// Bounds what a node keeps: [`MAX_REPORT`] records, well-formed ids, short texts.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.records.len() > MAX_REPORT {
            return Err(FieldError::new(
                "recent.records",
                format!("at most {MAX_REPORT} records"),
            ));
        }
        for (i, r) in self.records.iter().enumerate() {
            let at = |f: &str| format!("recent.records[{i}].{f}");
            if !is_hex(&r.trace_id, 32) {
                return Err(FieldError::new(at("trace_id"), "32 lowercase hex digits"));
            }
            if !is_hex(&r.span_id, 16) {
                return Err(FieldError::new(at("span_id"), "16 lowercase hex digits"));
            }
            if r.parent_span_id.as_deref().is_some_and(|p| !is_hex(p, 16)) {
                return Err(FieldError::new(
                    at("parent_span_id"),
                    "16 lowercase hex digits",
                ));
            }
            let texts = [
                ("listener", r.listener.as_str()),
                ("method", r.method.as_str()),
                ("path", r.path.as_str()),
                ("service", r.service.as_str()),
                ("src_cluster", r.src_cluster.as_str()),
                ("dst_cluster", r.dst_cluster.as_str()),
                ("endpoint", r.endpoint.as_deref().unwrap_or("")),
                ("error", r.error.as_deref().unwrap_or("")),
            ];
            if let Some((f, _)) = texts.iter().find(|(_, v)| v.len() > MAX_TEXT) {
                return Err(FieldError::new(at(f), format!("at most {MAX_TEXT} bytes")));
            }
            if !r.duration_ms.is_finite() || r.duration_ms < 0.0 {
                return Err(FieldError::new(
                    at("duration_ms"),
                    "a finite, non-negative number",
                ));
            }
        }
        Ok(())
    }
}

/// A record as a node answers it: which cluster's gateway reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReportedRecord {
    pub reported_by: String,
    #[serde(flatten)]
    pub record: RequestRecord,
}

/// Which records a query wants; every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecentQuery {
    pub trace_id: Option<String>,
    pub service: Option<String>,
    /// An exact status, or a class `1..=5` (for `5xx`) when `status_class` is set.
    pub status: Option<u16>,
    pub status_class: Option<u8>,
    /// Only records of requests that arrived at or after this time (ms since the epoch).
    pub since_ms: Option<u64>,
    /// Only records this cluster's gateway reported.
    pub cluster: Option<String>,
    /// The newest this many.
    pub limit: usize,
}

impl RecentQuery {
    fn matches(&self, reported_by: &str, r: &RequestRecord) -> bool {
        self.trace_id.as_ref().is_none_or(|t| *t == r.trace_id)
            && self.service.as_ref().is_none_or(|s| *s == r.service)
            && self.status.is_none_or(|s| s == r.status)
            && self
                .status_class
                .is_none_or(|c| (r.status / 100) as u8 == c)
            && self.since_ms.is_none_or(|t| r.at_ms >= t)
            && self.cluster.as_ref().is_none_or(|c| c == reported_by)
    }
}

/// The newest records of each cluster this node received (bounded by the registered
/// clusters: the lease handler records only for clusters that renewed successfully).
#[derive(Debug, Default)]
pub struct RecentStore(Mutex<HashMap<String, VecDeque<RequestRecord>>>);

impl RecentStore {
    pub fn record(&self, cluster: &str, report: RecentReport) {
        if report.records.is_empty() {
            return;
        }
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let ring = m.entry(cluster.to_string()).or_default();
        ring.extend(report.records);
        while ring.len() > KEEP_PER_CLUSTER {
            ring.pop_front();
        }
    }

    /// Forgets a cluster's records (it was removed).
    pub fn forget(&self, cluster: &str) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.remove(cluster);
    }

    /// The records matching `q`, newest first, at most `q.limit`.
    pub fn query(&self, q: &RecentQuery) -> Vec<ReportedRecord> {
        let mut out: Vec<ReportedRecord> = {
            let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
            m.iter()
                .flat_map(|(cluster, ring)| {
                    ring.iter()
                        .filter(|r| q.matches(cluster, r))
                        .map(|r| ReportedRecord {
                            reported_by: cluster.clone(),
                            record: r.clone(),
                        })
                })
                .collect()
        };
        newest_first(&mut out, q.limit);
        out
    }
}

/// Sorts newest first, drops the same span reported twice (a gateway that renewed through
/// several nodes), and keeps `limit`.
pub fn newest_first(records: &mut Vec<ReportedRecord>, limit: usize) {
    records.sort_by(|a, b| {
        (b.record.at_ms, &b.record.span_id, &b.reported_by).cmp(&(
            a.record.at_ms,
            &a.record.span_id,
            &a.reported_by,
        ))
    });
    records.dedup_by(|a, b| {
        a.record.span_id == b.record.span_id
            && a.record.trace_id == b.record.trace_id
            && a.reported_by == b.reported_by
    });
    records.truncate(limit);
}

/// The answer of `GET /api/v1/observability/{traces,logs}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecentRequests {
    /// Newest first; for a trace, every hop the gateways recorded.
    pub records: Vec<ReportedRecord>,
    /// Federation members asked (this node included) and those that answered.
    pub nodes_asked: usize,
    pub nodes_answered: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(at_ms: u64, status: u16, service: &str) -> RequestRecord {
        RequestRecord {
            trace_id: format!("{:032x}", at_ms + 1),
            span_id: format!("{:016x}", at_ms + 1),
            parent_span_id: None,
            at_ms,
            duration_ms: 1.5,
            listener: "outbound".into(),
            method: "GET".into(),
            path: "/".into(),
            service: service.into(),
            src_cluster: "east".into(),
            dst_cluster: "east".into(),
            endpoint: None,
            status,
            retries: 0,
            error: None,
        }
    }

    #[test]
    fn keeps_the_newest_per_cluster_and_answers_newest_first() {
        let s = RecentStore::default();
        for batch in 0..5u64 {
            let records = (0..64).map(|i| rec(batch * 64 + i, 200, "d/a")).collect();
            s.record("east", RecentReport { records });
        }
        let all = s.query(&RecentQuery {
            limit: 1000,
            ..Default::default()
        });
        assert_eq!(all.len(), KEEP_PER_CLUSTER);
        assert_eq!(all[0].record.at_ms, 5 * 64 - 1);
        assert!(
            all.windows(2)
                .all(|w| w[0].record.at_ms > w[1].record.at_ms)
        );
    }

    #[test]
    fn every_given_filter_must_match() {
        let s = RecentStore::default();
        let mut r = vec![rec(1, 200, "d/a"), rec(2, 503, "d/a"), rec(3, 502, "d/b")];
        r[2].trace_id = r[0].trace_id.clone();
        s.record("east", RecentReport { records: r });
        s.record(
            "west",
            RecentReport {
                records: vec![rec(4, 500, "d/a")],
            },
        );
        let q = |q: RecentQuery| -> Vec<u64> {
            s.query(&RecentQuery { limit: 10, ..q })
                .iter()
                .map(|r| r.record.at_ms)
                .collect()
        };
        let five = Some(5);
        assert_eq!(
            q(RecentQuery {
                status_class: five,
                ..Default::default()
            }),
            [4, 3, 2]
        );
        let a = Some("d/a".to_string());
        assert_eq!(
            q(RecentQuery {
                status_class: five,
                service: a.clone(),
                ..Default::default()
            }),
            [4, 2]
        );
        let east = Some("east".to_string());
        assert_eq!(
            q(RecentQuery {
                service: a,
                cluster: east,
                ..Default::default()
            }),
            [2, 1]
        );
        assert_eq!(
            q(RecentQuery {
                since_ms: Some(3),
                ..Default::default()
            }),
            [4, 3]
        );
        let t = Some(format!("{:032x}", 2));
        assert_eq!(
            q(RecentQuery {
                trace_id: t,
                ..Default::default()
            }),
            [3, 1]
        );
        assert_eq!(
            q(RecentQuery {
                status: Some(503),
                ..Default::default()
            }),
            [2]
        );
    }

    #[test]
    fn a_report_out_of_bounds_names_the_field() {
        let too_many = RecentReport {
            records: (0..65).map(|i| rec(i, 200, "d/a")).collect(),
        };
        assert_eq!(too_many.validate().unwrap_err().field, "recent.records");
        let mut bad = rec(1, 200, "d/a");
        bad.trace_id = "XYZ".into();
        let r = RecentReport {
            records: vec![rec(0, 200, "d/a"), bad],
        };
        assert_eq!(
            r.validate().unwrap_err().field,
            "recent.records[1].trace_id"
        );
        let mut long = rec(1, 200, "d/a");
        long.path = "/".repeat(MAX_TEXT + 1);
        let r = RecentReport {
            records: vec![long],
        };
        assert_eq!(r.validate().unwrap_err().field, "recent.records[0].path");
        let mut nan = rec(1, 200, "d/a");
        nan.duration_ms = f64::NAN;
        let r = RecentReport { records: vec![nan] };
        assert_eq!(
            r.validate().unwrap_err().field,
            "recent.records[0].duration_ms"
        );
    }
}
