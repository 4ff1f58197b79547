//! Raft RPC client: openraft's `RaftNetwork` over HTTP/2 (prior knowledge), bodies encoded by
//! the one codec in `warden_raft_store::codec`.
//!
//! Every call is bounded by openraft's `RPCOption::hard_ttl`; a refused or reset connection is
//! `Unreachable` (openraft backs off), a timeout is `Timeout`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::AnyError;
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use warden_raft_store::codec;

use crate::rpc::{ForwardRequest, ForwardResponse};
use crate::types::{NodeId, NodeInfo, TypeConfig};

/// Paths of the Raft RPC endpoints.
pub mod paths {
    pub const APPEND: &str = "/raft/append";
    pub const VOTE: &str = "/raft/vote";
    pub const SNAPSHOT: &str = "/raft/snapshot";
    pub const FORWARD: &str = "/raft/forward";
}

/// The header on every Raft RPC answer naming what the answering node decodes beyond the
/// base format (`batch`: [`crate::command::Command::Batch`] entries; `member_change`:
/// [`crate::command::Command::RecordMemberChange`] and its change event).
pub const FEATURES_HEADER: &str = "x-warden-raft-features";
/// What this build puts in [`FEATURES_HEADER`].
pub const FEATURES: &str = "batch,member_change";

/// An entry kind a member of an older build may not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    Batch,
    MemberChange,
}

impl Feature {
    fn token(self) -> &'static str {
        match self {
            Feature::Batch => "batch",
            Feature::MemberChange => "member_change",
        }
    }
}

/// Why one RPC failed before an answer could be decoded.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("rpc to {addr} timed out after {after:?}")]
    Timeout { addr: String, after: Duration },
    #[error("rpc to {addr} failed: {source}")]
    Transport {
        addr: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("rpc to {addr} answered HTTP {status}")]
    Status { addr: String, status: u16 },
    #[error("rpc to {addr}: {source}")]
    Codec {
        addr: String,
        #[source]
        source: codec::CodecError,
    },
}

/// An HTTP/2 client shared by every connection to every peer.
#[derive(Clone)]
pub struct RpcClient {
    http: reqwest::Client,
    /// `https` when members talk mTLS, else `http`.
    scheme: &'static str,
    /// Raft addresses whose last answer said they decode batch entries.
    /// What each member said it decodes ([`FEATURES_HEADER`]), by Raft address.
    features: Arc<Mutex<HashMap<String, String>>>,
}

impl RpcClient {
    /// Plaintext h2c, or mTLS when `tls` is given (the peer must prove the federation's trust
    /// domain; this node presents its own certificate).
    pub fn new(tls: Option<rustls::ClientConfig>) -> Result<Self, reqwest::Error> {
        crate::trust::ensure_crypto_provider();
        let builder = reqwest::Client::builder()
            .http2_prior_knowledge()
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60));
        let (builder, scheme) = match tls {
            Some(cfg) => (builder.use_preconfigured_tls(cfg), "https"),
            None => (builder, "http"),
        };
        Ok(Self {
            http: builder.build()?,
            scheme,
            features: Arc::default(),
        })
    }

    /// Whether the member at `raft_addr` said on its last answer that it decodes entries of
    /// kind `f` (no answer yet: no).
    pub fn decodes(&self, raft_addr: &str, f: Feature) -> bool {
        let known = self.features.lock().unwrap_or_else(|p| p.into_inner());
        known
            .get(raft_addr)
            .is_some_and(|said| said.split(',').any(|t| t.trim() == f.token()))
    }

    fn record_features(&self, addr: &str, header: Option<&reqwest::header::HeaderValue>) {
        let said = header.and_then(|v| v.to_str().ok()).unwrap_or("");
        let mut known = self.features.lock().unwrap_or_else(|p| p.into_inner());
        if known.get(addr).map(String::as_str) != Some(said) {
            known.insert(addr.to_string(), said.to_string());
        }
    }

    /// POSTs `req` to `addr` + `path` and decodes the answer, within `ttl`.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, CallError> {
        let body = codec::encode(req).map_err(|source| CallError::Codec {
            addr: addr.to_string(),
            source,
        })?;
        let url = format!("{}://{addr}{path}", self.scheme);
        let fut = async {
            let resp = self
                .http
                .post(&url)
                .header("content-type", "application/octet-stream")
                .body(body)
                .send()
                .await
                .map_err(|source| CallError::Transport {
                    addr: addr.to_string(),
                    source,
                })?;
            self.record_features(addr, resp.headers().get(FEATURES_HEADER));
            if !resp.status().is_success() {
                return Err(CallError::Status {
                    addr: addr.to_string(),
                    status: resp.status().as_u16(),
                });
            }
            let bytes = resp.bytes().await.map_err(|source| CallError::Transport {
                addr: addr.to_string(),
                source,
            })?;
            codec::decode(&bytes).map_err(|source| CallError::Codec {
                addr: addr.to_string(),
                source,
            })
        };
        match tokio::time::timeout(ttl, fut).await {
            Ok(r) => r,
            Err(_) => Err(CallError::Timeout {
                addr: addr.to_string(),
                after: ttl,
            }),
        }
    }

    /// Forwards a request to the leader's Raft RPC port.
    pub async fn forward(
        &self,
        leader: &NodeInfo,
        req: &ForwardRequest,
        ttl: Duration,
    ) -> Result<ForwardResponse, CallError> {
        self.call(&leader.raft_addr, paths::FORWARD, req, ttl).await
    }
}

