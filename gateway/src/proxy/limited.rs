//! The upstream pool of a service whose circuit breaker bounds its connections
//! ([`ConnLimits`]): a connector that opens a connection only with a permit (waiting up to the
//! connect timeout for one to come free, else failing with [`ConnectionLimit`]) held until the
//! connection closes, and that tags each connection with a use count, so that the one which
//! has carried `max_requests_per_connection` requests is poisoned — closed once its answer is
//! done, never handed out again. Only the hop to local endpoints goes through such a pool.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{
    Connected, Connection, HttpConnector, capture_connection,
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::body::BoxBody;
use super::builders::{h2_client, http1_client};
use crate::resilience::breaker::ConnLimits;

/// Every connection is in use and none came free within the connect timeout.
#[derive(Debug, thiserror::Error)]
#[error("all {max} connections to the service are in use")]
pub struct ConnectionLimit {
    pub max: u32,
}

/// How many requests a connection has carried (a response extension).
#[derive(Clone)]
struct Uses(Arc<AtomicU32>);

#[derive(Clone)]
struct LimitedConnector {
    inner: HttpConnector,
    /// One per open connection (none: unbounded in number).
    permits: Option<Arc<Semaphore>>,
    max: u32,
    wait: Duration,
}

/// A connection holding its permit.
pub struct LimitedStream {
    io: TokioIo<TcpStream>,
    uses: Uses,
    _permit: Option<OwnedSemaphorePermit>,
}

impl tower_service::Service<Uri> for LimitedConnector {
    type Response = LimitedStream;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Pin<Box<dyn Future<Output = Result<LimitedStream, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let mut this = self.clone();
        Box::pin(async move {
            let permit = match &this.permits {
                None => None,
                Some(s) => match tokio::time::timeout(this.wait, s.clone().acquire_owned()).await {
                    Ok(Ok(p)) => Some(p),
                    _ => {
                        let max = this.max;
                        return Err(Box::new(ConnectionLimit { max }) as Self::Error);
                    }
                },
            };
            let io = this.inner.call(uri).await?;
            Ok(LimitedStream {
                io,
                uses: Uses(Arc::new(AtomicU32::new(0))),
                _permit: permit,
            })
        })
    }
}

impl Connection for LimitedStream {
    fn connected(&self) -> Connected {
        self.io.connected().extra(self.uses.clone())
    }
}

impl hyper::rt::Read for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// The clients of one bounded service (HTTP/1.1 and h2c), shared by every worker.
pub struct LimitedPool {
    http1: Client<LimitedConnector, BoxBody>,
    h2: Client<LimitedConnector, BoxBody>,
    max_uses: Option<u32>,
}

impl LimitedPool {
    /// The pool for `limits`, made on first use.
    pub fn of(
        limits: &ConnLimits,
        connect_timeout: Duration,
        max_header_bytes: usize,
    ) -> Arc<LimitedPool> {
        let made = limits.pool.get_or_init(|| {
            let mut inner = HttpConnector::new();
            inner.set_nodelay(true);
            inner.set_connect_timeout(Some(connect_timeout));
            let conn = LimitedConnector {
                inner,
                permits: limits.permits.clone(),
                max: limits.max_connections.unwrap_or(0),
                wait: connect_timeout,
            };
            Arc::new(LimitedPool {
                http1: http1_client(conn.clone(), max_header_bytes),
                h2: h2_client(conn, max_header_bytes),
                max_uses: limits.max_requests_per_connection,
            })
        });
        match made.clone().downcast::<LimitedPool>() {
            Ok(p) => p,
            // Only this function fills the slot, always with a `LimitedPool`.
            Err(_) => unreachable!("a connection-limit slot holds a LimitedPool"),
        }
    }

    /// Sends `req`; the connection that carried it is retired once it has carried
    /// `max_requests_per_connection`.
    pub async fn request(
        &self,
        h2: bool,
        mut req: Request<BoxBody>,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        let captured = self.max_uses.map(|_| capture_connection(&mut req));
        let client = if h2 { &self.h2 } else { &self.http1 };
        let resp = client.request(req).await?;
        if let (Some(max), Some(captured)) = (self.max_uses, captured)
            && let Some(Uses(n)) = resp.extensions().get::<Uses>()
            && n.fetch_add(1, Ordering::AcqRel) + 1 >= max
            && let Some(c) = captured.connection_metadata().as_ref()
        {
            c.poison();
        }
        Ok(resp)
    }
}

/// A request's bounded pool, with the names its overflow answer carries.
pub struct Bounded {
    pub pool: Arc<LimitedPool>,
    pub service: String,
    pub policy: String,
}

/// Whether a send failed because every connection was in use.
pub fn connection_limit(e: &(dyn std::error::Error + 'static)) -> Option<u32> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(l) = c.downcast_ref::<ConnectionLimit>() {
            return Some(l.max);
        }
        cur = c.source();
    }
    None
}
