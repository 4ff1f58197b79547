//! The retry policy of one request: whether a failed attempt may go to another target, and
//! the backoff before it. A connect failure is free (the request never left); a request an
//! upstream saw goes again only when its method is idempotent, its body buffered, the route's
//! `retry.on` names the failure, and the shared [`RetryBudget`] grants it.

use http::StatusCode;
use warden_federation::route::RetryOn;

use super::budget::RetryBudget;
use super::error::ProxyError;

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
