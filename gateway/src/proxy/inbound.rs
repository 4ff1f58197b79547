//! The east-west side: who is calling (the peer gateway's verified SPIFFE identity and the
//! source cluster it claims), whether it may call the service (authorization policies), and
//! CONNECT — a TCP stream for `x-warden-service` on `x-warden-port`, spliced to one of this
//! cluster's own endpoints. Nothing arriving here is forwarded to another cluster.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use warden_federation::trust::spiffe::SpiffeId;

use super::body::{BoxBody, empty};
use super::context::{Listener, ProxyCtx, SOURCE_HEADER};
use super::error::ProxyError;
use super::naming::SERVICE_HEADER;
use super::respond::error_response;
use super::view::{ServiceView, draws};
use crate::authz::{self, Caller};
use crate::key::ServiceKey;

pub use super::naming::PORT_HEADER;

/// Checks an east-west caller, and returns its verified cluster: the service must be exported (a local-only service is not
/// reachable from other clusters), and the caller must pass the service's authorization
/// policies. Without mTLS there is no verified identity: any policy, or `authz.default =
/// "deny"`, then denies (fails closed); only a plaintext listener with no policy at all lets a
/// caller in, which the configuration allows only on loopback or by `insecure_plaintext`.
pub fn authorize(
    ctx: &ProxyCtx,
    key: &ServiceKey,
    headers: &HeaderMap,
    peer: Option<&SpiffeId>,
) -> Result<Option<String>, ProxyError> {
    let local = ctx.tables.local.load();
    let Some(service) = local.services.get(key).filter(|s| s.exported) else {
        // Not exported looks the same as not there: nothing about it is told to other clusters.
        return Err(ProxyError::UnknownService(key.to_string()));
    };
    let export_to = service.export_to.clone();
    let remote = ctx.tables.remote.load();
    let claimed = headers.get(SOURCE_HEADER).and_then(|v| v.to_str().ok());
    // An export for named clusters only: any other caller is refused (the claimed source
    // counts only when verified, below; without mTLS the configuration trusts it).
    let audience = |cluster: Option<&str>, caller: &str| match cluster
        .is_some_and(|c| warden_federation::audience::allows(&export_to, c))
        || export_to.is_empty()
    {
        true => Ok(()),
        false => Err(deny(
            ctx,
            key,
            caller.to_string(),
            cluster.map(str::to_string),
            "export_to",
        )),
    };
    let Some(peer) = peer else {
        audience(claimed, "unauthenticated")?;
        let policies = remote.security.get(key).map(Vec::len).unwrap_or(0);
        if policies == 0 && ctx.tables.settings.load().authz_allow.value {
            return Ok(None);
        }
        return Err(deny(
            ctx,
            key,
            "unauthenticated".into(),
            None,
            "no_verified_peer",
        ));
    };
    // The claimed source cluster counts only if it is registered with the peer's domain.
    let cluster = claimed
        .filter(|c| {
            remote
                .cluster_domains
                .get(*c)
                .is_some_and(|td| *td == peer.trust_domain)
        })
        .map(str::to_string);
    audience(cluster.as_deref(), &peer.to_string())?;
    let caller = Caller {
        spiffe_id: peer.to_string(),
        trust_domain: peer.trust_domain.clone(),
        cluster,
    };
    let policies = remote.security.get(key).map(Vec::as_slice).unwrap_or(&[]);
    let d = authz::decide(
        policies,
        ctx.tables.settings.load().authz_allow.value,
        &caller,
    );
    if d.allowed {
        return Ok(caller.cluster);
    }
    let policy = d.policy.unwrap_or_else(|| "default".into());
    Err(deny(ctx, key, caller.spiffe_id, caller.cluster, &policy))
}

