//! `GET /api/v1/observability/traces?trace_id=` and `GET /api/v1/observability/logs`: the
//! recent requests gateways reported with their renewals ([`crate::recent`]), from this node
//! and every other member (asked at once, 1 s each, like the golden signals; `scope=local`
//! answers this node's only). For "what just happened": a bounded ring, not a log store.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::common::{Node, Params, checked_param, state};
use super::error::ApiError;
use super::error::responses::{BadRequest, Unauthorized};
use super::observability::{ask_peers, local_scope};
use crate::model::{validate_dns_label, validate_service_ref};
use crate::recent::{RecentQuery, RecentRequests, newest_first};
use crate::rpc::{ForwardRequest, ForwardResponse};
use crate::stored::Stored;

/// Records an answer holds by default, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

async fn answer(node: &Node, q: RecentQuery, local: bool) -> RecentRequests {
    let mut records = node.recent.query(&q);
    let (mut asked, mut answered) = (1, 1);
    if !local {
        let (peers, answers) = ask_peers(node, &ForwardRequest::Recent(Stored(q.clone()))).await;
        asked += peers;
        for r in answers {
            if let ForwardResponse::Recent(theirs) = r {
                answered += 1;
                records.extend(theirs.0);
            }
        }
        newest_first(&mut records, q.limit);
    }
    // Only clusters still registered: a removed one's records may linger on peers.
    if let Ok(s) = state(node) {
        records.retain(|r| s.clusters.contains_key(&r.reported_by));
    }
    RecentRequests {
        records,
        nodes_asked: asked,
        nodes_answered: answered,
    }
}

fn limit(params: &Params) -> Result<usize, ApiError> {
    match params.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_field(
                "limit",
                format!("limit must be 1-{MAX_LIMIT}, not {v:?}"),
            )),
        },
    }
}

#[utoipa::path(
    get,
    operation_id = "observability_traces",
    path = "/api/v1/observability/traces",
    tag = "mesh",
    params(
        ("trace_id" = String, Query, description = "W3C trace id: 32 lowercase hex digits"),
        ("scope" = Option<String>, Query, description = "local: this node's reports only")
    ),
    responses(
        (status = 200, description = "Every hop of the trace the gateways recorded (sampled requests and every 5xx, the newest 128 per cluster)", body = RecentRequests),
        BadRequest, Unauthorized
    )
)]
pub(super) async fn traces(State(node): State<Node>, params: Params) -> Result<Response, ApiError> {
    let Some(trace_id) = params.get("trace_id") else {
        return Err(ApiError::bad_field("trace_id", "trace_id is required"));
    };
    let hex = trace_id.len() == 32
        && trace_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex {
        return Err(ApiError::bad_field(
            "trace_id",
            "trace_id must be 32 lowercase hex digits",
        ));
    }
    let q = RecentQuery {
        trace_id: Some(trace_id.clone()),
        limit: MAX_LIMIT,
        ..Default::default()
    };
    Ok(Json(answer(&node, q, local_scope(&params)?).await).into_response())
}

/// `5xx` (a class) or `503` (one status).
fn status(v: &str) -> Result<(Option<u16>, Option<u8>), ApiError> {
    let bad = || {
        ApiError::bad_field(
            "status",
            format!("status must be a class like 5xx or a status like 503, not {v:?}"),
        )
    };
    if let Some(c) = v.strip_suffix("xx") {
        match c.parse::<u8>() {
            Ok(c) if (1..=5).contains(&c) => Ok((None, Some(c))),
            _ => Err(bad()),
        }
    } else {
        match v.parse::<u16>() {
            Ok(s) if (100..=599).contains(&s) => Ok((Some(s), None)),
            _ => Err(bad()),
        }
    }
}

#[utoipa::path(
    get,
    operation_id = "observability_logs",
    path = "/api/v1/observability/logs",
    tag = "mesh",
    params(
        ("service" = Option<String>, Query, description = "Only this service (namespace/service)"),
        ("status" = Option<String>, Query, description = "A class (5xx) or one status (503)"),
        ("since" = Option<u64>, Query, description = "Only requests that arrived at or after this time (milliseconds since the Unix epoch)"),
        ("cluster" = Option<String>, Query, description = "Only requests this cluster's gateway served"),
        ("limit" = Option<usize>, Query, description = "The newest this many (1-1000, default 100)"),
        ("scope" = Option<String>, Query, description = "local: this node's reports only")
    ),
    responses(
        (status = 200, description = "Recent requests the gateways recorded (sampled ones and every 5xx), newest first", body = RecentRequests),
        BadRequest, Unauthorized
    )
)]
pub(super) async fn logs(State(node): State<Node>, params: Params) -> Result<Response, ApiError> {
    let service = checked_param(&params, "service", validate_service_ref)?;
    let cluster = checked_param(&params, "cluster", validate_dns_label)?;
    let (status, status_class) = match params.get("status") {
        Some(v) => status(v)?,
        None => (None, None),
    };
    let since_ms = match params.get("since") {
        None => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            ApiError::bad_field(
                "since",
                format!("since must be milliseconds since the Unix epoch, not {v:?}"),
            )
        })?),
    };
    let q = RecentQuery {
        trace_id: None,
        service,
        status,
        status_class,
        since_ms,
        cluster,
        limit: limit(&params)?,
    };
    Ok(Json(answer(&node, q, local_scope(&params)?).await).into_response())
}
