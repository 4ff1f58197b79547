//! Stage "forward": send the planned request, and on failure try another target while the
//! [`Retry`] policy allows — the failed target excluded each time. Each local attempt's
//! outcome goes to the service's pool as a passive health signal.

use http::{Response, StatusCode};
use tokio::time::Instant;

use super::attempt::Hop;
use super::body::{BoxBody, RequestBody, boxed};
use super::budget::RetryBudget;
use super::context::{ProxyCtx, RequestCtx};
use super::error::ProxyError;
use super::plan::Plan;
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
            retries: 0,
            sent: false,
        }
    }

    fn left(&self) -> bool {
        self.retries < self.max_retries
    }

    /// After an answer with `status`: should another target be tried instead?
    pub fn after_status(&mut self, status: StatusCode) -> bool {
        self.sent = true;
        status.is_server_error() && self.idempotent && self.replayable && self.left()
    }

    /// After a failed attempt: may another target be tried?
    pub fn after_error(&mut self, e: &ProxyError) -> bool {
        self.sent = !e.never_sent();
        self.replayable && (e.never_sent() || self.idempotent) && self.left()
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
    );
    let over = ctx.cfg.routing.overprovisioning_percent;
    let mut exclude = Vec::new();
    let mut last_err: Option<ProxyError> = None;
    // A 5xx kept in case no other target can be tried.
    let mut kept: Option<Response<BoxBody>> = None;
    while let Some(attempt) = plan.view.choose(&ctx.me, over, &exclude, draws()) {
        if !exclude.is_empty() {
            if Instant::now() >= deadline || !retry.begin_retry() {
                break;
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
        let sent = {
            let _in_flight = attempt.inflight.track();
            ctx.clients
                .send(
                    ctx.tls.as_deref(),
                    &attempt,
                    req,
                    plan.per_try_until(deadline),
                )
                .await
        };
        let local = matches!(attempt.hop, Hop::Local { .. });
        match sent {
            Ok(resp) => {
                let status = resp.status();
                if local {
                    ctx.signal(plan.key, attempt.addr, !status.is_server_error(), false);
                }
                let resp = stamp(resp.map(boxed), attempt.cluster);
                if status.is_server_error() && retry.after_status(status) {
                    exclude.push(attempt.target);
                    kept = Some(resp);
                    continue;
                }
                return Ok(resp);
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
            .filter(|_| r.after_status(StatusCode::BAD_GATEWAY) && r.begin_retry())
            .count();
        assert_eq!(granted, 2);
        tokio::time::advance(std::time::Duration::from_millis(1001)).await;
        assert!(r.after_status(StatusCode::BAD_GATEWAY) && r.begin_retry());
    }

    #[test]
    fn streamed_bodies_and_client_errors_are_not_retried() {
        let b = RetryBudget::new(100, 100);
        let mut streamed = Retry::new(&b, 3, true, false);
        assert!(!streamed.after_error(&refused()));
        assert!(!streamed.after_status(StatusCode::SERVICE_UNAVAILABLE));
        let mut ok = Retry::new(&b, 3, true, true);
        assert!(!ok.after_status(StatusCode::NOT_FOUND), "4xx is an answer");
    }
}
