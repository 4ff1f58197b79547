//! Why a request was not proxied: one error type that knows its cause (a bounded label for
//! the `x-warden-error` header and metrics), who is to blame, its HTTP and gRPC status, and
//! whether the request surely never reached the target. The response is made in
//! [`super::respond`].

use http::StatusCode;

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
    /// The service has a route and no rule of it matches the request.
    #[error("no rule of the route of {0} matches the request")]
    NoRoute(String),
    #[error("no healthy endpoint for {0} in any cluster")]
    NoHealthyUpstream(String),
    #[error("no local endpoint for {0} can serve (east-west requests are never forwarded again)")]
    NoLocalEndpoint(String),
    #[error("{service} has no endpoints for port {port} here (endpoints serve port {served})")]
    PortNotRouted {
        service: String,
        port: u16,
        served: u16,
    },
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
    #[error("{target} answered {status} to an upgrade instead of switching protocols")]
    UpgradeRefused { target: String, status: u16 },
    #[error("{caller} may not call {service} (policy {policy})")]
    Forbidden {
        caller: String,
        service: String,
        policy: String,
    },
    #[error("reading the request body failed: {message}")]
    ClientBody { message: String },
    #[error("the request body did not arrive within {ms} ms")]
    BodyTimeout { ms: u64 },
    #[error("this gateway has {max} tunnels open, its limit")]
    TunnelLimit { max: usize },
    /// A circuit breaker's bound was reached: refused at once, never sent.
    #[error("{service}: the circuit breaker of policy {policy} is at {bound}")]
    Overflow {
        service: String,
        policy: String,
        bound: &'static str,
    },
    /// A rate limit's bucket is empty.
    #[error(
        "{service}: rate limit {limit} of policy {policy} ({requests} per {unit_secs} s, burst {burst}) exceeded; retry in {retry_after_ms} ms"
    )]
    RateLimited {
        service: String,
        policy: String,
        limit: String,
        requests: u64,
        unit_secs: u64,
        burst: u64,
        retry_after_ms: u64,
    },
    /// An abort injected by a fault policy.
    #[error("fault injected by policy {policy}")]
    FaultAbort {
        policy: String,
        http: Option<u16>,
        grpc: Option<u8>,
    },
    /// A JWT policy refused the request: no token, or one that does not verify.
    #[error("{service} needs a valid JWT (policy {policy}): {why}")]
    Unauthenticated {
        service: String,
        policy: String,
        why: String,
        /// A token was presented (`error="invalid_token"` in `www-authenticate`).
        presented: bool,
    },
    /// A malformed request head; `field` names the offending header.
    #[error("{field}: {message}")]
    BadRequest {
        field: &'static str,
        message: String,
    },
}

