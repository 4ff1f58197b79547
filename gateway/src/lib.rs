//! The Warden east-west gateway.
//!
//! Layout:
//! - [`config`]: the gateway's TOML configuration.
//! - [`table`]: immutable routing snapshots (`ArcSwap`) the data path reads lock-free.
//! - [`balance`], [`health`]: pure algorithms (priorities, weights, least-request; probe
//!   thresholds, outlier ejection) — no I/O, unit-tested.
//! - [`proxy`]: the data path (hyper): outbound and east-west listeners, forwarding, errors.
//! - [`control`]: supervised actix actors: listeners, upstream pools, health checker, catalog
//!   watcher, discovery; they own lifecycle and publish snapshots.
//! - [`admin`]: `/healthz`, `/readyz`, `/metrics`, `/config_dump`, `/explain`.
//! - [`metrics`]: the Prometheus registry and metric families.
//!
//! The data path never awaits an actor; actors never hold hyper types.

pub mod admin;
pub mod authz;
pub mod balance;
pub mod config;
pub mod control;
pub mod health;
pub mod metrics;
pub mod proxy;
pub mod table;
