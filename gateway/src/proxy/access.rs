//! Stage "authorize on L7 attributes": the service's authorization policies
//! ([`crate::access`]) on the request's method, path, headers, verified source cluster,
//! calling gateway or workload identity and verified JWT claims — on both listeners, after the JWT stage.
//! A denial is 403 `forbidden`, counted in `warden_authz_denied_total` and written once on the
//! `audit` target.

use http::request::Parts;

use super::context::{Listener, ProxyCtx, RequestCtx};
use super::error::ProxyError;
use super::inbound::deny;
use crate::access::{Attributes, Verdict, decide};
use crate::key::ServiceKey;

/// The policy label of a denial no allow policy answered.
pub const DEFAULT_DENY: &str = "default-deny";

pub fn authorize(
    ctx: &ProxyCtx,
    rc: &RequestCtx,
    key: &ServiceKey,
    head: &Parts,
) -> Result<(), ProxyError> {
    let remote = ctx.tables.remote.load();
    let Some(policies) = remote.authorization.get(key) else {
        return Ok(());
    };
    let spiffe = rc.peer.as_ref().map(|p| p.to_string());
    let workload = rc.workload.as_ref().map(|p| p.to_string());
    let attrs = Attributes {
        method: &head.method,
        path: head.uri.path(),
        headers: &head.headers,
        source_cluster: rc.src_cluster.as_deref(),
        spiffe_id: spiffe.as_deref(),
        claims: rc.claims.as_deref(),
        workload: workload.as_deref(),
        caller_known_here: rc.listener == Listener::Outbound,
    };
    let Verdict::Deny(by) = decide(policies, &attrs) else {
        return Ok(());
    };
    let policy = by.unwrap_or_else(|| DEFAULT_DENY.to_string());
    let caller = spiffe
        .or(workload)
        .unwrap_or_else(|| format!("cluster {}", rc.src_label()));
    Err(deny(ctx, key, caller, rc.src_cluster.clone(), &policy))
}
