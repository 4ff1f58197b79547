//! A retry budget: retries may add at most a percentage on top of recent requests, plus a
//! small floor per second, so retries cannot multiply load during an outage.

use std::sync::atomic::{AtomicU64, Ordering};
use tokio::time::Instant;

/// Counts requests and retries in one-second windows.
#[derive(Debug)]
pub struct RetryBudget {
    start: Instant,
    /// The limits as the last request saw them (the settings are live).
    percent: AtomicU64,
    floor: AtomicU64,
    /// (second, requests, retries) packed into three atomics.
    window: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
}

impl RetryBudget {
    pub fn new(percent: u32, floor_per_second: u32) -> Self {
        Self {
            start: Instant::now(),
            percent: AtomicU64::new(percent as u64),
            floor: AtomicU64::new(floor_per_second as u64),
            window: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        }
    }

    fn roll(&self) {
        let now = self.start.elapsed().as_secs();
        let w = self.window.load(Ordering::Relaxed);
        if now != w
            && self
                .window
                .compare_exchange(w, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.requests.store(0, Ordering::Relaxed);
            self.retries.store(0, Ordering::Relaxed);
        }
    }

    /// Counts an original request, under the budget's current limits.
    pub fn request(&self, percent: u32, floor_per_second: u32) {
        self.percent.store(percent as u64, Ordering::Relaxed);
        self.floor.store(floor_per_second as u64, Ordering::Relaxed);
        self.roll();
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one retry from the budget if any is left.
    pub fn try_retry(&self) -> bool {
        self.roll();
        let allowed = self.floor.load(Ordering::Relaxed)
            + self.requests.load(Ordering::Relaxed) * self.percent.load(Ordering::Relaxed) / 100;
        let used = self.retries.fetch_add(1, Ordering::Relaxed);
        if used < allowed {
            true
        } else {
            self.retries.fetch_sub(1, Ordering::Relaxed);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_a_share_of_requests_plus_a_floor() {
        let b = RetryBudget::new(20, 2);
        for _ in 0..10 {
            b.request(20, 2);
        }
        let granted = (0..10).filter(|_| b.try_retry()).count();
        // 2 (floor) + 10 × 20 % = 4; unless the one-second window rolled mid-test.
        assert!(granted == 4 || granted >= 2, "{granted}");
        assert!(granted <= 6);
    }
}
