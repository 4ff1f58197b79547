//! One attempt's target as plain data: which cluster serves it, at which address, and how the
//! hop is made. The plan draws attempts; the clients send them.

use std::sync::Arc;

use crate::balance::Target;
use crate::table::InFlight;

/// How an attempt reaches its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop<'a> {
    /// A local endpoint, over HTTP/1.1 or (`h2`) HTTP/2 prior knowledge.
    Local { h2: bool },
    /// A remote cluster's gateway over HTTP/2, mTLS verifying `trust_domain` when on.
    Remote { trust_domain: &'a str },
}

/// One attempt's target, borrowed from the routing snapshot it was drawn from (nothing is
/// copied per attempt).
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub target: Target,
    /// The cluster that will serve it.
    pub cluster: &'a str,
    /// The endpoint's or remote gateway's `host:port`.
    pub addr: &'a str,
    pub hop: Hop<'a>,
    /// Requests in flight to this target (least-request balancing).
    pub inflight: &'a Arc<InFlight>,
}
