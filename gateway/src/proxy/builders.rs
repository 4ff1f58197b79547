//! How the gateway's pooled upstream clients are built — the shared ones and those of a
//! service with bounded connections alike: idle times, and the response-head bound.

use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::Connect;
use hyper_util::rt::TokioExecutor;

use super::body::BoxBody;

/// A pooled HTTP/1.1 client over `conn` accepting response heads of `max_header_bytes`.
pub fn http1_client<C>(conn: C, max_header_bytes: usize) -> Client<C, BoxBody>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .http1_max_buf_size(max_header_bytes.max(8192))
        .build(conn)
}

/// A pooled HTTP/2 (prior knowledge) client over `conn` accepting header lists of
/// `max_header_bytes`.
pub fn h2_client<C>(conn: C, max_header_bytes: usize) -> Client<C, BoxBody>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let list = u32::try_from(max_header_bytes).unwrap_or(u32::MAX);
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .http2_max_header_list_size(list)
        .pool_idle_timeout(Duration::from_secs(60))
        .build(conn)
}
