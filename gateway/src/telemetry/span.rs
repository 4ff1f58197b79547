//! [`RequestSpan`]: one finished request as the gateway saw it — its place in the trace,
//! when and how long, where it went and how it ended. The same value becomes a ring record
//! ([`RequestSpan::record`], the federation's wire type) and an OTLP span.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use warden_federation::recent::RequestRecord;

/// One finished request.
#[derive(Debug, Clone)]
pub struct RequestSpan {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_id: Option<[u8; 8]>,
    pub start: SystemTime,
    pub duration: Duration,
    /// outbound, eastwest or tcp.
    pub listener: &'static str,
    pub method: http::Method,
    pub path: String,
    pub service: String,
    pub src_cluster: String,
    pub dst_cluster: String,
    pub endpoint: Option<String>,
    pub status: u16,
    pub retries: u32,
    /// The gateway error's cause, when the gateway answered itself.
    pub error: Option<&'static str>,
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl RequestSpan {
    /// Milliseconds since the Unix epoch when the request arrived.
    pub fn start_ms(&self) -> u64 {
        self.start
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    /// Nanoseconds since the Unix epoch when the request arrived, and when it ended.
    pub fn times_unix_nanos(&self) -> (u64, u64) {
        let start = self
            .start
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        (start, start + self.duration.as_nanos() as u64)
    }

    /// A 5xx answer (the gateway's own or the upstream's).
    pub fn failed(&self) -> bool {
        self.status >= 500
    }

    /// The record the ring answers and reports with; texts cut to the wire's bounds.
    pub fn record(&self) -> RequestRecord {
        let cut = |s: &str| -> String {
            let max = warden_federation::recent::MAX_TEXT;
            if s.len() <= max {
                return s.to_string();
            }
            let mut end = max;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s[..end].to_string()
        };
        RequestRecord {
            trace_id: hex(&self.trace_id),
            span_id: hex(&self.span_id),
            parent_span_id: self.parent_id.map(|p| hex(&p)),
            at_ms: self.start_ms(),
            duration_ms: self.duration.as_secs_f64() * 1e3,
            listener: self.listener.to_string(),
            method: cut(self.method.as_str()),
            path: cut(&self.path),
            service: cut(&self.service),
            src_cluster: cut(&self.src_cluster),
            dst_cluster: cut(&self.dst_cluster),
            endpoint: self.endpoint.as_deref().map(cut),
            status: self.status,
            retries: self.retries,
            error: self.error.map(str::to_string),
        }
    }
}
