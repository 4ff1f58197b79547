//! The Warden federation store: what every gateway must agree on, replicated by Raft.
//!
//! Layout:
//! - [`model`]: clusters, service exports, trust bundles, and their validation.
//! - [`command`], [`state`]: Raft commands and the pure, deterministic `apply`.
//! - [`clock`]: the wall clock commands are stamped with.
//! - [`types`]: the openraft type configuration.
//! - [`network`], [`rpc`], [`server`]: Raft RPC over HTTP/2 and forwarding to the leader.
//! - [`node`]: writes, linearizable reads and membership through the leader.
//! - [`advertised`]: what renewing gateways said about themselves (in memory only).
//! - [`ratelimit`]: per-source limits for unauthenticated endpoints.
//! - [`limits`]: the bounds every HTTP listener applies.
//! - [`startup`]: wiring a node from its [`config`], and draining it.
//! - [`api`]: the REST API and the watch stream.
//! - [`route`], [`resilience`], [`authn`], [`authz`]: L7 routes, resilience, JWT and L7
//!   authorization policies, and their validation;
//!   [`stored`]: objects kept in the log as JSON documents.
//! - [`wire`], [`paths`]: the API's bodies and paths, shared by the server and its clients.
//! - [`client`]: the typed API client the gateway, the CLI and `warden check` use.
//! - [`trust`]: CAs, SPIFFE identities, mTLS configurations.
//!
//! Depends on `warden-raft-store` for storage; knows nothing of gateways or Kubernetes.

pub mod advertised;
pub mod api;
pub mod audience;
pub mod audit;
pub mod authn;
pub mod authz;
pub mod batch;
pub mod change;
pub mod client;
pub mod clock;
pub mod command;
pub mod config;
pub mod credential;
pub mod dry_run;
pub mod handover;
pub mod head_timeout;
pub mod leader_clock;
pub mod limits;
pub mod lint;
pub mod load;
pub mod member_change;
pub mod mesh_config;
pub mod metrics;
pub mod model;
pub mod network;
pub mod node;
pub mod paths;
pub mod placement;
pub mod ratelimit;
pub mod recent;
pub mod resilience;
pub mod route;
pub mod rpc;
pub mod server;
pub mod signals;
pub mod startup;
pub mod state;
pub mod state_config;
pub mod state_documents;
pub mod state_legacy;
pub mod state_routes;
pub mod stored;
pub mod trust;
pub mod types;
pub mod wire;
