//! The admin listener: `/healthz`, `/readyz`, `/metrics`, `/config_dump`, `/explain`,
//! `/signals`, `/recent`, and — only with `test_hooks = true` — `POST /debug/panic/{actor}`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use actix::Recipient;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use warden_federation::head_timeout::HeadWatch;
use warden_federation::route::RouteBackend;

use crate::balance;
use crate::control::guard::InjectPanic;
use crate::key::ServiceKey;
use crate::proxy::body::{BoxBody, full};
use crate::proxy::context::{Listener, ProxyCtx};
use crate::proxy::view::ServiceView;

type Hooks = Arc<HashMap<String, Recipient<InjectPanic>>>;

/// What the admin endpoints read.
#[derive(Clone)]
pub struct AdminState {
    pub ctx: Arc<ProxyCtx>,
    /// Test hooks (`test_hooks = true`): actors that `/debug/panic/{actor}` reaches.
    pub hooks: Option<Hooks>,
    /// The east-west address this gateway advertises.
    pub advertise: String,
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<BoxBody> {
    let mut r = Response::new(full(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", http::HeaderValue::from_static(content_type));
    r
}

fn json_reply(status: StatusCode, v: Value) -> Response<BoxBody> {
    reply(status, "application/json", format!("{v:#}\n"))
}

/// The routing snapshot and the live settings (each value with its source) as JSON.
pub fn config_dump(ctx: &ProxyCtx) -> Value {
    let local = ctx.tables.local.load();
    let remote = ctx.tables.remote.load();
    let mut local_json = serde_json::Map::new();
    for (key, s) in &local.services {
        let eps: Vec<Value> = s
            .endpoints
            .iter()
            .map(|e| json!({"addr": e.addr, "labels": e.labels.as_deref(), "available": e.available, "ramp": e.ramp, "in_flight": e.inflight.get()}))
            .collect();
        local_json.insert(
            key.to_string(),
            json!({"weight": s.weight, "port": s.port, "endpoints": eps}),
        );
    }
    let mut remote_json = serde_json::Map::new();
    for (key, rs) in &remote.services {
        remote_json.insert(key.to_string(), json!(rs));
    }
    let policies: serde_json::Map<String, Value> = remote
        .policies
        .iter()
        .map(|(key, p)| (key.to_string(), json!(p)))
        .collect();
    json!({
        "cluster": {"name": ctx.me.cluster, "region": ctx.me.region, "zone": ctx.me.zone},
        "federation": {"revision": remote.revision, "connected": remote.connected},
        "local": local_json,
        "remote": remote_json,
        "policies": policies,
        "settings": json!(**ctx.tables.settings.load()),
    })
}

/// `/signals?window=1m|5m`: the golden signals per edge over the window (1m by default).
fn signals(ctx: &ProxyCtx, query: &str) -> Response<BoxBody> {
    let asked = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("window="))
        .unwrap_or("1m");
    let window = match asked {
        "1m" => std::time::Duration::from_secs(60),
        "5m" => std::time::Duration::from_secs(300),
        other => {
            let error = json!({"error": {"code": "invalid_request", "field": "window",
                "message": format!("window must be 1m or 5m, not {other:?}")}});
            return json_reply(StatusCode::BAD_REQUEST, error);
        }
    };
    let w = ctx.tables.signals.window(&ctx.metrics, window);
    json_reply(StatusCode::OK, json!(w))
}

/// `/recent?service=ns/svc&status=5xx&trace_id=…&limit=N`: the newest recorded requests
/// (sampled ones and every 5xx), newest first; 100 by default.
fn recent(ctx: &ProxyCtx, query: &str) -> Response<BoxBody> {
    let bad = |field: &str, message: String| {
        let error =
            json!({"error": {"code": "invalid_request", "field": field, "message": message}});
        json_reply(StatusCode::BAD_REQUEST, error)
    };
    let mut f = crate::telemetry::ring::Filter::default();
    let mut limit = 100usize;
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let v = v.replace("%2F", "/").replace("%2f", "/");
        match k {
            "service" => f.service = Some(v),
            "trace_id" => f.trace_id = Some(v),
            "status" => match v.strip_suffix("xx").and_then(|c| c.parse::<u16>().ok()) {
                Some(c) if (1..=5).contains(&c) => f.class = Some(c),
                _ => {
                    return bad(
                        "status",
                        format!("status must be a class like 5xx, not {v:?}"),
                    );
                }
            },
            "limit" => match v.parse::<usize>() {
                Ok(n) if (1..=10_000).contains(&n) => limit = n,
                _ => return bad("limit", format!("limit must be 1-10000, not {v:?}")),
            },
            other => return bad(other, format!("unknown parameter {other:?}")),
        }
    }
    let records: Vec<_> = ctx
        .tables
        .telemetry
        .ring
        .query(&f, limit)
        .iter()
        .map(|s| s.record())
        .collect();
    json_reply(StatusCode::OK, json!({ "records": records }))
}

/// Where a request for `authority` would go right now, and why.
pub fn explain(ctx: &ProxyCtx, authority: &str) -> (StatusCode, Value) {
    let Some(key) = ServiceKey::from_authority(authority) else {
        return (
            StatusCode::BAD_REQUEST,
            json!({"error": {"code": "bad_authority", "message": format!("{authority:?} is not svc.ns, svc.ns.svc.cluster.local or svc.ns.svc.clusterset.local")}}),
        );
    };
    let view = ServiceView::load(&ctx.tables, &key, Listener::Outbound);
    let service = key.to_string();
    if view.missing(&key, Listener::Outbound).is_some() {
        return (
            StatusCode::NOT_FOUND,
            json!({"service": service, "found": false, "reason": "no local endpoints and no cluster exports this service", "revision": view.revision}),
        );
    }
    let mut v = placement(ctx, &view);
    v["service"] = json!(service);
    v["found"] = json!(true);
    (StatusCode::OK, v)
}

/// Where one route backend's traffic would go: its service's tables restricted to its subset.
fn backend_placement(ctx: &ProxyCtx, route_service: &ServiceKey, b: &RouteBackend) -> Value {
    let key = match &b.service {
        Some(s) => match ServiceKey::parse(s) {
            Some(k) => k,
            None => return json!({"reason": "the backend's service is not namespace/name"}),
        },
        None => route_service.clone(),
    };
    let view = ServiceView::load(&ctx.tables, &key, Listener::Outbound);
    if view.missing(&key, Listener::Outbound).is_some() {
        return json!({"service": key.to_string(), "reason": "no local endpoints and no cluster exports this service: requests get 503"});
    }
    let mut v = placement(ctx, &view.restrict(&b.subset));
    v["service"] = json!(key.to_string());
    v
}

/// The plan for one view of a service: its priority levels, their shares, and why.
fn placement(ctx: &ProxyCtx, view: &ServiceView) -> Value {
    let (local, remotes, policy) = (view.local.as_ref(), view.remotes(), view.policy.as_deref());
    let inputs = view.inputs(&ctx.me, ctx.cfg.routing.overprovisioning_percent, &[]);
    let plan = balance::plan(&inputs);
    let levels: Vec<Value> = plan
        .levels
        .iter()
        .map(|l| {
            let clusters: Vec<Value> = l
                .clusters
                .iter()
                .map(|i| {
                    let r = &remotes[*i];
                    json!({"cluster": r.cluster, "region": r.region, "zone": r.zone, "gateway": r.gateway,
                        "healthy_endpoints": r.healthy_endpoints, "weight": r.weight, "lease_live": r.live, "available": r.available()})
                })
                .collect();
            json!({"name": l.name, "healthy_share": l.healthy_share, "traffic_share": l.load, "clusters": clusters})
        })
        .collect();
    let served_by: Vec<Value> = plan
        .levels
        .iter()
        .filter(|l| l.load > 0.0)
        .map(|l| json!({"level": l.name, "share": l.load}))
        .collect();
    let reason = crate::proxy::placement::reason(&plan, policy);
    let local_json = local.as_ref().map(|l| {
        json!({
            "available": l.available_count(),
            "total": l.endpoints.len(),
            "endpoints": l.endpoints.iter().map(|e| json!({"addr": e.addr, "labels": e.labels.as_deref(), "available": e.available, "ramp": e.ramp})).collect::<Vec<_>>(),
        })
    });
    json!({
            "mode": plan.mode,
            "reason": reason,
            "served_by": served_by,
            "levels": levels,
            "local": local_json,
            "policy": policy,
            "overprovisioning_percent": policy.and_then(|p| p.overprovisioning_percent).unwrap_or(ctx.cfg.routing.overprovisioning_percent),
            "revision": view.revision,
            "federation_connected": view.connected,
    })
}

/// `/readyz`: ready once the federation catalog arrived, unless draining; the detail says
/// what an operator should know (a registration that points elsewhere).
fn readyz(st: &AdminState) -> Response<BoxBody> {
    if st.ctx.drain.is_draining() {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not ready: draining\n".into(),
        );
    }
    let remote = st.ctx.tables.remote.load();
    if remote.revision == 0 && !remote.connected {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not ready: no federation catalog yet\n".into(),
        );
    }
    let mut body = "ready\n".to_string();
    if let Some(registered) = &remote.registered_gateway
        && *registered != st.advertise
    {
        body.push_str(&format!(
            "warning: the federation has this cluster's gateway at {registered}, but this gateway advertises {}: other clusters send its traffic to {registered}\n",
            st.advertise
        ));
    }
    reply(StatusCode::OK, "text/plain", body)
}

