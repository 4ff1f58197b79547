//! `/api/v1/routes`: L7 routes (one per service), with the CRUD the policy kinds share
//! ([`super::policy_crud`]), `?dry_run=true` included.

use axum::extract::{Path, State};
use axum::response::Response;

use super::body::JsonBody;
use super::common::{Node, Params, dry_run};
use super::error::ApiError;
use super::error::responses::{BadRequest, Conflict, NotFound, Unauthorized, Unavailable};
use super::policy_crud as crud;
use super::policy_kinds::Routes;
use crate::route::Route;
use crate::wire::{DryRun, Listing, RouteBody};

#[utoipa::path(
    post,
    path = "/api/v1/routes",
    tag = "routes",
    params(("dry_run" = Option<bool>, Query, description = "Answer what the write would change; write nothing")),
    request_body = RouteBody,
    responses(
        (status = 201, description = "Created", body = Route),
        (status = 200, description = "With dry_run: what would change", body = DryRun<Route>),
        BadRequest, Unauthorized, Conflict, Unavailable
    )
)]
pub(super) async fn create(
    State(node): State<Node>,
    params: Params,
    JsonBody(body): JsonBody<RouteBody>,
) -> Result<Response, ApiError> {
    crud::create::<Routes>(&node, body, dry_run(&params)?).await
}

#[utoipa::path(
    put,
    path = "/api/v1/routes/{id}",
    tag = "routes",
    params(("id" = String, Path, description = "Route id"), ("dry_run" = Option<bool>, Query, description = "Answer what the write would change; write nothing")),
    request_body = RouteBody,
    responses(
        (status = 200, description = "Created or replaced (with dry_run: what would change, a DryRun)", body = Route),
        BadRequest, Unauthorized, Conflict, Unavailable
    )
)]
pub(super) async fn put(
    State(node): State<Node>,
    Path(id): Path<String>,
    params: Params,
    JsonBody(body): JsonBody<RouteBody>,
) -> Result<Response, ApiError> {
    crud::put::<Routes>(&node, id, body, dry_run(&params)?).await
}

#[utoipa::path(
    get,
    path = "/api/v1/routes",
    tag = "routes",
    params(("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "Every route", body = Listing<Route>),
        Unauthorized
    )
)]
pub(super) async fn list(State(node): State<Node>, params: Params) -> Result<Response, ApiError> {
    crud::list::<Routes>(&node, &params).await
}

#[utoipa::path(
    get,
    path = "/api/v1/routes/{id}",
    tag = "routes",
    params(("id" = String, Path, description = "Route id"), ("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "The route", body = Route),
        Unauthorized, NotFound
    )
)]
pub(super) async fn get_one(
    State(node): State<Node>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    crud::get::<Routes>(&node, &id, &params).await
}

#[utoipa::path(
    delete,
    path = "/api/v1/routes/{id}",
    tag = "routes",
    params(("id" = String, Path, description = "Route id")),
    responses(
        (status = 204, description = "Deleted"),
        Unauthorized, NotFound, Unavailable
    )
)]
pub(super) async fn delete(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    crud::delete::<Routes>(&node, id).await
}
