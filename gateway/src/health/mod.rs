//! Pure health state: active-probe thresholds and passive outlier ejection. No I/O.
//!
//! Time is passed in (milliseconds since the gateway started), so every rule is unit-tested
//! without sleeping.

use serde::Serialize;

pub mod interval;

/// Active-probe thresholds with hysteresis: `healthy_threshold` consecutive successes to
/// become healthy, `unhealthy_threshold` consecutive failures to become unhealthy.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeState {
    pub healthy: bool,
    successes: u32,
    failures: u32,
    /// When the endpoint last recovered (ms), for the failback ramp; `None` for an endpoint
    /// that has been healthy since it was configured.
    pub healthy_since_ms: Option<u64>,
}

/// A health flip, reported once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flip {
    BecameHealthy,
    BecameUnhealthy,
}

impl Default for ProbeState {
    fn default() -> Self {
        Self::new()
    }
}

impl ProbeState {
    /// A new endpoint starts healthy (it is configured to serve) until probes say otherwise.
    pub fn new() -> Self {
        Self {
            healthy: true,
            successes: 0,
            failures: 0,
            healthy_since_ms: None,
        }
    }

    /// Records one probe result; returns the flip if this result caused one.
    pub fn record(
        &mut self,
        ok: bool,
        now_ms: u64,
        healthy_threshold: u32,
        unhealthy_threshold: u32,
    ) -> Option<Flip> {
        if ok {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            if !self.healthy && self.successes >= healthy_threshold {
                self.healthy = true;
                self.healthy_since_ms = Some(now_ms);
                return Some(Flip::BecameHealthy);
            }
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.healthy && self.failures >= unhealthy_threshold {
                self.healthy = false;
                self.healthy_since_ms = None;
                return Some(Flip::BecameUnhealthy);
            }
        }
        None
    }

    /// Marks the endpoint down at once (e.g. a passive connect failure confirmed it).
    pub fn force_down(&mut self) -> Option<Flip> {
        self.successes = 0;
        if self.healthy {
            self.healthy = false;
            self.healthy_since_ms = None;
            return Some(Flip::BecameUnhealthy);
        }
        None
    }

    /// 0–1: how far into the failback ramp this endpoint is.
    pub fn ramp(&self, now_ms: u64, ramp_ms: u64) -> f64 {
        if !self.healthy {
            return 0.0;
        }
        match self.healthy_since_ms {
            None => 1.0,
            Some(_) if ramp_ms == 0 => 1.0,
            Some(since) => (now_ms.saturating_sub(since) as f64 / ramp_ms as f64).clamp(0.05, 1.0),
        }
    }
}

/// Passive outlier detection for one endpoint: consecutive failures eject it for a base time
/// that doubles with each ejection (reset after a clean period).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outlier {
    consecutive: u32,
    ejections: u32,
    pub ejected_until_ms: Option<u64>,
}

impl Outlier {
    pub fn is_ejected(&self, now_ms: u64) -> bool {
        self.ejected_until_ms.is_some_and(|t| now_ms < t)
    }

    pub fn success(&mut self) {
        self.consecutive = 0;
    }

    /// Records a failure; returns true when this failure ejects the endpoint. `may_eject` is
    /// false when the service is at its maximum ejection percentage.
    pub fn failure(&mut self, now_ms: u64, threshold: u32, base_ms: u64, may_eject: bool) -> bool {
        self.consecutive = self.consecutive.saturating_add(1);
        if self.consecutive < threshold || self.is_ejected(now_ms) || !may_eject {
            return false;
        }
        self.eject(now_ms, base_ms);
        true
    }

    /// Ejects now for `base_ms`, doubled for each ejection before (at most 32×).
    pub fn eject(&mut self, now_ms: u64, base_ms: u64) {
        self.consecutive = 0;
        self.ejections = (self.ejections + 1).min(6);
        self.ejected_until_ms = Some(now_ms + base_ms * (1 << (self.ejections - 1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_flip_once_with_hysteresis() {
        let mut s = ProbeState::new();
        assert_eq!(s.record(false, 1, 3, 2), None);
        assert_eq!(s.record(false, 2, 3, 2), Some(Flip::BecameUnhealthy));
        assert_eq!(s.record(false, 3, 3, 2), None, "a flip is reported once");
        assert_eq!(s.record(true, 4, 3, 2), None);
        assert_eq!(s.record(true, 5, 3, 2), None);
        assert_eq!(
            s.record(false, 6, 3, 2),
            None,
            "a failure resets the success count"
        );
        for t in 7..9 {
            assert_eq!(s.record(true, t, 3, 2), None);
        }
        assert_eq!(s.record(true, 9, 3, 2), Some(Flip::BecameHealthy));
        assert_eq!(s.healthy_since_ms, Some(9));
    }

    #[test]
    fn ramp_grows_over_the_window() {
        let mut s = ProbeState::new();
        s.force_down();
        assert_eq!(s.ramp(100, 1000), 0.0);
        s.record(true, 1000, 1, 1);
        assert_eq!(s.ramp(1000, 1000), 0.05);
        assert!((s.ramp(1500, 1000) - 0.5).abs() < 1e-9);
        assert_eq!(s.ramp(5000, 1000), 1.0);
        assert_eq!(
            ProbeState::new().ramp(10, 1000),
            1.0,
            "configured endpoints start fully ramped"
        );
    }

    #[test]
    fn ejection_time_doubles_and_respects_the_cap() {
        let mut o = Outlier::default();
        for _ in 0..4 {
            assert!(!o.failure(0, 5, 100, true));
        }
        assert!(o.failure(0, 5, 100, true));
        assert!(o.is_ejected(99) && !o.is_ejected(100));
        for _ in 0..4 {
            o.failure(200, 5, 100, true);
        }
        assert!(o.failure(200, 5, 100, true));
        assert_eq!(o.ejected_until_ms, Some(400));
        let mut capped = Outlier::default();
        for _ in 0..10 {
            assert!(!capped.failure(0, 5, 100, false));
        }
    }
}
