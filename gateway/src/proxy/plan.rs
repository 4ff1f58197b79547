//! Stage "plan", second half: an HTTP request's plan as plain data — where it may go (the
//! [`ServiceView`]), how it may be retried and for how long ([`Plan`]), and the exact request
//! each attempt sends ([`Plan::request_for`]). No sockets: everything here is tested without a
//! network.

use std::time::Duration;

use http::request::Parts;
use http::{HeaderValue, Request, Uri};
use tokio::time::Instant;

use super::attempt::{Attempt, Hop};
use super::body::BoxBody;
use super::context::Listener;
use super::context::{ProxyCtx, RequestCtx, SOURCE_HEADER};
use super::error::ProxyError;
use super::headers::{CALLER_HEADER, caller_value, clean};
use super::naming::{PORT_HEADER, SERVICE_HEADER};
use super::rules::{Routed, SUBSET_HEADER, subset_from, subset_value};
use super::trace::TRACEPARENT;
use super::view::ServiceView;
use crate::config::TargetPort;
use crate::key::ServiceKey;
use crate::table::local_addr;
use warden_federation::route::RetryOn;

/// An HTTP request's plan: where it may go, how it may be retried, what it sends.
#[derive(Debug)]
pub struct Plan<'a> {
    /// The service the request names.
    pub key: &'a ServiceKey,
    pub view: ServiceView,
    /// GET, HEAD, OPTIONS, PUT, DELETE: safe to send again after an upstream saw it.
    pub idempotent: bool,
    /// Attempts beyond the first.
    pub max_retries: u32,
    /// Bound on each attempt (never past the deadline).
    pub per_try: Duration,
    /// Bound on sending the request with all its retries, from the first attempt.
    pub overall: Duration,
    /// The head to send: this hop's `traceparent`, no hop-by-hop headers.
    pub head: Parts,
    /// The calling cluster, named to remote gateways.
    pub source_cluster: &'a str,
    /// The subset a route chose, named to remote gateways (`None`: the whole service).
    pub subset: Option<HeaderValue>,
    /// A route rule's retry conditions (`None`: the gateway's).
    pub retry_on: Option<&'a [RetryOn]>,
    /// A route rule's backoff between retries, (base, max) ms (`None`: retry at once).
    pub backoff: Option<(u64, u64)>,
    /// The service's resilience policy with a circuit breaker, set by the resilience stage.
    pub breaker: Option<std::sync::Arc<crate::resilience::CompiledPolicy>>,
    /// The service port the request names (`None`: the first), and where the local endpoints
    /// serve it.
    pub port: Option<u16>,
    pub target: Option<TargetPort>,
}

impl<'a> Plan<'a> {
    /// Plans a request for `key` whose head is `head`; `routed` is what the service's route
    /// chose (another service, a subset, filters, timeouts, retries).
    pub fn new(
        ctx: &'a ProxyCtx,
        rc: &RequestCtx,
        key: &'a ServiceKey,
        mut head: Parts,
        routed: Option<&'a Routed>,
    ) -> Result<Self, ProxyError> {
        let named = key;
        let key = routed.map(|r| r.service(key)).unwrap_or(key);
        // The port belongs to the service the client named: a route to another service sends
        // to that one's first port.
        let port = rc.port.filter(|_| key == named);
        // The subset: the route's on the outbound listener, the calling gateway's on the
        // east-west hop (read before `clean` drops every `x-warden-*` header).
        let named = match rc.listener {
            Listener::EastWest => subset_from(&head.headers),
            _ => None,
        };
        let subset = routed.map(|r| r.subset()).or(named.as_ref());
        let mut view = ServiceView::load(&ctx.tables, key, rc.listener);
        if let Some(s) = subset {
            view = view.restrict(s);
        }
        if let Some(e) = view.missing(key, rc.listener) {
            return Err(e);
        }
        let target = match (port, view.local.as_ref()) {
            (Some(p), Some(l)) => Some(l.target(p).ok_or_else(|| ProxyError::PortNotRouted {
                service: key.to_string(),
                port: p,
                served: l.port,
            })?),
            _ => None,
        };
        clean(&mut head.headers);
        if let Some(r) = routed {
            r.apply_to_request(&mut head)?;
        }
        head.headers.insert(TRACEPARENT, rc.trace.header());
        // A backend learns the east-west caller only from this gateway.
        if let Some(v) = rc
            .peer
            .as_deref()
            .and_then(|p| caller_value(p, rc.src_cluster.as_deref()))
        {
            head.headers.insert(CALLER_HEADER, v);
        }
        let idempotent = matches!(
            head.method,
            http::Method::GET
                | http::Method::HEAD
                | http::Method::OPTIONS
                | http::Method::PUT
                | http::Method::DELETE
        );
        let s = ctx.tables.settings.load();
        let rule = routed.map(|r| &r.rule().rule);
        let timeouts = rule.and_then(|r| r.timeouts.as_ref());
        let per_try = timeouts
            .and_then(|t| t.per_try_ms)
            .unwrap_or(s.per_try_ms.value);
        let overall = timeouts
            .and_then(|t| t.request_ms)
            .unwrap_or(s.overall_ms.value);
        let retry = rule.and_then(|r| r.retry.as_ref());
        let max_retries = retry.map(|r| r.attempts).unwrap_or(s.max_retries.value);
        Ok(Self {
            key,
            view,
            idempotent,
            max_retries,
            per_try: Duration::from_millis(per_try.min(overall)),
            overall: Duration::from_millis(overall),
            head,
            source_cluster: &ctx.me.cluster,
            subset: subset.and_then(subset_value),
            retry_on: retry.map(|r| r.on.as_slice()),
            backoff: retry.map(|r| (r.backoff_base_ms, r.backoff_max_ms)),
            breaker: None,
            port,
            target,
        })
    }

