//! The CRUD both policy kinds share (traffic and security policies): create (409 on a taken
//! id), put (create or replace; a body id must match the path), list, get, delete. What differs
//! per kind is in its [`PolicyKind`] impl.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::common::{Node, read_barrier, state, written};
use super::error::ApiError;
use crate::clock::now_ms;
use crate::command::Command;
use crate::model::{FieldError, SecurityPolicy, TrafficPolicy, validate_dns_label};
use crate::state::FederationState;
use crate::wire::{Listing, PolicyBody, SecurityBody};

/// What differs between the policy kinds.
pub(super) trait PolicyKind {
    /// For messages: "traffic policy", "security policy".
    const WHAT: &'static str;
    type Body: Send;
    type Policy: Serialize + Clone + Send + Sync;
    /// The id the body names, if any.
    fn body_id(body: &Self::Body) -> Option<&String>;
    fn build(id: String, body: Self::Body) -> Self::Policy;
    fn validate(p: &Self::Policy) -> Result<(), FieldError>;
    fn all(state: &FederationState) -> &BTreeMap<String, Self::Policy>;
    fn put_command(p: Self::Policy) -> Command;
    fn delete_command(id: String) -> Command;
}

pub(super) struct Traffic;
pub(super) struct Security;

impl PolicyKind for Traffic {
    const WHAT: &'static str = "traffic policy";
    type Body = PolicyBody;
    type Policy = TrafficPolicy;
    fn body_id(b: &Self::Body) -> Option<&String> {
        b.id.as_ref()
    }
    fn build(id: String, b: Self::Body) -> TrafficPolicy {
        TrafficPolicy {
            id,
            service: b.service,
            failover_order: b.failover_order,
            weights: b.weights,
            overprovisioning_percent: b.overprovisioning_percent,
            max_egress_percent: b.max_egress_percent,
            updated_at: now_ms(),
        }
    }
    fn validate(p: &TrafficPolicy) -> Result<(), FieldError> {
        p.validate()
    }
    fn all(state: &FederationState) -> &BTreeMap<String, TrafficPolicy> {
        &state.policies
    }
    fn put_command(policy: TrafficPolicy) -> Command {
        Command::PutTrafficPolicy { policy }
    }
    fn delete_command(id: String) -> Command {
        Command::DeleteTrafficPolicy { id, at: now_ms() }
    }
}

impl PolicyKind for Security {
    const WHAT: &'static str = "security policy";
    type Body = SecurityBody;
    type Policy = SecurityPolicy;
    fn body_id(b: &Self::Body) -> Option<&String> {
        b.id.as_ref()
    }
    fn build(id: String, b: Self::Body) -> SecurityPolicy {
        SecurityPolicy {
            id,
            service: b.service,
            action: b.action,
            sources: b.sources,
            updated_at: now_ms(),
        }
    }
    fn validate(p: &SecurityPolicy) -> Result<(), FieldError> {
        p.validate()
    }
    fn all(state: &FederationState) -> &BTreeMap<String, SecurityPolicy> {
        &state.security_policies
    }
    fn put_command(policy: SecurityPolicy) -> Command {
        Command::PutSecurityPolicy { policy }
    }
    fn delete_command(id: String) -> Command {
        Command::DeleteSecurityPolicy { id, at: now_ms() }
    }
}

fn id_error(message: &str) -> ApiError {
    ApiError::bad_field("id", message)
}

async fn write<K: PolicyKind>(
    node: &Node,
    policy: K::Policy,
    status: StatusCode,
) -> Result<Response, ApiError> {
    K::validate(&policy)?;
    let answer = policy.clone();
    let result = node.write(K::put_command(policy)).await?;
    written(result, status, Some(answer))
}

/// POST: the body names the id; 409 if it is taken.
pub(super) async fn create<K: PolicyKind>(
    node: &Node,
    body: K::Body,
) -> Result<Response, ApiError> {
    let Some(id) = K::body_id(&body).cloned() else {
        return Err(id_error("id is required"));
    };
    validate_dns_label("id", &id)?;
    let taken = K::all(&*state(node)?).contains_key(&id);
    if taken {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_exists",
            format!("{} {id:?} already exists", K::WHAT),
        ));
    }
    write::<K>(node, K::build(id, body), StatusCode::CREATED).await
}

/// PUT: create or replace the policy at `id`.
pub(super) async fn put<K: PolicyKind>(
    node: &Node,
    id: String,
    body: K::Body,
) -> Result<Response, ApiError> {
    validate_dns_label("id", &id)?;
    if K::body_id(&body).is_some_and(|b| *b != id) {
        return Err(id_error("the body's id differs from the path's"));
    }
    write::<K>(node, K::build(id, body), StatusCode::OK).await
}

pub(super) async fn list<K: PolicyKind>(
    node: &Node,
    params: &std::collections::HashMap<String, String>,
) -> Result<Response, ApiError> {
    read_barrier(node, params).await?;
    let state = state(node)?;
    let answer = Listing {
        revision: state.revision,
        items: K::all(&state).values().collect::<Vec<_>>(),
    };
    Ok(Json(answer).into_response())
}

pub(super) async fn get<K: PolicyKind>(
    node: &Node,
    id: &str,
    params: &std::collections::HashMap<String, String>,
) -> Result<Response, ApiError> {
    read_barrier(node, params).await?;
    match K::all(&*state(node)?).get(id) {
        Some(p) => Ok(Json(p).into_response()),
        None => Err(ApiError::not_found(format!("{} {id:?} not found", K::WHAT))),
    }
}

pub(super) async fn delete<K: PolicyKind>(node: &Node, id: String) -> Result<Response, ApiError> {
    validate_dns_label("id", &id)?;
    let result = node.write(K::delete_command(id)).await?;
    written::<()>(result, StatusCode::NO_CONTENT, None)
}
