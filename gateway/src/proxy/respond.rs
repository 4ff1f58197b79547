//! The one place a gateway error becomes a response, and where answers get
//! `x-warden-cluster`. HTTP callers get JSON `{"error":{code,message}}` with the status;
//! gRPC callers (`content-type: application/grpc...`) get what a gRPC client can read: HTTP
//! 200 with `grpc-status` and `grpc-message` in a trailers-only response. Both carry
//! `x-warden-error` naming the cause.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use super::body::{BoxBody, empty, full};
use super::error::ProxyError;

/// Response header naming the cluster that served the request.
pub const SERVED_BY_HEADER: &str = "x-warden-cluster";
/// Response header naming the cause of a gateway error.
pub const ERROR_HEADER: &str = "x-warden-error";

/// Whether the request is a gRPC call (its errors must be gRPC statuses).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// Percent-encodes a `grpc-message` (the gRPC spec: printable ASCII except `%`).
fn grpc_message(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The response for a gateway error.
pub fn error_response(e: &ProxyError, grpc: bool) -> Response<BoxBody> {
    let mut r = if grpc {
        let mut r = Response::new(empty());
        let h = r.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        h.insert("grpc-status", HeaderValue::from(u16::from(e.grpc_status())));
        if let Ok(v) = HeaderValue::from_str(&grpc_message(&e.to_string())) {
            h.insert("grpc-message", v);
        }
        r
    } else {
        let body = serde_json::json!({"error": {"code": e.cause(), "message": e.to_string()}});
        let mut r = Response::new(full(Bytes::from(body.to_string())));
        *r.status_mut() = e.status();
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    };
    r.headers_mut()
        .insert(ERROR_HEADER, HeaderValue::from_static(e.cause()));
    if let ProxyError::Unauthenticated {
        service,
        why,
        presented,
        ..
    } = e
    {
        // RFC 6750: the realm, and for a token that was presented, why it was refused.
        let quoted = |s: &str| s.replace(['"', '\\'], "'");
        let mut v = format!("Bearer realm=\"{}\"", quoted(service));
        if *presented {
            v.push_str(&format!(
                ", error=\"invalid_token\", error_description=\"{}\"",
                quoted(why)
            ));
        }
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().insert(http::header::WWW_AUTHENTICATE, v);
        }
    }
    if let ProxyError::RateLimited {
        requests,
        retry_after_ms,
        ..
    } = e
    {
        // Whole seconds, rounded up: a client that waits as told finds a token.
        let secs = retry_after_ms.div_ceil(1000).max(1);
        let h = r.headers_mut();
        h.insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
        h.insert("ratelimit-limit", HeaderValue::from(*requests));
        h.insert("ratelimit-remaining", HeaderValue::from_static("0"));
        h.insert("ratelimit-reset", HeaderValue::from(secs));
    }
    r
}

/// Names the serving cluster on a response, unless a hop further on already did.
pub fn stamp(mut resp: Response<BoxBody>, cluster: &str) -> Response<BoxBody> {
    if !resp.headers().contains_key(SERVED_BY_HEADER)
        && let Ok(v) = HeaderValue::from_str(cluster)
    {
        resp.headers_mut().insert(SERVED_BY_HEADER, v);
    }
    resp
}

/// The status class label of a response (bounded: `1xx` … `5xx`).
pub fn class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_callers_get_a_grpc_status_and_http_callers_json() {
        let e = ProxyError::NoHealthyUpstream("shop/cart".into());
        let g = error_response(&e, true);
        assert_eq!(g.status(), StatusCode::OK);
        assert_eq!(g.headers()["grpc-status"], "14");
        assert_eq!(g.headers()["content-type"], "application/grpc");
        assert!(
            g.headers()["grpc-message"]
                .to_str()
                .unwrap()
                .contains("shop/cart")
        );
        assert_eq!(g.headers()[ERROR_HEADER], "no_healthy_upstream");
        let h = error_response(&e, false);
        assert_eq!(h.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(h.headers()["content-type"], "application/json");
        assert_eq!(grpc_message("50% ü"), "50%25 %C3%BC");
        let mut req = HeaderMap::new();
        req.insert(
            "content-type",
            HeaderValue::from_static("application/grpc+proto"),
        );
        assert!(is_grpc(&req));
    }
}
