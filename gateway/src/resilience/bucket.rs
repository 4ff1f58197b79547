//! Token buckets for one rate limit: a bucket per key (the whole policy, a source cluster, a
//! header value), refilled continuously at the limit's rate up to its burst. The table holds at
//! most `max_buckets` keys; when it is full, buckets that have refilled completely (they hold
//! nothing a fresh one would not) are dropped, at most once a second, and a key that still
//! finds no room shares one overflow bucket — made-up key values neither grow memory nor pass
//! the limit. Keys are hashed with a per-table random key, so they cannot be chosen to collide.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use warden_federation::resilience::RateLimit;

/// Why a request was refused: how long until a token is back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exhausted {
    pub retry_after: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug)]
struct Table {
    /// The bucket of the empty key (a whole-policy limit, or requests without the header),
    /// kept apart so that the common case hashes nothing.
    empty: Bucket,
    buckets: HashMap<u64, Bucket>,
    overflow: Bucket,
    last_sweep: Instant,
    /// Tokens per second and bucket size in force: the limit's, times this gateway's share of
    /// a mesh-wide limit.
    rate: f64,
    capacity: f64,
    /// Requests that asked for a token, admitted or not (the demand a mesh-wide limit reports).
    offered: u64,
}

/// The buckets of one rate limit.
#[derive(Debug)]
pub struct Buckets {
    /// Tokens per second, and the bucket size, of the limit as written.
    rate: f64,
    capacity: f64,
    max: usize,
    hasher: RandomState,
    table: Mutex<Table>,
}

const SWEEP_EVERY: Duration = Duration::from_secs(1);

impl Buckets {
    pub fn new(limit: &RateLimit, now: Instant) -> Self {
        let capacity = limit.capacity() as f64;
        let full = Bucket {
            tokens: capacity,
            at: now,
        };
        Self {
            rate: limit.requests as f64 / limit.unit.seconds() as f64,
            capacity,
            max: limit.max_buckets as usize,
            hasher: RandomState::new(),
            table: Mutex::new(Table {
                empty: full,
                buckets: HashMap::new(),
                overflow: full,
                last_sweep: now,
                rate: limit.requests as f64 / limit.unit.seconds() as f64,
                capacity,
                offered: 0,
            }),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        match self.table.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        }
    }

    /// Scales the limit to `share` (0–1] of its rate and burst: this gateway's part of a
    /// mesh-wide limit. A bucket holds at least one token.
    pub fn set_share(&self, share: f64) {
        let share = share.clamp(0.0, 1.0);
        let mut t = self.table();
        t.rate = self.rate * share;
        t.capacity = (self.capacity * share).max(1.0);
    }

    /// The share in force.
    pub fn share(&self) -> f64 {
        let t = self.table();
        if self.rate > 0.0 {
            t.rate / self.rate
        } else {
            1.0
        }
    }

    /// Requests that asked for a token so far.
    pub fn offered(&self) -> u64 {
        self.table().offered
    }

    /// Takes a token from `key`'s bucket at `now`.
    pub fn take(&self, key: &[u8], now: Instant) -> Result<(), Exhausted> {
        let mut t = self.table();
        t.offered += 1;
        let (rate, cap) = (t.rate, t.capacity);
        if key.is_empty() {
            return take_from(&mut t.empty, rate, cap, now);
        }
        let h = self.hasher.hash_one(key);
        let known = t.buckets.contains_key(&h);
        if !known
            && t.buckets.len() >= self.max
            && now.saturating_duration_since(t.last_sweep) >= SWEEP_EVERY
        {
            t.last_sweep = now;
            t.buckets.retain(|_, b| {
                let dt = now.saturating_duration_since(b.at).as_secs_f64();
                b.tokens + dt * rate < cap
            });
        }
        let fresh = Bucket {
            tokens: cap,
            at: now,
        };
        let room = t.buckets.len() < self.max;
        let bucket = match known || room {
            true => t.buckets.entry(h).or_insert(fresh),
            false => &mut t.overflow,
        };
        take_from(bucket, rate, cap, now)
    }

