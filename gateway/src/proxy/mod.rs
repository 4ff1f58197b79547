//! The data path: hyper servers for the outbound and east-west listeners, and forwarding.
//!
//! Per request: name the service, load both routing snapshots once, plan and pick a target with
//! the pure balancer, forward with pooled clients (HTTP/1.1 or h2c to local endpoints, HTTP/2 to
//! remote gateways), retry within the budget on another target, and report passive health
//! signals to the control plane with a non-blocking `try_send`. No actor is awaited here.

pub mod budget;
pub mod error;
pub mod mtls;
pub mod route;
pub mod tcp;
pub mod trace;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::balance::{self, Inputs, Locality, Target};
use crate::config::GatewayConfig;
use crate::metrics::Metrics;
use crate::table::{ServiceKey, Tables};
use budget::RetryBudget;
use error::ProxyError;

/// Body type of everything the proxy sends and answers.
pub type BoxBody = http_body_util::combinators::BoxBody<Bytes, BoxError>;
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Header carrying the service on the east-west hop.
pub const SERVICE_HEADER: &str = "x-warden-service";
/// Header carrying the calling cluster on the east-west hop.
pub const SOURCE_HEADER: &str = "x-warden-source-cluster";
/// Response header naming the cluster that served the request.
pub const SERVED_BY_HEADER: &str = "x-warden-cluster";

/// Largest request body buffered so the request can be retried on another target.
const MAX_REPLAY_BYTES: u64 = 1024 * 1024;

pub fn full(b: Bytes) -> BoxBody {
    Full::new(b).map_err(|e: Infallible| match e {}).boxed()
}

fn empty() -> BoxBody {
    Empty::new().map_err(|e: Infallible| match e {}).boxed()
}

/// A passive health signal from the data path.
#[derive(Debug, Clone)]
pub struct PassiveSignal {
    pub service: ServiceKey,
    pub endpoint: String,
    pub ok: bool,
    /// The connection was refused: counts as a failed health probe too.
    pub refused: bool,
}

/// Which listener a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Outbound,
    EastWest,
    /// Raw TCP route `listeners.tcp[i]`.
    Tcp(usize),
}

impl Listener {
    pub fn name(self) -> &'static str {
        match self {
            Listener::Outbound => "outbound",
            Listener::EastWest => "eastwest",
            Listener::Tcp(_) => "tcp",
        }
    }
}

/// Where a request went, for the access log.
#[derive(Debug, Default)]
pub struct RouteInfo {
    /// The cluster of the last target tried.
    pub dst: Option<String>,
    /// The endpoint (local) or remote gateway of the last target tried.
    pub endpoint: Option<String>,
    pub retries: u32,
}

/// Everything a request needs; shared by every connection.
pub struct ProxyCtx {
    pub tables: Tables,
    pub me: Locality,
    pub cfg: Arc<GatewayConfig>,
    pub metrics: Arc<Metrics>,
    local: Client<HttpConnector, BoxBody>,
    /// h2c prior knowledge, for local endpoints of `http2`/`grpc` services, and for remote
    /// gateways.
    h2: Client<HttpConnector, BoxBody>,
    passive: mpsc::Sender<PassiveSignal>,
    budget: RetryBudget,
    /// mTLS for the east-west hop (listener and client), when configured.
    pub tls: Option<Arc<mtls::TlsCtx>>,
}

impl ProxyCtx {
    pub fn new(
        tables: Tables,
        me: Locality,
        cfg: Arc<GatewayConfig>,
        metrics: Arc<Metrics>,
        passive: mpsc::Sender<PassiveSignal>,
        tls: Option<Arc<mtls::TlsCtx>>,
    ) -> Arc<Self> {
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        conn.set_connect_timeout(Some(Duration::from_millis(cfg.timeouts.connect_ms)));
        let local = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(conn.clone());
        let h2 = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .build(conn);
        let budget = RetryBudget::new(
            cfg.retries.budget_percent,
            cfg.retries.min_retries_per_second,
        );
        Arc::new(Self {
            tables,
            me,
            cfg,
            metrics,
            local,
            h2,
            passive,
            budget,
            tls,
        })
    }

    /// Serves one accepted connection (HTTP/1.1 or HTTP/2 prior knowledge).
    pub async fn serve_connection(self: Arc<Self>, stream: TcpStream, listener: Listener) {
        if let Listener::Tcp(i) = listener {
            return self.serve_tcp(stream, i).await;
        }
        let _ = stream.set_nodelay(true);
        if listener == Listener::EastWest
            && let Some(tls) = self.tls.clone()
        {
            // mTLS is mandatory on the east-west listener when configured.
            let Some((stream, peer)) = tls.accept(stream, "eastwest", &self.metrics).await else {
                return;
            };
            tracing::debug!(peer = ?peer.as_ref().map(|p| p.to_string()), "east-west peer");
            return self
                .serve_io(TokioIo::new(stream), listener, peer.map(Arc::new))
                .await;
        }
        self.serve_io(TokioIo::new(stream), listener, None).await
    }

