//! The federation node's configuration file (TOML). See `docs/examples/federation-1.toml`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::types::NodeId;

/// One federation node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Unique, stable id of this member (never reused for another machine).
    pub node_id: NodeId,
    /// Where the log, vote and snapshots live.
    pub data_dir: PathBuf,
    /// REST API listen address; port 0 picks a free port.
    #[serde(default = "default_api_listen")]
    pub api_listen: String,
    /// Raft RPC listen address.
    #[serde(default = "default_raft_listen")]
    pub raft_listen: String,
    /// Address other members and clients use for the API; defaults to the bound address.
    pub api_advertise: Option<String>,
    /// Address other members use for Raft RPC; defaults to the bound address.
    pub raft_advertise: Option<String>,
    /// Bearer token for writes. `WARDEN_ADMIN_TOKEN` in the environment takes precedence.
    pub admin_token: Option<String>,
    /// Start a new federation with this node (and `initial_members`) if its store is empty.
    #[serde(default)]
    pub bootstrap: bool,
    /// Other founding members, used only with `bootstrap`.
    #[serde(default)]
    pub initial_members: Vec<MemberConfig>,
    /// How long a write or consistent read may wait for a quorum before answering 503.
    #[serde(default = "default_write_timeout_ms")]
    pub write_timeout_ms: u64,
    #[serde(default)]
    pub raft: RaftTuning,
    /// mTLS between federation nodes on the Raft port (mandatory when set); also serves the
    /// REST API over TLS.
    pub tls: Option<NodeTls>,
    /// SPIFFE IDs allowed to write through the API without the bearer token, by presenting
    /// their client certificate (needs `tls`), e.g. `spiffe://federation.example/admin/ops`.
    #[serde(default)]
    pub admin_spiffe_ids: Vec<String>,
    /// On SIGTERM/SIGINT: how long requests in flight may take to finish after the node
    /// stops accepting connections, before it closes them and stops Raft.
    #[serde(default = "default_drain_timeout_ms")]
    pub drain_timeout_ms: u64,
    /// Accept listening in plaintext on a non-loopback address without `[tls]`: anyone who can
    /// reach the Raft port could then act as a member. Only for a network nobody else reaches.
    #[serde(default)]
    pub insecure_plaintext: bool,
    /// Bounds on what a peer may send to the API and Raft listeners.
    #[serde(default)]
    pub limits: NodeLimits,
}

fn default_drain_timeout_ms() -> u64 {
    10_000
}

/// This node's SPIFFE identity and the federation's CA bundle. Every member's certificate must
/// be issued in the same trust domain (the federation's own, e.g. `federation.example`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca_bundle: PathBuf,
}

/// A founding member.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    pub id: NodeId,
    pub raft_addr: String,
    pub api_addr: String,
}

/// Raft timing; defaults suit a LAN or one machine. Across regions raise them with the RTT.
///
/// openraft also uses `heartbeat_ms` as the timeout of each AppendEntries RPC, so it must
/// exceed a follower's worst fsync-plus-RTT under load, or replication times out and retries.
///
/// A follower that stops hearing from the leader starts an election only after the leader's
/// lease (`election_timeout_max_ms`) *plus* a random election timeout: a dead leader is
/// replaced after 1.5–2× `election_timeout_max_ms`, and twice that when the first candidate's
/// log is behind. The defaults (50 / 200–400 ms) replace a SIGKILLed leader in 0.7–0.9 s
/// (`bench/raft-failover.sh`; 1000–2000 ms took 3.6–4 s).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftTuning {
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Build a snapshot (and compact the log) after this many applied entries.
    pub snapshot_after_logs: u64,
    /// Entries kept in the log behind a snapshot, so a slightly lagging follower needs no snapshot.
    pub keep_logs_after_snapshot: u64,
    /// Largest Raft RPC body a node accepts (at most the codec's 64 MiB decode limit). A leader
    /// whose batch is refused as too large sends fewer entries at a time.
    pub max_rpc_bytes: usize,
}

