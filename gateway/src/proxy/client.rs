//! The upstream clients: pooled HTTP/1.1 and HTTP/2 (h2c prior knowledge) to local
//! endpoints, HTTP/2 to remote gateways (over mTLS, verifying the remote trust domain, when
//! configured), and how a failed send is classified: a connect failure (the request surely
//! never left), a timeout, or a reset after sending.

use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::attempt::{Attempt, Hop};
use super::body::BoxBody;
use super::error::ProxyError;
use super::mtls::TlsCtx;

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
        let list = u32::try_from(max_header_bytes).unwrap_or(u32::MAX);
        Self {
            local: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .http1_max_buf_size(max_header_bytes.max(8192))
                .build(conn.clone()),
            h2: Client::builder(TokioExecutor::new())
                .http2_only(true)
                .http2_max_header_list_size(list)
                .pool_idle_timeout(Duration::from_secs(60))
                .build(conn),
        }
    }

    /// Sends one attempt's request, bounded by `per_try`.
    pub async fn send(
        &self,
        tls: Option<&TlsCtx>,
        attempt: &Attempt<'_>,
        req: Request<BoxBody>,
        per_try: Duration,
    ) -> Result<Response<Incoming>, ProxyError> {
        let target = attempt.addr;
        match (&attempt.hop, tls) {
            (Hop::Local { h2: false }, _) => send(&self.local, req, target, per_try).await,
            (Hop::Local { h2: true }, _) | (Hop::Remote { .. }, None) => {
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
