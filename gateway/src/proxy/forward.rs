//! Stage "forward": send the planned request, and on failure try another target while the
//! [`Retry`] policy allows — the failed target excluded each time. Each local attempt's
//! outcome goes to the service's pool as a passive health signal. Under a circuit breaker, a
//! target whose cluster is full is passed over (not a retry), and a retry over the breaker's
//! `max_retries` is not made; a breaker that bounds connections sends through the service's
//! own pool, and a request that finds every connection busy is answered overflow.

use std::time::Duration;

use http::{Response, StatusCode};
use tokio::time::Instant;
use warden_federation::route::RetryOn;

use super::attempt::Hop;
use super::body::{BoxBody, RequestBody, boxed};
use super::budget::RetryBudget;
use super::context::{ProxyCtx, RequestCtx};
use super::error::ProxyError;
use super::limited::{Bounded, LimitedPool};
use super::plan::Plan;
use super::resilience::count;
use super::respond::stamp;
use super::view::draws;

/// Whether a request may be tried again. A retry after a connect failure is free (the
/// request never left, so any method may go again); a retry of a request an upstream saw
/// needs an idempotent method and a buffered body, and draws on the shared budget.
#[derive(Debug)]
pub struct Retry<'a> {
    budget: &'a RetryBudget,
    max_retries: u32,
    idempotent: bool,
    replayable: bool,
    /// A route rule's `retry.on`; `None`: the gateway's rule (any 5xx, any failure).
    on: Option<&'a [RetryOn]>,
    /// Retries taken so far.
    pub retries: u32,
    /// The last failed attempt reached its upstream.
    sent: bool,
}

impl<'a> Retry<'a> {
    pub fn new(
        budget: &'a RetryBudget,
        max_retries: u32,
        idempotent: bool,
        replayable: bool,
    ) -> Self {
        Self {
            budget,
            max_retries,
            idempotent,
            replayable,
            on: None,
            retries: 0,
            sent: false,
        }
    }

    /// Retries only on `on` (a route rule's conditions). A connect failure is always tried
    /// elsewhere: failing over from a target that is not there is the gateway's job.
    pub fn only_on(mut self, on: Option<&'a [RetryOn]>) -> Self {
        self.on = on;
        self
    }

    fn left(&self) -> bool {
        self.retries < self.max_retries
    }

    /// After an answer with `status` (and `headers`, for a gRPC status): should another
    /// target be tried instead?
    pub fn after_status(&mut self, status: StatusCode, headers: &http::HeaderMap) -> bool {
        self.sent = true;
        let retriable = match self.on {
            None => status.is_server_error(),
            Some(on) => {
                let grpc = headers
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u8>().ok());
                on.iter().any(|c| match c {
                    RetryOn::Status5xx => status.is_server_error(),
                    RetryOn::GatewayError => matches!(status.as_u16(), 502..=504),
                    RetryOn::GrpcUnavailable => grpc == Some(14),
                    RetryOn::GrpcResourceExhausted => grpc == Some(8),
                    RetryOn::GrpcCancelled => grpc == Some(1),
                    RetryOn::ConnectFailure | RetryOn::Reset => false,
                })
            }
        };
        retriable && self.idempotent && self.replayable && self.left()
    }

    /// After a failed attempt: may another target be tried?
    pub fn after_error(&mut self, e: &ProxyError) -> bool {
        self.sent = !e.never_sent();
        let retriable = e.never_sent()
            || self.on.is_none_or(|on| {
                on.iter().any(|c| {
                    matches!(
                        (c, e),
                        (
                            RetryOn::Reset | RetryOn::Status5xx,
                            ProxyError::Upstream { .. }
                        ) | (
                            RetryOn::Status5xx | RetryOn::GatewayError,
                            ProxyError::Timeout { .. }
                        )
                    )
                })
            });
        retriable && self.replayable && (e.never_sent() || self.idempotent) && self.left()
    }

    /// Takes the next retry; a retry of a sent request needs the budget to grant it.
    pub fn begin_retry(&mut self) -> bool {
        if !self.left() || (self.sent && !self.budget.try_retry()) {
            return false;
        }
        self.retries += 1;
        true
    }
}

/// The longest wait before retry `n` (1 for the first): `min(max, base·2ⁿ⁻¹)` ms; the wait is
/// drawn uniformly up to it (full jitter).
pub fn backoff_cap(n: u32, base_ms: u64, max_ms: u64) -> u64 {
    let doubled = base_ms.saturating_mul(1u64 << n.saturating_sub(1).min(32));
    doubled.min(max_ms)
}

