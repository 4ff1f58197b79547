//! `/api/v1/traffic/policies` and `/api/v1/security/policies`: the routes and their
//! documentation; the CRUD both kinds share is in [`super::policy_crud`].

use axum::extract::{Path, State};
use axum::response::Response;

use super::body::JsonBody;
use super::common::{Node, Params, dry_run};
use super::error::ApiError;
use super::error::responses::{BadRequest, Conflict, NotFound, Unauthorized, Unavailable};
use super::policy_crud as crud;
use super::policy_kinds::{Security, Traffic};
use crate::model::{SecurityPolicy, TrafficPolicy};
use crate::wire::{Listing, PolicyBody, SecurityBody};

#[utoipa::path(
    post,
    path = "/api/v1/traffic/policies",
    tag = "traffic",
    params(("dry_run" = Option<bool>, Query, description = "Answer what the write would change; write nothing")),
    request_body = PolicyBody,
    responses(
        (status = 201, description = "Created", body = TrafficPolicy),
        BadRequest, Unauthorized, Conflict, Unavailable
    )
)]
pub(super) async fn create(
    State(node): State<Node>,
    params: Params,
    JsonBody(body): JsonBody<PolicyBody>,
) -> Result<Response, ApiError> {
    crud::create::<Traffic>(&node, body, dry_run(&params)?).await
}

#[utoipa::path(
    put,
    path = "/api/v1/traffic/policies/{id}",
    tag = "traffic",
    params(("id" = String, Path, description = "Policy id"), ("dry_run" = Option<bool>, Query, description = "Answer what the write would change; write nothing")),
    request_body = PolicyBody,
    responses(
        (status = 200, description = "Created or replaced", body = TrafficPolicy),
        BadRequest, Unauthorized, Unavailable
    )
)]
pub(super) async fn put(
    State(node): State<Node>,
    Path(id): Path<String>,
    params: Params,
    JsonBody(body): JsonBody<PolicyBody>,
) -> Result<Response, ApiError> {
    crud::put::<Traffic>(&node, id, body, dry_run(&params)?).await
}

#[utoipa::path(
    get,
    path = "/api/v1/traffic/policies",
    tag = "traffic",
    params(("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "Every traffic policy", body = Listing<TrafficPolicy>),
        Unauthorized
    )
)]
pub(super) async fn list(State(node): State<Node>, params: Params) -> Result<Response, ApiError> {
    crud::list::<Traffic>(&node, &params).await
}

#[utoipa::path(
    get,
    path = "/api/v1/traffic/policies/{id}",
    tag = "traffic",
    params(("id" = String, Path, description = "Policy id"), ("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "The policy", body = TrafficPolicy),
        Unauthorized, NotFound
    )
)]
pub(super) async fn get_one(
    State(node): State<Node>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    crud::get::<Traffic>(&node, &id, &params).await
}

#[utoipa::path(
    delete,
    path = "/api/v1/traffic/policies/{id}",
    tag = "traffic",
    params(("id" = String, Path, description = "Policy id")),
    responses(
        (status = 204, description = "Deleted"),
        Unauthorized, NotFound, Unavailable
    )
)]
pub(super) async fn delete(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    crud::delete::<Traffic>(&node, id).await
}

#[utoipa::path(
    post,
    path = "/api/v1/security/policies",
    tag = "security",
    params(("dry_run" = Option<bool>, Query, description = "Answer what the write would change; write nothing")),
    request_body = SecurityBody,
    responses(
        (status = 201, description = "Created", body = SecurityPolicy),
        BadRequest, Unauthorized, Conflict, Unavailable
    )
)]
pub(super) async fn security_create(
    State(node): State<Node>,
    params: Params,
    JsonBody(body): JsonBody<SecurityBody>,
) -> Result<Response, ApiError> {
    crud::create::<Security>(&node, body, dry_run(&params)?).await
}

#[utoipa::path(
    put,
    path = "/api/v1/security/policies/{id}",
    tag = "security",
    params(("id" = String, Path, description = "Policy id"), ("dry_run" = Option<bool>, Query, description = "Answer what the write would change; write nothing")),
    request_body = SecurityBody,
    responses(
        (status = 200, description = "Created or replaced", body = SecurityPolicy),
        BadRequest, Unauthorized, Unavailable
    )
)]
pub(super) async fn security_put(
    State(node): State<Node>,
    Path(id): Path<String>,
    params: Params,
    JsonBody(body): JsonBody<SecurityBody>,
) -> Result<Response, ApiError> {
    crud::put::<Security>(&node, id, body, dry_run(&params)?).await
}

#[utoipa::path(
    get,
    path = "/api/v1/security/policies",
    tag = "security",
    params(("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "Every authorization policy", body = Listing<SecurityPolicy>),
        Unauthorized
    )
)]
pub(super) async fn security_list(
    State(node): State<Node>,
    params: Params,
) -> Result<Response, ApiError> {
    crud::list::<Security>(&node, &params).await
}

#[utoipa::path(
    get,
    path = "/api/v1/security/policies/{id}",
    tag = "security",
    params(("id" = String, Path, description = "Policy id"), ("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "The policy", body = SecurityPolicy),
        Unauthorized, NotFound
    )
)]
pub(super) async fn security_get(
    State(node): State<Node>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    crud::get::<Security>(&node, &id, &params).await
}

#[utoipa::path(
    delete,
    path = "/api/v1/security/policies/{id}",
    tag = "security",
    params(("id" = String, Path, description = "Policy id")),
    responses(
        (status = 204, description = "Deleted"),
        Unauthorized, NotFound, Unavailable
    )
)]
pub(super) async fn security_delete(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    crud::delete::<Security>(&node, id).await
}
