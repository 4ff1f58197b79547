//! The REST API of a federation node (JSON over HTTP).
//!
//! Writes need `Authorization: Bearer <admin token>`; reads are open to loopback callers and
//! need the token from anywhere else. Reads are served from this node's applied state unless
//! `?consistent=true` asks for a linearizable read. Every error is JSON (see [`error`]).

mod audit;
pub mod auth;
pub mod body;
mod clusters;
pub mod common;
pub mod console;
mod crud_api;
mod dry;
pub mod error;
mod join;
mod leases;
mod mesh;
mod mesh_config;
mod observability;
mod placements;
mod policy_crud;
mod policy_kinds;
mod recent;
pub mod scope;
mod services;
mod trust;
mod validate;
mod watch;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use common::Node;
use error::ApiError;

/// Largest request body the API reads (a CA bundle fits many times over).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

async fn not_found() -> ApiError {
    ApiError::not_found("no such API path")
}

/// Describes the document: title, version, the admin bearer token.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Warden federation API",
        description = "Cluster registrations, service exports, leases, traffic and security policies, trust bundles and Raft membership of a Warden federation. Writes need `Authorization: Bearer <admin token>` (or an admin SPIFFE identity over mTLS); reads are open to loopback callers. Errors are `{\"error\": {code, message, field}}`.",
        license(name = "Apache-2.0")
    ),
    components(schemas(crate::wire::ErrorBody, crate::wire::ErrorDetail)),
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
        .routes(routes!(clusters::set_gateway))
        .routes(routes!(clusters::new_credential))
        .routes(routes!(leases::renew, leases::withdraw))
        .routes(routes!(leases::list))
        .routes(routes!(trust::status))
        .routes(routes!(join::create_token))
        .routes(routes!(join::join))
        .routes(routes!(
            crud_api::security::list,
            crud_api::security::create
        ))
        .routes(routes!(
            crud_api::security::get_one,
            crud_api::security::put,
            crud_api::security::delete
        ))
        .routes(routes!(crud_api::routes::list, crud_api::routes::create))
        .routes(routes!(
            crud_api::routes::get_one,
            crud_api::routes::put,
            crud_api::routes::delete
        ))
        .routes(routes!(
            crud_api::authorization::list,
            crud_api::authorization::create
        ))
        .routes(routes!(
            crud_api::authorization::get_one,
            crud_api::authorization::put,
            crud_api::authorization::delete
        ))
        .routes(routes!(crud_api::jwt::list, crud_api::jwt::create))
        .routes(routes!(
            crud_api::jwt::get_one,
            crud_api::jwt::put,
            crud_api::jwt::delete
        ))
        .routes(routes!(
            crud_api::resilience::list,
            crud_api::resilience::create
        ))
        .routes(routes!(
            crud_api::resilience::get_one,
            crud_api::resilience::put,
            crud_api::resilience::delete
        ))
        .routes(routes!(crud_api::traffic::list, crud_api::traffic::create))
        .routes(routes!(
            crud_api::traffic::get_one,
            crud_api::traffic::put,
            crud_api::traffic::delete
        ))
        .routes(routes!(services::export, services::unexport))
        .routes(routes!(services::catalog))
        .routes(routes!(services::routing_catalog))
        .routes(routes!(trust::bundles))
        .routes(routes!(trust::put_bundle))
        .routes(routes!(mesh::status))
        .routes(routes!(mesh_config::get_mesh, mesh_config::put_mesh))
        .routes(routes!(validate::validate))
        .routes(routes!(audit::list))
        .routes(routes!(observability::metrics))
        .routes(routes!(recent::traces))
        .routes(routes!(recent::logs))
        .routes(routes!(placements::placements))
        .routes(routes!(mesh_config::get_cluster, mesh_config::put_cluster))
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
    let mut api = routes().split_for_parts().1;
    dry::document(&mut api);
    api
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
        .layer(middleware::from_fn(dry::layer))
        .layer(middleware::from_fn_with_state(node.clone(), auth::auth))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        // The console's static files: outside authentication (they hold no data).
        .merge(console::router())
        .with_state(node)
}
