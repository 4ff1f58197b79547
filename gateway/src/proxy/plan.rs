//! Stage "plan": the routing snapshot, read once per request, turned into plain data — which
//! targets a request may try ([`ServiceView`]), how it may be retried and for how long
//! ([`Plan`]), and the exact request each attempt sends ([`Plan::request_for`]). No sockets:
//! everything here is tested without a network.

use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use http::{HeaderValue, Request, Uri};
use tokio::time::Instant;

use super::attempt::{Attempt, Hop};
use super::body::BoxBody;
use super::context::{Listener, ProxyCtx, RequestCtx, SOURCE_HEADER};
use super::error::ProxyError;
use super::naming::SERVICE_HEADER;
use super::trace::TRACEPARENT;
use crate::balance::{self, Inputs, Locality, Target};
use crate::key::ServiceKey;
use crate::table::{LocalService, RemoteCluster, RoutePolicy, Tables};

/// What the routing tables say about one service, read once.
#[derive(Debug, Clone)]
pub struct ServiceView {
    pub key: ServiceKey,
    pub local: Option<Arc<LocalService>>,
    /// Other clusters' copies (none on the east-west listener: it never forwards again).
    pub remotes: Arc<[RemoteCluster]>,
    pub policy: Option<Arc<RoutePolicy>>,
    /// The store revision the remote part reflects.
    pub revision: u64,
    /// Whether the federation watch is connected (routing goes on from the last table if not).
    pub connected: bool,
}

impl ServiceView {
    /// Loads `key` from both tables; on the east-west listener without remote clusters.
    pub fn load(tables: &Tables, key: &ServiceKey, listener: Listener) -> Self {
        let local = tables.local.load().services.get(key).cloned();
        let remote = tables.remote.load();
        let remotes = match listener {
            Listener::EastWest => Arc::from(Vec::new()),
            Listener::Outbound | Listener::Tcp(_) => remote
                .services
                .get(key)
                .cloned()
                .unwrap_or_else(|| Arc::from(Vec::new())),
        };
        Self {
            key: key.clone(),
            local,
            remotes,
            policy: remote.policies.get(key).cloned(),
            revision: remote.revision,
            connected: remote.connected,
        }
    }

    /// The error when nothing anywhere offers the service.
    pub fn missing(&self, listener: Listener) -> Option<ProxyError> {
        if self.local.is_some() || !self.remotes.is_empty() {
            return None;
        }
        let name = self.key.to_string();
        Some(match listener {
            Listener::EastWest => ProxyError::NoLocalEndpoint(name),
            Listener::Outbound | Listener::Tcp(_) => ProxyError::UnknownService(name),
        })
    }

    /// The balancer's inputs for this view.
    pub fn inputs<'a>(
        &'a self,
        me: &'a Locality,
        overprovisioning_percent: u32,
        exclude: &'a [Target],
    ) -> Inputs<'a> {
        Inputs {
            me,
            local: self.local.as_deref(),
            remotes: &self.remotes,
            policy: self.policy.as_deref(),
            overprovisioning_percent,
            exclude,
        }
    }

    /// Plans and draws one target (the one balancing decision HTTP, TCP and east-west CONNECT
    /// share); `draws` are three uniform numbers in [0, 1).
    pub fn choose(
        &self,
        me: &Locality,
        overprovisioning_percent: u32,
        exclude: &[Target],
        draws: [f64; 3],
    ) -> Option<Attempt> {
        let inputs = self.inputs(me, overprovisioning_percent, exclude);
        let plan = balance::plan(&inputs);
        let target = balance::pick(&plan, &inputs, draws[0], draws[1], draws[2])?;
        Some(match target {
            Target::Local(i) => {
                let l = self.local.as_ref()?;
                let ep = l.endpoints.get(i)?;
                Attempt {
                    target,
                    cluster: me.cluster.clone(),
                    addr: ep.addr.clone(),
                    hop: Hop::Local { h2: l.h2 },
                    inflight: ep.inflight.clone(),
                }
            }
            Target::Remote(i) => {
                let r = self.remotes.get(i)?;
                Attempt {
                    target,
                    cluster: r.cluster.clone(),
                    addr: r.gateway.clone(),
                    hop: Hop::Remote {
                        trust_domain: r.trust_domain.clone(),
                    },
                    inflight: r.inflight.clone(),
                }
            }
        })
    }
}

