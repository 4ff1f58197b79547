//! Stage "forward": send the planned request, and on failure try another target while the
//! [`Retry`] policy allows — the failed target excluded each time. Each local attempt's
//! outcome goes to the service's pool as a passive health signal. Under a circuit breaker, a
//! target whose cluster is full is passed over (not a retry), and a retry over the breaker's
//! `max_retries` is not made; a breaker that bounds connections sends through the service's
//! own pool, and a request that finds every connection busy is answered overflow.

use std::time::Duration;

use http::Response;
use tokio::time::Instant;

use super::attempt::Hop;
use super::body::{BoxBody, RequestBody, boxed};
use super::context::{ProxyCtx, RequestCtx};
use super::error::ProxyError;
use super::limited::{Bounded, LimitedPool};
use super::plan::Plan;
use super::resilience::count;
use super::respond::stamp;
use super::retry::{Retry, backoff_cap};
use super::view::draws;

/// Sends `plan` with `body`, retrying on other targets as allowed. Fills in where the
/// request went (`rc.dst`, `rc.endpoint`, `rc.retries`).
pub async fn forward(
    ctx: &ProxyCtx,
    rc: &mut RequestCtx,
    plan: &Plan<'_>,
    mut body: RequestBody,
) -> Result<Response<BoxBody>, ProxyError> {
    {
        let s = ctx.tables.settings.load();
        ctx.budget
            .request(s.budget_percent.value, s.min_retries_per_second.value);
    }
    // The deadline runs from the first attempt: reading the client's body is not counted.
    let deadline = Instant::now() + plan.overall;
    let mut retry = Retry::new(
        &ctx.budget,
        plan.max_retries,
        plan.idempotent,
        body.replayable(),
    )
    .only_on(plan.retry_on);
    let over = ctx.cfg.routing.overprovisioning_percent;
    let mut exclude = Vec::new();
    let mut last_err: Option<ProxyError> = None;
    // A 5xx kept in case no other target can be tried.
    let mut kept: Option<Response<BoxBody>> = None;
    // Targets passed over because their cluster's breaker was full (not retries).
    let mut passed_over = 0;
    let breaker = plan
        .breaker
        .as_ref()
        .and_then(|p| Some((&p.source.id, p.breaker.as_ref()?)));
    let bounded = breaker.and_then(|(id, b)| {
        let limits = b.connections.as_ref()?;
        Some(Bounded {
            pool: LimitedPool::of(
                limits,
                Duration::from_millis(ctx.cfg.timeouts.connect_ms),
                ctx.cfg.limits.max_header_bytes,
            ),
            service: plan.key.to_string(),
            policy: id.clone(),
        })
    });
    while let Some(attempt) = plan.view.choose(&ctx.me, over, &exclude, draws()) {
        let cluster_gate = breaker.and_then(|(_, b)| b.cluster(attempt.cluster));
        let _cluster_slot = match cluster_gate.as_ref().map(|g| g.try_admit()) {
            Some(Err(bound)) => {
                if let Some((id, _)) = breaker {
                    count(ctx, plan.key, id, "cluster_overflow");
                    last_err = last_err.or(Some(ProxyError::Overflow {
                        service: plan.key.to_string(),
                        policy: id.clone(),
                        bound: bound.label(),
                    }));
                }
                exclude.push(attempt.target);
                passed_over += 1;
                continue;
            }
            Some(Ok(slot)) => Some(slot),
            None => None,
        };
        let mut _retry_slots = None;
        if exclude.len() > passed_over {
            if Instant::now() >= deadline || !retry.begin_retry() {
                break;
            }
            if let Some((id, b)) = breaker {
                let service = b.service.as_ref().map(|g| g.admit_retry()).transpose();
                let cluster = cluster_gate.as_ref().map(|g| g.admit_retry()).transpose();
                match (service, cluster) {
                    (Ok(s), Ok(c)) => _retry_slots = Some((s, c)),
                    _ => {
                        count(ctx, plan.key, id, "retry_overflow");
                        break;
                    }
                }
            }
            if let Some((base, max)) = plan.backoff {
                let wait =
                    Duration::from_millis(fastrand::u64(0..=backoff_cap(retry.retries, base, max)));
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::time::sleep(wait.min(left)).await;
            }
            rc.retries = retry.retries;
            ctx.metrics
                .retries
                .with_label_values(&[plan.key.to_string().as_str()])
                .inc();
        }
        let Some(b) = body.take() else {
            break; // a streamed body cannot be sent twice
        };
        let req = match plan.request_for(&attempt, b) {
            Ok(r) => r,
            Err(e) => {
                last_err = Some(e);
                break;
            }
        };
        rc.dst = Some(attempt.cluster.to_string());
        rc.endpoint = Some(attempt.addr.to_string());
        let sent_at = Instant::now();
        let sent = {
            let _in_flight = attempt.inflight.track();
            ctx.clients
                .send(
                    ctx.tls.as_deref(),
                    &attempt,
                    req,
                    plan.per_try_until(deadline),
                    bounded.as_ref(),
                )
                .await
        };
        let local = matches!(attempt.hop, Hop::Local { .. });
        match sent {
            Ok(resp) => {
                let status = resp.status();
                if local {
                    let took = sent_at.elapsed().as_micros() as u64;
                    let ok = !status.is_server_error();
                    ctx.signal_timed(plan.key, attempt.addr, ok, false, Some(took));
                }
                let resp = stamp(resp.map(boxed), attempt.cluster);
                if retry.after_status(status, resp.headers()) {
                    exclude.push(attempt.target);
                    kept = Some(resp);
                    continue;
                }
                return Ok(resp);
            }
            // Every connection to the service is busy: no endpoint failed, none is tried next.
            Err(e @ ProxyError::Overflow { .. }) => {
                if let Some((id, _)) = breaker {
                    count(ctx, plan.key, id, "connection_overflow");
                }
                last_err = Some(e);
                break;
            }
            Err(e) => {
                if local {
                    let refused = matches!(e, ProxyError::Connect { refused: true, .. });
                    ctx.signal(plan.key, attempt.addr, false, refused);
                }
                exclude.push(attempt.target);
                let again = retry.after_error(&e);
                last_err = Some(e);
                if !again {
                    break;
                }
            }
        }
    }
    if let Some(r) = kept {
        return Ok(r);
    }
    Err(last_err.unwrap_or_else(|| ProxyError::NoHealthyUpstream(plan.key.to_string())))
}
