//! Durable openraft storage for Warden.
//!
//! This crate owns what a Raft member keeps on disk: the log, the vote, the committed log id
//! and the latest state-machine snapshot. It knows nothing about the federation's domain: the
//! state machine itself is any type implementing [`StateMachineCore`], kept in memory and
//! rebuilt on start from the last snapshot plus the committed log.
//!
//! Layout:
//! - [`codec`]: the one place that encodes Raft data (bincode 2 over serde), on disk and on the
//!   wire.
//! - [`db`]: opens the redb file of a data directory and names its tables.
//! - [`log_store`]: [`LogStore`], openraft's `RaftLogStorage` (every append and vote is fsynced
//!   before it is acknowledged).
//! - [`state_machine`]: [`StateMachineStore`], openraft's `RaftStateMachine` with snapshots
//!   persisted in the same file.
//!
//! It must not depend on actix, hyper or kube.

// openraft's storage traits fix `StorageError` (about 185 bytes) as the error type; boxing it
// in our helpers would only add an allocation on the error path.
#![allow(clippy::result_large_err)]

pub mod codec;
pub mod db;
pub mod log_store;
pub mod state_machine;

pub use db::{StoreError, open};
pub use log_store::LogStore;
pub use state_machine::{SharedState, StateMachineCore, StateMachineStore};
