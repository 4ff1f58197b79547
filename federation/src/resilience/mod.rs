//! Resilience policies: circuit breakers, local rate limits and fault injection for one
//! service's requests, or for the requests one rule of its route matched. Each gateway applies
//! them with its own counters and buckets (see `docs/traffic.md`).
//!
//! Unlike routes, a policy is stored in the Raft log and snapshots as its JSON document
//! ([`crate::stored::Stored`]): fields added later, with serde defaults, read the entries an
//! older build wrote without another legacy state shape. [`validate`] checks a policy before
//! it is proposed and names the field at fault.

mod types;
mod validate;

pub use types::*;
pub use validate::{MAX_DELAY_MS, validate};

/// The `x-warden-fault` request header (honoured only where a policy's `header_trigger` is on).
pub const FAULT_HEADER: &str = "x-warden-fault";

#[cfg(test)]
mod tests;
