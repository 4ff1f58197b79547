//! The request path in-process: a real `ProxyCtx` over hand-built routing tables, real
//! upstream servers on `127.0.0.1:0` in this process, and requests handed to
//! `proxy::request::handle` — no gateway process, no federation, no sleeps. What each test
//! shows is in its `///` line.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::mpsc;
use warden_federation::model::{AuthzAction, AuthzSources, SecurityPolicy};
use warden_federation::trust::spiffe::SpiffeId;
use warden_gateway::balance::Locality;
use warden_gateway::config::GatewayConfig;
use warden_gateway::drain::Drain;
use warden_gateway::key::ServiceKey;
use warden_gateway::metrics::Metrics;
use warden_gateway::proxy::body::BoxBody;
use warden_gateway::proxy::context::{Listener, PassiveSignal, ProxyCtx, ProxyParts};
use warden_gateway::proxy::request::handle;
use warden_gateway::table::{
    LocalEndpoint, LocalService, LocalTable, RemoteCluster, RemoteTable, Tables,
};

/// What an upstream saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    headers: HeaderMap,
    body: Bytes,
    /// When it arrived (tokio's clock: virtual in a paused-time test).
    at: tokio::time::Instant,
}

/// An HTTP/1.1 + h2c server in this process that answers `status` and records requests.
struct Upstream {
    addr: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    async fn start(status: u16) -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let log = log.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let log = log.clone();
                        async move {
                            let at = tokio::time::Instant::now();
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes());
                            log.lock().unwrap().push(Seen {
                                at,
                                method: parts.method.to_string(),
                                headers: parts.headers,
                                body: body.unwrap_or_default(),
                            });
                            let mut r = Response::new(Full::new(Bytes::from_static(b"hi")));
                            *r.status_mut() = StatusCode::from_u16(status).unwrap();
                            Ok::<_, std::convert::Infallible>(r)
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Upstream { addr, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// An address where nothing listens: connecting is refused. The socket stays bound (but never
/// listens) for the rest of the process, so no other test can take the port meanwhile.
fn refused_addr() -> String {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = s.local_addr().unwrap().to_string();
    std::mem::forget(s);
    addr
}

fn config(extra: &str) -> GatewayConfig {
    let text = format!(
        r#"[cluster]
name = "east"
region = "r1"
zone = "z1"
trust_domain = "east.test"
[federation]
endpoints = ["http://127.0.0.1:9"]
[listeners]
outbound = "127.0.0.1:0"
eastwest = "127.0.0.1:0"
admin = "127.0.0.1:0"
{extra}
"#
    );
    let cfg: GatewayConfig = toml::from_str(&text).unwrap();
    cfg.validate().unwrap();
    cfg
}

fn cart() -> ServiceKey {
    ServiceKey::new("shop", "cart")
}

/// Tables with `shop/cart` at `local` endpoints (port 80) and in the remote `clusters`.
fn tables(local: &[&str], clusters: &[(&str, &str)], security: Vec<SecurityPolicy>) -> Tables {
    let t = Tables::default();
    if !local.is_empty() {
        let mut lt = LocalTable::default();
        let endpoints = local
            .iter()
            .map(|a| LocalEndpoint {
                addr: a.to_string(),
                labels: None,
                available: true,
                ramp: 1.0,
                inflight: t.inflight_for(a),
            })
            .collect();
        let svc = LocalService {
            endpoints,
            weight: 100,
            h2: false,
            port: 80,
            ports: Arc::from([(
                80,
                warden_gateway::config::TargetPort {
                    own: true,
                    port: 0,
                    h2: false,
                },
            )]),
            exported: true,
            export_to: Arc::from([]),
        };
        lt.services.insert(cart(), Arc::new(svc));
        t.local.store(Arc::new(lt));
    }
    let mut rt = RemoteTable {
        revision: 1,
        connected: true,
        ..Default::default()
    };
    let remotes: Vec<RemoteCluster> = clusters
        .iter()
        .map(|(name, gw)| RemoteCluster {
            cluster: (*name).into(),
            region: "r2".into(),
            zone: "z9".into(),
            gateway: (*gw).into(),
            trust_domain: format!("{name}.test").into(),
            healthy_endpoints: 2,
            subsets: Arc::from([]),
            weight: 100,
            live: true,
            inflight: t.inflight_for(&format!("cluster:{name}")),
        })
        .collect();
    if !remotes.is_empty() {
        rt.services.insert(cart(), Arc::from(remotes));
    }
    if !security.is_empty() {
        rt.security.insert(cart(), security);
    }
    t.remote.store(Arc::new(rt));
    t
}

fn proxy(cfg: GatewayConfig, tables: Tables) -> (Arc<ProxyCtx>, mpsc::Receiver<PassiveSignal>) {
    let (tx, rx) = mpsc::channel(64);
    // As `control::start` does: the live settings start as the file's.
    tables
        .settings
        .store(Arc::new(warden_gateway::settings::Settings::from_file(
            &cfg,
        )));
    let me = Locality {
        cluster: "east".into(),
        region: "r1".into(),
        zone: "z1".into(),
    };
    let ctx = ProxyCtx::new(&ProxyParts {
        tables,
        me,
        cfg: Arc::new(cfg),
        metrics: Arc::new(Metrics::new()),
        passive: tx,
        tls: None,
        drain: Drain::default(),
        tunnels: Arc::new(tokio::sync::Semaphore::new(4)),
    });
    (ctx, rx)
}

fn request(method: &str, body: &'static [u8]) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri("/pay")
        .header("host", "cart.shop")
        .body(Full::new(Bytes::from_static(body)))
        .unwrap()
}

fn served_by(r: &Response<BoxBody>) -> &str {
    r.headers()
        .get("x-warden-cluster")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
}

fn cause(r: &Response<BoxBody>) -> &str {
    r.headers()
        .get("x-warden-error")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
}

/// No retry budget at all, and yet a POST whose local endpoint refuses the connection is sent
/// to the next cluster: a refused connect is free (the request never left), the body is
/// replayed there, the remote gateway is told the service and the caller, and the refusal
/// reaches the pool as a passive signal.
#[tokio::test]
async fn a_refused_connect_is_retried_for_free_with_the_body() {
    let west = Upstream::start(200).await;
    let local = refused_addr();
    let cfg = config("[retries]\nbudget_percent = 0\nmin_retries_per_second = 0");
    let (ctx, mut signals) = proxy(cfg, tables(&[&local], &[("west", &west.addr)], vec![]));
    let r = handle(&ctx, request("POST", b"hello"), Listener::Outbound, None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(served_by(&r), "west");
    let seen = west.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].method.as_str(), &seen[0].body[..]),
        ("POST", &b"hello"[..])
    );
    assert_eq!(seen[0].headers["x-warden-service"], "shop/cart");
    assert_eq!(seen[0].headers["x-warden-source-cluster"], "east");
    assert!(seen[0].headers.get("traceparent").is_some());
    let sig = signals.try_recv().unwrap();
    assert_eq!(
        (sig.endpoint.as_str(), sig.ok, sig.refused),
        (local.as_str(), false, true)
    );
}

