//! `GET /api/v1/watch?from_revision=N`: every change after revision N, one JSON object per
//! line, then new changes as they are applied on this node.
//!
//! Lines are `{"revision":R,"type":"cluster.put",...}`; a `{"type":"heartbeat","revision":R}`
//! line opens the stream and comes again every 10 s of quiet, so clients detect a dead stream. A client resumes by reconnecting
//! (to any node) with the last revision it saw. If that revision is older than the retained
//! history, the answer is 410 `revision_compacted` (or, mid-stream, an `error` line): list
//! again and watch from the listed revision.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::responses::{BadRequest, Unauthorized};
use super::{ApiError, Node, Params};

const HEARTBEAT: Duration = Duration::from_secs(10);
const BATCH: usize = 256;

struct WatchState {
    node: Node,
    after: u64,
    metrics: tokio::sync::watch::Receiver<openraft::RaftMetrics<u64, crate::types::NodeInfo>>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    done: bool,
}

fn line(v: serde_json::Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

enum Next {
    Lines(Bytes, u64),
    Expired(u64),
    Quiet(u64),
}

fn poll_changes(node: &Node, after: u64) -> Next {
    let Ok(state) = node.state.read() else {
        return Next::Expired(0);
    };
    match state.changes_after(after, BATCH) {
        None => Next::Expired(state.revision),
        Some(changes) if changes.is_empty() => Next::Quiet(state.revision),
        Some(changes) => {
            let last = changes.last().map(|c| c.revision).unwrap_or(after);
            let mut buf = Vec::new();
            for c in &changes {
                buf.extend_from_slice(&line(c.to_json()));
            }
            Next::Lines(Bytes::from(buf), last)
        }
    }
}

async fn step(mut st: WatchState) -> Option<(Result<Bytes, Infallible>, WatchState)> {
    if st.done {
        return None;
    }
    loop {
        match poll_changes(&st.node, st.after) {
            Next::Lines(bytes, last) => {
                st.after = last;
                return Some((Ok(bytes), st));
            }
            Next::Expired(rev) => {
                st.done = true;
                let msg = json!({"type": "error", "code": "revision_compacted", "revision": rev,
                    "message": "this watch fell behind the retained history; list again and watch from the listed revision"});
                return Some((Ok(line(msg)), st));
            }
            Next::Quiet(rev) => {
                // Some(true): woken by a change; Some(false): quiet for HEARTBEAT; None: stop.
                let woke = tokio::select! {
                    r = st.metrics.changed() => r.is_ok().then_some(true),
                    _ = st.shutdown.wait_for(|s| *s) => None,
                    _ = tokio::time::sleep(HEARTBEAT) => Some(false),
                };
                match woke {
                    None => return None,
                    Some(true) => {}
                    Some(false) => {
                        return Some((Ok(line(json!({"type": "heartbeat", "revision": rev}))), st));
                    }
                }
            }
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/watch",
    tag = "federation",
    params(("from_revision" = Option<u64>, Query, description = "Send changes after this revision (default: from now)")),
    responses(
        (status = 200, description = "NDJSON stream of changes (`{revision, change}`) and heartbeats", content_type = "application/x-ndjson", body = String),
        BadRequest, Unauthorized
    )
)]
pub(super) async fn watch(State(node): State<Node>, params: Params) -> Result<Response, ApiError> {
    let after: u64 = match params.get("from_revision") {
        None => 0,
        Some(v) => v.parse().map_err(|_| ApiError {
            field: Some("from_revision".into()),
            ..ApiError::bad_request(format!(
                "from_revision must be a non-negative integer, not {v:?}"
            ))
        })?,
    };
    {
        let state = node.state.read().map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "state lock poisoned",
            )
        })?;
        if after < state.oldest_resumable() {
            return Err(ApiError::new(
                StatusCode::GONE,
                "revision_compacted",
                format!(
                    "revision {after} is older than the retained history (oldest resumable {}, current {}); list again and watch from the listed revision",
                    state.oldest_resumable(),
                    state.revision
                ),
            ));
        }
    }
    let current = node.state.read().map(|s| s.revision).unwrap_or(0);
    let st = WatchState {
        metrics: node.raft.metrics(),
        shutdown: node.shutdown.clone(),
        node,
        after,
        done: false,
    };
    // A heartbeat first, so a client knows at once that the stream is live (and where the
    // store is), even when nothing changes for a while.
    let hello = futures::stream::once(async move {
        Ok::<_, Infallible>(line(json!({"type": "heartbeat", "revision": current})))
    });
    let stream = futures::StreamExt::chain(hello, futures::stream::unfold(st, step));
    Ok((
        [
            ("content-type", "application/x-ndjson"),
            ("cache-control", "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
