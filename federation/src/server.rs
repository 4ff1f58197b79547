//! The two listeners of a federation node: Raft RPC (peer-to-peer) and the REST API.
//!
//! Raft RPC bodies are decoded by the shared codec; a body that does not decode gets 400 and
//! never reaches Raft. Both servers speak HTTP/1.1 and HTTP/2 (prior knowledge). When the
//! node shuts down they stop accepting, ask every connection to close once its requests in
//! flight are answered (HTTP/2 GOAWAY, HTTP/1.1 `connection: close`), and end when all have.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio::sync::watch;
use warden_raft_store::codec;

use crate::network::paths;
use crate::node::FederationNode;
use crate::rpc::ForwardRequest;
use crate::trust::spiffe::PeerIdentity;
use crate::types::{NodeId, TypeConfig};

type Node = Arc<FederationNode>;

fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, codec::CodecError> {
    codec::decode(body).inspect_err(|e| tracing::warn!(error = %e, "undecodable raft rpc body"))
}

fn undecodable(e: codec::CodecError) -> Response {
    (StatusCode::BAD_REQUEST, format!("undecodable body: {e}")).into_response()
}

fn encode_reply<T: Serialize>(value: &T) -> Response {
    match codec::encode(value) {
        Ok(bytes) => (
            [
                ("content-type", "application/octet-stream"),
                (crate::network::FEATURES_HEADER, crate::network::FEATURES),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn append(State(node): State<Node>, body: Bytes) -> Response {
    let req: AppendEntriesRequest<TypeConfig> = match decode_body(&body) {
        Ok(r) => r,
        Err(e) => return undecodable(e),
    };
    encode_reply(&node.raft.append_entries(req).await)
}

async fn vote(State(node): State<Node>, body: Bytes) -> Response {
    let req: VoteRequest<NodeId> = match decode_body(&body) {
        Ok(r) => r,
        Err(e) => return undecodable(e),
    };
    encode_reply(&node.raft.vote(req).await)
}

async fn snapshot(State(node): State<Node>, body: Bytes) -> Response {
    let req: InstallSnapshotRequest<TypeConfig> = match decode_body(&body) {
        Ok(r) => r,
        Err(e) => return undecodable(e),
    };
    // A chunk past the largest snapshot a node can read would only make it allocate.
    let end = req.offset.saturating_add(req.data.len() as u64);
    if end > codec::MAX_DECODE_BYTES as u64 {
        tracing::warn!(
            offset = req.offset,
            "snapshot chunk beyond the largest readable snapshot refused"
        );
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "a snapshot chunk ending at byte {end} is beyond the largest snapshot ({} bytes)",
                codec::MAX_DECODE_BYTES
            ),
        )
            .into_response();
    }
    encode_reply(&node.raft.install_snapshot(req).await)
}

async fn forward(State(node): State<Node>, body: Bytes) -> Response {
    let req: ForwardRequest = match decode_body(&body) {
        Ok(r) => r,
        Err(e) => return undecodable(e),
    };
    // Bound the leader's own work too, so a forwarded request never outlives its caller much.
    let ttl = node.write_timeout.max(std::time::Duration::from_secs(30));
    let resp = match tokio::time::timeout(ttl, node.run_local(&req)).await {
        Ok(r) => r,
        Err(_) => crate::rpc::ForwardResponse::Failed {
            unavailable: true,
            message: "leader did not commit in time".into(),
        },
    };
    encode_reply(&resp)
}

/// Whether `id` is a current member's identity (`spiffe://<federation>/node/<id>`). A node
/// that has no membership yet (a learner about to be added) accepts any node identity of the
/// federation: its leader is the first to call it.
fn is_member(node: &FederationNode, id: &str, domain: &str) -> bool {
    let Some(n) = id
        .strip_prefix("spiffe://")
        .and_then(|r| r.strip_prefix(domain))
        .and_then(|r| r.strip_prefix("/node/"))
        .and_then(|n| n.parse::<NodeId>().ok())
    else {
        return false;
    };
    let metrics = node.raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership();
    let mut known = membership.nodes().map(|(i, _)| *i).peekable();
    known.peek().is_none() || membership.get_node(&n).is_some()
}

/// With mTLS, only current members may call Raft RPCs: an admin or gateway identity of the
/// federation's domain may not.
async fn members_only(
    State(node): State<Node>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(domain) = node.own_domain.as_deref() {
        let caller = req
            .extensions()
            .get::<PeerIdentity>()
            .and_then(|p| p.0.clone());
        let allowed = caller
            .as_deref()
            .is_some_and(|id| is_member(&node, id, domain));
        if !allowed {
            tracing::warn!(target: "audit", caller = ?caller, path = %req.uri().path(), "raft rpc from a non-member refused");
            return (
                StatusCode::FORBIDDEN,
                format!("only members (spiffe://{domain}/node/<id>) may call Raft RPCs"),
            )
                .into_response();
        }
    }
    next.run(req).await
}

/// The Raft RPC router.
pub fn raft_router(node: Node) -> Router {
    Router::new()
        .route(paths::APPEND, post(append))
        .route(paths::VOTE, post(vote))
        .route(paths::SNAPSHOT, post(snapshot))
        .route(paths::FORWARD, post(forward))
        .layer(axum::middleware::from_fn_with_state(
            node.clone(),
            members_only,
        ))
        .layer(DefaultBodyLimit::max(node.max_rpc_bytes))
        .with_state(node)
}

/// Serves Raft RPC until shutdown: h2c, or mTLS (client certificate mandatory) with `tls`.
pub fn spawn_raft_server(
    listener: TcpListener,
    node: Node,
    stop: watch::Receiver<bool>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> tokio::task::JoinHandle<()> {
    let app = raft_router(node.clone());
    let max = node.limits.max_raft_connections;
    tokio::spawn(serve(listener, app, tls, stop, node, "raft", max))
}

/// Serves the REST API until shutdown: plain HTTP, or HTTPS with `tls`.
pub fn spawn_api_server(
    listener: TcpListener,
    node: Node,
    stop: watch::Receiver<bool>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> tokio::task::JoinHandle<()> {
    let app = crate::api::router(node.clone());
    let max = node.limits.max_api_connections;
    tokio::spawn(serve(listener, app, tls, stop, node, "api", max))
}

/// Accepts connections (at most `max_connections` at once), runs the TLS handshake when
/// configured (a failed one — no or untrusted certificate, garbage — is counted and dropped),
/// and serves `app` on each with the listener limits, until shutdown; then waits for the
/// connections to finish their requests. Each request carries the peer's address and verified
/// identity (the API's auth reads both; Raft RPC admits members only).
async fn serve(
    listener: TcpListener,
    app: Router,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
    node: Node,
    listener_name: &'static str,
    max_connections: usize,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = Arc::new(node.limits.server().builder());
    let body_deadline = crate::api::body::BodyDeadline(std::time::Duration::from_millis(
        node.limits.body_read_timeout_ms,
    ));
    let capacity = Arc::new(tokio::sync::Semaphore::new(max_connections));
    loop {
        let permit = tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
            p = capacity.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(listener = listener_name, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (acceptor, app, node, builder) =
            (acceptor.clone(), app.clone(), node.clone(), builder.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            // Small request/response exchanges: Nagle plus delayed ACKs would add tens of ms.
            let _ = tcp.set_nodelay(true);
            let app = app
                .layer(axum::Extension(axum::extract::ConnectInfo(peer)))
                .layer(axum::Extension(body_deadline));
            let Some(acceptor) = acceptor else {
                let app = app.layer(axum::Extension(PeerIdentity(None)));
                let svc = hyper_util::service::TowerToHyperService::new(app);
                let (tcp, head) = crate::head_timeout::HeadWatch::new(tcp);
                let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(tcp), svc);
                // Kept until the end is known, so a timed-out head is answered 408 on close.
                let conn = watcher.watch(conn);
                tokio::pin!(conn);
                if let Err(e) = conn.as_mut().await {
                    head.ended_with(&*e);
                }
                return;
            };
            let handshake =
                tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp));
            let tls = match handshake.await {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => {
                    let reason = crate::trust::handshake_reason(&e);
                    node.metrics
                        .tls_errors
                        .with_label_values(&[listener_name, reason])
                        .inc();
                    tracing::warn!(%peer, listener = listener_name, reason, error = %e, "tls handshake refused");
                    return;
                }
                Err(_) => {
                    node.metrics
                        .tls_errors
                        .with_label_values(&[listener_name, "timeout"])
                        .inc();
                    return;
                }
            };
            let id = crate::trust::tls::peer_id(tls.get_ref().1.peer_certificates());
            let app = app.layer(axum::Extension(PeerIdentity(id.map(|i| i.to_string()))));
            let svc = hyper_util::service::TowerToHyperService::new(app);
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(tls), svc);
            let _ = watcher.watch(conn).await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
