//! A federation node's Prometheus metrics (`GET /metrics` on the API): Raft state, sampled at
//! scrape time, and refused TLS handshakes on the Raft and API listeners.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::types::Raft;

/// Every metric family of a node, in one registry (no globals).
pub struct NodeMetrics {
    registry: Registry,
    pub tls_errors: IntCounterVec,
    term: IntGauge,
    leader: IntGauge,
    last_applied: IntGauge,
    apply_lag: IntGauge,
    /// Log entries this node proposed for API writes (one per batch).
    pub proposals: IntCounter,
    /// API writes this node proposed (a batch holds several).
    pub proposed_writes: IntCounter,
}

fn must<T>(r: Result<T, prometheus::Error>) -> T {
    // Fixed, valid names and labels: construction cannot fail.
    match r {
        Ok(v) => v,
        Err(e) => panic!("metric definition: {e}"),
    }
}

impl NodeMetrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let tls_errors = must(IntCounterVec::new(
            Opts::new(
                "warden_tls_handshake_errors_total",
                "Refused TLS connections, by listener and reason.",
            ),
            &["listener", "reason"],
        ));
        let term = must(IntGauge::new("warden_raft_term", "Current Raft term."));
        let leader = must(IntGauge::new(
            "warden_raft_is_leader",
            "1 while this node leads.",
        ));
        let last_applied = must(IntGauge::new(
            "warden_raft_last_applied_index",
            "Last log index applied to the state machine.",
        ));
        let apply_lag = must(IntGauge::new(
            "warden_raft_apply_lag_entries",
            "Log entries written but not yet applied.",
        ));
        let proposals = must(IntCounter::new(
            "warden_raft_write_proposals_total",
            "Log entries this node proposed as leader for API writes (a batch is one).",
        ));
        let proposed_writes = must(IntCounter::new(
            "warden_raft_proposed_writes_total",
            "API writes this node proposed as leader; over proposals: the mean batch size.",
        ));
        for c in [
            Box::new(tls_errors.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(proposals.clone()),
            Box::new(proposed_writes.clone()),
            Box::new(term.clone()),
            Box::new(leader.clone()),
            Box::new(last_applied.clone()),
            Box::new(apply_lag.clone()),
        ] {
            must(registry.register(c));
        }
        Self {
            registry,
            tls_errors,
            term,
            leader,
            last_applied,
            apply_lag,
            proposals,
            proposed_writes,
        }
    }

    /// Samples Raft and renders the text exposition.
    pub fn render(&self, raft: &Raft, id: u64) -> String {
        let m = raft.metrics().borrow().clone();
        self.term.set(m.current_term as i64);
        self.leader.set((m.current_leader == Some(id)) as i64);
        let applied = m.last_applied.map(|l| l.index).unwrap_or(0);
        self.last_applied.set(applied as i64);
        self.apply_lag
            .set(m.last_log_index.unwrap_or(0).saturating_sub(applied) as i64);
        let mut buf = String::new();
        if let Err(e) =
            prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut buf)
        {
            tracing::warn!(error = %e, "encoding metrics");
        }
        buf
    }
}

impl Default for NodeMetrics {
    fn default() -> Self {
        Self::new()
    }
}
