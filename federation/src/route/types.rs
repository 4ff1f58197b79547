//! The route objects themselves (see the module above for their shape and storage rules).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A route for one service: ordered rules; the first rule with a matching `matches` entry
/// decides where a request goes. A service has at most one route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// DNS label, unique.
    pub id: String,
    /// `namespace/service` whose requests this route decides (its parent, as in GAMMA).
    pub service: String,
    /// 1–64 rules, tried in order.
    pub rules: Vec<RouteRule>,
    #[serde(default)]
    pub updated_at: u64,
}

/// One rule: when any of `matches` holds, `filters` apply and a backend is drawn by weight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// DNS label naming the rule in `/explain`, metrics and errors; `rules[i]` when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// Any one of these must hold (at most 16). Empty: every request.
    #[serde(default)]
    pub matches: Vec<RouteMatch>,
    /// Applied in order (at most one of each kind).
    #[serde(default)]
    pub filters: Vec<RouteFilter>,
    /// Weighted subsets (1–16); none only with a `request_redirect` filter.
    #[serde(default)]
    pub backends: Vec<RouteBackend>,
    /// Override the gateway's `[timeouts]` for this rule.
    #[serde(default)]
    pub timeouts: Option<RouteTimeouts>,
    /// Override the gateway's retry behaviour for this rule.
    #[serde(default)]
    pub retry: Option<RouteRetry>,
}

/// Conditions that must all hold (an absent one holds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteMatch {
    #[serde(default)]
    pub path: Option<PathMatch>,
    /// An HTTP method, e.g. `GET`.
    #[serde(default)]
    pub method: Option<String>,
    /// Every one must match (at most 16). Names are case-insensitive.
    #[serde(default)]
    pub headers: Vec<ValueMatch>,
    /// Every one must match (at most 16). Names are case-sensitive.
    #[serde(default)]
    pub query_params: Vec<ValueMatch>,
    /// gRPC `/<service>/<method>`, each part exact when given.
    #[serde(default)]
    pub grpc: Option<GrpcMatch>,
}

/// How a request path is matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PathMatch {
    #[serde(rename = "type")]
    pub kind: PathMatchKind,
    /// Starts with `/` (Exact, PathPrefix); a regular expression matched against the whole
    /// path (RegularExpression).
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum PathMatchKind {
    /// The whole path, byte for byte.
    Exact,
    /// Whole `/`-separated segments: `/api` matches `/api` and `/api/x`, not `/apix`.
    PathPrefix,
    /// The whole path matches the expression.
    RegularExpression,
}

/// A header or query parameter that must be present with a matching value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValueMatch {
    #[serde(rename = "type", default = "ValueMatchKind::exact")]
    pub kind: ValueMatchKind,
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum ValueMatchKind {
    Exact,
    /// The whole value matches the expression.
    RegularExpression,
}

impl ValueMatchKind {
    fn exact() -> Self {
        Self::Exact
    }
}

/// A gRPC call's service (`package.Service`) and method.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrpcMatch {
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
}

/// A change to the request or response, or an answer instead of forwarding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RouteFilter {
    RequestHeaderModifier(HeaderModifier),
    ResponseHeaderModifier(HeaderModifier),
    /// Replaces the matched path prefix (every match of the rule must be a PathPrefix).
    UrlRewrite(UrlRewrite),
    /// Answers with a redirect; the rule then has no backends.
    RequestRedirect(RequestRedirect),
}

/// Headers to set (replacing), add (appending) and remove, in that order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderModifier {
    #[serde(default)]
    pub set: Vec<HeaderPair>,
    #[serde(default)]
    pub add: Vec<HeaderPair>,
    #[serde(default)]
    pub remove: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderPair {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UrlRewrite {
    /// Replaces the prefix the rule matched, e.g. `/api/v2` → `/v2`.
    pub path_prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestRedirect {
    /// `http` or `https`; the request's when absent.
    #[serde(default)]
    pub scheme: Option<String>,
    /// The request's host when absent.
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    /// Replaces the whole path; the request's when absent.
    #[serde(default)]
    pub path: Option<String>,
    /// 301, 302 (default), 303, 307 or 308.
    #[serde(default = "RequestRedirect::default_status")]
    pub status_code: u16,
}

impl RequestRedirect {
    fn default_status() -> u16 {
        302
    }
}

/// A weighted share of a rule's traffic for a subset of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteBackend {
    /// `namespace/service`; the route's own service when absent.
    #[serde(default)]
    pub service: Option<String>,
    /// Endpoint labels the subset's endpoints carry, e.g. `{"version": "v2"}`; empty: every
    /// endpoint of the service.
    #[serde(default)]
    pub subset: BTreeMap<String, String>,
    /// Relative weight (0–10000, default 1); 0 sends nothing.
    #[serde(default = "RouteBackend::default_weight")]
    pub weight: u32,
}

impl RouteBackend {
    fn default_weight() -> u32 {
        1
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteTimeouts {
    /// The whole request, retries included (504 after it).
    #[serde(default)]
    pub request_ms: Option<u64>,
    /// Each attempt; at most `request_ms`.
    #[serde(default)]
    pub per_try_ms: Option<u64>,
}

/// Retries of a rule, taken from the gateway's retry budget like every other retry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteRetry {
    /// Retries after the first attempt (1–10).
    pub attempts: u32,
    /// What may be retried (at least one).
    pub on: Vec<RetryOn>,
    /// Exponential backoff with full jitter: the n-th retry (1 for the first) waits a uniform
    /// draw up to `min(backoff_max_ms, backoff_base_ms * 2^(n-1))`, never past the deadline.
    #[serde(default = "RouteRetry::default_base")]
    pub backoff_base_ms: u64,
    #[serde(default = "RouteRetry::default_max")]
    pub backoff_max_ms: u64,
}

impl RouteRetry {
    fn default_base() -> u64 {
        25
    }
    fn default_max() -> u64 {
        250
    }
}

/// Conditions under which an attempt is retried (Envoy's names).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
pub enum RetryOn {
    /// The connection could not be made (never sent: retried for any method).
    #[serde(rename = "connect-failure")]
    ConnectFailure,
    /// The upstream reset the stream or closed the connection before a response.
    #[serde(rename = "reset")]
    Reset,
    /// Any 5xx response.
    #[serde(rename = "5xx")]
    Status5xx,
    /// 502, 503 or 504.
    #[serde(rename = "gateway-error")]
    GatewayError,
    /// gRPC status UNAVAILABLE (14).
    #[serde(rename = "unavailable")]
    GrpcUnavailable,
    /// gRPC status RESOURCE_EXHAUSTED (8).
    #[serde(rename = "resource-exhausted")]
    GrpcResourceExhausted,
    /// gRPC status CANCELLED (1).
    #[serde(rename = "cancelled")]
    GrpcCancelled,
}