impl ProxyError {
    /// Short, bounded cause for the header and the metric label.
    pub fn cause(&self) -> &'static str {
        match self {
            Self::NoService => "no_service",
            Self::UnknownService(_) => "unknown_service",
            Self::NoRoute(_) => "no_route",
            Self::NoHealthyUpstream(_) => "no_healthy_upstream",
            Self::NoLocalEndpoint(_) => "no_local_endpoint",
            Self::PortNotRouted { .. } => "port_not_routed",
            Self::Connect { .. } => "upstream_connect",
            Self::Timeout { .. } => "upstream_timeout",
            Self::Upstream { .. } => "upstream_reset",
            Self::UpgradeRefused { .. } => "upgrade_refused",
            Self::Forbidden { .. } => "forbidden",
            Self::ClientBody { .. } => "client_body",
            Self::BodyTimeout { .. } => "body_timeout",
            Self::TunnelLimit { .. } => "tunnel_limit",
            Self::BadRequest { .. } => "bad_request",
            Self::Overflow { .. } => "overflow",
            Self::RateLimited { .. } => "rate_limited",
            Self::FaultAbort { .. } => "fault_abort",
            Self::Unauthenticated { .. } => "unauthenticated",
        }
    }

    pub fn blame(&self) -> Blame {
        match self {
            Self::NoService
            | Self::UnknownService(_)
            | Self::NoRoute(_)
            | Self::Forbidden { .. }
            | Self::ClientBody { .. }
            | Self::BodyTimeout { .. }
            | Self::BadRequest { .. }
            | Self::RateLimited { .. }
            | Self::Unauthenticated { .. } => Blame::Downstream,
            Self::NoHealthyUpstream(_)
            | Self::NoLocalEndpoint(_)
            | Self::PortNotRouted { .. }
            | Self::TunnelLimit { .. }
            | Self::Overflow { .. }
            | Self::FaultAbort { .. } => Blame::Internal,
            Self::Connect { .. }
            | Self::Timeout { .. }
            | Self::Upstream { .. }
            | Self::UpgradeRefused { .. } => Blame::Upstream,
        }
    }

    /// Whether the request surely never reached the target (so any request may be retried).
    pub fn never_sent(&self) -> bool {
        matches!(self, Self::Connect { .. })
    }

    /// The HTTP status a client sees.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NoService | Self::ClientBody { .. } | Self::BadRequest { .. } => {
                StatusCode::BAD_REQUEST
            }
            Self::UnknownService(_) | Self::NoRoute(_) | Self::PortNotRouted { .. } => {
                StatusCode::NOT_FOUND
            }
            Self::NoHealthyUpstream(_) | Self::NoLocalEndpoint(_) | Self::Connect { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::Upstream { .. } | Self::UpgradeRefused { .. } => StatusCode::BAD_GATEWAY,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::TunnelLimit { .. } | Self::Overflow { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            Self::FaultAbort { http, grpc, .. } => match (http, grpc) {
                (Some(h), _) => StatusCode::from_u16(*h).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                (None, Some(g)) => StatusCode::from_u16(http_of_grpc(*g))
                    .unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                (None, None) => StatusCode::SERVICE_UNAVAILABLE,
            },
        }
    }

    /// The gRPC status code a gRPC client sees (`grpc-status`).
    pub fn grpc_status(&self) -> u8 {
        match self {
            Self::NoService | Self::ClientBody { .. } | Self::BadRequest { .. } => 3, // INVALID_ARGUMENT
            Self::UnknownService(_) | Self::NoRoute(_) | Self::PortNotRouted { .. } => 12, // UNIMPLEMENTED
            Self::Timeout { .. } | Self::BodyTimeout { .. } => 4, // DEADLINE_EXCEEDED
            Self::Forbidden { .. } => 7,                          // PERMISSION_DENIED
            Self::NoHealthyUpstream(_)
            | Self::NoLocalEndpoint(_)
            | Self::Connect { .. }
            | Self::Upstream { .. }
            | Self::UpgradeRefused { .. }
            | Self::TunnelLimit { .. }
            | Self::Overflow { .. } => 14, // UNAVAILABLE
            Self::RateLimited { .. } => 8,                        // RESOURCE_EXHAUSTED
            Self::Unauthenticated { .. } => 16,                   // UNAUTHENTICATED
            Self::FaultAbort { http, grpc, .. } => match (grpc, http) {
                (Some(g), _) => *g,
                (None, Some(h)) => grpc_of_http(*h),
                (None, None) => 14,
            },
        }
    }
}

/// The gRPC status for an HTTP status, as gRPC's HTTP mapping has it.
fn grpc_of_http(h: u16) -> u8 {
    match h {
        400 => 13, // INTERNAL
        401 => 16, // UNAUTHENTICATED
        403 => 7,  // PERMISSION_DENIED
        404 => 12, // UNIMPLEMENTED
        429 | 502..=504 => 14,
        _ => 2, // UNKNOWN
    }
}

/// An HTTP status for a gRPC status, for a caller that is not speaking gRPC.
fn http_of_grpc(g: u8) -> u16 {
    match g {
        3 | 9 | 11 => 400,
        16 => 401,
        7 => 403,
        5 | 12 => 404,
        6 | 10 => 409,
        8 => 429,
        4 => 504,
        14 => 503,
        _ => 500,
    }
}
