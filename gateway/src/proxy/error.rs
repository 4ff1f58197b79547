//! Proxy errors and the one place they become HTTP responses, with `x-warden-error` naming the
//! cause. Each error says who is to blame and whether another target may be tried.

use bytes::Bytes;
use http::{Response, StatusCode};

use super::BoxBody;

/// Who caused a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    Downstream,
    Upstream,
    Internal,
}

/// Why a request was not proxied.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("the request names no service: use Host svc.ns or svc.ns.svc.cluster.local")]
    NoService,
    #[error("unknown service {0}")]
    UnknownService(String),
    #[error("no healthy endpoint for {0} in any cluster")]
    NoHealthyUpstream(String),
    #[error("no local endpoint for {0} can serve (east-west requests are never forwarded again)")]
    NoLocalEndpoint(String),
    #[error("connecting to {target} failed: {message}")]
    Connect {
        target: String,
        message: String,
        /// The target actively refused (nothing listens): a definitive "down", unlike a timeout.
        refused: bool,
    },
    #[error("{target} did not answer within {ms} ms")]
    Timeout { target: String, ms: u64 },
    #[error("{target} reset the request: {message}")]
    Upstream { target: String, message: String },
    #[error("{caller} may not call {service} (policy {policy})")]
    Forbidden {
        caller: String,
        service: String,
        policy: String,
    },
}

impl ProxyError {
    /// Short, bounded cause for the header and the metric label.
    pub fn cause(&self) -> &'static str {
        match self {
            Self::NoService => "no_service",
            Self::UnknownService(_) => "unknown_service",
            Self::NoHealthyUpstream(_) => "no_healthy_upstream",
            Self::NoLocalEndpoint(_) => "no_local_endpoint",
            Self::Connect { .. } => "upstream_connect",
            Self::Timeout { .. } => "upstream_timeout",
            Self::Upstream { .. } => "upstream_reset",
            Self::Forbidden { .. } => "forbidden",
        }
    }

    pub fn blame(&self) -> Blame {
        match self {
            Self::NoService | Self::UnknownService(_) | Self::Forbidden { .. } => Blame::Downstream,
            Self::NoHealthyUpstream(_) | Self::NoLocalEndpoint(_) => Blame::Internal,
            _ => Blame::Upstream,
        }
    }

    /// Whether the request surely never reached the target (so any request may be retried).
    pub fn never_sent(&self) -> bool {
        matches!(self, Self::Connect { .. })
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::NoService => StatusCode::BAD_REQUEST,
            Self::UnknownService(_) => StatusCode::NOT_FOUND,
            Self::NoHealthyUpstream(_) | Self::NoLocalEndpoint(_) | Self::Connect { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::Upstream { .. } => StatusCode::BAD_GATEWAY,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
        }
    }

    /// The response a client sees.
    pub fn into_response(self) -> Response<BoxBody> {
        let body =
            serde_json::json!({"error": {"code": self.cause(), "message": self.to_string()}})
                .to_string();
        let mut r = Response::new(super::full(Bytes::from(body)));
        *r.status_mut() = self.status();
        let h = r.headers_mut();
        h.insert(
            "content-type",
            http::HeaderValue::from_static("application/json"),
        );
        h.insert(
            "x-warden-error",
            http::HeaderValue::from_static(self.cause()),
        );
        r
    }
}