/// A request an upstream saw and answered 5xx is retried only with budget, only for
/// idempotent methods, and its buffered body is sent again: with an empty budget the 503 is
/// returned as is; with budget a PUT goes to the next cluster with the same body; a POST never
/// goes twice.
#[tokio::test]
async fn a_sent_request_draws_on_the_budget() {
    let east = Upstream::start(503).await;
    let west = Upstream::start(200).await;
    let routes = || tables(&[&east.addr], &[("west", &west.addr)], vec![]);

    let broke = config("[retries]\nbudget_percent = 0\nmin_retries_per_second = 0");
    let (ctx, _s) = proxy(broke, routes());
    let r = handle(&ctx, request("GET", b""), Listener::Outbound, None).await;
    assert_eq!((r.status().as_u16(), served_by(&r)), (503, "east"));
    assert_eq!(west.seen().len(), 0, "no budget: no retry");

    let funded = config("[retries]\nbudget_percent = 0\nmin_retries_per_second = 10");
    let (ctx, _s) = proxy(funded, routes());
    let r = handle(&ctx, request("PUT", b"abc"), Listener::Outbound, None).await;
    assert_eq!((r.status().as_u16(), served_by(&r)), (200, "west"));
    let replayed = west.seen();
    assert_eq!(replayed.len(), 1);
    assert_eq!(&replayed[0].body[..], b"abc", "the body was replayed");
    let r = handle(&ctx, request("POST", b"abc"), Listener::Outbound, None).await;
    assert_eq!((r.status().as_u16(), served_by(&r)), (503, "east"));
    assert_eq!(west.seen().len(), 1, "a POST is not sent twice");
    assert_eq!(east.seen().len(), 3);
}