/// Makes one [`PeerClient`] per target.
pub struct NetworkFactory {
    pub(crate) client: RpcClient,
    pub(crate) self_id: NodeId,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> PeerClient {
        PeerClient {
            client: self.client.clone(),
            self_id: self.self_id,
            target,
            addr: node.raft_addr.clone(),
        }
    }
}

/// RPCs to one peer.
pub struct PeerClient {
    client: RpcClient,
    #[allow(dead_code)]
    self_id: NodeId,
    target: NodeId,
    addr: String,
}

impl PeerClient {
    /// Sends one RPC; `too_large` is the entries hint for a body the peer refused as too large
    /// (AppendEntries only: openraft then sends fewer entries at a time).
    async fn send<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
        too_large: Option<u64>,
    ) -> Result<Resp, RPCError<NodeId, NodeInfo, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let ttl = option.hard_ttl();
        let res: Result<Result<Resp, RaftError<NodeId, E>>, CallError> =
            self.client.call(&self.addr, path, req, ttl).await;
        match res {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(remote)) => Err(RPCError::RemoteError(RemoteError::new(self.target, remote))),
            Err(CallError::Timeout { .. }) => Err(RPCError::Timeout(Timeout {
                action: openraft::RPCTypes::AppendEntries,
                id: self.self_id,
                target: self.target,
                timeout: ttl,
            })),
            Err(e @ CallError::Transport { .. }) => {
                Err(RPCError::Unreachable(Unreachable::new(&AnyError::new(&e))))
            }
            Err(e @ CallError::Status { status: 413, .. }) if too_large.is_some() => {
                let hint = too_large.unwrap_or(1).max(1);
                tracing::warn!(
                    target = self.target,
                    entries = hint,
                    "peer refused a batch as too large; sending fewer entries"
                );
                Err(RPCError::PayloadTooLarge(
                    PayloadTooLarge::new_entries_hint(hint).with_source_error(&e),
                ))
            }
            Err(e) => Err(RPCError::Network(NetworkError::new(&AnyError::new(&e)))),
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        let half = (rpc.entries.len() as u64 / 2).max(1);
        self.send(paths::APPEND, &rpc, &option, Some(half)).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, NodeInfo, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.send(paths::SNAPSHOT, &rpc, &option, None).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        self.send(paths::VOTE, &rpc, &option, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_decodes_batches_only_once_its_last_answer_said_so() {
        let rpc = RpcClient::new(None).unwrap();
        assert!(!rpc.decodes("127.0.0.1:1", Feature::Batch), "no answer yet");
        let says = reqwest::header::HeaderValue::from_static("batch");
        rpc.record_features("127.0.0.1:1", Some(&says));
        assert!(rpc.decodes("127.0.0.1:1", Feature::Batch));
        assert!(!rpc.decodes("127.0.0.1:2", Feature::Batch));
        assert!(!rpc.decodes("127.0.0.1:1", Feature::MemberChange));
        let now = reqwest::header::HeaderValue::from_static(FEATURES);
        rpc.record_features("127.0.0.1:1", Some(&now));
        assert!(rpc.decodes("127.0.0.1:1", Feature::MemberChange));
        // Restarted from an older build: its answers carry no header.
        rpc.record_features("127.0.0.1:1", None);
        assert!(!rpc.decodes("127.0.0.1:1", Feature::Batch));
        assert!(!rpc.decodes("127.0.0.1:1", Feature::MemberChange));
    }
}
