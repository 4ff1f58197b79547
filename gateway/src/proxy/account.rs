//! Stage "account": every request is counted once, when its answer is known — the request
//! metrics, the gateway-error counter, and one access line (`warden::access`) with where it
//! went and how long it took, inside the request's trace span.

use http::StatusCode;

use super::context::{ProxyCtx, RequestCtx};
use super::error::ProxyError;
use super::respond::class;

/// Counts the outcome of a request: `status` answered, or `failed` with a gateway error.
pub fn account(
    ctx: &ProxyCtx,
    rc: &RequestCtx,
    status: StatusCode,
    failed: Option<&ProxyError>,
    span: &tracing::Span,
) {
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
    if let Some((method, path)) = &rc.access {
        let _in = span.enter();
        tracing::info!(
            target: "warden::access",
            listener = rc.listener.name(),
            method = %method,
            path = %path,
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
}
