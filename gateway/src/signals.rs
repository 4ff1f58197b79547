//! Golden signals per edge (source cluster, destination cluster, service) over rolling
//! windows of 1 and 5 minutes: requests, errors, rate, p50/p90/p99 latency and body bytes.
//! Nothing is added to the request path: every [`EVERY`] the sampler copies the request,
//! latency and byte counters the data path keeps anyway (`warden_http_requests_total`,
//! `warden_http_request_duration_seconds`, `warden_http_bytes_total`) into a ring — every sample of the last minute, one
//! in [`COARSE`] beyond it, five minutes in all — and a window is the difference between now
//! and the sample that starts it. Percentiles are read from the
//! histogram's buckets as Prometheus' `histogram_quantile` does (linear within a bucket).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::core::Collector;
use warden_federation::signals::{EdgeSignals, SignalsReport, Window};

use crate::metrics::Metrics;

/// How often the sampler copies the counters (and a report goes out with a renewal): an
/// edge that appears shows within a few seconds.
pub const EVERY: Duration = Duration::from_secs(2);
/// Beyond the last minute only every `COARSE`-th sample is kept (10 s apart), and the 5-minute
/// window rides on every `COARSE`-th report only: about 55 samples in the ring.
pub const COARSE: u64 = 5;
/// How far back the fine samples reach, and the ring as a whole.
const FINE_FOR: Duration = Duration::from_secs(62);
const KEEP_FOR: Duration = Duration::from_secs(312);

/// (service, source cluster, destination cluster).
type Edge = (String, String, String);

#[derive(Debug, Clone, Default)]
struct Counts {
    requests: u64,
    /// 5xx answers and requests that failed without an upstream answer.
    errors: u64,
    /// Cumulative counts per latency bucket bound, and the bounds.
    buckets: Vec<(f64, u64)>,
    /// HTTP body bytes, callers to upstreams and back.
    request_bytes: u64,
    response_bytes: u64,
}

#[derive(Debug, Clone)]
struct Sample {
    /// Numbered from 0 in the order taken; `n % COARSE == 0` are the coarse ones.
    n: u64,
    at: Instant,
    edges: HashMap<Edge, Counts>,
}

/// The ring of samples, and the report the last sample made (with its number).
#[derive(Default)]
pub struct Signals {
    ring: Mutex<VecDeque<Sample>>,
    report: Mutex<(u64, Option<SignalsReport>)>,
}

fn label(metric: &prometheus::proto::Metric, name: &str) -> String {
    metric
        .get_label()
        .iter()
        .find(|l| l.name() == name)
        .map(|l| l.value().to_string())
        .unwrap_or_default()
}

fn edge_of(metric: &prometheus::proto::Metric) -> Edge {
    (
        label(metric, "service"),
        label(metric, "src_cluster"),
        label(metric, "dst_cluster"),
    )
}

fn read(m: &Metrics) -> Sample {
    let mut edges: HashMap<Edge, Counts> = HashMap::new();
    for family in m.requests.collect() {
        for metric in family.get_metric() {
            let edge = edge_of(metric);
            let n = metric.get_counter().get_value() as u64;
            let class = label(metric, "code_class");
            // A failed request is counted with dst "none"; fold it into the service's edge
            // from the same source with its errors.
            let c = edges.entry(edge).or_default();
            c.requests += n;
            if class == "5xx" {
                c.errors += n;
            }
        }
    }
    for family in m.bytes.collect() {
        for metric in family.get_metric() {
            let n = metric.get_counter().get_value() as u64;
            let c = edges.entry(edge_of(metric)).or_default();
            match label(metric, "direction").as_str() {
                "request" => c.request_bytes += n,
                _ => c.response_bytes += n,
            }
        }
    }
    for family in m.duration.collect() {
        for metric in family.get_metric() {
            let edge = edge_of(metric);
            let h = metric.get_histogram();
            let mut buckets: Vec<(f64, u64)> = h
                .get_bucket()
                .iter()
                .map(|b| (b.upper_bound(), b.cumulative_count()))
                .collect();
            buckets.push((f64::INFINITY, h.get_sample_count()));
            edges.entry(edge).or_default().buckets = buckets;
        }
    }
    Sample {
        n: 0,
        at: Instant::now(),
        edges,
    }
}

/// The `q` quantile (0–1) of the delta between two cumulative bucket lists, in ms.
fn quantile(q: f64, now: &[(f64, u64)], then: &[(f64, u64)]) -> Option<f64> {
    let delta: Vec<(f64, u64)> = now
        .iter()
        .enumerate()
        .map(|(i, (le, n))| (*le, n.saturating_sub(then.get(i).map_or(0, |b| b.1))))
        .collect();
    let total = delta.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut lower = (0.0, 0u64);
    for (le, count) in &delta {
        if *count as f64 >= rank {
            if le.is_infinite() {
                // Above the last finite bound: answer that bound, as Prometheus does.
                return Some(lower.0 * 1e3);
            }
            let within = (*count - lower.1) as f64;
            let frac = if within > 0.0 {
                (rank - lower.1 as f64) / within
            } else {
                1.0
            };
            return Some((lower.0 + (le - lower.0) * frac) * 1e3);
        }
        lower = (*le, *count);
    }
    None
}

