//! The demo's workload: a few closed-loop clients in cluster east calling each service through
//! east's gateway, every response recorded (which cluster served it, status, latency), and the
//! windowed figures the live table and the summary are made of.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::bench::stats::Latencies;

/// One request's outcome.
#[derive(Clone, Debug)]
pub struct Sample {
    /// When the request was sent, since the traffic started.
    pub sent: Duration,
    /// When the answer (or the error) came back.
    pub done: Duration,
    pub service: &'static str,
    /// The cluster whose backend answered (`None`: the request failed).
    pub cluster: Option<String>,
    pub status: u16,
}

impl Sample {
    pub fn failed(&self) -> bool {
        self.status != 200 || self.cluster.is_none()
    }
}

pub struct Traffic {
    pub start: Instant,
    log: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Requests each client sends per second at most (it waits this long between requests).
const PACE: Duration = Duration::from_millis(20);
/// Clients per service.
const CLIENTS: usize = 2;
/// At most this many samples are kept (about an hour at the demo's rate).
const MAX_SAMPLES: usize = 1_000_000;

impl Traffic {
    /// Starts the clients: each sends to `outbound` with `Host: <service>.shop`.
    pub fn start(outbound: &str, services: &[&'static str]) -> Traffic {
        let start = Instant::now();
        let log: Arc<Mutex<Vec<Sample>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(16)
            .build()
            .unwrap_or_default();
        let mut tasks = Vec::new();
        for &service in services {
            for _ in 0..CLIENTS {
                let (client, log, stop) = (client.clone(), log.clone(), stop.clone());
                let url = format!("http://{outbound}/demo");
                tasks.push(tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let sent = start.elapsed();
                        let r = client
                            .get(&url)
                            .header("host", format!("{service}.shop"))
                            .send()
                            .await;
                        let (status, cluster) = match r {
                            Ok(r) => {
                                let status = r.status().as_u16();
                                let cluster = r
                                    .headers()
                                    .get("x-echo-server")
                                    .and_then(|v| v.to_str().ok())
                                    .and_then(|s| s.split('-').next())
                                    .map(str::to_string);
                                let _ = r.bytes().await;
                                (status, cluster)
                            }
                            Err(_) => (0, None),
                        };
                        let s = Sample {
                            sent,
                            done: start.elapsed(),
                            service,
                            cluster,
                            status,
                        };
                        if let Ok(mut l) = log.lock()
                            && l.len() < MAX_SAMPLES
                        {
                            l.push(s);
                        }
                        tokio::time::sleep(PACE).await;
                    }
                }));
            }
        }
        Traffic {
            start,
            log,
            stop,
            tasks,
        }
    }

    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Samples sent at or after `from`.
    pub fn since(&self, from: Duration) -> Vec<Sample> {
        let log = self.log.lock().map(|l| l.clone()).unwrap_or_default();
        log.into_iter().filter(|s| s.sent >= from).collect()
    }

    pub async fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// One service's figures over a window.
pub struct Window {
    pub requests: usize,
    pub failed: usize,
    /// Share of successful responses per cluster, in `clusters` order.
    pub shares: Vec<f64>,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

pub fn window(samples: &[Sample], service: &str, clusters: &[&str]) -> Window {
    let mine: Vec<&Sample> = samples.iter().filter(|s| s.service == service).collect();
    let ok: Vec<&&Sample> = mine.iter().filter(|s| !s.failed()).collect();
    let shares = clusters
        .iter()
        .map(|c| {
            let n = ok
                .iter()
                .filter(|s| s.cluster.as_deref() == Some(c))
                .count();
            if ok.is_empty() {
                0.0
            } else {
                n as f64 / ok.len() as f64
            }
        })
        .collect();
    let lat = Latencies::new(ok.iter().map(|s| s.done - s.sent).collect());
    Window {
        requests: mine.len(),
        failed: mine.len() - ok.len(),
        shares,
        p50_ms: lat.ms(0.5),
        p99_ms: lat.ms(0.99),
    }
}

/// Completion times of the successful responses of `service` sent at or after `from` from a
/// cluster `pred` accepts.
fn answers<'a>(
    samples: &'a [Sample],
    service: &'a str,
    from: Duration,
    pred: impl Fn(&str) -> bool + 'a,
) -> impl Iterator<Item = Duration> + 'a {
    samples
        .iter()
        .filter(move |s| s.service == service && s.sent >= from && !s.failed())
        .filter(move |s| s.cluster.as_deref().is_some_and(&pred))
        .map(|s| s.done)
}

/// The first such response (see [`answers`]).
pub fn first(
    samples: &[Sample],
    service: &str,
    from: Duration,
    pred: impl Fn(&str) -> bool,
) -> Option<Duration> {
    answers(samples, service, from, pred).min()
}

/// The last such response (see [`answers`]).
pub fn last(
    samples: &[Sample],
    service: &str,
    from: Duration,
    pred: impl Fn(&str) -> bool,
) -> Option<Duration> {
    answers(samples, service, from, pred).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ms: u64, service: &'static str, cluster: Option<&str>, status: u16) -> Sample {
        Sample {
            sent: Duration::from_millis(ms),
            done: Duration::from_millis(ms + 1),
            service,
            cluster: cluster.map(str::to_string),
            status,
        }
    }

    #[test]
    fn windows_and_first_last() {
        let log = vec![
            s(0, "cart", Some("east"), 200),
            s(10, "cart", Some("east"), 200),
            s(20, "cart", None, 0),
            s(30, "cart", Some("central"), 200),
            s(40, "ledger", Some("west"), 200),
        ];
        let w = window(&log, "cart", &["east", "central", "west"]);
        assert_eq!((w.requests, w.failed), (4, 1));
        assert!((w.shares[0] - 2.0 / 3.0).abs() < 1e-9);
        assert!((w.shares[1] - 1.0 / 3.0).abs() < 1e-9);
        let remote = |c: &str| c != "east";
        assert_eq!(
            first(&log, "cart", Duration::from_millis(5), remote),
            Some(Duration::from_millis(31))
        );
        assert_eq!(
            last(&log, "cart", Duration::ZERO, |c| c == "east"),
            Some(Duration::from_millis(11))
        );
        assert_eq!(first(&log, "ledger", Duration::ZERO, |c| c == "east"), None);
    }
}