async fn handle(req: Request<Incoming>, st: AdminState) -> Response<BoxBody> {
    let (ctx, hooks) = (&st.ctx, &st.hooks);
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/healthz") => reply(StatusCode::OK, "text/plain", "ok\n".into()),
        (Method::GET, "/readyz") => readyz(&st),
        (Method::GET, "/metrics") => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            ctx.metrics.render(),
        ),
        (Method::GET, "/config_dump") => json_reply(StatusCode::OK, config_dump(ctx)),
        (Method::GET, "/signals") => signals(ctx, &query),
        (Method::GET, "/recent") => recent(ctx, &query),
        (Method::GET, "/explain") => {
            let authority = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("authority="))
                .unwrap_or("");
            let (status, mut v) = explain(ctx, authority);
            if let Some(key) = ServiceKey::from_authority(authority)
                && let Some(route) = ctx.tables.remote.load().routes.get(&key).cloned()
            {
                let place = |b: &RouteBackend| backend_placement(ctx, &key, b);
                v["route"] = match crate::route::explain::describe(&query) {
                    Ok(req) => crate::route::explain::explain(&route, &req, &place),
                    Err(e) => {
                        let error =
                            json!({"code": "bad_query", "field": e.param, "message": e.message});
                        return json_reply(StatusCode::BAD_REQUEST, json!({"error": error}));
                    }
                };
            }
            if let Some(key) = ServiceKey::from_authority(authority)
                && let Some(p) = ctx.tables.remote.load().resilience.get(&key).cloned()
            {
                let rule = v["route"]["rule"].as_str().map(str::to_string);
                v["resilience"] = crate::resilience::explain::explain(&p, rule.as_deref());
            }
            if let Some(key) = ServiceKey::from_authority(authority)
                && let Some(p) = ctx.tables.remote.load().jwt.get(&key).cloned()
            {
                let rule = v["route"]["rule"].as_str().map(str::to_string);
                let keys = ctx.tables.jwks.load();
                v["jwt"] = crate::authn::explain::explain(&p, rule.as_deref(), &keys);
            }
            if let Some(key) = ServiceKey::from_authority(authority)
                && let Some(p) = ctx.tables.remote.load().authorization.get(&key).cloned()
                && let Ok(req) = crate::route::explain::describe(&query)
            {
                v["authorization"] = crate::access::explain::explain(&p, &req, &ctx.me.cluster);
            }
            json_reply(status, v)
        }
        (Method::POST, p) if p.starts_with("/debug/panic/") => match hooks {
            None => json_reply(
                StatusCode::NOT_FOUND,
                json!({"error": {"code": "not_found", "message": "test hooks are off"}}),
            ),
            Some(h) => {
                let actor = &p["/debug/panic/".len()..];
                match h.get(actor) {
                    Some(r) => {
                        r.do_send(InjectPanic);
                        json_reply(StatusCode::ACCEPTED, json!({"panicked": actor}))
                    }
                    None => json_reply(
                        StatusCode::NOT_FOUND,
                        json!({"error": {"code": "not_found", "message": format!("no actor {actor:?}"), "actors": h.keys().collect::<Vec<_>>()}}),
                    ),
                }
            }
        },
        _ => json_reply(
            StatusCode::NOT_FOUND,
            json!({"error": {"code": "not_found", "message": "no such admin path"}}),
        ),
    }
}

/// Serves the admin endpoints on `sock` until the process ends.
/// Connections the admin listener serves at once.
const ADMIN_CONNECTIONS: usize = 256;

pub fn spawn(sock: std::net::TcpListener, st: AdminState) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(sock)?;
    // The admin port has the same bounds as the data path: header time and size, HTTP/2
    // streams, and at most ADMIN_CONNECTIONS connections (one more waits in the backlog).
    let builder = Arc::new(warden_federation::limits::ServerLimits::default().builder());
    let slots = Arc::new(tokio::sync::Semaphore::new(ADMIN_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            };
            let (st, builder) = (st.clone(), builder.clone());
            tokio::spawn(async move {
                let _slot = slot;
                let svc = hyper::service::service_fn(move |req| {
                    let st = st.clone();
                    async move { Ok::<_, Infallible>(handle(req, st).await) }
                });
                let (stream, head) = HeadWatch::new(stream);
                let conn = builder.serve_connection(TokioIo::new(stream), svc);
                tokio::pin!(conn);
                if let Err(e) = conn.as_mut().await {
                    head.ended_with(&*e);
                }
            });
        }
    });
    Ok(())
}
