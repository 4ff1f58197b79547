//! Stage "accept": one accepted connection — TCP options, the mandatory mTLS handshake on the
//! east-west listener (the peer's SPIFFE identity is kept for authorization), then HTTP/1.1
//! or HTTP/2 with upgrades (CONNECT), each request handed to [`super::request::handle`]. Raw
//! TCP listeners go to [`super::tcp`]. Every connection watches the drain signal: once the
//! gateway drains, it finishes the requests in flight and closes.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use warden_federation::trust::spiffe::SpiffeId;

use super::context::{Listener, ProxyCtx};
use super::request::handle;
use super::tcp;
use crate::drain::Draining;

/// Serves one accepted connection until it ends. It counts as open for the drain from here
/// on, TLS handshake and raw TCP streams included.
pub async fn serve_connection(ctx: Arc<ProxyCtx>, stream: TcpStream, listener: Listener) {
    let draining = ctx.drain.watch();
    if let Listener::Tcp(i) = listener {
        // A raw stream cannot be asked to finish: the drain waits for it, up to its deadline.
        let _open = draining;
        return tcp::serve(ctx, stream, i).await;
    }
    let _ = stream.set_nodelay(true);
    if listener == Listener::EastWest
        && let Some(tls) = ctx.tls.clone()
    {
        // mTLS is mandatory on the east-west listener when configured.
        let Some((stream, peer)) = tls.accept(stream, "eastwest", &ctx.metrics).await else {
            return;
        };
        tracing::debug!(peer = ?peer.as_ref().map(|p| p.to_string()), "east-west peer");
        let peer = peer.map(Arc::new);
        return serve_http(ctx, TokioIo::new(stream), listener, peer, draining).await;
    }
    serve_http(ctx, TokioIo::new(stream), listener, None, draining).await
}

async fn serve_http<I>(
    ctx: Arc<ProxyCtx>,
    io: I,
    listener: Listener,
    peer: Option<Arc<SpiffeId>>,
    mut draining: Draining,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc_ctx = ctx.clone();
    let svc = hyper::service::service_fn(move |req: Request| {
        let (ctx, peer) = (svc_ctx.clone(), peer.clone());
        async move { Ok::<_, Infallible>(handle(&ctx, req, listener, peer).await) }
    });
    let conn = ctx.server.serve_connection_with_upgrades(io, svc);
    tokio::pin!(conn);
    let result = tokio::select! {
        // The connection first: no random draw per poll; the drain signal is an atomic check.
        biased;
        r = conn.as_mut() => r,
        _ = draining.started() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, ?listener, "connection ended with an error");
    }
}

type Request = http::Request<Incoming>;