/// Three uniform draws in [0, 1) for [`ServiceView::choose`].
pub fn draws() -> [f64; 3] {
    [fastrand::f64(), fastrand::f64(), fastrand::f64()]
}

/// An HTTP request's plan: where it may go, how it may be retried, what it sends.
#[derive(Debug)]
pub struct Plan {
    pub view: ServiceView,
    /// GET, HEAD, OPTIONS, PUT, DELETE: safe to send again after an upstream saw it.
    pub idempotent: bool,
    /// Attempts beyond the first.
    pub max_retries: u32,
    /// Bound on each attempt (never past the deadline).
    pub per_try: Duration,
    /// Bound on the whole request.
    pub deadline: Instant,
    /// The head to send: this hop's `traceparent`, no hop-by-hop headers.
    pub head: Parts,
    /// The calling cluster, named to remote gateways.
    pub source_cluster: String,
}

impl Plan {
    /// Plans a request for `key` whose head is `head`.
    pub fn new(
        ctx: &ProxyCtx,
        rc: &RequestCtx,
        key: &ServiceKey,
        mut head: Parts,
    ) -> Result<Self, ProxyError> {
        let view = ServiceView::load(&ctx.tables, key, rc.listener);
        if let Some(e) = view.missing(rc.listener) {
            return Err(e);
        }
        head.headers.insert(TRACEPARENT, rc.trace.header());
        strip_hop_headers(&mut head.headers);
        let idempotent = matches!(
            head.method,
            http::Method::GET
                | http::Method::HEAD
                | http::Method::OPTIONS
                | http::Method::PUT
                | http::Method::DELETE
        );
        let t = &ctx.cfg.timeouts;
        Ok(Self {
            view,
            idempotent,
            max_retries: ctx.cfg.retries.max_retries,
            per_try: Duration::from_millis(t.per_try_ms),
            deadline: rc.started + Duration::from_millis(t.overall_ms),
            head,
            source_cluster: ctx.me.cluster.clone(),
        })
    }

    /// This attempt's time bound: the per-try timeout, cut short by the deadline.
    pub fn per_try_now(&self) -> Duration {
        self.per_try
            .min(self.deadline.saturating_duration_since(Instant::now()))
    }

