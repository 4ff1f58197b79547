//! The Warden east-west gateway.
//!
//! Layout:
//! - [`config`]: the gateway's TOML configuration.
//! - [`key`]: [`key::ServiceKey`], a service's name in the mesh.
//! - [`table`]: immutable routing snapshots (`ArcSwap`) the data path reads lock-free.
//! - [`balance`], [`health`]: pure algorithms (priorities, weights, least-request; probe
//!   thresholds, outlier ejection) — no I/O, unit-tested.
//! - [`proxy`]: the data path (hyper): the request path as named stages, from accept to the
//!   access line.
//! - [`control`]: supervised actix actors: listeners, upstream pools, health checker, catalog
//!   watcher, publisher, discovery; they own lifecycle and publish snapshots.
//! - [`drain`]: the graceful-shutdown signal connections watch.
//! - [`admin`]: `/healthz`, `/readyz`, `/metrics`, `/config_dump`, `/explain`.
//! - [`metrics`]: the Prometheus registry and metric families.
//! - [`telemetry`]: sampled and failed requests: the ring of recent ones, OTLP span export.
//!
//! The data path never awaits an actor; actors never hold hyper types.

pub mod access;
pub mod admin;
pub mod authn;
pub mod authz;
pub mod balance;
pub mod config;
pub mod control;
pub mod drain;
pub mod health;
pub mod key;
pub mod metrics;
pub mod proxy;
pub mod resilience;
pub mod route;
pub mod settings;
pub mod signals;
pub mod table;
pub mod telemetry;
