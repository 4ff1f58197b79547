//! What every handler shares: the node handle, query parameters, reading the applied state,
//! the `?consistent=true` barrier, and answering a committed write.

use std::collections::HashMap;
use std::sync::{Arc, RwLockReadGuard};

use axum::Json;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::ApiError;
use crate::command::CommandResult;
use crate::model::Cluster;
use crate::node::FederationNode;
use crate::state::FederationState;

/// The node every handler holds.
pub type Node = Arc<FederationNode>;

/// Query parameters of a read.
pub type Params = Query<HashMap<String, String>>;

/// The optional query parameter `name`, checked by `check` (a 400 naming it otherwise):
/// `service` with [`crate::model::validate_service_ref`], `cluster` with
/// [`crate::model::validate_dns_label`].
pub fn checked_param(
    params: &HashMap<String, String>,
    name: &str,
    check: fn(&str, &str) -> Result<(), crate::model::FieldError>,
) -> Result<Option<String>, ApiError> {
    match params.get(name) {
        None => Ok(None),
        Some(v) => {
            check(name, v)?;
            Ok(Some(v.clone()))
        }
    }
}

/// `?dry_run=true|false` (default false).
pub fn dry_run(params: &HashMap<String, String>) -> Result<bool, ApiError> {
    match params.get("dry_run").map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(v) => Err(ApiError::bad_field(
            "dry_run",
            format!("dry_run must be true or false, not {v:?}"),
        )),
    }
}

/// This node's applied state, for a read.
pub fn state(node: &FederationNode) -> Result<RwLockReadGuard<'_, FederationState>, ApiError> {
    node.state.read().map_err(|_| ApiError::state_unreadable())
}

/// Runs `?consistent=true` reads through a linearizable barrier first.
pub async fn read_barrier(
    node: &FederationNode,
    params: &HashMap<String, String>,
) -> Result<(), ApiError> {
    match params.get("consistent").map(String::as_str) {
        None | Some("false") => Ok(()),
        Some("true") | Some("") => Ok(node.linearize().await?),
        Some(other) => Err(ApiError::bad_field(
            "consistent",
            format!("consistent must be true or false, not {other:?}"),
        )),
    }
}

/// Answers a committed write: `status` with the revision header (and `body`), or the
/// rejection as its error.
pub fn written<T: Serialize>(
    result: CommandResult,
    status: StatusCode,
    body: Option<T>,
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
        // The batcher answers each write with its own result, never the batch's.
        CommandResult::Batch(_) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "a batch's result answered one write",
        )),
    }
}

/// Checks a registration before it is proposed, so a refused one writes nothing to the log
/// (the state machine checks again when it applies): the federation's own trust domain is
/// never a cluster's, and a domain belongs to the cluster that first registered it.
pub fn check_registration(
    node: &FederationNode,
    cluster: &Cluster,
    by_token: bool,
) -> Result<(), ApiError> {
    if node.own_domain.as_deref() == Some(cluster.trust_domain.as_str()) {
        return Err(ApiError {
            field: Some("trust_domain".into()),
            ..ApiError::new(
                StatusCode::CONFLICT,
                "already_exists",
                format!(
                    "trust domain {:?} is the federation's own; no cluster may claim it",
                    cluster.trust_domain
                ),
            )
        });
    }
    state(node)?.may_register(cluster, by_token)?;
    Ok(())
}
