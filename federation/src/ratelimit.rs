//! A per-source rate limit for unauthenticated endpoints (joins): at most `limit` attempts per
//! source address in each window. The table of sources is bounded: expired entries go first,
//! and when it is still full a new source is refused (it cannot push others out).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Counts attempts per source address in fixed windows.
#[derive(Debug)]
pub struct PerSource {
    limit: u32,
    window_ms: u64,
    max_sources: usize,
    /// Source → (window start, attempts in it).
    seen: Mutex<HashMap<IpAddr, (u64, u32)>>,
}

impl PerSource {
    pub fn new(limit: u32, window_ms: u64, max_sources: usize) -> Self {
        Self {
            limit,
            window_ms,
            max_sources,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt from `source` at `now_ms`; `false` if it is over the limit.
    pub fn allow(&self, source: IpAddr, now_ms: u64) -> bool {
        // Plain counters: a panic elsewhere cannot leave them inconsistent.
        let mut seen = match self.seen.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        if !seen.contains_key(&source) && seen.len() >= self.max_sources {
            let window = self.window_ms;
            seen.retain(|_, (start, _)| now_ms < start.saturating_add(window));
            if seen.len() >= self.max_sources {
                return false;
            }
        }
        let entry = seen.entry(source).or_insert((now_ms, 0));
        if now_ms >= entry.0.saturating_add(self.window_ms) {
            *entry = (now_ms, 0);
        }
        entry.1 += 1;
        entry.1 <= self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_each_source_per_window_and_bounds_the_table() {
        let l = PerSource::new(3, 1_000, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        assert_eq!((0..5).filter(|_| l.allow(a, 0)).count(), 3);
        assert!(l.allow(b, 10), "another source has its own budget");
        assert!(!l.allow(c, 20), "the table is full of live windows");
        assert!(l.allow(a, 1_000), "a new window");
        assert!(l.allow(c, 2_100), "expired windows make room");
    }
}