/// Tables with one route installed for `shop/cart`, as the catalog would compile it.
fn with_route(t: Tables, route: serde_json::Value) -> Tables {
    let route: warden_federation::route::Route = serde_json::from_value(route).unwrap();
    let compiled = warden_gateway::route::CompiledRoute::compile(&route).unwrap();
    let mut rt = (**t.remote.load()).clone();
    rt.routes.insert(cart(), Arc::new(compiled));
    t.remote.store(Arc::new(rt));
    t
}

/// A rule's retries wait with exponential backoff and full jitter, in paused time so that the
/// gap between two attempts is exactly what the forward loop slept: the first retry waits at
/// most `backoff_base_ms`, the second at most twice that, the waits are drawn (not all zero,
/// not all equal), and a wait longer than what is left of the rule's `request_ms` is cut at
/// the deadline — the answer comes at the rule's limit, not after the backoff.
#[tokio::test(start_paused = true)]
async fn rule_retries_back_off_with_jitter_and_stop_at_the_deadline() {
    use std::time::Duration;
    let east = Upstream::start(503).await;
    let west = Upstream::start(503).await;
    let central = Upstream::start(200).await;
    let base = 1_000u64;
    let route = |request_ms: u64| {
        serde_json::json!({"id": "cart", "service": "shop/cart", "rules": [{
            "backends": [{"weight": 1}],
            "timeouts": {"request_ms": request_ms},
            "retry": {"attempts": 2, "on": ["5xx"], "backoff_base_ms": base, "backoff_max_ms": 10_000}
        }]})
    };
    let t = tables(
        &[&east.addr],
        &[("west", &west.addr), ("central", &central.addr)],
        vec![],
    );
    let funded = "[retries]\nbudget_percent = 100\nmin_retries_per_second = 1000";
    let (ctx, _s) = proxy(config(funded), with_route(t, route(30_000)));
    let upstreams = [&east, &west, &central];
    let mut gaps: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..40 {
        let before: usize = upstreams.iter().map(|u| u.seen().len()).sum();
        let r = handle(&ctx, request("GET", b""), Listener::Outbound, None).await;
        assert_eq!((r.status().as_u16(), served_by(&r)), (200, "central"));
        let mut arrivals: Vec<tokio::time::Instant> = upstreams
            .iter()
            .flat_map(|u| u.seen())
            .map(|s| s.at)
            .collect();
        arrivals.sort();
        let arrivals = &arrivals[before..];
        for (i, w) in arrivals.windows(2).enumerate() {
            gaps[i].push((w[1] - w[0]).as_millis() as u64);
        }
    }
    println!(
        "backoff gaps (ms): first {:?}, second {:?}",
        gaps[0], gaps[1]
    );
    assert_eq!(gaps[0].len(), 40, "every request was retried at least once");
    assert!(
        !gaps[1].is_empty(),
        "some went through west and were retried twice"
    );
    assert!(
        gaps[0].iter().all(|g| *g <= base),
        "first retry at most base"
    );
    assert!(
        gaps[1].iter().all(|g| *g <= 2 * base),
        "second at most 2 x base"
    );
    let distinct: std::collections::BTreeSet<u64> = gaps[0].iter().copied().collect();
    assert!(distinct.len() > 5, "the waits are drawn: {distinct:?}");

    // A rule allowing 300 ms in all, with backoff up to 10 s: the wait stops at the deadline.
    let long = serde_json::json!({"id": "cart", "service": "shop/cart", "rules": [{
        "backends": [{"weight": 1}],
        "timeouts": {"request_ms": 300},
        "retry": {"attempts": 2, "on": ["5xx"], "backoff_base_ms": 10_000, "backoff_max_ms": 10_000}
    }]});
    let only_east = tables(&[&east.addr], &[("west", &west.addr)], vec![]);
    let (ctx, _s) = proxy(config(funded), with_route(only_east, long));
    let mut late = 0;
    for _ in 0..20 {
        let start = tokio::time::Instant::now();
        let r = handle(&ctx, request("GET", b""), Listener::Outbound, None).await;
        let took = start.elapsed();
        assert!(took <= Duration::from_millis(300), "took {took:?}");
        assert!(matches!(r.status().as_u16(), 503 | 504), "{}", r.status());
        if took >= Duration::from_millis(299) {
            late += 1;
        }
    }
    assert!(
        late > 10,
        "most waits were cut at the deadline ({late} of 20)"
    );
}

