//! Stage "account": every request is counted once, when its answer is known — the request
//! metrics, the gateway-error counter, one access line (`warden::access`) with where it went
//! and how long it took, inside the request's trace span, and — when it is sampled or
//! failed — its span in the ring of recent requests and the OTLP export.

use http::StatusCode;

use super::context::{ProxyCtx, RequestCtx};
use super::error::ProxyError;
use super::respond::class;
use crate::telemetry::RequestSpan;

/// Counts the outcome of a request: `status` answered, or `failed` with a gateway error.
/// Returns the service label it was counted under (the bytes stage counts under it too).
pub fn account(
    ctx: &ProxyCtx,
    rc: &RequestCtx,
    status: StatusCode,
    failed: Option<&ProxyError>,
    span: &tracing::Span,
) -> String {
    let service = rc.service_label();
    let elapsed = rc.started.elapsed();
    match failed {
        Some(e) => {
            ctx.metrics
                .proxy_errors
                .with_label_values(&[e.cause()])
                .inc();
            tracing::debug!(error = %e, blame = ?e.blame(), "request failed");
            // The class of the status the caller got (a 403 or 400 is not the upstream's 5xx).
            ctx.metrics
                .requests
                .with_label_values(&[service.as_str(), rc.src_label(), "none", class(e.status())])
                .inc();
        }
        None => {
            let dst = rc.dst.as_deref().unwrap_or("none");
            ctx.metrics
                .requests
                .with_label_values(&[service.as_str(), rc.src_label(), dst, class(status)])
                .inc();
            ctx.metrics
                .duration
                .with_label_values(&[service.as_str(), rc.src_label(), dst])
                .observe(elapsed.as_secs_f64());
        }
    }
    let Some((method, uri)) = &rc.detail else {
        return service;
    };
    let telemetry = &ctx.tables.telemetry;
    if (rc.sampled || status.is_server_error()) && telemetry.records() {
        telemetry.finish(RequestSpan {
            trace_id: rc.trace.trace_id,
            span_id: rc.trace.span_id,
            parent_id: rc.trace.parent_id,
            start: std::time::SystemTime::now()
                .checked_sub(elapsed)
                .unwrap_or(std::time::UNIX_EPOCH),
            duration: elapsed,
            listener: rc.listener.name(),
            method: method.clone(),
            path: uri.path().to_string(),
            service: service.clone(),
            src_cluster: rc.src_label().to_string(),
            dst_cluster: rc.dst.clone().unwrap_or_else(|| "none".into()),
            endpoint: rc.endpoint.clone(),
            status: status.as_u16(),
            retries: rc.retries,
            error: failed.map(ProxyError::cause),
        });
    }
    if rc.access_log {
        let _in = span.enter();
        tracing::info!(
            target: "warden::access",
            listener = rc.listener.name(),
            method = %method,
            path = %uri.path(),
            service = %service,
            src_cluster = %rc.src_label(),
            dst_cluster = %rc.dst.as_deref().unwrap_or("-"),
            endpoint = %rc.endpoint.as_deref().unwrap_or("-"),
            status = status.as_u16(),
            duration_ms = elapsed.as_secs_f64() * 1e3,
            retries = rc.retries,
            "request"
        );
    }
    service
}
