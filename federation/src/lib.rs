//! The Warden federation store: what every gateway must agree on, replicated by Raft.
//!
//! Layout:
//! - [`model`]: clusters, service exports, trust bundles, and their validation.
//! - [`command`], [`state`]: Raft commands and the pure, deterministic `apply`.
//! - [`types`]: the openraft type configuration.
//! - [`network`], [`rpc`], [`server`]: Raft RPC over HTTP/2 and forwarding to the leader.
//! - [`node`]: wiring a node from its [`config`]; writes, linearizable reads, membership.
//! - [`api`]: the REST API and the watch stream.
//! - [`client`]: the API client the CLI (and later the gateway) uses.
//!
//! Depends on `warden-raft-store` for storage; knows nothing of gateways or Kubernetes.

pub mod api;
pub mod client;
pub mod command;
pub mod config;
pub mod metrics;
pub mod model;
pub mod network;
pub mod node;
pub mod rpc;
pub mod server;
pub mod state;
pub mod trust;
pub mod types;