/// A rule's retries draw on the same retry budget as the gateway's: with the budget empty a
/// rule that retries on 5xx returns the first 503 and the next cluster sees nothing; funded, the
/// same request succeeds there on the second attempt.
#[tokio::test]
async fn rule_retries_stay_within_the_retry_budget() {
    let east = Upstream::start(503).await;
    let west = Upstream::start(200).await;
    let route = serde_json::json!({"id": "cart", "service": "shop/cart", "rules": [{
        "backends": [{"weight": 1}],
        "retry": {"attempts": 3, "on": ["5xx"], "backoff_base_ms": 1, "backoff_max_ms": 1}
    }]});
    let routed = || {
        with_route(
            tables(&[&east.addr], &[("west", &west.addr)], vec![]),
            route.clone(),
        )
    };
    let broke = config("[retries]\nbudget_percent = 0\nmin_retries_per_second = 0");
    let (ctx, _s) = proxy(broke, routed());
    let r = handle(&ctx, request("GET", b""), Listener::Outbound, None).await;
    assert_eq!((r.status().as_u16(), served_by(&r)), (503, "east"));
    assert_eq!(west.seen().len(), 0, "no budget: the rule does not retry");

    let funded = config("[retries]\nbudget_percent = 0\nmin_retries_per_second = 10");
    let (ctx, _s) = proxy(funded, routed());
    let r = handle(&ctx, request("GET", b""), Listener::Outbound, None).await;
    assert_eq!((r.status().as_u16(), served_by(&r)), (200, "west"));
    assert_eq!(west.seen().len(), 1);
}

