//! Raw TCP by port mapping: a TCP listener bound to `namespace/service:port` (a route of
//! `listeners.tcp`, or an import listener whose pod port the Kubernetes actor gave an
//! imported service's TCP port) forwards each
//! connection to a local endpoint, or — when local endpoints cannot serve — to a remote
//! cluster's gateway through an HTTP/2 CONNECT stream on its east-west listener, naming the
//! service and port. The receiving gateway connects one of its own endpoints (never
//! forwarding again, see [`super::inbound`]). Connect failures move on to the next target.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use super::attempt::{Attempt, Hop};
use super::context::{Listener, ProxyCtx, SOURCE_HEADER, TcpSource};
use super::inbound::PORT_HEADER;
use super::naming::SERVICE_HEADER;
use super::splice::splice;
use super::view::{ServiceView, draws};
use crate::config::TargetPort;
use crate::key::ServiceKey;
use crate::table::local_addr;

/// Serves one TCP connection accepted on a raw TCP listener.
pub async fn serve(ctx: Arc<ProxyCtx>, client: TcpStream, source: TcpSource) {
    let _ = client.set_nodelay(true);
    let (key, port) = match source {
        TcpSource::Config(idx) => {
            let Some(route) = ctx.cfg.listeners.tcp.get(idx) else {
                return;
            };
            let Some(key) = ServiceKey::parse(&route.service) else {
                tracing::warn!(service = %route.service, "tcp route names no namespace/service");
                return;
            };
            (key, route.port)
        }
        TcpSource::Import(pod_port) => match ctx.tables.tcp_imports.load().get(&pod_port) {
            Some((key, port)) => (key.clone(), *port),
            // The import went away between the accept and here.
            None => {
                ctx.metrics
                    .proxy_errors
                    .with_label_values(&["tcp_import_gone"])
                    .inc();
                return;
            }
        },
    };
    forward(ctx, client, key, port, source).await
}

/// Forwards one TCP connection to `key`:`port`.
async fn forward(
    ctx: Arc<ProxyCtx>,
    mut client: TcpStream,
    key: ServiceKey,
    port: u16,
    source: TcpSource,
) {
    // Each stream holds one of the gateway's tunnel permits until it ends; none left, the
    // connection is closed at once rather than queued.
    let Ok(_permit) = ctx.tunnels.clone().try_acquire_owned() else {
        ctx.metrics
            .proxy_errors
            .with_label_values(&["tunnel_limit"])
            .inc();
        tracing::debug!(service = %key, "tcp connection dropped: the tunnel limit is reached");
        return;
    };
    let idle = Duration::from_millis(ctx.cfg.limits.tunnel_idle_ms);
    let view = ServiceView::load(&ctx.tables, &key, Listener::Tcp(source));
    let over = ctx.cfg.routing.overprovisioning_percent;
    let connect = Duration::from_millis(ctx.cfg.timeouts.connect_ms);
    let mut exclude = Vec::new();
    // Where the local endpoints serve the port; a port they do not serve only remote
    // gateways can be asked for.
    let target = view.local.as_ref().and_then(|l| l.target(port));
    if let Some(l) = &view.local
        && target.is_none()
    {
        exclude.extend((0..l.endpoints.len()).map(crate::balance::Target::Local));
    }
    let max_retries = ctx.tables.settings.load().max_retries.value;
    for _ in 0..=max_retries {
        let Some(a) = view.choose(&ctx.me, over, &exclude, draws()) else {
            break;
        };
        // Counted in flight for the whole stream, as least-request balancing needs.
        let _in_flight = a.inflight.track();
        match open(&ctx, &a, &key, (port, target), connect).await {
            Ok(Stream::Tcp(mut upstream)) => {
                splice(&mut client, &mut upstream, idle).await;
                return count(&ctx, &key, a.cluster);
            }
            Ok(Stream::Tunnel(upgraded)) => {
                let mut io = TokioIo::new(upgraded);
                splice(&mut client, &mut io, idle).await;
                return count(&ctx, &key, a.cluster);
            }
            Err(e) => {
                tracing::debug!(service = %key, target = %a.addr, error = %e, "tcp target failed; trying the next");
                exclude.push(a.target);
            }
        }
    }
    ctx.metrics
        .proxy_errors
        .with_label_values(&["tcp_no_target"])
        .inc();
    tracing::debug!(service = %key, "tcp connection dropped: no target could be reached");
}

/// An opened upstream: a local endpoint's socket, or a CONNECT tunnel through a gateway.
enum Stream {
    Tcp(TcpStream),
    Tunnel(hyper::upgrade::Upgraded),
}

async fn open(
    ctx: &ProxyCtx,
    a: &Attempt<'_>,
    key: &ServiceKey,
    (port, target): (u16, Option<TargetPort>),
    connect: Duration,
) -> Result<Stream, String> {
    match &a.hop {
        Hop::Local { .. } => {
            let addr = local_addr(a.addr, target);
            let s = tokio::time::timeout(connect, TcpStream::connect(addr.as_ref()))
                .await
                .map_err(|_| "connect timed out".to_string())?
                .map_err(|e| e.to_string())?;
            let _ = s.set_nodelay(true);
            Ok(Stream::Tcp(s))
        }
        Hop::Remote { trust_domain } => {
            connect_remote(ctx, a.addr, trust_domain, key, port, connect)
                .await
                .map(Stream::Tunnel)
        }
    }
}

fn count(ctx: &ProxyCtx, key: &ServiceKey, dst: &str) {
    ctx.metrics
        .requests
        .with_label_values(&[
            key.to_string().as_str(),
            ctx.me.cluster.as_str(),
            dst,
            "tcp",
        ])
        .inc();
}

/// Opens an HTTP/2 CONNECT stream to a remote gateway for `key`:`port` (over mTLS when
/// configured, verifying the remote cluster's trust domain).
async fn connect_remote(
    ctx: &ProxyCtx,
    gateway: &str,
    trust_domain: &str,
    key: &ServiceKey,
    port: u16,
    connect: Duration,
) -> Result<hyper::upgrade::Upgraded, String> {
    let mut send = match &ctx.tls {
        Some(tls) => {
            let stream = tls.dial(gateway, trust_domain).await?;
            h2_handshake(TokioIo::new(stream)).await?
        }
        None => {
            let tcp = tokio::time::timeout(connect, TcpStream::connect(gateway))
                .await
                .map_err(|_| "connect timed out".to_string())?
                .map_err(|e| e.to_string())?;
            let _ = tcp.set_nodelay(true);
            h2_handshake(TokioIo::new(tcp)).await?
        }
    };
    let req = Request::builder()
        .method(Method::CONNECT)
        .uri(gateway)
        .header(SERVICE_HEADER, key.to_string())
        .header(PORT_HEADER, port.to_string())
        .header(
            SOURCE_HEADER,
            HeaderValue::from_str(&ctx.me.cluster).map_err(|e| e.to_string())?,
        )
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
    if resp.status() != StatusCode::OK {
        return Err(format!("remote gateway answered {}", resp.status()));
    }
    hyper::upgrade::on(resp).await.map_err(|e| e.to_string())
}

async fn h2_handshake<I>(
    io: I,
) -> Result<hyper::client::conn::http2::SendRequest<Empty<bytes::Bytes>>, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}
