//! `/api/v1/traffic/policies` and `/api/v1/security/policies` (the CRUD is shared, in
//! [`super::policy_crud`]), cluster leases (`PUT /api/v1/clusters/{name}/lease`,
//! `GET /api/v1/leases`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::body::JsonBody;
use super::error::responses::{BadRequest, Conflict, NotFound, Unauthorized, Unavailable};
use super::policy_crud::{self as crud, Security, Traffic};
use super::{ApiError, Node, Params, now_ms, read_barrier};
use crate::command::{Command, CommandResult};
use crate::model::{Lease, TrafficPolicy, validate_dns_label};

fn internal() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "state lock poisoned",
    )
}

/// The body of a traffic policy (the id comes from the path for PUT).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    #[serde(default)]
    pub id: Option<String>,
    pub service: String,
    #[serde(default)]
    pub failover_order: Vec<String>,
    #[serde(default)]
    pub weights: BTreeMap<String, u32>,
    #[serde(default)]
    pub overprovisioning_percent: Option<u32>,
    #[serde(default)]
    pub max_egress_percent: Option<u32>,
}

#[utoipa::path(
    post,
    path = "/api/v1/traffic/policies",
    tag = "traffic",
    request_body = PolicyBody,
    responses(
        (status = 201, description = "Created", body = TrafficPolicy),
        BadRequest, Unauthorized, Conflict, Unavailable
    )
)]
pub(super) async fn create(
    State(node): State<Node>,
    JsonBody(body): JsonBody<PolicyBody>,
) -> Result<Response, ApiError> {
    crud::create::<Traffic>(&node, body).await
}

#[utoipa::path(
    put,
    path = "/api/v1/traffic/policies/{id}",
    tag = "traffic",
    params(("id" = String, Path, description = "Policy id")),
    request_body = PolicyBody,
    responses(
        (status = 200, description = "Created or replaced", body = TrafficPolicy),
        BadRequest, Unauthorized, Unavailable
    )
)]
pub(super) async fn put(
    State(node): State<Node>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PolicyBody>,
) -> Result<Response, ApiError> {
    crud::put::<Traffic>(&node, id, body).await
}

#[utoipa::path(
    get,
    path = "/api/v1/traffic/policies",
    tag = "traffic",
    params(("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "`{revision, items: [TrafficPolicy]}`", body = serde_json::Value),
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

/// The body of a lease renewal.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaseBody {
    pub ttl_ms: u64,
    /// Bundle versions loaded by the renewing gateway.
    #[serde(default)]
    pub trust_versions: BTreeMap<String, u64>,
}

#[utoipa::path(
    put,
    path = "/api/v1/clusters/{name}/lease",
    tag = "clusters",
    params(("name" = String, Path, description = "Cluster name")),
    request_body = LeaseBody,
    responses(
        (status = 200, description = "Lease renewed", body = serde_json::Value),
        BadRequest, Unauthorized, NotFound, Unavailable
    )
)]
pub(super) async fn renew_lease(
    State(node): State<Node>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<LeaseBody>,
) -> Result<Response, ApiError> {
    validate_dns_label("name", &name)?;
    if !(300..=600_000).contains(&body.ttl_ms) {
        return Err(ApiError {
            field: Some("ttl_ms".into()),
            ..ApiError::bad_request("ttl_ms must be 300-600000")
        });
    }
    let lease = Lease {
        cluster: name,
        renewed_at: now_ms(),
        ttl_ms: body.ttl_ms,
        trust_versions: body.trust_versions,
    };
    match node
        .write(Command::RenewLease {
            lease: lease.clone(),
        })
        .await?
    {
        CommandResult::Applied { .. } => Ok(Json(lease).into_response()),
        CommandResult::Rejected(r) => Err(r.into()),
        CommandResult::Empty => Err(internal()),
    }
}

