//! Stage "mirror": where a resilience policy asks for it, a share of requests is copied once,
//! on the outbound listener, to another service or subset — fire-and-forget in its own task,
//! the copy's answer read and discarded. Copies are bounded per policy in flight
//! (`max_in_flight`: over it no copy is made) and in body size (a larger or streamed body is
//! not copied); a copy carries `warden-mirror: 1` and is counted by its outcome. Nothing here
//! waits on the copy, so it never slows or fails the request it copies.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use http_body_util::BodyExt;

use super::attempt::{Attempt, Hop};
use super::body::{RequestBody, full};
use super::context::{Listener, ProxyCtx, RequestCtx};
use super::plan::{Addressed, Plan};
use super::resilience::{Acting, count};
use super::rules::subset_value;
use super::view::{ServiceView, draws};
use crate::balance::Target;
use crate::key::ServiceKey;
use crate::table::InFlight;

/// The header marking a copy.
pub const MIRROR_HEADER: &str = "warden-mirror";

/// An attempt's target, owned, so that the copy's task outlives the request's snapshot.
struct OwnedAttempt {
    target: Target,
    cluster: String,
    addr: String,
    /// `Some(trust domain)` for a remote gateway, else the local endpoint's HTTP/2 flag.
    remote: Option<String>,
    h2: bool,
    inflight: Arc<InFlight>,
}

impl OwnedAttempt {
    fn of(a: &Attempt<'_>) -> Self {
        let (remote, h2) = match a.hop {
            Hop::Local { h2 } => (None, h2),
            Hop::Remote { trust_domain } => (Some(trust_domain.to_string()), true),
        };
        Self {
            target: a.target,
            cluster: a.cluster.to_string(),
            addr: a.addr.to_string(),
            remote,
            h2,
            inflight: a.inflight.clone(),
        }
    }

    fn attempt(&self) -> Attempt<'_> {
        Attempt {
            target: self.target,
            cluster: &self.cluster,
            addr: &self.addr,
            hop: match &self.remote {
                Some(td) => Hop::Remote { trust_domain: td },
                None => Hop::Local { h2: self.h2 },
            },
            inflight: &self.inflight,
        }
    }
}

/// Copies the request planned as `plan` with `body` when the policy acting on `key` (and the
/// matched `rule`) says so.
pub fn copy(
    ctx: &Arc<ProxyCtx>,
    rc: &RequestCtx,
    acting: &Acting,
    key: &ServiceKey,
    rule: Option<&str>,
    plan: &Plan<'_>,
    body: &RequestBody,
) {
    if rc.listener != Listener::Outbound {
        return;
    }
    let Some((policy, m)) = acting.mirror(rule) else {
        return;
    };
    if fastrand::u32(..1_000_000) >= m.ppm {
        return;
    }
    let bytes = match body {
        RequestBody::Buffered(b) if b.len() as u64 <= m.max_body_bytes => b.clone(),
        _ => return count(ctx, key, policy, "mirror_skipped"),
    };
    let Ok(permit) = m.permits.clone().try_acquire_owned() else {
        return count(ctx, key, policy, "mirror_dropped");
    };
    let mut view = ServiceView::load(&ctx.tables, &m.service, Listener::Outbound);
    if !m.subset.is_empty() {
        view = view.restrict(&m.subset);
    }
    let over = ctx.cfg.routing.overprovisioning_percent;
    let Some(attempt) = view.choose(&ctx.me, over, &[], draws()) else {
        return count(ctx, key, policy, "mirror_failed");
    };
    let mut head = plan.head.clone();
    head.headers
        .insert(MIRROR_HEADER, HeaderValue::from_static("1"));
    let subset = subset_value(&m.subset);
    let to = Addressed {
        key: &m.service,
        source_cluster: plan.source_cluster,
        subset: subset.as_ref(),
        port: None,
        target: None,
    };
    let Ok(req) = to.request(&head, &attempt, full(bytes)) else {
        return count(ctx, key, policy, "mirror_failed");
    };
    let owned = OwnedAttempt::of(&attempt);
    let (ctx, key, policy) = (ctx.clone(), key.clone(), policy.to_string());
    let per_try = plan.per_try;
    tokio::spawn(async move {
        let _permit = permit;
        let attempt = owned.attempt();
        let _in_flight = attempt.inflight.track();
        let sent = ctx
            .clients
            .send(ctx.tls.as_deref(), &attempt, req, per_try, None)
            .await;
        let outcome = match sent {
            Ok(resp) => {
                discard(resp.into_body(), per_try).await;
                "mirrored"
            }
            Err(_) => "mirror_failed",
        };
        count(&ctx, &key, &policy, outcome);
    });
}

/// Reads an answer's body to its end (keeping the connection reusable), within `limit`.
async fn discard(mut body: hyper::body::Incoming, limit: Duration) {
    let _ = tokio::time::timeout(limit, async {
        while let Some(Ok(_)) = body.frame().await {}
    })
    .await;
}