    /// Buckets held (the overflow bucket not counted).
    pub fn len(&self) -> usize {
        self.table().buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Refills `b` at `rate` up to `cap`, then takes a token.
fn take_from(b: &mut Bucket, rate: f64, cap: f64, now: Instant) -> Result<(), Exhausted> {
    let dt = now.saturating_duration_since(b.at).as_secs_f64();
    b.tokens = (b.tokens + dt * rate).min(cap);
    b.at = now;
    if b.tokens >= 1.0 {
        b.tokens -= 1.0;
        return Ok(());
    }
    // A share of 0 never refills: a second is as good a hint as any.
    let secs = match rate > 0.0 {
        true => (1.0 - b.tokens) / rate,
        false => 1.0,
    };
    Err(Exhausted {
        retry_after: Duration::from_secs_f64(secs.clamp(0.001, 3600.0)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(v: serde_json::Value) -> RateLimit {
        serde_json::from_value(v).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_share_scales_rate_and_burst_and_offers_are_counted() {
        let b = Buckets::new(
            &limit(serde_json::json!({"requests": 100, "burst": 20})),
            Instant::now(),
        );
        b.set_share(0.25);
        assert_eq!(b.share(), 0.25);
        // The full bucket is clamped to the smaller burst (5) at the next take.
        let now = Instant::now();
        let passed = (0..20).filter(|_| b.take(b"", now).is_ok()).count();
        assert_eq!(passed, 5);
        tokio::time::advance(Duration::from_secs(1)).await;
        let passed = (0..100)
            .filter(|_| b.take(b"", Instant::now()).is_ok())
            .count();
        assert_eq!(
            passed, 5,
            "25/s, but never more than the burst of 5 at once"
        );
        assert_eq!(b.offered(), 120);
        // 1/s with a burst of 0.2: the bucket still holds one token.
        b.set_share(0.01);
        tokio::time::advance(Duration::from_secs(10)).await;
        let now = Instant::now();
        assert!(
            b.take(b"", now).is_ok(),
            "a bucket holds at least one token"
        );
        assert!(b.take(b"", now).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_bucket_passes_its_burst_then_its_rate() {
        let b = Buckets::new(
            &limit(serde_json::json!({"requests": 100, "burst": 20})),
            Instant::now(),
        );
        let passed = |n: usize| {
            (0..n)
                .filter(|_| b.take(b"", Instant::now()).is_ok())
                .count()
        };
        assert_eq!(passed(50), 20, "a full bucket passes its burst at once");
        let e = b.take(b"", Instant::now()).unwrap_err();
        assert!(e.retry_after <= Duration::from_millis(10), "{e:?}");
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(passed(50), 10, "100/s refills 10 in 100 ms");
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(passed(50), 20, "never more than the burst");
    }

    #[tokio::test(start_paused = true)]
    async fn made_up_keys_share_the_overflow_bucket_and_full_buckets_make_room() {
        let b = Buckets::new(
            &limit(serde_json::json!({"requests": 1, "burst": 2, "max_buckets": 4})),
            Instant::now(),
        );
        let now = Instant::now();
        for i in 0..1000u32 {
            let _ = b.take(&i.to_be_bytes(), now);
        }
        assert_eq!(b.len(), 4, "the table stops at its bound");
        // Keys 4.. shared one bucket of 2: most of them were refused.
        let extra = (5000..5010u32)
            .filter(|i| b.take(&i.to_be_bytes(), now).is_ok())
            .count();
        assert_eq!(extra, 0, "the overflow bucket is empty");
        assert!(
            b.take(&0u32.to_be_bytes(), now).is_ok(),
            "a kept key keeps its bucket"
        );
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(b.take(&7777u32.to_be_bytes(), Instant::now()).is_ok());
        assert_eq!(b.len(), 1, "refilled buckets were dropped for the new key");
    }
}
