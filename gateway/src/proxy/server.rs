//! Stage "accept": one accepted connection — TCP options, the mandatory mTLS handshake on the
//! east-west listener (the peer's SPIFFE identity is kept for authorization) and, with
//! `listeners.outbound_tls`, TLS on the outbound listener (a workload's identity), then HTTP/1.1
//! or HTTP/2 with upgrades (CONNECT), each request handed to [`super::request::handle`]. Raw
//! TCP listeners go to [`super::tcp`]. Every connection watches the drain signal: once the
//! gateway drains, it finishes the requests in flight and closes. An mTLS connection also
//! watches the trust bundles: when its peer's chain no longer verifies (the CA rotated out, the
//! domain removed) it gets GOAWAY at once, and is dropped after `timeouts.overall_ms` if
//! requests are still in flight.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use warden_federation::head_timeout::{HeadState, HeadWatch};
use warden_federation::trust::spiffe::SpiffeId;
use warden_federation::trust::verify::TrustStore;

use super::context::{Listener, ProxyCtx};
use super::request::handle;
use super::tcp;
use crate::drain::Draining;

/// Serves one accepted connection until it ends. It counts as open for the drain from here
/// on, TLS handshake and raw TCP streams included.
///
/// Until a client on the outbound listener sends its first bytes, its connection costs the
/// socket and this small task: what serves it (TLS state, hyper's connection and buffers) is
/// allocated only then. A client silent for `limits.header_read_timeout_ms` is closed without
/// a word, as hyper closes an idle keep-alive connection; the drain closes it at once.
pub async fn serve_connection(ctx: Arc<ProxyCtx>, stream: TcpStream, listener: Listener) {
    let mut draining = ctx.drain.watch();
    if let Listener::Tcp(source) = listener {
        // A raw stream cannot be asked to finish: the drain waits for it, up to its deadline.
        let _open = draining;
        // Boxed, like the HTTP path below: this future stays small while it waits.
        return Box::pin(tcp::serve(ctx, stream, source)).await;
    }
    if listener != Listener::EastWest {
        let wait = Duration::from_millis(ctx.cfg.limits.header_read_timeout_ms);
        // `peek`, not `readable()`: a fresh socket may report readiness before any byte came.
        let mut first = [0u8; 1];
        tokio::select! {
            r = tokio::time::timeout(wait, stream.peek(&mut first)) => {
                // Silent until the timeout, closed (0 bytes) or failed: nothing to serve.
                if !matches!(r, Ok(Ok(n)) if n > 0) {
                    return;
                }
            }
            _ = draining.started() => return,
        }
    }
    Box::pin(serve_active(ctx, stream, listener, draining)).await
}

/// [`serve_connection`] once the client has spoken (at once on the east-west listener).
async fn serve_active(
    ctx: Arc<ProxyCtx>,
    stream: TcpStream,
    listener: Listener,
    draining: Draining,
) {
    let _ = stream.set_nodelay(true);
    let tls = ctx.tls.clone().filter(|t| match listener {
        // mTLS is mandatory on the east-west listener when configured.
        Listener::EastWest => true,
        // `listeners.outbound_tls`: the workload's identity, when it presented a certificate.
        _ => t.workloads.is_some(),
    });
    if let Some(tls) = tls {
        let accepted = match listener {
            Listener::EastWest => tls.accept(stream, "eastwest", &ctx.metrics).await,
            _ => tls.accept_workload(stream, &ctx.metrics).await,
        };
        let Some((stream, peer)) = accepted else {
            return;
        };
        tracing::debug!(peer = ?peer.id.as_ref().map(|p| p.to_string()), ?listener, "tls peer");
        // A connection without a client certificate has nothing to re-check.
        let trust = (!peer.chain.is_empty()).then(|| Trust {
            changes: tls.store.subscribe(),
            store: tls.store.clone(),
            chain: peer.chain,
        });
        let id = peer.id.map(Arc::new);
        return serve_http(
            ctx,
            TokioIo::new(stream),
            listener,
            id,
            draining,
            trust,
            None,
        )
        .await;
    }
    let (stream, head) = HeadWatch::new(stream);
    serve_http(
        ctx,
        TokioIo::new(stream),
        listener,
        None,
        draining,
        None,
        Some(head),
    )
    .await
}

/// What an mTLS connection re-checks its peer with when the trust bundles change.
struct Trust {
    changes: tokio::sync::watch::Receiver<u64>,
    store: Arc<TrustStore>,
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
}

async fn serve_http<I>(
    ctx: Arc<ProxyCtx>,
    io: I,
    listener: Listener,
    peer: Option<Arc<SpiffeId>>,
    mut draining: Draining,
    mut trust: Option<Trust>,
    head: Option<Arc<HeadState>>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc_ctx = ctx.clone();
    let who = peer.as_ref().map(|p| p.to_string());
    let svc = hyper::service::service_fn(move |req: Request| {
        let (ctx, peer) = (svc_ctx.clone(), peer.clone());
        async move { Ok::<_, Infallible>(handle(&ctx, req, listener, peer).await) }
    });
    let conn = ctx.server.serve_connection_with_upgrades(io, svc);
    tokio::pin!(conn);
    let (mut closing, mut revoked) = (false, false);
    // After a revocation the requests in flight get this long, then the connection is dropped.
    let grace = tokio::time::sleep(std::time::Duration::from_secs(3600));
    tokio::pin!(grace);
    let result = loop {
        tokio::select! {
            // The connection first: no random draw per poll; the drain signal is an atomic check.
            biased;
            r = conn.as_mut() => break r,
            _ = draining.started(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            changed = changes(&mut trust), if !revoked => {
                let Some(t) = trust.as_ref().filter(|_| changed) else {
                    trust = None;
                    continue;
                };
                if t.store.still_trusts_client(&t.chain) {
                    continue;
                }
                // The peer's CA was rotated out or its domain removed: GOAWAY now.
                revoked = true;
                let name = match listener {
                    Listener::Outbound => "outbound",
                    _ => "eastwest",
                };
                ctx.metrics
                    .tls_errors
                    .with_label_values(&[name, "revoked"])
                    .inc();
                tracing::warn!(peer = ?who, "peer no longer trusted: closing its connection");
                if !closing {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                let overall =
                    std::time::Duration::from_millis(ctx.tables.settings.load().overall_ms.value);
                grace.as_mut().reset(tokio::time::Instant::now() + overall);
            }
            _ = &mut grace, if revoked => break Ok(()),
        }
    };
    if let Err(e) = result {
        // A plaintext head that timed out is answered 408 as `conn` (holding the socket) drops.
        let answered = head.is_some_and(|h| h.ended_with(&*e));
        tracing::debug!(error = %e, ?listener, answered_408 = answered, "connection ended with an error");
    }
}

/// Waits for the next trust change: `true` on a change, `false` when there is nothing to watch
/// (no mTLS, or the store is gone).
async fn changes(trust: &mut Option<Trust>) -> bool {
    match trust {
        Some(t) => t.changes.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

type Request = http::Request<Incoming>;
