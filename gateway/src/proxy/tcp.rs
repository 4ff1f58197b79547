//! Raw TCP by port mapping: a TCP listener bound to `namespace/service:port` forwards each
//! connection to a local endpoint, or — when local endpoints cannot serve — to a remote
//! cluster's gateway through an HTTP/2 CONNECT stream on its east-west listener. The
//! receiving gateway connects to one of its own local endpoints (never forwarding again)
//! and splices the streams. Connect failures move on to the next target, like HTTP.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use super::{BoxBody, ProxyCtx, SERVICE_HEADER, SOURCE_HEADER, empty_body, route};
use crate::balance::Target;
use crate::proxy::error::ProxyError;
use crate::table::ServiceKey;

/// Header naming the service port on a CONNECT over the east-west hop.
pub const PORT_HEADER: &str = "x-warden-port";

impl ProxyCtx {
    /// Serves one TCP connection accepted on route `idx` of `listeners.tcp`.
    pub async fn serve_tcp(self: Arc<Self>, mut client: TcpStream, idx: usize) {
        let _ = client.set_nodelay(true);
        let Some(route_cfg) = self.cfg.listeners.tcp.get(idx) else {
            return;
        };
        let Some(key) = route::service_from_header(&route_cfg.service) else {
            tracing::warn!(service = %route_cfg.service, "tcp route names no namespace/service");
            return;
        };
        let port = route_cfg.port;
        let label = route_cfg.service.clone();
        let local_table = self.tables.local.load();
        let remote_table = self.tables.remote.load();
        let local = local_table.services.get(&key).cloned();
        let none = Vec::new();
        let remotes = remote_table.services.get(&key).unwrap_or(&none);
        let mut exclude = Vec::new();
        for _ in 0..=self.cfg.retries.max_retries {
            let policy = remote_table.policies.get(&key);
            let Some(target) = self.choose(local.as_deref(), remotes, policy, &exclude) else {
                break;
            };
            let connect = Duration::from_millis(self.cfg.timeouts.connect_ms);
            let result: Result<(), String> = match target {
                Target::Local(i) => {
                    let Some(l) = local.as_ref() else { break };
                    let ep = &l.endpoints[i];
                    let _g = ep.inflight.track();
                    match tokio::time::timeout(connect, TcpStream::connect(ep.addr.as_str())).await
                    {
                        Ok(Ok(mut upstream)) => {
                            let _ = upstream.set_nodelay(true);
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                            self.count_tcp(&label, &self.me.cluster);
                            return;
                        }
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err("connect timed out".into()),
                    }
                }
                Target::Remote(i) => {
                    let rc = &remotes[i];
                    let _g = rc.inflight.track();
                    match self
                        .connect_remote(&rc.gateway, &rc.trust_domain, &key, port, connect)
                        .await
                    {
                        Ok(upgraded) => {
                            let mut io = TokioIo::new(upgraded);
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut io).await;
                            self.count_tcp(&label, &rc.cluster);
                            return;
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(service = %label, ?target, error = %e, "tcp target failed; trying the next");
                exclude.push(target);
            }
        }
        self.metrics
            .proxy_errors
            .with_label_values(&["tcp_no_target"])
            .inc();
        tracing::debug!(service = %label, "tcp connection dropped: no target could be reached");
    }

    fn count_tcp(&self, service: &str, dst: &str) {
        self.metrics
            .requests
            .with_label_values(&[service, self.me.cluster.as_str(), dst, "tcp"])
            .inc();
    }

    /// Opens an HTTP/2 CONNECT stream to a remote gateway for `key`:`port` (over mTLS when
    /// configured, verifying the remote cluster's trust domain).
    async fn connect_remote(
        &self,
        gateway: &str,
        trust_domain: &str,
        key: &ServiceKey,
        port: u16,
        connect: Duration,
    ) -> Result<hyper::upgrade::Upgraded, String> {
        let mut send = match &self.tls {
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
            .header(SERVICE_HEADER, format!("{}/{}", key.0, key.1))
            .header(PORT_HEADER, port.to_string())
            .header(
                SOURCE_HEADER,
                HeaderValue::from_str(&self.me.cluster).map_err(|e| e.to_string())?,
            )
            .body(Empty::<bytes::Bytes>::new())
            .map_err(|e| e.to_string())?;
        let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
        if resp.status() != StatusCode::OK {
            return Err(format!("remote gateway answered {}", resp.status()));
        }
        hyper::upgrade::on(resp).await.map_err(|e| e.to_string())
    }

    /// East-west side of a TCP stream: connect a local endpoint, then splice.
    pub async fn handle_connect(self: &Arc<Self>, req: Request<Incoming>) -> Response<BoxBody> {
        let Some(key) = req
            .headers()
            .get(SERVICE_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(route::service_from_header)
        else {
            return ProxyError::NoService.into_response();
        };
        let local_table = self.tables.local.load();
        let Some(local) = local_table.services.get(&key).cloned() else {
            return ProxyError::NoLocalEndpoint(format!("{}/{}", key.0, key.1)).into_response();
        };
        let connect = Duration::from_millis(self.cfg.timeouts.connect_ms);
        let mut exclude = Vec::new();
        let mut upstream = None;
        for _ in 0..local.endpoints.len() {
            let Some(t @ Target::Local(i)) = self.choose(Some(&local), &[], None, &exclude) else {
                break;
            };
            match tokio::time::timeout(
                connect,
                TcpStream::connect(local.endpoints[i].addr.as_str()),
            )
            .await
            {
                Ok(Ok(s)) => {
                    upstream = Some(s);
                    break;
                }
                _ => exclude.push(t),
            }
        }
        let Some(mut upstream) = upstream else {
            return ProxyError::NoLocalEndpoint(format!("{}/{}", key.0, key.1)).into_response();
        };
        let _ = upstream.set_nodelay(true);
        tokio::spawn(async move {
            match hyper::upgrade::on(req).await {
                Ok(upgraded) => {
                    let mut io = TokioIo::new(upgraded);
                    let _ = tokio::io::copy_bidirectional(&mut io, &mut upstream).await;
                }
                Err(e) => tracing::debug!(error = %e, "east-west CONNECT upgrade failed"),
            }
        });
        Response::new(empty_body())
    }
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