impl Default for RaftTuning {
    fn default() -> Self {
        Self {
            heartbeat_ms: 50,
            election_timeout_min_ms: 200,
            election_timeout_max_ms: 400,
            snapshot_after_logs: 10_000,
            keep_logs_after_snapshot: 1_000,
            max_rpc_bytes: warden_raft_store::codec::MAX_DECODE_BYTES,
        }
    }
}

/// The bounds of the API and Raft listeners (`[limits]`); see `docs/security.md`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeLimits {
    /// HTTP/1.1: a request head must arrive within this (408 after it); an idle keep-alive
    /// connection waits at most this long for its next request.
    pub header_read_timeout_ms: u64,
    /// Largest request head: 431 beyond it (HTTP/1.1); HTTP/2's header list size.
    pub max_header_bytes: usize,
    /// API connections served at once; more wait in the kernel's backlog.
    pub max_api_connections: usize,
    /// Raft connections served at once; more wait in the kernel's backlog.
    pub max_raft_connections: usize,
    /// A JSON request body must arrive within this (408 `body_timeout` after it).
    pub body_read_timeout_ms: u64,
    /// HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// HTTP/2 streams a client may reset before they were accepted; beyond it GOAWAY.
    pub max_pending_reset_streams: usize,
    /// HTTP/2 ping interval, and how long a ping may wait for its answer.
    pub h2_keepalive_ms: u64,
}

impl Default for NodeLimits {
    fn default() -> Self {
        let http = crate::limits::ServerLimits::default();
        Self {
            header_read_timeout_ms: http.header_read_timeout.as_millis() as u64,
            max_header_bytes: http.max_header_bytes,
            max_api_connections: 1024,
            max_raft_connections: 256,
            body_read_timeout_ms: 30_000,
            max_concurrent_streams: http.max_concurrent_streams,
            max_pending_reset_streams: http.max_pending_reset_streams,
            h2_keepalive_ms: http.h2_keepalive.as_millis() as u64,
        }
    }
}

impl NodeLimits {
    fn validate(&self) -> Result<(), ConfigError> {
        let zero = [
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("body_read_timeout_ms", self.body_read_timeout_ms),
            ("h2_keepalive_ms", self.h2_keepalive_ms),
            ("max_api_connections", self.max_api_connections as u64),
            ("max_raft_connections", self.max_raft_connections as u64),
            (
                "max_concurrent_streams",
                u64::from(self.max_concurrent_streams),
            ),
        ]
        .into_iter()
        .find(|(_, v)| *v == 0);
        if let Some((name, _)) = zero {
            return Err(ConfigError::Invalid(format!("limits.{name} must be > 0")));
        }
        if self.max_header_bytes < 8192 {
            return Err(ConfigError::Invalid(
                "limits.max_header_bytes must be >= 8192".into(),
            ));
        }
        Ok(())
    }

    /// The HTTP server bounds these say.
    pub fn server(&self) -> crate::limits::ServerLimits {
        use std::time::Duration;
        crate::limits::ServerLimits {
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            max_header_bytes: self.max_header_bytes,
            max_concurrent_streams: self.max_concurrent_streams,
            max_pending_reset_streams: self.max_pending_reset_streams,
            h2_keepalive: Duration::from_millis(self.h2_keepalive_ms),
        }
    }
}

/// Whether a listen address (`host:port`) is on loopback only; a wildcard is not.
pub fn is_loopback(addr: &str) -> bool {
    if let Ok(a) = addr.parse::<std::net::SocketAddr>() {
        return a.ip().is_loopback();
    }
    matches!(addr.rsplit_once(':'), Some(("localhost", _)))
}

fn default_api_listen() -> String {
    "127.0.0.1:7700".into()
}
fn default_raft_listen() -> String {
    "127.0.0.1:7701".into()
}
fn default_write_timeout_ms() -> u64 {
    5_000
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Reads and parses a TOML file, naming the file in every error (shared by every role's config).
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.display().to_string(),
        source,
    })
}