impl Signals {
    /// Takes a sample now (the sampler calls this every [`EVERY`]), and makes the report
    /// the next lease renewal carries: the 1 m window, and on every [`COARSE`]-th sample the
    /// 5 m one too (a node keeps the newest of each), at most
    /// [`warden_federation::signals::MAX_EDGES`] busiest edges each.
    pub fn sample(&self, m: &Metrics) {
        let mut s = read(m);
        let n = {
            let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
            s.n = ring.back().map_or(0, |b| b.n + 1);
            let (n, now) = (s.n, s.at);
            ring.push_back(s);
            ring.retain(|x| {
                let age = now.duration_since(x.at);
                age <= KEEP_FOR && (age <= FINE_FOR || x.n % COARSE == 0)
            });
            n
        };
        let secs: &[u64] = if n % COARSE == 0 { &[60, 300] } else { &[60] };
        let windows = secs
            .iter()
            .map(|&secs| {
                let mut w = self.window(m, Duration::from_secs(secs));
                w.edges.sort_by_key(|e| std::cmp::Reverse(e.requests));
                w.edges.truncate(warden_federation::signals::MAX_EDGES);
                w
            })
            .collect();
        let mut r = self.report.lock().unwrap_or_else(|p| p.into_inner());
        *r = (r.0 + 1, Some(SignalsReport { windows }));
    }

    /// The latest report, if it is newer than the one numbered `sent` (which it updates).
    pub fn report_after(&self, sent: &AtomicU64) -> Option<SignalsReport> {
        let r = self.report.lock().unwrap_or_else(|p| p.into_inner());
        let (n, report) = (r.0, r.1.as_ref()?);
        (sent.swap(n, Ordering::Relaxed) != n).then(|| report.clone())
    }

    /// Every edge over the last `window` (or as much of it as the ring holds).
    pub fn window(&self, m: &Metrics, window: Duration) -> Window {
        let now = read(m);
        let start = {
            let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
            // The newest sample at least `window` old, else the oldest one there is.
            ring.iter()
                .rev()
                .find(|s| now.at.duration_since(s.at) >= window)
                .or_else(|| ring.front())
                .cloned()
        };
        // No sample yet (or the sampler is off): nothing to difference against, no edges.
        let Some(start) = &start else {
            return Window {
                window_s: window.as_secs(),
                covered_s: 0.0,
                edges: Vec::new(),
            };
        };
        let (then, covered) = (&start.edges, now.at.duration_since(start.at).as_secs_f64());
        let empty = Counts::default();
        let mut edges: Vec<EdgeSignals> = now
            .edges
            .iter()
            .filter_map(|(edge, c)| {
                let before = then.get(edge).unwrap_or(&empty);
                let requests = c.requests.saturating_sub(before.requests);
                let request_bytes = c.request_bytes.saturating_sub(before.request_bytes);
                let response_bytes = c.response_bytes.saturating_sub(before.response_bytes);
                // Bytes may move in a window without new requests (a long download or stream).
                if requests == 0 && request_bytes == 0 && response_bytes == 0 {
                    return None;
                }
                let errors = c.errors.saturating_sub(before.errors);
                let q = |q| quantile(q, &c.buckets, &before.buckets);
                Some(EdgeSignals {
                    service: edge.0.clone(),
                    src_cluster: edge.1.clone(),
                    dst_cluster: edge.2.clone(),
                    requests,
                    errors,
                    requests_per_second: if covered > 0.0 {
                        requests as f64 / covered
                    } else {
                        0.0
                    },
                    error_rate: if requests > 0 {
                        errors as f64 / requests as f64
                    } else {
                        0.0
                    },
                    p50_ms: q(0.5),
                    p90_ms: q(0.9),
                    p99_ms: q(0.99),
                    request_bytes,
                    response_bytes,
                })
            })
            .collect();
        edges.sort_by(|a, b| {
            (&a.service, &a.src_cluster, &a.dst_cluster).cmp(&(
                &b.service,
                &b.src_cluster,
                &b.dst_cluster,
            ))
        });
        Window {
            window_s: window.as_secs(),
            covered_s: covered,
            edges,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_the_difference_since_its_first_sample() {
        let m = Metrics::new();
        let s = Signals::default();
        let count = |n: u64, class: &str| {
            m.requests
                .with_label_values(&["shop/cart", "east", "west", class])
                .inc_by(n)
        };
        count(5, "2xx");
        let bytes = |direction, n| {
            m.bytes
                .with_label_values(&["shop/cart", "east", "west", direction])
                .inc_by(n)
        };
        bytes("request", 7);
        s.sample(&m);
        bytes("request", 1_000);
        bytes("response", 25_000);
        count(90, "2xx");
        count(10, "5xx");
        for i in 0..100 {
            // 1 ms for 90 of them, 40 ms for 10.
            let secs = if i < 90 { 0.001 } else { 0.04 };
            m.duration
                .with_label_values(&["shop/cart", "east", "west"])
                .observe(secs);
        }
        let w = s.window(&m, Duration::from_secs(60));
        assert_eq!(w.edges.len(), 1);
        let e = &w.edges[0];
        assert_eq!(
            (e.requests, e.errors),
            (100, 10),
            "the 5 before the sample are not in it"
        );
        assert!((e.error_rate - 0.1).abs() < 1e-9);
        assert_eq!((e.request_bytes, e.response_bytes), (1_000, 25_000));
        let (p50, p99) = (e.p50_ms.unwrap(), e.p99_ms.unwrap());
        assert!(p50 > 0.5 && p50 <= 1.0, "{p50}");
        assert!(p99 > 25.0 && p99 <= 50.0, "{p99}");
    }

    #[test]
    fn quantiles_follow_the_buckets() {
        let now = [(0.001, 50), (0.01, 100), (f64::INFINITY, 100)];
        assert_eq!(quantile(0.5, &now, &[]), Some(1.0));
        let p75 = quantile(0.75, &now, &[]).unwrap();
        assert!((p75 - 5.5).abs() < 1e-9, "{p75}");
        assert_eq!(quantile(0.5, &now, &now), None, "no requests in the window");
    }
}
