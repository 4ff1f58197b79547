//! Stage "upgrade": a request that asks to switch protocols — an HTTP/1.1 `Upgrade`
//! (WebSocket and the like) or an HTTP/2 extended CONNECT (RFC 8441, which is how the
//! east-west hop carries it) — goes where any request would (same route, subset, plan and
//! target choice). Once the target agrees (101 from an HTTP/1.1 endpoint, 200 from a remote
//! gateway or an HTTP/2 endpoint) the caller gets its own kind of yes (101, or 200 on HTTP/2)
//! with the target's end-to-end headers (`sec-websocket-accept`, `-protocol`, `-extensions`),
//! and the two streams are spliced in the background until either side closes or nothing
//! moves for `limits.tunnel_idle_ms`. Each open upgrade holds one of the gateway's tunnel
//! permits (`limits.max_tunnels`; none left: 503 `tunnel_limit`). A target that refuses
//! answers the caller as it answered (e.g. 400, 403) — except a 2xx to an HTTP/2 caller, for whom
//! it would read as a yes: 502 `upgrade_refused`. Only a connect failure moves on to the next
//! target: after that the request has been seen. An HTTP/2 WebSocket has no
//! `sec-websocket-key`; one is made up for an HTTP/1.1 endpoint.
//!
//! An `h2c` upgrade is not an upgrade here: the request is served as plain HTTP/1.1 (RFC 9110
//! §7.8 lets a server ignore `Upgrade`), so a client falls back cleanly.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, Request, Response, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use super::attempt::Hop;
use super::body::{BoxBody, boxed, empty};
use super::context::{ProxyCtx, RequestCtx};
use super::error::ProxyError;
use super::plan::Plan;
use super::respond::stamp;
use super::splice::splice;
use super::switch::{Asked, Wanted, agreed, answer};
use super::view::draws;

const WS_KEY: &str = "sec-websocket-key";
const WS_VERSION: &str = "sec-websocket-version";

/// The request one attempt sends: an HTTP/1.1 `Upgrade` to an HTTP/1.1 endpoint, an extended
/// CONNECT to an HTTP/2 endpoint or a remote gateway.
fn request_for(
    plan: &Plan<'_>,
    attempt: &super::attempt::Attempt<'_>,
    token: &str,
) -> Result<Request<BoxBody>, ProxyError> {
    let mut req = plan.request_for(attempt, empty())?;
    let bad = |message: String| ProxyError::BadRequest {
        field: "upgrade",
        message,
    };
    if matches!(attempt.hop, Hop::Local { h2: false }) {
        *req.method_mut() = Method::GET;
        let h = req.headers_mut();
        h.insert(
            http::header::CONNECTION,
            HeaderValue::from_static("upgrade"),
        );
        let v = HeaderValue::from_str(token).map_err(|e| bad(e.to_string()))?;
        h.insert(http::header::UPGRADE, v);
        // An HTTP/2 WebSocket (RFC 8441) has no key; an HTTP/1.1 endpoint needs one (RFC 6455
        // §4.1). An HTTP/1.1 caller's own key crosses the east-west hop, and the endpoint's
        // accept comes back to it in the 200's headers.
        if token == "websocket" && !h.contains_key(WS_KEY) {
            use base64::Engine;
            let nonce: [u8; 16] = std::array::from_fn(|_| fastrand::u8(..));
            let key = base64::engine::general_purpose::STANDARD.encode(nonce);
            h.insert(
                WS_KEY,
                HeaderValue::from_str(&key).map_err(|e| bad(e.to_string()))?,
            );
            h.entry(WS_VERSION)
                .or_insert(HeaderValue::from_static("13"));
        }
    } else {
        *req.method_mut() = Method::CONNECT;
        *req.version_mut() = Version::HTTP_2;
        req.extensions_mut()
            .insert(hyper::ext::Protocol::from(token));
    }
    Ok(req)
}

/// Sends the upgrade request of `plan` and, once a target agrees, splices the caller's
/// upgraded stream (`caller`) to it in the background.
pub async fn forward(
    ctx: &Arc<ProxyCtx>,
    rc: &mut RequestCtx,
    plan: &Plan<'_>,
    wanted: &Wanted,
    caller: OnUpgrade,
) -> Result<Response<BoxBody>, ProxyError> {
    let permit = ctx.tunnel_permit()?;
    let deadline = Instant::now() + plan.overall;
    let over = ctx.cfg.routing.overprovisioning_percent;
    let mut exclude = Vec::new();
    let mut last_err = None;
    for _ in 0..=plan.max_retries {
        let Some(attempt) = plan.view.choose(&ctx.me, over, &exclude, draws()) else {
            break;
        };
        if Instant::now() >= deadline {
            break;
        }
        let req = request_for(plan, &attempt, &wanted.token)?;
        rc.dst = Some(attempt.cluster.to_string());
        rc.endpoint = Some(attempt.addr.to_string());
        let in_flight = attempt.inflight.track();
        let sent = ctx
            .clients
            .send(
                ctx.tls.as_deref(),
                &attempt,
                req,
                plan.per_try_until(deadline),
                None,
            )
            .await;
        let local = matches!(attempt.hop, Hop::Local { .. });
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => {
                if local {
                    let refused = matches!(e, ProxyError::Connect { refused: true, .. });
                    ctx.signal(plan.key, attempt.addr, false, refused);
                }
                if !e.never_sent() {
                    return Err(e);
                }
                exclude.push(attempt.target);
                last_err = Some(e);
                continue;
            }
        };
        if local {
            ctx.signal(
                plan.key,
                attempt.addr,
                !resp.status().is_server_error(),
                false,
            );
        }
        if !agreed(&attempt.hop, resp.status()) {
            // A 2xx that is not the switch would read as a yes to an HTTP/2 caller.
            if wanted.asked == Asked::Connect && resp.status().is_success() {
                return Err(ProxyError::UpgradeRefused {
                    target: attempt.addr.to_string(),
                    status: resp.status().as_u16(),
                });
            }
            // The target said no: the caller hears it as the target said it.
            return Ok(stamp(resp.map(boxed), attempt.cluster));
        }
        let target = hyper::upgrade::on(&mut resp);
        let reply = stamp(answer(wanted, resp.headers()), attempt.cluster);
        let idle = Duration::from_millis(ctx.cfg.limits.tunnel_idle_ms);
        tokio::spawn(async move {
            // Held for the whole stream: the permit, and the target's in-flight count.
            let (_permit, _in_flight) = (permit, in_flight);
            match tokio::try_join!(caller, target) {
                Ok((c, t)) => {
                    let (mut c, mut t) = (TokioIo::new(c), TokioIo::new(t));
                    let ended = splice(&mut c, &mut t, idle).await;
                    tracing::debug!(?ended, "upgraded stream ended");
                }
                Err(e) => tracing::debug!(error = %e, "upgrade did not complete"),
            }
        });
        return Ok(reply);
    }
    Err(last_err.unwrap_or_else(|| ProxyError::NoHealthyUpstream(plan.key.to_string())))
}
