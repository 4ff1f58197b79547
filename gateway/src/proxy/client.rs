//! The upstream clients: pooled HTTP/1.1 and HTTP/2 (h2c prior knowledge) to local
//! endpoints, HTTP/2 to remote gateways (over mTLS, verifying the remote trust domain, when
//! configured), and how a failed send is classified: a connect failure (the request surely
//! never left), a timeout, or a reset after sending.

use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

use super::attempt::{Attempt, Hop};
use super::body::BoxBody;
use super::builders::{h2_client, http1_client};
use super::error::ProxyError;
use super::limited::{Bounded, connection_limit};
use super::mtls::TlsCtx;
use crate::resilience::breaker::Overflow;

/// Pooled clients of one data-path worker.
pub struct Clients {
    /// HTTP/1.1 to local endpoints.
    local: Client<HttpConnector, BoxBody>,
    /// h2c prior knowledge: local endpoints of `http2`/`grpc` services, and remote gateways
    /// without mTLS.
    h2: Client<HttpConnector, BoxBody>,
}

impl Clients {
    /// Clients that connect within `connect_timeout` and accept response heads of at most
    /// `max_header_bytes`.
    pub fn new(connect_timeout: Duration, max_header_bytes: usize) -> Self {
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        conn.set_connect_timeout(Some(connect_timeout));
        Self {
            local: http1_client(conn.clone(), max_header_bytes),
            h2: h2_client(conn, max_header_bytes),
        }
    }

    /// Sends one attempt's request, bounded by `per_try`.
    /// Local endpoints of a service whose breaker bounds its connections are reached through
    /// that service's own pool (`bounded`).
    pub async fn send(
        &self,
        tls: Option<&TlsCtx>,
        attempt: &Attempt<'_>,
        req: Request<BoxBody>,
        per_try: Duration,
        bounded: Option<&Bounded>,
    ) -> Result<Response<Incoming>, ProxyError> {
        let target = attempt.addr;
        // A local request's version says which client (a port of the service may speak h2).
        let h2 = req.version() == http::Version::HTTP_2;
        match (&attempt.hop, tls, bounded) {
            (Hop::Local { .. }, _, Some(b)) => {
                let sent = tokio::time::timeout(per_try, b.pool.request(h2, req)).await;
                if let Ok(Err(e)) = &sent
                    && connection_limit(e).is_some()
                {
                    return Err(ProxyError::Overflow {
                        service: b.service.clone(),
                        policy: b.policy.clone(),
                        bound: Overflow::Connections.label(),
                    });
                }
                classify(sent, target, per_try)
            }
            _ => self.send_shared(tls, attempt, req, per_try).await,
        }
    }

    async fn send_shared(
        &self,
        tls: Option<&TlsCtx>,
        attempt: &Attempt<'_>,
        req: Request<BoxBody>,
        per_try: Duration,
    ) -> Result<Response<Incoming>, ProxyError> {
        let target = attempt.addr;
        let h2 = req.version() == http::Version::HTTP_2;
        match (&attempt.hop, tls) {
            (Hop::Local { .. }, _) if !h2 => send(&self.local, req, target, per_try).await,
            (Hop::Local { .. }, _) | (Hop::Remote { .. }, None) => {
                send(&self.h2, req, target, per_try).await
            }
            (Hop::Remote { trust_domain }, Some(tls)) => {
                let client = tls
                    .client_for(trust_domain)
                    .map_err(|e| ProxyError::Connect {
                        target: target.to_string(),
                        message: e.to_string(),
                        refused: false,
                    })?;
                send(&client, req, target, per_try).await
            }
        }
    }
}

async fn send<C>(
    client: &Client<C, BoxBody>,
    req: Request<BoxBody>,
    target: &str,
    per_try: Duration,
) -> Result<Response<Incoming>, ProxyError>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    classify(
        tokio::time::timeout(per_try, client.request(req)).await,
        target,
        per_try,
    )
}

/// A send's outcome as the proxy sees it.
fn classify(
    sent: Result<
        Result<Response<Incoming>, hyper_util::client::legacy::Error>,
        tokio::time::error::Elapsed,
    >,
    target: &str,
    per_try: Duration,
) -> Result<Response<Incoming>, ProxyError> {
    match sent {
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

/// Whether an error's cause chain holds an `ECONNREFUSED`.
pub fn is_refused(e: &(dyn std::error::Error + 'static)) -> bool {
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

/// An error with its causes, `a: b: c`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