/// Sends `plan` with `body`, retrying on other targets as allowed. Fills in where the
/// request went (`rc.dst`, `rc.endpoint`, `rc.retries`).
pub async fn forward(
    ctx: &ProxyCtx,
    rc: &mut RequestCtx,
    plan: &Plan<'_>,
    mut body: RequestBody,
) -> Result<Response<BoxBody>, ProxyError> {
    ctx.budget.request();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> ProxyError {
        ProxyError::Connect {
            target: "a".into(),
            message: "refused".into(),
            refused: true,
        }
    }

    fn reset() -> ProxyError {
        ProxyError::Upstream {
            target: "a".into(),
            message: "reset".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_connect_is_free_and_a_sent_request_draws_on_the_budget() {
        // No floor, 0 %: the budget grants nothing.
        let empty = RetryBudget::new(0, 0);
        let mut r = Retry::new(&empty, 5, false, true);
        for _ in 0..5 {
            assert!(
                r.after_error(&refused()),
                "never sent: any method may go again"
            );
            assert!(r.begin_retry(), "free: the budget is not asked");
        }
        assert!(!r.after_error(&refused()), "but no more than max_retries");
        // A reset after sending: only for idempotent methods, and only with budget.
        let mut r = Retry::new(&empty, 5, false, true);
        assert!(
            !r.after_error(&reset()),
            "POST that an upstream saw: not again"
        );
        let mut r = Retry::new(&empty, 5, true, true);
        assert!(r.after_error(&reset()));
        assert!(!r.begin_retry(), "the empty budget refuses");
        // A budget with a floor of 2 per second grants two, then refuses; a new second
        // grants again.
        let floor = RetryBudget::new(0, 2);
        let mut r = Retry::new(&floor, 10, true, true);
        let granted = (0..4)
            .filter(|_| {
                r.after_status(StatusCode::BAD_GATEWAY, &http::HeaderMap::new()) && r.begin_retry()
            })
            .count();
        assert_eq!(granted, 2);
        tokio::time::advance(std::time::Duration::from_millis(1001)).await;
        assert!(
            r.after_status(StatusCode::BAD_GATEWAY, &http::HeaderMap::new()) && r.begin_retry()
        );
    }

    #[test]
    fn streamed_bodies_and_client_errors_are_not_retried() {
        let b = RetryBudget::new(100, 100);
        let mut streamed = Retry::new(&b, 3, true, false);
        assert!(!streamed.after_error(&refused()));
        assert!(!streamed.after_status(StatusCode::SERVICE_UNAVAILABLE, &http::HeaderMap::new()));
        let mut ok = Retry::new(&b, 3, true, true);
        assert!(
            !ok.after_status(StatusCode::NOT_FOUND, &http::HeaderMap::new()),
            "4xx is an answer"
        );
    }

    #[test]
    fn a_rule_retries_only_on_what_it_names() {
        let budget = RetryBudget::new(10, 100);
        let none = http::HeaderMap::new();
        let on = [RetryOn::GatewayError];
        let mut r = Retry::new(&budget, 3, true, true).only_on(Some(&on));
        assert!(
            !r.after_status(StatusCode::INTERNAL_SERVER_ERROR, &none),
            "500 is not a gateway error"
        );
        assert!(r.after_status(StatusCode::SERVICE_UNAVAILABLE, &none));
        assert!(
            r.after_error(&refused()),
            "a connect failure is always tried elsewhere"
        );
        assert!(!r.after_error(&reset()), "a reset is not named");
        let on = [RetryOn::Reset, RetryOn::GrpcUnavailable];
        let mut r = Retry::new(&budget, 3, true, true).only_on(Some(&on));
        assert!(r.after_error(&reset()));
        let mut grpc = http::HeaderMap::new();
        grpc.insert("grpc-status", "14".parse().unwrap());
        assert!(
            r.after_status(StatusCode::OK, &grpc),
            "UNAVAILABLE in a trailers-only answer"
        );
        grpc.insert("grpc-status", "5".parse().unwrap());
        assert!(!r.after_status(StatusCode::OK, &grpc));
        // A sent POST is never tried again, whatever the rule says.
        let on = [RetryOn::Status5xx];
        let mut post = Retry::new(&budget, 3, false, true).only_on(Some(&on));
        assert!(!post.after_status(StatusCode::BAD_GATEWAY, &none));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(
            (1..=6).map(|n| backoff_cap(n, 25, 250)).collect::<Vec<_>>(),
            [25, 50, 100, 200, 250, 250]
        );
        assert_eq!(backoff_cap(100, 25, 250), 250, "no overflow");
    }
}
