//! `GET /api/v1/audit?since=N&limit=M`: the changes made through the API after store revision
//! `N`, oldest first ([`crate::audit`]).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::common::{Node, Params, read_barrier, state};
use super::error::ApiError;
use super::error::responses::{BadRequest, Unauthorized};
use crate::audit::AuditRecord;
use crate::wire::Listing;

/// Records one answer holds at most.
const MAX_LIMIT: usize = 1_000;

#[utoipa::path(
    get,
    operation_id = "audit_list",
    path = "/api/v1/audit",
    tag = "mesh",
    params(
        ("since" = Option<u64>, Query, description = "Only changes after this store revision (default 0: the oldest kept)"),
        ("limit" = Option<usize>, Query, description = "At most this many records, 1-1000 (default 100); page on with since = the last revision"),
        ("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")
    ),
    responses(
        (status = 200, description = "Who changed what and when, with the revision each change got; lease renewals and gateways' own exports are not recorded", body = Listing<AuditRecord>),
        BadRequest, Unauthorized
    )
)]
pub(super) async fn list(State(node): State<Node>, params: Params) -> Result<Response, ApiError> {
    let number = |name: &str, default: u64| -> Result<u64, ApiError> {
        match params.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                ApiError::bad_field(name, format!("{name} must be a number, not {v:?}"))
            }),
        }
    };
    let since = number("since", 0)?;
    let limit = number("limit", 100)? as usize;
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_field(
            "limit",
            format!("limit must be 1-{MAX_LIMIT}"),
        ));
    }
    read_barrier(&node, &params).await?;
    let s = state(&node)?;
    let items = s
        .extra
        .audit
        .iter()
        .filter(|r| r.revision > since)
        .take(limit)
        .cloned()
        .collect();
    Ok(Json(Listing {
        revision: s.revision,
        items,
    })
    .into_response())
}
