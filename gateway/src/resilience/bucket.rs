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
}

/// The buckets of one rate limit.
#[derive(Debug)]
pub struct Buckets {
    /// Tokens per second.
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
            }),
        }
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let dt = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + dt * self.rate).min(self.capacity);
        b.at = now;
    }

    /// Takes a token from `key`'s bucket at `now`.
    pub fn take(&self, key: &[u8], now: Instant) -> Result<(), Exhausted> {
        let mut t = match self.table.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        if key.is_empty() {
            return self.take_from(&mut t.empty, now);
        }
        let h = self.hasher.hash_one(key);
        let known = t.buckets.contains_key(&h);
        if !known
            && t.buckets.len() >= self.max
            && now.saturating_duration_since(t.last_sweep) >= SWEEP_EVERY
        {
            t.last_sweep = now;
            let (rate, cap) = (self.rate, self.capacity);
            t.buckets.retain(|_, b| {
                let dt = now.saturating_duration_since(b.at).as_secs_f64();
                b.tokens + dt * rate < cap
            });
        }
        let fresh = Bucket {
            tokens: self.capacity,
            at: now,
        };
        let room = t.buckets.len() < self.max;
        let bucket = match known || room {
            true => t.buckets.entry(h).or_insert(fresh),
            false => &mut t.overflow,
        };
        self.take_from(bucket, now)
    }

    fn take_from(&self, b: &mut Bucket, now: Instant) -> Result<(), Exhausted> {
        self.refill(b, now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Ok(());
        }
        let secs = (1.0 - b.tokens) / self.rate;
        Err(Exhausted {
            retry_after: Duration::from_secs_f64(secs.max(0.001)),
        })
    }

    /// Buckets held (the overflow bucket not counted).
    pub fn len(&self) -> usize {
        match self.table.lock() {
            Ok(t) => t.buckets.len(),
            Err(p) => p.into_inner().buckets.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(v: serde_json::Value) -> RateLimit {
        serde_json::from_value(v).unwrap()
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