    async fn serve_io<I>(
        self: Arc<Self>,
        io: I,
        listener: Listener,
        peer: Option<Arc<warden_federation::trust::spiffe::SpiffeId>>,
    ) where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let ctx = self.clone();
        let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
            let (ctx, peer) = (ctx.clone(), peer.clone());
            async move { Ok::<_, Infallible>(ctx.handle_from(req, listener, peer.as_deref()).await) }
        });
        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        if let Err(e) = builder.serve_connection_with_upgrades(io, svc).await {
            tracing::debug!(error = %e, ?listener, "connection ended with an error");
        }
    }

    fn service_of(
        &self,
        req: &Request<Incoming>,
        listener: Listener,
    ) -> Result<ServiceKey, ProxyError> {
        if listener == Listener::EastWest
            && let Some(v) = req
                .headers()
                .get(SERVICE_HEADER)
                .and_then(|v| v.to_str().ok())
        {
            return route::service_from_header(v).ok_or(ProxyError::NoService);
        }
        // The URI authority (HTTP/2 :authority, absolute-form HTTP/1.1) first; if it does not
        // name a service (a client dialing the gateway's address), the Host header.
        let from_uri = req
            .uri()
            .authority()
            .and_then(|a| route::service_from_authority(a.as_str()));
        from_uri
            .or_else(|| {
                req.headers()
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .and_then(route::service_from_authority)
            })
            .ok_or(ProxyError::NoService)
    }

    /// Handles one request end to end (no verified peer identity).
    pub async fn handle(
        self: &Arc<Self>,
        req: Request<Incoming>,
        listener: Listener,
    ) -> Response<BoxBody> {
        self.handle_from(req, listener, None).await
    }

    /// Checks an east-west caller against the service's authorization policies.
    fn authorize(
        &self,
        key: &ServiceKey,
        req: &Request<Incoming>,
        peer: &warden_federation::trust::spiffe::SpiffeId,
    ) -> Result<(), ProxyError> {
        let remote = self.tables.remote.load();
        let claimed = req
            .headers()
            .get(SOURCE_HEADER)
            .and_then(|v| v.to_str().ok());
        // The claimed source cluster counts only if it is registered with the peer's domain.
        let cluster = claimed
            .filter(|c| {
                remote
                    .cluster_domains
                    .get(*c)
                    .is_some_and(|td| *td == peer.trust_domain)
            })
            .map(str::to_string);
        let caller = crate::authz::Caller {
            spiffe_id: peer.to_string(),
            trust_domain: peer.trust_domain.clone(),
            cluster,
        };
        let none = Vec::new();
        let policies = remote.security.get(key).unwrap_or(&none);
        let d = crate::authz::decide(policies, self.cfg.authz.default == "allow", &caller);
        if d.allowed {
            return Ok(());
        }
        let service = format!("{}/{}", key.0, key.1);
        let policy = d.policy.unwrap_or_else(|| "default".into());
        self.metrics
            .authz_denied
            .with_label_values(&[service.as_str(), policy.as_str()])
            .inc();
        tracing::warn!(target: "audit", caller = %caller.spiffe_id, source_cluster = ?caller.cluster, service = %service, policy = %policy, "east-west request denied");
        Err(ProxyError::Forbidden {
            caller: caller.spiffe_id,
            service,
            policy,
        })
    }

    /// Handles one request end to end; `peer` is the verified mTLS identity on the east-west hop.
    pub async fn handle_from(
        self: &Arc<Self>,
        req: Request<Incoming>,
        listener: Listener,
        peer: Option<&warden_federation::trust::spiffe::SpiffeId>,
    ) -> Response<BoxBody> {
        let started = Instant::now();
        if listener == Listener::EastWest && req.method() == http::Method::CONNECT {
            if let Some(peer) = peer
                && let Some(key) = req
                    .headers()
                    .get(SERVICE_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(route::service_from_header)
                && let Err(e) = self.authorize(&key, &req, peer)
            {
                return self.fail(e);
            }
            return self.handle_connect(req).await;
        }
        let src_cluster = match listener {
            Listener::Outbound | Listener::Tcp(_) => self.me.cluster.clone(),
            Listener::EastWest => req
                .headers()
                .get(SOURCE_HEADER)
                .and_then(|v| v.to_str().ok())
                .filter(|v| v.len() <= 63)
                .unwrap_or("unknown")
                .to_string(),
        };
        let key = match self.service_of(&req, listener) {
            Ok(k) => k,
            Err(e) => return self.fail(e),
        };
        if listener == Listener::EastWest
            && let Some(peer) = peer
            && let Err(e) = self.authorize(&key, &req, peer)
        {
            return self.fail(e);
        }
        let service_label = format!("{}/{}", key.0, key.1);
        let trace = trace::TraceContext::from_headers(req.headers());
        let span = tracing::info_span!(
            "hop",
            trace_id = %trace.trace_id_hex(),
            span_id = %trace.span_id_hex(),
            parent_id = trace.parent_id_hex().as_deref().unwrap_or(""),
        );
        // The access line's request fields are copied only when the line will be written.
        let access = (self.cfg.telemetry.access_log
            && tracing::enabled!(target: "warden::access", tracing::Level::INFO))
        .then(|| (req.method().clone(), req.uri().path().to_string()));
        let mut info = RouteInfo::default();
        let routed = self
            .route(req, &key, listener, &trace, &mut info)
            .instrument(span.clone())
            .await;
        let resp = self.account(routed, &service_label, &src_cluster, started);
        if let Some((method, path)) = access {
            let _in = span.enter();
            tracing::info!(
                target: "warden::access",
                listener = listener.name(),
                method = %method,
                path = %path,
                service = %service_label,
                src_cluster = %src_cluster,
                dst_cluster = %info.dst.as_deref().unwrap_or("-"),
                endpoint = %info.endpoint.as_deref().unwrap_or("-"),
                status = resp.status().as_u16(),
                duration_ms = started.elapsed().as_secs_f64() * 1e3,
                retries = info.retries,
                "request"
            );
        }
        resp
    }

    /// Counts a routed request in the metrics and turns an error into its response.
    fn account(
        &self,
        routed: Result<(Response<BoxBody>, String), ProxyError>,
        service_label: &str,
        src_cluster: &str,
        started: Instant,
    ) -> Response<BoxBody> {
        match routed {
            Ok((resp, dst)) => {
                let class = match resp.status().as_u16() {
                    100..=199 => "1xx",
                    200..=299 => "2xx",
                    300..=399 => "3xx",
                    400..=499 => "4xx",
                    _ => "5xx",
                };
                self.metrics
                    .requests
                    .with_label_values(&[service_label, src_cluster, dst.as_str(), class])
                    .inc();
                self.metrics
                    .duration
                    .with_label_values(&[service_label, dst.as_str()])
                    .observe(started.elapsed().as_secs_f64());
                resp
            }
            Err(e) => {
                self.metrics
                    .requests
                    .with_label_values(&[service_label, src_cluster, "none", "5xx"])
                    .inc();
                self.fail(e)
            }
        }
    }

    fn fail(&self, e: ProxyError) -> Response<BoxBody> {
        self.metrics
            .proxy_errors
            .with_label_values(&[e.cause()])
            .inc();
        tracing::debug!(error = %e, blame = ?e.blame(), "request failed");
        e.into_response()
    }

    /// Picks targets and forwards, retrying on another target when allowed; `info` tells the
    /// access log where the request went.
    async fn route(
        self: &Arc<Self>,
        req: Request<Incoming>,
        key: &ServiceKey,
        listener: Listener,
        trace: &trace::TraceContext,
        info: &mut RouteInfo,
    ) -> Result<(Response<BoxBody>, String), ProxyError> {
        let local_table = self.tables.local.load();
        let remote_table = self.tables.remote.load();
        let local = local_table.services.get(key).cloned();
        let empty_remotes = Vec::new();
        let remotes = match listener {
            // The east-west hop never forwards again: local endpoints only.
            Listener::EastWest => &empty_remotes,
            Listener::Outbound | Listener::Tcp(_) => {
                remote_table.services.get(key).unwrap_or(&empty_remotes)
            }
        };
        let policy = remote_table.policies.get(key);
        let name = format!("{}/{}", key.0, key.1);
        if local.is_none() && remotes.is_empty() {
            return Err(match listener {
                Listener::EastWest => ProxyError::NoLocalEndpoint(name),
                Listener::Outbound | Listener::Tcp(_) => ProxyError::UnknownService(name),
            });
        }

        let (mut parts, body) = req.into_parts();
        parts.headers.insert(trace::TRACEPARENT, trace.header());
        let idempotent = matches!(
            parts.method,
            http::Method::GET
                | http::Method::HEAD
                | http::Method::OPTIONS
                | http::Method::PUT
                | http::Method::DELETE
        );
        // Buffer small bodies of known length so the request can be replayed on another target;
        // stream large or unknown-length ones (streaming gRPC) once.
        let known_len = hyper::body::Body::size_hint(&body).exact();
        let mut once_body: Option<BoxBody> = None;
        let replay: Option<Bytes> = match known_len {
            Some(0) => Some(Bytes::new()),
            // Includes unary gRPC with a known length; streaming calls have no known length.
            Some(n) if n <= MAX_REPLAY_BYTES => Some(
                body.collect()
                    .await
                    .map_err(|e| ProxyError::Upstream {
                        target: "client".into(),
                        message: format!("reading the request body: {e}"),
                    })?
                    .to_bytes(),
            ),
            _ => {
                once_body = Some(body.map_err(|e| Box::new(e) as BoxError).boxed());
                None
            }
        };

        self.budget.request();
        let overall = Duration::from_millis(self.cfg.timeouts.overall_ms);
        let deadline = Instant::now() + overall;
        let mut exclude: Vec<Target> = Vec::new();
        // A retry after a connect failure costs the upstream nothing (the request never left),
        // so only retries of sent requests draw on the budget.
        let mut needs_budget = false;
        let mut last_err: Option<ProxyError> = None;
        // A 5xx kept in case no other target can be tried.
        let mut last_resp: Option<(Response<BoxBody>, String)> = None;
        for attempt in 0..=self.cfg.retries.max_retries {
            let Some(target) = self.choose(local.as_deref(), remotes, policy, &exclude) else {
                break;
            };
            if attempt > 0 {
                if needs_budget && !self.budget.try_retry() {
                    break;
                }
                info.retries += 1;
                self.metrics
                    .retries
                    .with_label_values(&[name.as_str()])
                    .inc();
            }
            let body = match (&replay, once_body.take()) {
                (Some(b), _) => full(b.clone()),
                (None, Some(b)) => b,
                (None, None) => break, // a streamed body cannot be sent twice
            };
            let mut out = Request::from_parts(parts.clone(), body);
            strip_hop_headers(out.headers_mut());
            let remaining = deadline.saturating_duration_since(Instant::now());
            let per_try = Duration::from_millis(self.cfg.timeouts.per_try_ms).min(remaining);
            let (result, dst, endpoint) = match target {
                Target::Local(i) => {
                    let Some(l) = local.as_ref() else { break };
                    let ep = &l.endpoints[i];
                    let _g = ep.inflight.track();
                    let r = self.send_local(out, &ep.addr, l.h2, per_try).await;
                    (r, self.me.cluster.clone(), Some(ep.addr.clone()))
                }
                Target::Remote(i) => {
                    let rc = &remotes[i];
                    let _g = rc.inflight.track();
                    let r = self
                        .send_remote(out, key, &rc.gateway, &rc.trust_domain, per_try)
                        .await;
                    (r, rc.cluster.clone(), None)
                }
            };
            info.dst = Some(dst.clone());
            info.endpoint = endpoint.clone().or_else(|| match target {
                Target::Remote(i) => Some(remotes[i].gateway.clone()),
                Target::Local(_) => None,
            });
            match result {
                Ok(resp)
                    if resp.status().is_server_error()
                        && idempotent
                        && replay.is_some()
                        && attempt < self.cfg.retries.max_retries =>
                {
                    if let Some(ep) = endpoint {
                        self.signal(key, ep, false);
                    }
                    exclude.push(target);
                    needs_budget = true;
                    let resp = resp.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed());
                    last_resp = Some((self.stamp(resp, &dst), dst));
                    continue;
                }
                Ok(resp) => {
                    if let Some(ep) = endpoint {
                        self.signal(key, ep, !resp.status().is_server_error());
                    }
                    let resp = resp.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed());
                    return Ok((self.stamp(resp, &dst), dst));
                }
                Err(e) => {
                    if let Some(ep) = endpoint {
                        let refused = matches!(e, ProxyError::Connect { refused: true, .. });
                        self.signal_refused(key, ep, false, refused);
                    }
                    let retryable = replay.is_some() && (e.never_sent() || idempotent);
                    needs_budget = !e.never_sent();
                    exclude.push(target);
                    last_err = Some(e);
                    if !retryable {
                        break;
                    }
                }
            }
        }
        if let Some(r) = last_resp {
            return Ok(r);
        }
        Err(last_err.unwrap_or(ProxyError::NoHealthyUpstream(name)))
    }

    /// Plans and draws one target (the one balancing decision HTTP and TCP share).
    pub(crate) fn choose(
        &self,
        local: Option<&crate::table::LocalService>,
        remotes: &[crate::table::RemoteCluster],
        policy: Option<&crate::table::RoutePolicy>,
        exclude: &[Target],
    ) -> Option<Target> {
        let inputs = Inputs {
            me: &self.me,
            local,
            remotes,
            policy,
            overprovisioning_percent: self.cfg.routing.overprovisioning_percent,
            exclude,
        };
        let plan = balance::plan(&inputs);
        balance::pick(
            &plan,
            &inputs,
            fastrand::f64(),
            fastrand::f64(),
            fastrand::f64(),
        )
    }

    fn stamp(&self, mut resp: Response<BoxBody>, dst: &str) -> Response<BoxBody> {
        if !resp.headers().contains_key(SERVED_BY_HEADER)
            && let Ok(v) = HeaderValue::from_str(dst)
        {
            resp.headers_mut().insert(SERVED_BY_HEADER, v);
        }
        resp
    }

    fn signal(&self, key: &ServiceKey, endpoint: String, ok: bool) {
        self.signal_refused(key, endpoint, ok, false);
    }

    fn signal_refused(&self, key: &ServiceKey, endpoint: String, ok: bool, refused: bool) {
        // Bounded and non-blocking: if the control plane is behind, drop the signal.
        let _ = self.passive.try_send(PassiveSignal {
            service: key.clone(),
            endpoint,
            ok,
            refused,
        });
    }

    async fn send_local(
        &self,
        mut req: Request<BoxBody>,
        addr: &str,
        h2: bool,
        per_try: Duration,
    ) -> Result<Response<Incoming>, ProxyError> {
        retarget(&mut req, addr)?;
        if h2 {
            *req.version_mut() = http::Version::HTTP_2;
            self.send(&self.h2, req, addr, per_try).await
        } else {
            *req.version_mut() = http::Version::HTTP_11;
            self.send(&self.local, req, addr, per_try).await
        }
    }

    async fn send_remote(
        &self,
        mut req: Request<BoxBody>,
        key: &ServiceKey,
        gateway: &str,
        trust_domain: &str,
        per_try: Duration,
    ) -> Result<Response<Incoming>, ProxyError> {
        retarget(&mut req, gateway)?;
        *req.version_mut() = http::Version::HTTP_2;
        let h = req.headers_mut();
        h.remove(http::header::HOST);
        if let Ok(v) = HeaderValue::from_str(&format!("{}/{}", key.0, key.1)) {
            h.insert(SERVICE_HEADER, v);
        }
        if let Ok(v) = HeaderValue::from_str(&self.me.cluster) {
            h.insert(SOURCE_HEADER, v);
        }
        match &self.tls {
            None => self.send(&self.h2, req, gateway, per_try).await,
            Some(tls) => {
                let client = tls
                    .client_for(trust_domain)
                    .map_err(|e| ProxyError::Connect {
                        target: gateway.to_string(),
                        message: e.to_string(),
                        refused: false,
                    })?;
                self.send(&client, req, gateway, per_try).await
            }
        }
    }

    async fn send<C>(
        &self,
        client: &Client<C, BoxBody>,
        req: Request<BoxBody>,
        target: &str,
        per_try: Duration,
    ) -> Result<Response<Incoming>, ProxyError>
    where
        C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
    {
        match tokio::time::timeout(per_try, client.request(req)).await {
            Err(_) => Err(ProxyError::Timeout {
                target: target.to_string(),
                ms: per_try.as_millis() as u64,
            }),
            Ok(Err(e)) if e.is_connect() => Err(ProxyError::Connect {
                target: target.to_string(),
                message: error_chain(&e),
                refused: is_refused(&e),
            }),
            Ok(Err(e)) => Err(ProxyError::Upstream {
                target: target.to_string(),
                message: error_chain(&e),
            }),
            Ok(Ok(resp)) => Ok(resp),
        }
    }
}

/// Points a request at `addr`, keeping its path and query.
fn retarget(req: &mut Request<BoxBody>, addr: &str) -> Result<(), ProxyError> {
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

/// Whether an error's cause chain holds an `ECONNREFUSED`.
fn is_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        cur = c.source();
    }
    false
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Removes hop-by-hop headers (RFC 9110 §7.6.1) before forwarding.
fn strip_hop_headers(h: &mut http::HeaderMap) {
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
    ] {
        h.remove(name);
    }
    // `te: trailers` must pass for gRPC; anything else is hop-by-hop.
    if h.get("te").is_some_and(|v| v != "trailers") {
        h.remove("te");
    }
}

/// An empty body, for tests and admin use.
pub fn empty_body() -> BoxBody {
    empty()
}
