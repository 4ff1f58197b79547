//! What a gateway records of the requests it served beyond counters: one [`RequestSpan`]
//! per sampled request and per 5xx, kept in a bounded ring of recent requests ([`ring`]:
//! the admin `/recent`, and the reports that go to the federation with lease renewals) and,
//! when `[telemetry.otlp]` is set, exported as OTLP spans ([`otlp`]: batched, from a bounded
//! queue that drops rather than blocks).
//!
//! Sampling is by trace id ([`sampled`]): every hop of a trace, in any cluster, makes the same
//! decision from the same id, so a sampled trace is whole. The data path pays for a record
//! only when it is sampled or failed; otherwise one comparison.

#[cfg(feature = "otlp")]
pub mod otlp;
pub mod ring;
pub mod span;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

pub use span::RequestSpan;
use warden_federation::recent::RecentReport;

use crate::config::TelemetrySection;
use crate::metrics::Metrics;

/// Whether the trace `trace_id` is sampled at `per_million`: its low 8 bytes (the random
/// part of a W3C trace id) read as a number, below the rate's share of the range.
pub fn sampled(trace_id: &[u8; 16], per_million: u32) -> bool {
    if per_million >= 1_000_000 {
        return true;
    }
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace_id[8..]);
    let x = u64::from_be_bytes(low);
    let threshold = (u128::from(u64::MAX) * u128::from(per_million) / 1_000_000) as u64;
    x < threshold
}

/// The ring, and the exporter when one is configured.
pub struct Telemetry {
    pub ring: ring::Ring,
    #[cfg(feature = "otlp")]
    export: Option<otlp::Exporter>,
}

impl Default for Telemetry {
    /// A ring of the default size, no exporter.
    fn default() -> Self {
        Self {
            ring: ring::Ring::new(TelemetrySection::default().recent_requests),
            #[cfg(feature = "otlp")]
            export: None,
        }
    }
}

/// Telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry.otlp is set, but this gateway was built without the `otlp` feature")]
    NoOtlp,
    #[error("telemetry.otlp: {0}")]
    Otlp(String),
}

impl Telemetry {
    /// The ring `cfg` sizes and, with `[telemetry.otlp]`, the exporter's task (spawned on the
    /// current Tokio runtime).
    pub fn start(
        cfg: &TelemetrySection,
        cluster: &str,
        metrics: Arc<Metrics>,
    ) -> Result<Self, TelemetryError> {
        #[cfg(feature = "otlp")]
        let export = match &cfg.otlp {
            Some(o) => Some(
                otlp::Exporter::start(o, cluster, metrics)
                    .map_err(|e| TelemetryError::Otlp(e.to_string()))?,
            ),
            None => None,
        };
        #[cfg(not(feature = "otlp"))]
        {
            let _ = (cluster, metrics);
            if cfg.otlp.is_some() {
                return Err(TelemetryError::NoOtlp);
            }
        }
        Ok(Self {
            ring: ring::Ring::new(cfg.recent_requests),
            #[cfg(feature = "otlp")]
            export,
        })
    }

    /// Anything is recorded at all (the data path copies a request's method and path only
    /// then).
    pub fn records(&self) -> bool {
        #[cfg(feature = "otlp")]
        if self.export.is_some() {
            return true;
        }
        self.ring.capacity() > 0
    }

    /// Keeps a finished request in the ring and hands it to the exporter.
    pub fn finish(&self, span: RequestSpan) {
        let span = Arc::new(span);
        #[cfg(feature = "otlp")]
        if let Some(e) = &self.export {
            e.send(span.clone());
        }
        self.ring.push(span);
    }

    /// The records since the last report (`sent` holds the last one's number), newest
    /// [`warden_federation::recent::MAX_REPORT`] at most; `None` when there are none.
    pub fn report_after(&self, sent: &AtomicU64) -> Option<RecentReport> {
        let records = self
            .ring
            .after(sent, warden_federation::recent::MAX_REPORT)
            .iter()
            .map(|s| s.record())
            .collect::<Vec<_>>();
        (!records.is_empty()).then_some(RecentReport { records })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sampled_share_follows_the_rate_and_a_trace_decides_alike() {
        let ids: Vec<[u8; 16]> = (0..20_000)
            .map(|_| fastrand::u128(1..).to_be_bytes())
            .collect();
        for per_million in [0u32, 10_000, 250_000, 1_000_000] {
            let n = ids.iter().filter(|id| sampled(id, per_million)).count();
            let want = ids.len() as f64 * f64::from(per_million) / 1e6;
            assert!(
                (n as f64 - want).abs() <= 4.0 * want.max(1.0).sqrt() + 1.0,
                "{per_million}: {n} sampled of {}, want about {want}",
                ids.len()
            );
            // The same id, the same answer: every hop of a trace agrees.
            assert!(
                ids.iter()
                    .all(|id| sampled(id, per_million) == sampled(id, per_million))
            );
        }
        // A lower rate samples a subset of what a higher one does.
        assert!(
            ids.iter()
                .filter(|id| sampled(id, 10_000))
                .all(|id| sampled(id, 250_000))
        );
    }
}