    /// This attempt's time bound: the per-try timeout, cut short by `deadline`.
    pub fn per_try_until(&self, deadline: Instant) -> Duration {
        self.per_try
            .min(deadline.saturating_duration_since(Instant::now()))
    }

    /// The request one attempt sends to `attempt`'s target.
    pub fn request_for(
        &self,
        attempt: &Attempt<'_>,
        body: BoxBody,
    ) -> Result<Request<BoxBody>, ProxyError> {
        let to = Addressed {
            key: self.key,
            source_cluster: self.source_cluster,
            subset: self.subset.as_ref(),
            port: self.port,
            target: self.target,
        };
        to.request(&self.head, attempt, body)
    }
}

/// What a request to a remote gateway names: the service, the calling cluster, the subset.
pub struct Addressed<'a> {
    pub key: &'a ServiceKey,
    pub source_cluster: &'a str,
    pub subset: Option<&'a HeaderValue>,
    /// The service port, named to remote gateways, and where local endpoints serve it.
    pub port: Option<u16>,
    pub target: Option<TargetPort>,
}

impl Addressed<'_> {
    /// `head` with `body`, sent to `attempt`'s target.
    pub fn request(
        &self,
        head: &Parts,
        attempt: &Attempt<'_>,
        body: BoxBody,
    ) -> Result<Request<BoxBody>, ProxyError> {
        let mut req = Request::from_parts(head.clone(), body);
        // Another port of a local endpoint: the same address on that port's target.
        let addr = match attempt.hop {
            Hop::Local { .. } => local_addr(attempt.addr, self.target),
            Hop::Remote { .. } => std::borrow::Cow::Borrowed(attempt.addr),
        };
        retarget(&mut req, &addr)?;
        match attempt.hop {
            Hop::Local { h2 } => {
                let h2 = self.target.map(|t| t.h2).unwrap_or(h2);
                *req.version_mut() = if h2 {
                    http::Version::HTTP_2
                } else {
                    http::Version::HTTP_11
                };
            }
            Hop::Remote { .. } => {
                *req.version_mut() = http::Version::HTTP_2;
                let h = req.headers_mut();
                h.remove(http::header::HOST);
                if let Ok(v) = HeaderValue::from_str(&self.key.to_string()) {
                    h.insert(SERVICE_HEADER, v);
                }
                if let Ok(v) = HeaderValue::from_str(self.source_cluster) {
                    h.insert(SOURCE_HEADER, v);
                }
                if let Some(v) = self.subset {
                    h.insert(SUBSET_HEADER, v.clone());
                }
                if let Some(p) = self.port {
                    h.insert(PORT_HEADER, HeaderValue::from(p));
                }
            }
        }
        Ok(req)
    }
}

/// Points a request at `addr`, keeping its path and query.
fn retarget<B>(req: &mut Request<B>, addr: &str) -> Result<(), ProxyError> {
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    *req.uri_mut() =
        Uri::try_from(format!("http://{addr}{pq}")).map_err(|e| ProxyError::Upstream {
            target: addr.to_string(),
            message: e.to_string(),
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::view::fixtures::{me, remote, tables};
    use super::*;
    use crate::proxy::context::Listener;

    #[test]
    fn a_remote_attempt_names_the_service_and_the_source_and_drops_hop_headers() {
        let (t, key) = tables(&[false], vec![remote("west", "z9", 2)]);
        let view = ServiceView::load(&t, &key, Listener::Outbound);
        let req = Request::builder()
            .method("POST")
            .uri("/pay?x=1")
            .header("host", "cart.shop")
            .header("connection", "keep-alive")
            .header("te", "trailers")
            .header("upgrade", "h2c")
            .body(())
            .unwrap();
        let (mut head, ()) = req.into_parts();
        clean(&mut head.headers);
        let plan = Plan {
            key: &key,
            view,
            idempotent: false,
            max_retries: 2,
            per_try: Duration::from_secs(1),
            overall: Duration::from_secs(5),
            head,
            source_cluster: "east",
            subset: HeaderValue::from_str("version=v2").ok(),
            retry_on: None,
            backoff: None,
            breaker: None,
            port: None,
            target: None,
        };
        let me = me();
        let a = plan.view.choose(&me, 140, &[], [0.1, 0.1, 0.1]).unwrap();
        assert_eq!(a.cluster, "west");
        let out = plan.request_for(&a, super::super::body::empty()).unwrap();
        assert_eq!(out.uri(), "http://west.gw:15008/pay?x=1");
        assert_eq!(out.version(), http::Version::HTTP_2);
        let h = out.headers();
        assert_eq!(h[SERVICE_HEADER], "shop/cart");
        assert_eq!(h[SOURCE_HEADER], "east");
        assert_eq!(h[SUBSET_HEADER], "version=v2");
        assert!(h.get("host").is_none());
        assert!(h.get("connection").is_none() && h.get("upgrade").is_none());
        assert_eq!(h["te"], "trailers", "gRPC needs te: trailers");
    }
}
