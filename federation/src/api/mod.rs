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
mod policy_crud;
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
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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

async fn not_found() -> ApiError {
    ApiError::not_found("no such API path")
}

/// Query parameters of a read.
pub type Params = Query<HashMap<String, String>>;

/// Describes the document: title, version, the admin bearer token.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Warden federation API",
        description = "Cluster registrations, service exports, leases, traffic and security policies, trust bundles and Raft membership of a Warden federation. Writes need `Authorization: Bearer <admin token>` (or an admin SPIFFE identity over mTLS); reads are open to loopback callers. Errors are `{\"error\": {code, message, field}}`.",
        license(name = "Apache-2.0")
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail)),
    modifiers(&BearerAuth),
    security(("admin_token" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let scheme =
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        api.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("admin_token", scheme);
    }
}

#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "The process is up", body = String)))]
async fn healthz() -> &'static str {
    "ok\n"
}

#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "Prometheus text exposition (Raft term, leader, applied index, lag, refused handshakes)", content_type = "text/plain", body = String)))]
async fn metrics(State(node): State<Node>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4")],
        node.metrics.render(&node.raft, node.id),
    )
        .into_response()
}

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "health", responses((status = 200, description = "This document", body = serde_json::Value)))]
async fn openapi_json() -> Response {
    Json(openapi()).into_response()
}

/// Every route with its handler; the router and the OpenAPI document both come from here.
fn routes() -> OpenApiRouter<Node> {
    OpenApiRouter::with_openapi(<ApiDoc as utoipa::OpenApi>::openapi())
        .routes(routes!(clusters::register, clusters::list))
        .routes(routes!(clusters::get_one, clusters::remove))
        .routes(routes!(clusters::status))
        .routes(routes!(policies::renew_lease))
        .routes(routes!(policies::leases))
        .routes(routes!(policies::trust_status))
        .routes(routes!(join::create_token))
        .routes(routes!(join::join))
        .routes(routes!(policies::security_list, policies::security_create))
        .routes(routes!(
            policies::security_get,
            policies::security_put,
            policies::security_delete
        ))
        .routes(routes!(policies::list, policies::create))
        .routes(routes!(policies::get_one, policies::put, policies::delete))
        .routes(routes!(services::export, services::unexport))
        .routes(routes!(services::catalog))
        .routes(routes!(services::routing_catalog))
        .routes(routes!(services::bundles))
        .routes(routes!(services::put_bundle))
        .routes(routes!(mesh::status))
        .routes(routes!(mesh::add_member))
        .routes(routes!(mesh::remove_member))
        .routes(routes!(watch::watch))
        .routes(routes!(healthz))
        .routes(routes!(metrics))
        .routes(routes!(mesh::readyz))
        .routes(routes!(openapi_json))
}

/// The OpenAPI 3.1 document of this API (also in `docs/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

/// The API router.
pub fn router(node: Node) -> Router {
    let (router, _) = routes().split_for_parts();
    router
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
