//! The HTTP request path as a list of stages over one [`RequestCtx`]. [`handle`] reads top to
//! bottom as the sequence (see `docs/request-lifecycle.md`); a new stage is one file and one
//! line here.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use hyper::upgrade::OnUpgrade;
use tracing::Instrument;
use warden_federation::trust::spiffe::SpiffeId;

use super::access;
use super::account::account;
use super::authn;
use super::body::{BoxBody, BoxError, RequestBody};
use super::bytes::{Counted, Tally, count_bytes};
use super::context::{Listener, ProxyCtx, RequestCtx};
use super::error::ProxyError;
use super::forward::forward;
use super::headers::check_host;
use super::inbound;
use super::mirror;
use super::naming::{port_of, service_of};
use super::plan::Plan;
use super::resilience;
use super::respond::error_response;
use super::rules::{self, Decision};
use super::switch;
use super::upgrade;
use crate::key::ServiceKey;
use crate::table::{DERIVED_PREFIX, DERIVED_SUFFIX};

/// Handles one request; `peer` is the verified mTLS identity on the east-west hop.
pub async fn handle<B>(
    ctx: &Arc<ProxyCtx>,
    req: Request<B>,
    listener: Listener,
    peer: Option<Arc<SpiffeId>>,
) -> Response<BoxBody>
where
    B: hyper::body::Body<Data = Bytes> + Send + Sync + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    // East-west CONNECT: a TCP stream to a local endpoint (authorized in `inbound`); an
    // extended CONNECT (`:protocol`, an upgrade carried across) takes the HTTP stages.
    if listener == Listener::EastWest
        && req.method() == http::Method::CONNECT
        && req.extensions().get::<hyper::ext::Protocol>().is_none()
    {
        return inbound::connect(ctx, req, peer.as_deref()).await;
    }
    let (head, body) = req.into_parts();
    let tally = Arc::new(Tally::default());
    let body = Counted::new(body, tally.clone());
    let mut rc = RequestCtx::new(ctx, listener, peer, &head.method, &head.uri, &head.headers);
    let span = tracing::info_span!(
        "hop",
        trace_id = %rc.trace.trace_id_hex(),
        span_id = %rc.trace.span_id_hex(),
        parent_id = rc.trace.parent_id_hex().as_deref().unwrap_or(""),
    );
    let outcome = stages(ctx, &mut rc, head, body)
        .instrument(span.clone())
        .await;
    let (resp, failed) = match outcome {
        Ok(resp) => (resp, None),
        Err(e) => (error_response(&e, rc.grpc), Some(e)),
    };
    let service = account(ctx, &rc, resp.status(), failed.as_ref(), &span);
    count_bytes(ctx, &rc, &service, failed.is_some(), &tally, resp)
}

/// check the head, name, then route; a known service stays in `rc` for the account.
async fn stages<B>(
    ctx: &Arc<ProxyCtx>,
    rc: &mut RequestCtx,
    head: http::request::Parts,
    body: B,
) -> Result<Response<BoxBody>, ProxyError>
where
    B: hyper::body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    check_host(&head.uri, &head.headers)?;
    let mut key = service_of(&head.uri, &head.headers, rc.listener)?;
    // A derived Service's name (an imported service's, on Kubernetes) stands for the service.
    if rc.listener == Listener::Outbound
        && (key.name.ends_with(DERIVED_SUFFIX) || key.name.starts_with(DERIVED_PREFIX))
        && let Some(real) = ctx.tables.remote.load().derived.get(&key)
    {
        key = real.clone();
    }
    rc.port = port_of(&head.uri, &head.headers, rc.listener);
    let routed = route(ctx, rc, &key, head, body).await;
    // A name nobody serves is not a label (a client could make up any number of them).
    if !matches!(routed, Err(ProxyError::UnknownService(_))) {
        rc.service = Some(key);
    }
    routed
}

/// authorize (east-west) → JWT (the service's) → match a route → JWT (the rule's) → L7
/// authorization → rate limits and faults → plan → read the body →
/// mirror → circuit breaker → forward with retry; an upgrade is forwarded and spliced instead
/// of read and retried.
async fn route<B>(
    ctx: &Arc<ProxyCtx>,
    rc: &mut RequestCtx,
    key: &ServiceKey,
    mut head: http::request::Parts,
    body: B,
) -> Result<Response<BoxBody>, ProxyError>
where
    B: hyper::body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    if rc.listener == Listener::EastWest {
        rc.src_cluster = inbound::authorize(ctx, key, &head.headers, rc.peer.as_deref())?;
    }
    authn::authenticate(ctx, rc, key, None, &mut head)?;
    let routed = match rules::decide(&ctx.tables, rc.listener, key, &head, fastrand::u32(..))? {
        Decision::Whole => None,
        Decision::Routed(r) => Some(r),
        Decision::Respond(resp) => return Ok(resp),
    };
    let rule = routed.as_ref().and_then(|r| r.rule().rule.name.as_deref());
    if rule.is_some() {
        authn::authenticate(ctx, rc, key, rule, &mut head)?;
    }
    access::authorize(ctx, rc, key, &head)?;
    let target = routed.as_ref().map(|r| r.service(key)).unwrap_or(key);
    let acting = resilience::Acting::load(ctx, key, target);
    resilience::police(ctx, rc, &acting, key, rule, &head.headers).await?;
    // Read before the plan drops the hop-by-hop headers that ask for it.
    let switch =
        switch::wanted(&head).and_then(|w| Some((w, head.extensions.remove::<OnUpgrade>()?)));
    let mut plan = Plan::new(ctx, rc, key, head, routed.as_ref())?;
    if let Some((wanted, caller)) = switch {
        let mut resp = upgrade::forward(ctx, rc, &plan, &wanted, caller).await?;
        if let Some(r) = &routed {
            r.apply_to_response(resp.headers_mut());
        }
        return Ok(resp);
    }
    let deadline = std::time::Duration::from_millis(ctx.cfg.limits.body_read_timeout_ms);
    let body = RequestBody::read(body, deadline).await?;
    mirror::copy(ctx, rc, &acting, key, rule, &plan, &body);
    // Taken once the body is here (a slow client holds no slot) and held until the response
    // head is; an upgrade holds a tunnel permit instead.
    let _slot = resilience::admit(ctx, acting, &mut plan).await?;
    let mut resp = forward(ctx, rc, &plan, body).await?;
    if let Some(r) = &routed {
        r.apply_to_response(resp.headers_mut());
    }
    Ok(resp)
}
