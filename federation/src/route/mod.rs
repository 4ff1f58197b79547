//! L7 routes: what a service's traffic matches and where each match goes, in the shape of the
//! Kubernetes Gateway API's `HTTPRoute` (GAMMA: the route is attached to a service, its
//! rules match requests and send them to weighted backends). A backend is a *subset* of a
//! service — its endpoints with given labels — in whichever clusters serve it, so failover
//! stays inside the subset.
//!
//! These types are stored in the Raft log and snapshots (bincode, positional) as well as read
//! and written as JSON by the API: enums are externally tagged or unit-only, no field is
//! skipped when serializing. [`validate`] checks a route before it is proposed and names the
//! field at fault.

mod types;
mod validate;

pub use types::*;
pub use validate::{MAX_PATTERN_BYTES, compile_pattern};

/// Checks a route; the error names the field at fault, e.g.
/// `rules[0].matches[1].headers[0].value`.
/// Whether route `id` is one that cluster `cluster`'s credential may write: the routes a
/// gateway makes from its cluster's Kubernetes objects, `k8s-<cluster>-<12 lowercase hex>`.
/// The fixed-length hex tail keeps clusters apart even when one name prefixes another
/// (`east` may not write `k8s-east-2-…`).
pub fn cluster_owns_route(cluster: &str, id: &str) -> bool {
    let Some(tail) = id
        .strip_prefix("k8s-")
        .and_then(|r| r.strip_prefix(cluster))
        .and_then(|r| r.strip_prefix('-'))
    else {
        return false;
    };
    tail.len() == 12
        && tail
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn validate(route: &Route) -> Result<(), crate::model::FieldError> {
    validate::route(route)
}

#[cfg(test)]
mod tests;