/// The east-west listener never forwards again: with a remote copy of the service in the
/// table but no usable local endpoint, it answers 503 and the remote gateway sees nothing.
#[tokio::test]
async fn east_west_never_forwards_again() {
    let west = Upstream::start(200).await;
    let ew = |method| {
        Request::builder()
            .method(method)
            .uri("/pay")
            .header("x-warden-service", "shop/cart")
            .header("x-warden-source-cluster", "central")
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let (ctx, _s) = proxy(config(""), tables(&[], &[("west", &west.addr)], vec![]));
    // Not served here: not exported from here either, so not there for other clusters.
    let r = handle(&ctx, ew("GET"), Listener::EastWest, None).await;
    assert_eq!((r.status().as_u16(), cause(&r)), (404, "unknown_service"));
    let local = refused_addr();
    let (ctx, _s) = proxy(
        config(""),
        tables(&[&local], &[("west", &west.addr)], vec![]),
    );
    let r = handle(&ctx, ew("GET"), Listener::EastWest, None).await;
    assert_eq!((r.status().as_u16(), cause(&r)), (503, "upstream_connect"));
    assert!(
        west.seen().is_empty(),
        "nothing was forwarded to another cluster"
    );
    // The same request on the outbound listener does go on to west.
    let r = handle(&ctx, request("GET", b""), Listener::Outbound, None).await;
    assert_eq!((r.status().as_u16(), served_by(&r)), (200, "west"));
}

/// Connections an endpoint accepted before a sentinel of our own: the backlog is FIFO, so
/// every connection the gateway opened before it is counted.
async fn opened_before_sentinel(
    addr: &str,
    accepted: &mut mpsc::UnboundedReceiver<std::net::SocketAddr>,
) -> usize {
    let sentinel = tokio::net::TcpStream::connect(addr).await.unwrap();
    let me = sentinel.local_addr().unwrap();
    let mut n = 0;
    while let Some(peer) = accepted.recv().await {
        if peer == me {
            return n;
        }
        n += 1;
    }
    n
}

/// CONNECT on the east-west listener is authorized like any request: a denied peer gets 403
/// and no connection is opened to the endpoint; an allowed one is connected; a port the
/// endpoints do not serve is refused instead of landing on the wrong port.
#[tokio::test]
async fn connect_is_authorized_and_names_its_port() {
    let endpoint = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = endpoint.local_addr().unwrap().to_string();
    let (accepted_tx, mut accepted) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((s, peer)) = endpoint.accept().await {
            let _ = accepted_tx.send(peer);
            drop(s);
        }
    });
    let deny = SecurityPolicy {
        id: "no-evil".into(),
        service: "shop/cart".into(),
        action: AuthzAction::Deny,
        sources: AuthzSources {
            trust_domains: vec!["evil.test".into()],
            ..Default::default()
        },
        updated_at: 1,
    };
    let (ctx, _s) = proxy(config(""), tables(&[&addr], &[], vec![deny]));
    let connect = |port: &str| {
        Request::builder()
            .method("CONNECT")
            .uri("127.0.0.1:15008")
            .header("x-warden-service", "shop/cart")
            .header("x-warden-port", port)
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let evil: Arc<SpiffeId> = Arc::new("spiffe://evil.test/ns/warden/sa/gateway".parse().unwrap());
    let good: Arc<SpiffeId> = Arc::new("spiffe://west.test/ns/warden/sa/gateway".parse().unwrap());
    let r = handle(&ctx, connect("80"), Listener::EastWest, Some(evil)).await;
    assert_eq!((r.status().as_u16(), cause(&r)), (403, "forbidden"));
    let r = handle(&ctx, connect("81"), Listener::EastWest, Some(good.clone())).await;
    assert_eq!((r.status().as_u16(), cause(&r)), (404, "port_not_routed"));
    assert_eq!(
        opened_before_sentinel(&addr, &mut accepted).await,
        0,
        "neither a denied CONNECT nor one for another port opens a connection"
    );
    let r = handle(&ctx, connect("80"), Listener::EastWest, Some(good)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        opened_before_sentinel(&addr, &mut accepted).await,
        1,
        "the allowed CONNECT reached the endpoint"
    );
}

/// Gateway errors reach gRPC callers as gRPC statuses, HTTP callers as JSON.
#[tokio::test]
async fn grpc_callers_get_grpc_statuses() {
    let (ctx, _s) = proxy(config(""), tables(&[], &[], vec![]));
    let grpc = Request::builder()
        .method("POST")
        .uri("http://nope.shop/pkg.Svc/Call")
        .header("content-type", "application/grpc")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = handle(&ctx, grpc, Listener::Outbound, None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["grpc-status"], "12");
    assert_eq!(cause(&r), "unknown_service");
    let r = handle(&ctx, request("GET", b""), Listener::Outbound, None).await;
    assert_eq!((r.status().as_u16(), cause(&r)), (404, "unknown_service"));
    assert_eq!(r.headers()["content-type"], "application/json");
}

/// A body of announced length that breaks while being read.
struct Broken;

impl Body for Broken {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::other("client went away"))))
    }
    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(10)
    }
}

/// A client whose body cannot be read is blamed for it (400 `client_body`), not the upstream,
/// and nothing is sent upstream.
#[tokio::test]
async fn a_broken_request_body_is_the_clients_fault() {
    let east = Upstream::start(200).await;
    let (ctx, _s) = proxy(config(""), tables(&[&east.addr], &[], vec![]));
    let req = Request::builder()
        .method("PUT")
        .uri("/pay")
        .header("host", "cart.shop")
        .body(Broken)
        .unwrap();
    let r = handle(&ctx, req, Listener::Outbound, None).await;
    assert_eq!((r.status().as_u16(), cause(&r)), (400, "client_body"));
    assert!(east.seen().is_empty());
}
