//! The REST API of a federation node (JSON over HTTP).
//!
//! Writes need `Authorization: Bearer <admin token>`; reads are open to loopback callers and
//! need the token from anywhere else. Reads are served from this node's applied state unless
//! `?consistent=true` asks for a linearizable read. Every error is JSON (see [`error`]).

pub mod body;
mod clusters;
pub mod error;
pub mod join;
mod mesh;
mod policies;
mod services;
mod watch;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use crate::command::CommandResult;
use axum::routing::{delete, get, post, put};

pub use error::ApiError;

use crate::node::FederationNode;

type Node = Arc<FederationNode>;

/// Largest request body the API reads (a CA bundle fits many times over).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Milliseconds since the Unix epoch: the proposer's timestamp for commands.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs `?consistent=true` reads through a linearizable barrier first.
pub async fn read_barrier(
    node: &FederationNode,
    params: &HashMap<String, String>,
) -> Result<(), ApiError> {
    match params.get("consistent").map(String::as_str) {
        None | Some("false") => Ok(()),
        Some("true") | Some("") => Ok(node.linearize().await?),
        Some(other) => Err(ApiError {
            field: Some("consistent".into()),
            ..ApiError::bad_request(format!("consistent must be true or false, not {other:?}"))
        }),
    }
}

/// Answers a committed write: `status` with the revision header (and `body`), or the
/// rejection as its error.
pub(super) fn written(
    result: CommandResult,
    status: StatusCode,
    body: Option<serde_json::Value>,
) -> Result<Response, ApiError> {
    match result {
        CommandResult::Applied { revision } => {
            let headers = [("x-warden-revision", revision.to_string())];
            Ok(match body {
                Some(b) => (status, headers, Json(b)).into_response(),
                None => (status, headers).into_response(),
            })
        }
        CommandResult::Rejected(r) => Err(r.into()),
        CommandResult::Empty => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an entry without a command answered a write",
        )),
    }
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn token_matches(given: &[u8], expected: &[u8]) -> bool {
    if given.len() != expected.len() {
        return false;
    }
    given
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

async fn auth(State(node): State<Node>, req: Request, next: Next) -> Response {
    let is_read = matches!(*req.method(), Method::GET | Method::HEAD);
    let loopback = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip().is_loopback())
        .unwrap_or(false);
    // A joining cluster authenticates with its join token, not the admin token.
    let is_join = *req.method() == Method::POST && req.uri().path() == "/api/v1/join";
    if (is_read && loopback) || is_join {
        return next.run(req).await;
    }
    // An admin identity proven by a client certificate (API over TLS).
    let admin_cert = req
        .extensions()
        .get::<crate::server::PeerIdentity>()
        .and_then(|p| p.0.as_ref())
        .is_some_and(|id| node.admin_spiffe_ids.iter().any(|a| a == id));
    if admin_cert {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(t) if token_matches(t.as_bytes(), node.admin_token.as_bytes()) => next.run(req).await,
        Some(_) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the bearer token is not valid",
        )
        .into_response(),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this request needs an Authorization: Bearer <admin token> header",
        )
        .into_response(),
    }
}

async fn metrics(State(node): State<Node>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4")],
        node.metrics.render(&node.raft, node.id),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such API path")
}

/// Query parameters of a read.
pub type Params = Query<HashMap<String, String>>;

/// The API router.
pub fn router(node: Node) -> Router {
    Router::new()
        .route(
            "/api/v1/clusters",
            post(clusters::register).get(clusters::list),
        )
        .route(
            "/api/v1/clusters/{name}",
            get(clusters::get_one).delete(clusters::remove),
        )
        .route("/api/v1/clusters/{name}/status", get(clusters::status))
        .route("/api/v1/clusters/{name}/lease", put(policies::renew_lease))
        .route("/api/v1/leases", get(policies::leases))
        .route("/api/v1/trust/status", get(policies::trust_status))
        .route("/api/v1/join-tokens", post(join::create_token))
        .route("/api/v1/join", post(join::join))
        .route(
            "/api/v1/security/policies",
            get(policies::security_list).post(policies::security_create),
        )
        .route(
            "/api/v1/security/policies/{id}",
            get(policies::security_get)
                .put(policies::security_put)
                .delete(policies::security_delete),
        )
        .route(
            "/api/v1/traffic/policies",
            get(policies::list).post(policies::create),
        )
        .route(
            "/api/v1/traffic/policies/{id}",
            get(policies::get_one)
                .put(policies::put)
                .delete(policies::delete),
        )
        .route(
            "/api/v1/clusters/{cluster}/services/{namespace}/{service}",
            put(services::export).delete(services::unexport),
        )
        .route("/api/v1/services", get(services::catalog))
        .route("/api/v1/catalog", get(services::routing_catalog))
        .route("/api/v1/trust/bundles", get(services::bundles))
        .route(
            "/api/v1/trust/bundles/{trust_domain}",
            put(services::put_bundle),
        )
        .route("/api/v1/mesh/status", get(mesh::status))
        .route("/api/v1/federation/members", post(mesh::add_member))
        .route(
            "/api/v1/federation/members/{id}",
            delete(mesh::remove_member),
        )
        .route("/api/v1/watch", get(watch::watch))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/readyz", get(mesh::readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this path",
            )
        })
        .layer(middleware::from_fn_with_state(node.clone(), auth))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(node)
}