/// Counts and logs a denial once (the `audit` target); the error the caller gets.
pub fn deny(
    ctx: &ProxyCtx,
    key: &ServiceKey,
    caller: String,
    cluster: Option<String>,
    policy: &str,
) -> ProxyError {
    let service = key.to_string();
    // Bounded labels: the service is a known local one; the policy is an id or a fixed word.
    ctx.metrics
        .authz_denied
        .with_label_values(&[service.as_str(), policy])
        .inc();
    tracing::warn!(target: "audit", caller = %caller, source_cluster = ?cluster, service = %service, policy = %policy, "request denied");
    ProxyError::Forbidden {
        caller,
        service,
        policy: policy.to_string(),
    }
}

/// The service and port a CONNECT asks for. A CONNECT without a port header asks for the
/// port the local endpoints serve.
fn connect_target(headers: &HeaderMap) -> Result<(ServiceKey, Option<u16>), ProxyError> {
    let key = headers
        .get(SERVICE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(ServiceKey::parse)
        .ok_or(ProxyError::NoService)?;
    let port = headers
        .get(PORT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u16>().ok());
    Ok((key, port))
}

/// Connects one of this cluster's endpoints of `key` that serve `port`, trying each at most
/// once.
pub async fn connect_local(
    ctx: &ProxyCtx,
    key: &ServiceKey,
    port: Option<u16>,
) -> Result<TcpStream, ProxyError> {
    let view = ServiceView::load(&ctx.tables, key, Listener::EastWest);
    let Some(local) = view.local.as_ref() else {
        return Err(ProxyError::NoLocalEndpoint(key.to_string()));
    };
    let target = match port {
        None => None,
        Some(p) => Some(local.target(p).ok_or_else(|| ProxyError::PortNotRouted {
            service: key.to_string(),
            port: p,
            served: local.port,
        })?),
    };
    let timeout = Duration::from_millis(ctx.cfg.timeouts.connect_ms);
    let over = ctx.cfg.routing.overprovisioning_percent;
    let mut exclude = Vec::new();
    for _ in 0..local.endpoints.len() {
        let Some(a) = view.choose(&ctx.me, over, &exclude, draws()) else {
            break;
        };
        let addr = crate::table::local_addr(a.addr, target);
        match tokio::time::timeout(timeout, TcpStream::connect(addr.as_ref())).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Ok(Err(e)) => {
                let refused = e.kind() == std::io::ErrorKind::ConnectionRefused;
                ctx.signal(key, a.addr, false, refused);
                exclude.push(a.target);
            }
            Err(_) => exclude.push(a.target),
        }
    }
    Err(ProxyError::NoLocalEndpoint(key.to_string()))
}

/// Answers an east-west CONNECT: authorize, connect a local endpoint, then splice the
/// upgraded stream to it in the background.
pub async fn connect<B>(
    ctx: &Arc<ProxyCtx>,
    req: Request<B>,
    peer: Option<&SpiffeId>,
) -> Response<BoxBody>
where
    B: Send + 'static,
{
    let opened = async {
        let (key, port) = connect_target(req.headers())?;
        authorize(ctx, &key, req.headers(), peer)?;
        // The permit is taken before connecting and held by the splice until it ends.
        let permit = ctx.tunnel_permit()?;
        Ok::<_, ProxyError>((permit, connect_local(ctx, &key, port).await?))
    };
    let (permit, mut upstream) = match opened.await {
        Ok(s) => s,
        Err(e) => {
            ctx.metrics
                .proxy_errors
                .with_label_values(&[e.cause()])
                .inc();
            return error_response(&e, false);
        }
    };
    let idle = Duration::from_millis(ctx.cfg.limits.tunnel_idle_ms);
    tokio::spawn(async move {
        let _permit = permit;
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let mut io = TokioIo::new(upgraded);
                super::splice::splice(&mut io, &mut upstream, idle).await;
            }
            Err(e) => tracing::debug!(error = %e, "east-west CONNECT upgrade failed"),
        }
    });
    Response::new(empty())
}