/// `GET /api/v1/trust/status`: for each trust bundle, which clusters' gateways have loaded its
/// current version (from their lease renewals). A rotation step may proceed when `complete`.
#[utoipa::path(
    get,
    path = "/api/v1/trust/status",
    tag = "trust",
    params(("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "Per trust bundle: version, and which clusters loaded it (`complete`)", body = serde_json::Value),
        Unauthorized
    )
)]
pub(super) async fn trust_status(
    State(node): State<Node>,
    params: Params,
) -> Result<Response, ApiError> {
    read_barrier(&node, &params).await?;
    let state = node.state.read().map_err(|_| internal())?;
    let now = now_ms();
    let items: Vec<_> = state
        .trust_bundles
        .values()
        .map(|b| {
            let clusters: Vec<_> = state
                .clusters
                .keys()
                .map(|c| {
                    let lease = state.leases.get(c);
                    let loaded = lease.and_then(|l| l.trust_versions.get(&b.trust_domain).copied());
                    let live = lease.is_some_and(|l| now < l.renewed_at + l.ttl_ms);
                    // A gateway reporting no bundles at all runs without mTLS: it cannot block.
                    let uses_tls = lease.is_some_and(|l| !l.trust_versions.is_empty());
                    json!({ "cluster": c, "loaded_version": loaded, "current": loaded == Some(b.version),
                        "lease_live": live, "mtls": uses_tls })
                })
                .collect();
            let complete = clusters
                .iter()
                .all(|c| c["current"] == true || c["lease_live"] == false || c["mtls"] == false);
            json!({ "trust_domain": b.trust_domain, "version": b.version, "complete": complete, "clusters": clusters })
        })
        .collect();
    Ok(Json(json!({ "revision": state.revision, "items": items })).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/leases",
    tag = "clusters",
    params(("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "`{revision, now, items: [{cluster, renewed_at, ttl_ms, expired_by_this_node_clock}]}`", body = serde_json::Value),
        Unauthorized
    )
)]
pub(super) async fn leases(State(node): State<Node>, params: Params) -> Result<Response, ApiError> {
    read_barrier(&node, &params).await?;
    let state = node.state.read().map_err(|_| internal())?;
    let now = now_ms();
    let items: Vec<_> = state
        .leases
        .values()
        .map(|l| {
            json!({ "cluster": l.cluster, "renewed_at": l.renewed_at, "ttl_ms": l.ttl_ms,
            "expired_by_this_node_clock": now > l.renewed_at + l.ttl_ms })
        })
        .collect();
    Ok(Json(json!({ "revision": state.revision, "now": now, "items": items })).into_response())
}

/// The body of an authorization policy (the id comes from the path for PUT).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityBody {
    #[serde(default)]
    pub id: Option<String>,
    pub service: String,
    pub action: crate::model::AuthzAction,
    pub sources: crate::model::AuthzSources,
}

#[utoipa::path(
    post,
    path = "/api/v1/security/policies",
    tag = "security",
    request_body = SecurityBody,
    responses(
        (status = 201, description = "Created", body = crate::model::SecurityPolicy),
        BadRequest, Unauthorized, Conflict, Unavailable
    )
)]
pub(super) async fn security_create(
    State(node): State<Node>,
    JsonBody(body): JsonBody<SecurityBody>,
) -> Result<Response, ApiError> {
    crud::create::<Security>(&node, body).await
}

#[utoipa::path(
    put,
    path = "/api/v1/security/policies/{id}",
    tag = "security",
    params(("id" = String, Path, description = "Policy id")),
    request_body = SecurityBody,
    responses(
        (status = 200, description = "Created or replaced", body = crate::model::SecurityPolicy),
        BadRequest, Unauthorized, Unavailable
    )
)]
pub(super) async fn security_put(
    State(node): State<Node>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<SecurityBody>,
) -> Result<Response, ApiError> {
    crud::put::<Security>(&node, id, body).await
}

#[utoipa::path(
    get,
    path = "/api/v1/security/policies",
    tag = "security",
    params(("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "`{revision, items: [SecurityPolicy]}`", body = serde_json::Value),
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
        (status = 200, description = "The policy", body = crate::model::SecurityPolicy),
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
