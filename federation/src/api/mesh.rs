//! `/api/v1/mesh/status` and `/api/v1/federation/members`: the Raft group as operators see it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::body::JsonBody;
use super::common::{Node, state};
use super::error::ApiError;
use super::error::responses::{BadRequest, Conflict, Unauthorized, Unavailable};
use crate::clock::now_ms;
use crate::command::{Command, CommandResult};
use crate::member_change::MemberChange;
use crate::model::validate_host_port;
use crate::stored::Stored;
use crate::types::NodeInfo;
use crate::wire::{AddMember, Member, MemberAdded, MeshStatus, Ready, Role};

#[utoipa::path(
    get,
    operation_id = "mesh_status",
    path = "/api/v1/mesh/status",
    tag = "federation",
    responses(
        (status = 200, description = "This node's Raft view: state, leader, term, log indexes, members, revision, now_ms", body = MeshStatus),
        Unauthorized
    )
)]
pub(super) async fn status(State(node): State<Node>) -> Result<Response, ApiError> {
    let m = node.raft.metrics().borrow().clone();
    let membership = m.membership_config.membership();
    let voters: Vec<u64> = membership.voter_ids().collect();
    let members = membership
        .nodes()
        .map(|(id, n)| Member {
            id: *id,
            raft_addr: n.raft_addr.clone(),
            api_addr: n.api_addr.clone(),
            role: if voters.contains(id) {
                Role::Voter
            } else {
                Role::Learner
            },
            matched_index: m
                .replication
                .as_ref()
                .and_then(|r| r.get(id).copied().flatten())
                .map(|l| l.index),
        })
        .collect();
    let leader_api = m
        .current_leader
        .and_then(|l| membership.get_node(&l))
        .map(|n| n.api_addr.clone());
    let revision = state(&node)?.revision;
    Ok(Json(MeshStatus {
        node_id: node.id,
        state: format!("{:?}", m.state),
        leader: m.current_leader,
        leader_api,
        term: m.current_term,
        last_log_index: m.last_log_index,
        last_applied: m.last_applied.map(|l| l.index),
        snapshot: m.snapshot.map(|l| l.index),
        members,
        revision,
        now_ms: now_ms(),
        tls: node.ca_pin.is_some(),
    })
    .into_response())
}

/// Ready when this node is running Raft and knows a leader; 503 otherwise (no quorum seen yet,
/// or Raft stopped after a fatal storage error).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "Raft runs and a leader is known", body = Ready),
        Unavailable
    )
)]
pub(super) async fn readyz(State(node): State<Node>) -> Response {
    let m = node.raft.metrics().borrow().clone();
    let running = m.running_state.is_ok();
    match (running, m.current_leader) {
        (true, Some(leader)) => Json(Ready {
            ready: true,
            leader,
        })
        .into_response(),
        (false, _) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "raft stopped after a fatal error",
        )
        .into_response(),
        (true, None) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "no leader known",
        )
        .into_response(),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/federation/members",
    tag = "federation",
    request_body = AddMember,
    responses(
        (status = 200, description = "Added as learner, caught up, promoted (unless voter = false)", body = MemberAdded),
        BadRequest, Unauthorized, Conflict, Unavailable
    )
)]
pub(super) async fn add_member(
    State(node): State<Node>,
    JsonBody(req): JsonBody<AddMember>,
) -> Result<Response, ApiError> {
    validate_host_port("raft_addr", &req.raft_addr)?;
    validate_host_port("api_addr", &req.api_addr)?;
    let existing = node
        .raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .get_node(&req.id)
        .cloned();
    let info = NodeInfo {
        raft_addr: req.raft_addr,
        api_addr: req.api_addr,
    };
    if let Some(existing) = existing
        && existing != info
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_exists",
            format!("member {} exists with other addresses ({existing})", req.id),
        ));
    }
    // A dry run stops here: checked, nothing changed.
    let mut warning = None;
    if !crate::dry_run::active() {
        let change = MemberChange::Added {
            id: req.id,
            raft_addr: info.raft_addr.clone(),
            api_addr: info.api_addr.clone(),
            voter: req.voter,
        };
        node.add_member(req.id, info, req.voter).await?;
        warning = record(&node, change).await;
    }
    let resp = (
        StatusCode::OK,
        Json(MemberAdded {
            id: req.id,
            role: if req.voter {
                Role::Voter
            } else {
                Role::Learner
            },
        }),
    )
        .into_response();
    Ok(warned(resp, warning))
}

#[utoipa::path(
    delete,
    path = "/api/v1/federation/members/{id}",
    tag = "federation",
    params(("id" = String, Path, description = "Node id")),
    responses(
        (status = 204, description = "Removed"),
        BadRequest, Unauthorized, Unavailable
    )
)]
pub(super) async fn remove_member(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad_field("id", format!("member id {id:?} is not a number")))?;
    let known = node
        .raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .get_node(&id)
        .is_some();
    if !known {
        return Err(ApiError::not_found(format!("member {id} not found")));
    }
    let mut warning = None;
    if !crate::dry_run::active() {
        node.remove_member(id).await?;
        warning = record(&node, MemberChange::Removed { id }).await;
    }
    Ok(warned(StatusCode::NO_CONTENT.into_response(), warning))
}

/// Records a committed membership change in the store (a revision, a watch event and the
/// audit record). The change stands whatever happens here: when it cannot be recorded (no
/// quorum right after it, or a voter of an older build that could not decode the record),
/// the node logs it and the answer carries a `Warning` header saying so.
async fn record(node: &Node, change: MemberChange) -> Option<HeaderValue> {
    let id = change.id();
    let cmd = Command::RecordMemberChange {
        change: Stored(change),
        at: now_ms(),
    };
    let why = match node.write(cmd).await {
        Ok(CommandResult::Applied { .. }) => return None,
        Ok(_) => "a voter of an older build could not read the record".to_string(),
        Err(e) => e.to_string(),
    };
    tracing::error!(member = id, why = %why, "membership changed but not recorded in the audit log");
    let text = format!("199 warden \"member {id} changed, not recorded in the audit log: {why}\"");
    HeaderValue::from_str(&text.replace(|c: char| !c.is_ascii() || c.is_ascii_control(), " ")).ok()
}

/// `resp` with the `Warning` a membership change that was not recorded carries.
fn warned(mut resp: Response, warning: Option<HeaderValue>) -> Response {
    if let Some(w) = warning {
        resp.headers_mut().insert(header::WARNING, w);
    }
    resp
}
