//! Interval outlier detection (Envoy's success-rate and failure-percentage ejection, plus a
//! mean-latency condition): each endpoint's requests over one interval, and which endpoints
//! they single out. Pure; the pool actor keeps the windows and ejects.

use warden_federation::resilience::OutlierDetection;

/// One endpoint's requests over the current interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub requests: u32,
    pub failures: u32,
    /// Requests whose time to a response head was measured, and the sum of those times (µs).
    pub timed: u32,
    pub latency_us: u64,
}

impl Window {
    pub fn record(&mut self, ok: bool, latency_us: Option<u64>) {
        self.requests = self.requests.saturating_add(1);
        self.failures = self.failures.saturating_add(u32::from(!ok));
        if let Some(l) = latency_us {
            self.timed = self.timed.saturating_add(1);
            self.latency_us = self.latency_us.saturating_add(l);
        }
    }

    fn success_rate(&self) -> f64 {
        f64::from(self.requests - self.failures) / f64::from(self.requests)
    }
}

/// The outlier settings in force for one service: a resilience policy's, falling back field by
/// field to the gateway's `[outlier]` (`consecutive`, `base_ms`, `max_percent`).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub consecutive: u32,
    pub base_ms: u64,
    pub max_percent: u32,
    /// The interval conditions, when a policy sets any.
    pub interval: Option<OutlierDetection>,
}

impl Settings {
    pub fn resolve(gateway: (u32, u64, u32), policy: Option<&OutlierDetection>) -> Self {
        let (consecutive, base_ms, max_percent) = gateway;
        match policy {
            None => Self {
                consecutive,
                base_ms,
                max_percent,
                interval: None,
            },
            Some(p) => Self {
                consecutive: p.consecutive_failures.unwrap_or(consecutive),
                base_ms: p.base_ejection_ms.unwrap_or(base_ms),
                max_percent: p.max_ejection_percent.unwrap_or(max_percent),
                interval: (p.success_rate.is_some()
                    || p.failure_percentage.is_some()
                    || p.latency.is_some())
                .then(|| p.clone()),
            },
        }
    }
}

/// Why an endpoint is singled out (the metric's `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    SuccessRate,
    FailurePercentage,
    Latency,
}

impl Reason {
    pub fn label(self) -> &'static str {
        match self {
            Reason::SuccessRate => "success_rate",
            Reason::FailurePercentage => "failure_percentage",
            Reason::Latency => "latency",
        }
    }
}

/// The endpoints (by index into `windows`) the interval conditions single out, each once,
/// worst success rate first.
pub fn outliers(windows: &[Window], cfg: &OutlierDetection) -> Vec<(usize, Reason)> {
    let mut out: Vec<(usize, Reason)> = Vec::new();
    if let Some(sr) = &cfg.success_rate {
        let judged: Vec<(usize, f64)> = windows
            .iter()
            .enumerate()
            .filter(|(_, w)| w.requests >= sr.request_volume)
            .map(|(i, w)| (i, w.success_rate()))
            .collect();
        if judged.len() >= sr.min_hosts as usize {
            let n = judged.len() as f64;
            let mean = judged.iter().map(|(_, r)| r).sum::<f64>() / n;
            let var = judged.iter().map(|(_, r)| (r - mean).powi(2)).sum::<f64>() / n;
            let floor = mean - sr.stdev_factor * var.sqrt();
            out.extend(
                judged
                    .iter()
                    .filter(|(_, r)| *r < floor)
                    .map(|(i, _)| (*i, Reason::SuccessRate)),
            );
        }
    }
    if let Some(fp) = &cfg.failure_percentage {
        let judged: Vec<usize> = (0..windows.len())
            .filter(|&i| windows[i].requests >= fp.request_volume)
            .collect();
        if judged.len() >= fp.min_hosts as usize {
            for i in judged {
                let w = windows[i];
                if u64::from(w.failures) * 100 >= u64::from(fp.threshold) * u64::from(w.requests)
                    && !out.iter().any(|(j, _)| *j == i)
                {
                    out.push((i, Reason::FailurePercentage));
                }
            }
        }
    }
    if let Some(l) = &cfg.latency {
        for (i, w) in windows.iter().enumerate() {
            if w.timed >= l.request_volume
                && w.latency_us / u64::from(w.timed) > l.threshold_ms * 1000
                && !out.iter().any(|(j, _)| *j == i)
            {
                out.push((i, Reason::Latency));
            }
        }
    }
    out.sort_by(|a, b| {
        windows[a.0]
            .success_rate()
            .total_cmp(&windows[b.0].success_rate())
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(v: serde_json::Value) -> OutlierDetection {
        serde_json::from_value(v).unwrap()
    }

    fn w(requests: u32, failures: u32, mean_ms: u64) -> Window {
        Window {
            requests,
            failures,
            timed: requests,
            latency_us: u64::from(requests) * mean_ms * 1000,
        }
    }

    #[test]
    fn success_rate_singles_out_the_one_far_below_the_mean() {
        let c = cfg(
            serde_json::json!({"success_rate": {"min_hosts": 3, "request_volume": 10, "stdev_factor": 1.0}}),
        );
        let ws = [w(100, 0, 1), w(100, 1, 1), w(100, 100, 1)];
        assert_eq!(outliers(&ws, &c), vec![(2, Reason::SuccessRate)]);
        // Envoy's default factor of 1.9 cannot single out one of three.
        let strict =
            cfg(serde_json::json!({"success_rate": {"min_hosts": 3, "request_volume": 10}}));
        assert!(outliers(&ws, &strict).is_empty());
        // Too few judged endpoints, or too few requests: nobody.
        assert!(outliers(&ws[..2], &c).is_empty());
        assert!(outliers(&[w(9, 0, 1), w(100, 0, 1), w(100, 100, 1)], &c).is_empty());
    }

    #[test]
    fn failure_percentage_and_latency_judge_each_endpoint_against_a_bound() {
        let c = cfg(serde_json::json!({
            "failure_percentage": {"threshold": 50, "min_hosts": 2, "request_volume": 10},
            "latency": {"threshold_ms": 100, "request_volume": 10}
        }));
        let ws = [w(20, 10, 5), w(20, 9, 5), w(20, 0, 150), w(5, 5, 500)];
        assert_eq!(
            outliers(&ws, &c),
            vec![(0, Reason::FailurePercentage), (2, Reason::Latency)]
        );
    }
}