    /// The request one attempt sends to `attempt`'s target.
    pub fn request_for(
        &self,
        attempt: &Attempt,
        body: BoxBody,
    ) -> Result<Request<BoxBody>, ProxyError> {
        let mut req = Request::from_parts(self.head.clone(), body);
        retarget(&mut req, &attempt.addr)?;
        match &attempt.hop {
            Hop::Local { h2 } => {
                *req.version_mut() = if *h2 {
                    http::Version::HTTP_2
                } else {
                    http::Version::HTTP_11
                };
            }
            Hop::Remote { .. } => {
                *req.version_mut() = http::Version::HTTP_2;
                let h = req.headers_mut();
                h.remove(http::header::HOST);
                if let Ok(v) = HeaderValue::from_str(&self.view.key.to_string()) {
                    h.insert(SERVICE_HEADER, v);
                }
                if let Ok(v) = HeaderValue::from_str(&self.source_cluster) {
                    h.insert(SOURCE_HEADER, v);
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

/// Removes hop-by-hop headers (RFC 9110 §7.6.1) before forwarding.
pub fn strip_hop_headers(h: &mut http::HeaderMap) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{LocalEndpoint, LocalTable, RemoteTable};

    fn me() -> Locality {
        Locality {
            cluster: "east".into(),
            region: "r1".into(),
            zone: "z1".into(),
        }
    }

    fn remote(cluster: &str, zone: &str, healthy: u32) -> RemoteCluster {
        RemoteCluster {
            cluster: cluster.into(),
            region: "r1".into(),
            zone: zone.into(),
            gateway: format!("{cluster}.gw:15008"),
            trust_domain: format!("{cluster}.test"),
            healthy_endpoints: healthy,
            weight: 100,
            live: true,
            inflight: Default::default(),
        }
    }

    fn tables(local_up: &[bool], remotes: Vec<RemoteCluster>) -> (Tables, ServiceKey) {
        let key = ServiceKey::new("shop", "cart");
        let t = Tables::default();
        let eps = local_up
            .iter()
            .enumerate()
            .map(|(i, up)| LocalEndpoint {
                addr: format!("10.0.0.{i}:8080"),
                available: *up,
                ramp: 1.0,
                inflight: Default::default(),
            })
            .collect();
        let mut lt = LocalTable::default();
        lt.services.insert(
            key.clone(),
            Arc::new(LocalService {
                endpoints: eps,
                weight: 100,
                h2: false,
                port: 80,
            }),
        );
        t.local.store(Arc::new(lt));
        let mut rt = RemoteTable::default();
        rt.services.insert(key.clone(), Arc::from(remotes));
        t.remote.store(Arc::new(rt));
        (t, key)
    }

    #[test]
    fn local_first_then_the_nearest_cluster_and_never_forwarding_twice() {
        let (t, key) = tables(
            &[true, true],
            vec![remote("west", "z9", 2), remote("central", "z1", 2)],
        );
        let view = ServiceView::load(&t, &key, Listener::Outbound);
        let a = view.choose(&me(), 140, &[], [0.5, 0.1, 0.9]).unwrap();
        assert_eq!(a.cluster, "east");
        assert_eq!(a.hop, Hop::Local { h2: false });
        // Both local endpoints failed in this request: the same-zone cluster is next.
        let tried = [Target::Local(0), Target::Local(1)];
        let a = view.choose(&me(), 140, &tried, [0.5, 0.1, 0.9]).unwrap();
        assert_eq!(a.cluster, "central");
        assert_eq!(a.addr, "central.gw:15008");
        assert_eq!(
            a.hop,
            Hop::Remote {
                trust_domain: "central.test".into()
            }
        );
        // The east-west listener sees local endpoints only.
        let ew = ServiceView::load(&t, &key, Listener::EastWest);
        assert!(ew.remotes.is_empty());
        assert!(ew.choose(&me(), 140, &tried, [0.5, 0.1, 0.9]).is_none());
        let unknown = ServiceView::load(&t, &ServiceKey::new("shop", "nope"), Listener::EastWest);
        assert!(matches!(
            unknown.missing(Listener::EastWest),
            Some(ProxyError::NoLocalEndpoint(_))
        ));
        assert!(matches!(
            unknown.missing(Listener::Outbound),
            Some(ProxyError::UnknownService(_))
        ));
    }

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
        strip_hop_headers(&mut head.headers);
        let plan = Plan {
            view,
            idempotent: false,
            max_retries: 2,
            per_try: Duration::from_secs(1),
            deadline: Instant::now() + Duration::from_secs(5),
            head,
            source_cluster: "east".into(),
        };
        let a = plan.view.choose(&me(), 140, &[], [0.1, 0.1, 0.1]).unwrap();
        assert_eq!(a.cluster, "west");
        let out = plan.request_for(&a, super::super::body::empty()).unwrap();
        assert_eq!(out.uri(), "http://west.gw:15008/pay?x=1");
        assert_eq!(out.version(), http::Version::HTTP_2);
        let h = out.headers();
        assert_eq!(h[SERVICE_HEADER], "shop/cart");
        assert_eq!(h[SOURCE_HEADER], "east");
        assert!(h.get("host").is_none());
        assert!(h.get("connection").is_none() && h.get("upgrade").is_none());
        assert_eq!(h["te"], "trailers", "gRPC needs te: trailers");
    }
}
