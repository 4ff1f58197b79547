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

use super::common::{Node, Params, state};
use super::error::ApiError;
use super::error::responses::{BadRequest, Unauthorized};
use crate::change::{Change, ChangeEvent};
use crate::wire::{REVISION_COMPACTED, WatchEvent, WatchLine};

const HEARTBEAT: Duration = Duration::from_secs(10);
const BATCH: usize = 256;

struct WatchState {
    node: Node,
    after: u64,
    metrics: tokio::sync::watch::Receiver<openraft::RaftMetrics<u64, crate::types::NodeInfo>>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    done: bool,
}

/// A change as the stream's line.
fn watch_line(c: &Change) -> WatchLine {
    let event = match c.event.clone() {
        ChangeEvent::ClusterPut(cluster) => WatchEvent::ClusterPut { cluster },
        ChangeEvent::ClusterDeleted { name } => WatchEvent::ClusterDeleted { name },
        ChangeEvent::ServicePut(service) => WatchEvent::ServicePut {
            service,
            subsets: None,
            export_to: None,
        },
        ChangeEvent::ServicePutWithSubsets { export, subsets } => WatchEvent::ServicePut {
            service: export,
            subsets: Some(subsets),
            export_to: None,
        },
        ChangeEvent::ServicePutTo {
            export,
            subsets,
            audience,
        } => WatchEvent::ServicePut {
            service: export,
            subsets: Some(subsets),
            export_to: Some(audience.0.export_to),
        },
        ChangeEvent::ServiceDeleted {
            cluster,
            namespace,
            service,
        } => WatchEvent::ServiceDeleted {
            cluster,
            namespace,
            service,
        },
        ChangeEvent::TrustBundlePut(bundle) => WatchEvent::TrustBundlePut { bundle },
        ChangeEvent::TrustBundleDeleted { trust_domain } => {
            WatchEvent::TrustBundleDeleted { trust_domain }
        }
        ChangeEvent::LeaseRenewed(lease) => WatchEvent::LeaseRenewed { lease, load: None },
        ChangeEvent::LeaseRenewedWithLoad { lease, load } => WatchEvent::LeaseRenewed {
            lease,
            load: Some(load.0),
        },
        ChangeEvent::LeaseWithdrawn { cluster } => WatchEvent::LeaseWithdrawn { cluster },
        ChangeEvent::PolicyPut(policy) => WatchEvent::PolicyPut { policy },
        ChangeEvent::PolicyDeleted { id } => WatchEvent::PolicyDeleted { id },
        ChangeEvent::SecurityPolicyPut(policy) => WatchEvent::SecurityPolicyPut { policy },
        ChangeEvent::SecurityPolicyDeleted { id } => WatchEvent::SecurityPolicyDeleted { id },
        ChangeEvent::RoutePut(route) => WatchEvent::RoutePut { route },
        ChangeEvent::RouteDeleted { id } => WatchEvent::RouteDeleted { id },
        ChangeEvent::ResiliencePolicyPut(policy) => WatchEvent::ResiliencePolicyPut {
            policy: Box::new(policy.0),
        },
        ChangeEvent::ResiliencePolicyDeleted { id } => WatchEvent::ResiliencePolicyDeleted { id },
        ChangeEvent::JwtPolicyPut(policy) => WatchEvent::JwtPolicyPut {
            policy: Box::new(policy.0),
        },
        ChangeEvent::JwtPolicyDeleted { id } => WatchEvent::JwtPolicyDeleted { id },
        ChangeEvent::AuthorizationPolicyPut(policy) => WatchEvent::AuthorizationPolicyPut {
            policy: Box::new(policy.0),
        },
        ChangeEvent::AuthorizationPolicyDeleted { id } => {
            WatchEvent::AuthorizationPolicyDeleted { id }
        }
        ChangeEvent::MeshConfigPut(config) => WatchEvent::MeshConfigPut {
            config: Box::new(config.0),
        },
        ChangeEvent::ClusterConfigPut { cluster, config } => WatchEvent::ClusterConfigPut {
            cluster,
            config: Box::new(config.0),
        },
        ChangeEvent::MemberChanged(change) => WatchEvent::MemberChanged { change: change.0 },
    };
    WatchLine {
        revision: c.revision,
        at: Some(c.at),
        event,
    }
}

fn line(l: &WatchLine) -> Bytes {
    // Plain data with string keys: serializing cannot fail.
    let mut s = serde_json::to_string(l).unwrap_or_default();
    s.push('\n');
    Bytes::from(s)
}

fn heartbeat(revision: u64) -> Bytes {
    line(&WatchLine {
        revision,
        at: None,
        event: WatchEvent::Heartbeat,
    })
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
                buf.extend_from_slice(&line(&watch_line(c)));
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
                let msg = WatchLine {
                    revision: rev,
                    at: None,
                    event: WatchEvent::Error {
                        code: REVISION_COMPACTED.into(),
                        message: "this watch fell behind the retained history; list again and watch from the listed revision".into(),
                    },
                };
                return Some((Ok(line(&msg)), st));
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
                        return Some((Ok(heartbeat(rev)), st));
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
    let from: Option<u64> = match params.get("from_revision") {
        None => None,
        Some(v) => Some(v.parse().map_err(|_| {
            ApiError::bad_field(
                "from_revision",
                format!("from_revision must be a non-negative integer, not {v:?}"),
            )
        })?),
    };
    let (after, current) = {
        let state = state(&node)?;
        // Without a revision the stream starts now: only changes after the current one.
        let after = from.unwrap_or(state.revision);
        if after < state.oldest_resumable() {
            return Err(ApiError::new(
                StatusCode::GONE,
                REVISION_COMPACTED,
                format!(
                    "revision {after} is older than the retained history (oldest resumable {}, current {}); list again and watch from the listed revision",
                    state.oldest_resumable(),
                    state.revision
                ),
            ));
        }
        (after, state.revision)
    };
    let st = WatchState {
        metrics: node.raft.metrics(),
        shutdown: node.shutdown.clone(),
        node,
        after,
        done: false,
    };
    // A heartbeat first, so a client knows at once that the stream is live (and where the
    // store is), even when nothing changes for a while.
    let hello = futures::stream::once(async move { Ok::<_, Infallible>(heartbeat(current)) });
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
