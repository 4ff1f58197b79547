//! The ring of recent requests: the newest N finished [`RequestSpan`]s, each numbered, so the
//! publisher can report only those since its last report. One short lock per recorded
//! request (sampled or failed ones only); never awaited on.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::span::RequestSpan;

#[derive(Default)]
struct Inner {
    /// The number the next record gets (from 1).
    next: u64,
    items: VecDeque<(u64, Arc<RequestSpan>)>,
}

pub struct Ring {
    capacity: usize,
    inner: Mutex<Inner>,
}

/// Which records `/recent` wants; every field given must match.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub service: Option<String>,
    pub trace_id: Option<String>,
    /// A status class (5 for 5xx).
    pub class: Option<u16>,
}

impl Ring {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner {
                next: 1,
                items: VecDeque::with_capacity(capacity.min(4096)),
            }),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn push(&self, span: Arc<RequestSpan>) {
        if self.capacity == 0 {
            return;
        }
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let n = g.next;
        g.next += 1;
        if g.items.len() == self.capacity {
            g.items.pop_front();
        }
        g.items.push_back((n, span));
    }

    /// The newest `max` records numbered after `sent`, oldest first; `sent` moves to the
    /// newest number (records between that were never reported are skipped: the ring is
    /// for what just happened).
    pub fn after(&self, sent: &AtomicU64, max: usize) -> Vec<Arc<RequestSpan>> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let last = sent.load(Ordering::Relaxed);
        let newer: Vec<_> = g
            .items
            .iter()
            .rev()
            .take_while(|(n, _)| *n > last)
            .take(max)
            .collect();
        if let Some((n, _)) = newer.first() {
            sent.store(*n, Ordering::Relaxed);
        }
        newer.into_iter().rev().map(|(_, s)| s.clone()).collect()
    }

    /// The newest `limit` records matching `f`, newest first.
    pub fn query(&self, f: &Filter, limit: usize) -> Vec<Arc<RequestSpan>> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.items
            .iter()
            .rev()
            .map(|(_, s)| s)
            .filter(|s| f.service.as_ref().is_none_or(|v| *v == s.service))
            .filter(|s| f.class.is_none_or(|c| s.status / 100 == c))
            .filter(|s| {
                f.trace_id
                    .as_ref()
                    .is_none_or(|t| *t == super::span::hex(&s.trace_id))
            })
            .take(limit)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn span(status: u16, service: &str) -> Arc<RequestSpan> {
        Arc::new(RequestSpan {
            trace_id: fastrand::u128(1..).to_be_bytes(),
            span_id: fastrand::u64(1..).to_be_bytes(),
            parent_id: None,
            start: SystemTime::now(),
            duration: Duration::from_millis(3),
            listener: "outbound",
            method: http::Method::GET,
            path: "/x".into(),
            service: service.into(),
            src_cluster: "east".into(),
            dst_cluster: "east".into(),
            endpoint: None,
            status,
            retries: 0,
            error: None,
        })
    }

    #[test]
    fn keeps_the_newest_and_reports_each_record_once() {
        let r = Ring::new(100);
        let sent = AtomicU64::new(0);
        for _ in 0..150 {
            r.push(span(200, "d/a"));
        }
        // Only the newest 64 of the 100 kept; then nothing until more come.
        let first = r.after(&sent, 64);
        assert_eq!(first.len(), 64);
        assert!(r.after(&sent, 64).is_empty());
        r.push(span(503, "d/a"));
        let next = r.after(&sent, 64);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].status, 503);
        assert_eq!(r.query(&Filter::default(), 1000).len(), 100);
    }

    #[test]
    fn query_filters_by_service_class_and_trace() {
        let r = Ring::new(10);
        r.push(span(200, "d/a"));
        r.push(span(502, "d/a"));
        r.push(span(503, "d/b"));
        let five = Filter {
            class: Some(5),
            ..Default::default()
        };
        assert_eq!(r.query(&five, 10).len(), 2);
        let a5 = Filter {
            service: Some("d/a".into()),
            ..five
        };
        let got = r.query(&a5, 10);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].status, 502);
        let t = Filter {
            trace_id: Some(super::super::span::hex(&got[0].trace_id)),
            ..Default::default()
        };
        assert_eq!(r.query(&t, 10).len(), 1);
        assert!(Ring::new(0).query(&Filter::default(), 10).is_empty());
    }
}
