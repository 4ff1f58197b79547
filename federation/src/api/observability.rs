//! `GET /api/v1/observability/metrics?window=1m|5m&service=ns/svc`: the golden signals per
//! edge across the mesh. Gateways report their windows with their lease renewals to whichever
//! node they renew through ([`crate::signals`]); a node answers with its own reports and
//! those of every other member (asked over the Raft RPC port, 1 s each, at the same time;
//! `scope=local` answers this node's only). A member that does not answer is counted, not
//! waited for.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::common::{Node, Params, checked_param};
use super::error::ApiError;
use super::error::responses::{BadRequest, Unauthorized};
use crate::clock::now_ms;
use crate::model::validate_service_ref;
use crate::rpc::{ForwardRequest, ForwardResponse};
use crate::signals::MeshSignals;

/// How long a peer has to answer.
const PEER_TIMEOUT: Duration = Duration::from_secs(1);

#[utoipa::path(
    get,
    operation_id = "observability_metrics",
    path = "/api/v1/observability/metrics",
    tag = "mesh",
    params(
        ("window" = Option<String>, Query, description = "1m (default) or 5m"),
        ("service" = Option<String>, Query, description = "Only this service (namespace/service)"),
        ("scope" = Option<String>, Query, description = "local: this node's reports only")
    ),
    responses(
        (status = 200, description = "Requests, errors, rate and p50/p90/p99 per edge (service, source and destination cluster), as each cluster's gateway reported them", body = MeshSignals),
        BadRequest, Unauthorized
    )
)]
pub(super) async fn metrics(
    State(node): State<Node>,
    params: Params,
) -> Result<Response, ApiError> {
    let window_s = match params.get("window").map(String::as_str) {
        None | Some("1m") => 60,
        Some("5m") => 300,
        Some(other) => {
            return Err(ApiError::bad_field(
                "window",
                format!("window must be 1m or 5m, not {other:?}"),
            ));
        }
    };
    let service = checked_param(&params, "service", validate_service_ref)?;
    let local = local_scope(&params)?;
    let mut edges = node.signals.edges(window_s, service.as_deref(), now_ms());
    let (mut asked, mut answered) = (1, 1);
    if !local {
        let req = ForwardRequest::Signals {
            window_s,
            service: service.clone(),
        };
        let (peers, answers) = ask_peers(&node, &req).await;
        asked += peers;
        for r in answers {
            if let ForwardResponse::Signals(theirs) = r {
                answered += 1;
                edges.extend(theirs.0);
            }
        }
        // A cluster that renewed through several nodes: keep its newest report.
        edges.sort_by(|a, b| (&a.reported_by, a.age_ms).cmp(&(&b.reported_by, b.age_ms)));
        let mut newest: std::collections::BTreeMap<String, u64> = Default::default();
        for e in &edges {
            newest.entry(e.reported_by.clone()).or_insert(e.age_ms);
        }
        edges.retain(|e| newest.get(&e.reported_by) == Some(&e.age_ms));
    }
    Ok(Json(MeshSignals {
        window_s,
        edges,
        nodes_asked: asked,
        nodes_answered: answered,
    })
    .into_response())
}

/// Asks every other member `req` at once, each within [`PEER_TIMEOUT`]: how many were asked,
/// and the answers that came.
pub(super) async fn ask_peers(node: &Node, req: &ForwardRequest) -> (usize, Vec<ForwardResponse>) {
    let peers: Vec<_> = {
        let m = node.raft.metrics().borrow().clone();
        m.membership_config
            .membership()
            .nodes()
            .filter(|(id, _)| **id != node.id)
            .map(|(_, info)| info.clone())
            .collect()
    };
    let calls = peers
        .iter()
        .map(|info| node.rpc.forward(info, req, PEER_TIMEOUT));
    let answers = futures::future::join_all(calls)
        .await
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    (peers.len(), answers)
}

/// `scope=local` (this node's reports only) or nothing (every member's).
pub(super) fn local_scope(params: &Params) -> Result<bool, ApiError> {
    match params.get("scope").map(String::as_str) {
        None => Ok(false),
        Some("local") => Ok(true),
        Some(other) => Err(ApiError::bad_field(
            "scope",
            format!("scope must be local, not {other:?}"),
        )),
    }
}