impl NodeConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let cfg: NodeConfig = read_toml(path)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let r = &self.raft;
        if r.heartbeat_ms == 0 || r.election_timeout_min_ms <= r.heartbeat_ms {
            return Err(ConfigError::Invalid(
                "raft.election_timeout_min_ms must be greater than raft.heartbeat_ms > 0".into(),
            ));
        }
        if r.election_timeout_max_ms <= r.election_timeout_min_ms {
            return Err(ConfigError::Invalid(
                "raft.election_timeout_max_ms must be greater than raft.election_timeout_min_ms"
                    .into(),
            ));
        }
        if self.write_timeout_ms == 0 {
            return Err(ConfigError::Invalid("write_timeout_ms must be > 0".into()));
        }
        if self.initial_members.iter().any(|m| m.id == self.node_id) {
            return Err(ConfigError::Invalid(
                "initial_members must not list this node itself".into(),
            ));
        }
        if !(64 * 1024..=warden_raft_store::codec::MAX_DECODE_BYTES).contains(&r.max_rpc_bytes) {
            return Err(ConfigError::Invalid(format!(
                "raft.max_rpc_bytes must be 65536-{}",
                warden_raft_store::codec::MAX_DECODE_BYTES
            )));
        }
        self.limits.validate()?;
        if self.tls.is_none() && !self.insecure_plaintext {
            for (what, addr) in [
                ("raft_listen", &self.raft_listen),
                ("api_listen", &self.api_listen),
            ] {
                if !is_loopback(addr) {
                    return Err(ConfigError::Invalid(format!(
                        "{what} {addr} is not a loopback address and there is no [tls] table: anyone who reaches it could act as a member (Raft) or read the store; add [tls], or set insecure_plaintext = true on a network nobody else reaches"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Plaintext listeners on addresses other than loopback (allowed by `insecure_plaintext`).
    pub fn plaintext_exposed(&self) -> Vec<&str> {
        if self.tls.is_some() {
            return Vec::new();
        }
        [self.raft_listen.as_str(), self.api_listen.as_str()]
            .into_iter()
            .filter(|a| !is_loopback(a))
            .collect()
    }

    /// The admin token: the environment's `WARDEN_ADMIN_TOKEN`, else the file's.
    pub fn resolve_admin_token(&self) -> Result<String, ConfigError> {
        let token = std::env::var("WARDEN_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .or_else(|| self.admin_token.clone())
            .ok_or_else(|| {
                ConfigError::Invalid(
                    "no admin token: set admin_token in the config or WARDEN_ADMIN_TOKEN".into(),
                )
            })?;
        if token.len() < 16 {
            return Err(ConfigError::Invalid(
                "the admin token must be at least 16 characters".into(),
            ));
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_parses_and_states_the_default_limits() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/federation-1.toml");
        let cfg = NodeConfig::load(&path).unwrap();
        let (l, d) = (&cfg.limits, NodeLimits::default());
        assert_eq!(
            (
                l.header_read_timeout_ms,
                l.max_header_bytes,
                l.body_read_timeout_ms
            ),
            (
                d.header_read_timeout_ms,
                d.max_header_bytes,
                d.body_read_timeout_ms
            )
        );
        assert_eq!(
            (
                l.max_api_connections,
                l.max_raft_connections,
                l.max_concurrent_streams
            ),
            (
                d.max_api_connections,
                d.max_raft_connections,
                d.max_concurrent_streams
            )
        );
        assert_eq!(
            (l.max_pending_reset_streams, l.h2_keepalive_ms),
            (d.max_pending_reset_streams, d.h2_keepalive_ms)
        );
        let mut bad = cfg.clone();
        bad.limits.max_api_connections = 0;
        let e = bad.validate().unwrap_err().to_string();
        assert!(e.contains("limits.max_api_connections"), "{e}");
    }
}
