//! The CRUD the policy-like kinds share (traffic, security and resilience policies, routes): create (409
//! on a taken id), put (create or replace; a body id must match the path), both with
//! `?dry_run=true` answering what would change, list, get, delete. What differs per kind is in
//! its [`PolicyKind`] impl (`policy_kinds.rs`).

use std::collections::BTreeMap;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::common::{Node, read_barrier, state, written};
use super::error::ApiError;
use crate::command::Command;
use crate::model::{FieldError, validate_dns_label};
use crate::state::FederationState;
use crate::wire::{DryRun, DryRunChange, Listing};

/// What differs between the policy kinds.
pub(super) trait PolicyKind {
    /// For messages: "traffic policy", "security policy".
    const WHAT: &'static str;
    type Body: Send;
    type Policy: Serialize + Clone + PartialEq + Send + Sync;
    /// The id the body names, if any.
    fn body_id(body: &Self::Body) -> Option<&String>;
    fn id(p: &Self::Policy) -> &String;
    fn build(id: String, body: Self::Body) -> Self::Policy;
    fn validate(p: &Self::Policy) -> Result<(), FieldError>;
    fn all(state: &FederationState) -> &BTreeMap<String, Self::Policy>;
    fn put_command(p: Self::Policy) -> Command;
    fn delete_command(id: String) -> Command;
    /// The (id, what it is attached to) of a kind that allows one per service (or per
    /// service and rule); `None` for other kinds.
    fn one_per_service(p: &Self::Policy) -> Option<(&String, String)>;
    /// When it was last written (ignored when telling whether a write changes anything).
    fn updated_at(p: &mut Self::Policy) -> &mut u64;
}

fn id_error(message: &str) -> ApiError {
    ApiError::bad_field("id", message)
}

async fn write<K: PolicyKind>(
    node: &Node,
    policy: K::Policy,
    status: StatusCode,
    dry_run: bool,
) -> Result<Response, ApiError> {
    K::validate(&policy)?;
    if dry_run {
        return dry::<K>(node, policy);
    }
    let answer = policy.clone();
    let result = node.write(K::put_command(policy)).await?;
    written(result, status, Some(answer))
}

/// What the write of `proposed` would do, refused as the write would be (409 when another
/// object holds its service); nothing is proposed.
fn dry<K: PolicyKind>(node: &Node, proposed: K::Policy) -> Result<Response, ApiError> {
    let state = state(node)?;
    let Some((id, service)) = K::one_per_service(&proposed).map(|(i, s)| (i.clone(), s.clone()))
    else {
        return dry_answer::<K>(&state, proposed);
    };
    let holder = K::all(&state)
        .values()
        .filter_map(K::one_per_service)
        .find(|(i, s)| *s == service && **i != id);
    if let Some((other, _)) = holder {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_exists",
            format!("a {} for {service} ({other:?}) exists", K::WHAT),
        ));
    }
    dry_answer::<K>(&state, proposed)
}

fn dry_answer<K: PolicyKind>(
    state: &FederationState,
    mut proposed: K::Policy,
) -> Result<Response, ApiError> {
    let id = K::id(&proposed).clone();
    let current = K::all(state).get(&id).cloned();
    let change = match &current {
        None => DryRunChange::Create,
        Some(c) => {
            let at = *K::updated_at(&mut proposed);
            let mut same_time = c.clone();
            *K::updated_at(&mut same_time) = at;
            if same_time == proposed {
                DryRunChange::Unchanged
            } else {
                DryRunChange::Replace
            }
        }
    };
    let answer = DryRun {
        change,
        current,
        proposed,
    };
    Ok(Json(answer).into_response())
}

/// POST: the body names the id; 409 if it is taken.
pub(super) async fn create<K: PolicyKind>(
    node: &Node,
    body: K::Body,
    dry_run: bool,
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
    write::<K>(node, K::build(id, body), StatusCode::CREATED, dry_run).await
}

/// PUT: create or replace the policy at `id`.
pub(super) async fn put<K: PolicyKind>(
    node: &Node,
    id: String,
    body: K::Body,
    dry_run: bool,
) -> Result<Response, ApiError> {
    validate_dns_label("id", &id)?;
    if K::body_id(&body).is_some_and(|b| *b != id) {
        return Err(id_error("the body's id differs from the path's"));
    }
    write::<K>(node, K::build(id, body), StatusCode::OK, dry_run).await
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
