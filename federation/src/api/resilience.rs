//! `/api/v1/resilience/policies`: resilience policies (one per service and rule), with the CRUD the policy kinds share
//! ([`super::policy_crud`]), `?dry_run=true` included.

use axum::extract::{Path, State};
use axum::response::Response;

use super::body::JsonBody;
use super::common::{Node, Params, dry_run};
use super::error::ApiError;
use super::error::responses::{BadRequest, Conflict, NotFound, Unauthorized, Unavailable};
use super::policy_crud as crud;
use super::policy_kinds::Resilience;
use crate::resilience::ResiliencePolicy;
use crate::wire::{DryRun, Listing, ResilienceBody};

#[utoipa::path(
    post,
    path = "/api/v1/resilience/policies",
    tag = "resilience",
    params(("dry_run" = Option<bool>, Query, description = "Answer what the write would change; write nothing")),
    request_body = ResilienceBody,
    responses(
        (status = 201, description = "Created", body = ResiliencePolicy),
        (status = 200, description = "With dry_run: what would change", body = DryRun<ResiliencePolicy>),
        BadRequest, Unauthorized, Conflict, Unavailable
    )
)]
pub(super) async fn create(
    State(node): State<Node>,
    params: Params,
    JsonBody(body): JsonBody<ResilienceBody>,
) -> Result<Response, ApiError> {
    crud::create::<Resilience>(&node, body, dry_run(&params)?).await
}

#[utoipa::path(
    put,
    path = "/api/v1/resilience/policies/{id}",
    tag = "resilience",
    params(("id" = String, Path, description = "Policy id"), ("dry_run" = Option<bool>, Query, description = "Answer what the write would change; write nothing")),
    request_body = ResilienceBody,
    responses(
        (status = 200, description = "Created or replaced (with dry_run: what would change, a DryRun)", body = ResiliencePolicy),
        BadRequest, Unauthorized, Conflict, Unavailable
    )
)]
pub(super) async fn put(
    State(node): State<Node>,
    Path(id): Path<String>,
    params: Params,
    JsonBody(body): JsonBody<ResilienceBody>,
) -> Result<Response, ApiError> {
    crud::put::<Resilience>(&node, id, body, dry_run(&params)?).await
}

#[utoipa::path(
    get,
    path = "/api/v1/resilience/policies",
    tag = "resilience",
    params(("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "Every resilience policy", body = Listing<ResiliencePolicy>),
        Unauthorized
    )
)]
pub(super) async fn list(State(node): State<Node>, params: Params) -> Result<Response, ApiError> {
    crud::list::<Resilience>(&node, &params).await
}

#[utoipa::path(
    get,
    path = "/api/v1/resilience/policies/{id}",
    tag = "resilience",
    params(("id" = String, Path, description = "Policy id"), ("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "The policy", body = ResiliencePolicy),
        Unauthorized, NotFound
    )
)]
pub(super) async fn get_one(
    State(node): State<Node>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    crud::get::<Resilience>(&node, &id, &params).await
}

#[utoipa::path(
    delete,
    path = "/api/v1/resilience/policies/{id}",
    tag = "resilience",
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
    crud::delete::<Resilience>(&node, id).await
}
