//! mTLS for the east-west hop: the listener side (handshake, ALPN h2 required, failures counted
//! by bounded reason) and a hyper connector that dials a remote gateway, presents this
//! gateway's SPIFFE identity and accepts only the remote cluster's trust domain.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use warden_federation::trust::spiffe::SpiffeId;
use warden_federation::trust::tls::{Identity, client_config, peer_id};
use warden_federation::trust::verify::TrustStore;

use super::body::BoxBody;
use crate::config::OutboundTls;
use crate::metrics::Metrics;

/// This gateway's identity and the federation's trust bundles.
pub struct TlsCtx {
    pub identity: Arc<Identity>,
    pub id: SpiffeId,
    pub store: Arc<TrustStore>,
    pub server: tokio_rustls::TlsAcceptor,
    /// The outbound listener's, when `listeners.outbound_tls` is on: HTTP/1.1 or h2, a
    /// workload's client certificate optional or required.
    pub workloads: Option<tokio_rustls::TlsAcceptor>,
    /// One pooled client per remote trust domain, created on first use.
    clients: ArcSwap<std::collections::HashMap<String, Client<MtlsConnector, BoxBody>>>,
    connect_timeout: Duration,
}

/// A verified client of the east-west listener: its identity, and the chain it presented (to
/// check again when the trust bundles change).
pub struct Peer {
    pub id: Option<SpiffeId>,
    pub chain: Vec<rustls::pki_types::CertificateDer<'static>>,
}

/// Bounded reason label for a failed handshake.
pub use warden_federation::trust::handshake_reason as reason;

impl TlsCtx {
    pub fn new(
        identity: Arc<Identity>,
        id: SpiffeId,
        store: Arc<TrustStore>,
        connect_timeout: Duration,
        outbound: OutboundTls,
    ) -> Result<Arc<Self>, warden_federation::trust::TrustError> {
        use warden_federation::trust::tls::{server_config, server_config_optional_client};
        let cfg = server_config(identity.clone(), store.clone(), &[b"h2"])?;
        let alpn: &[&[u8]] = &[b"h2", b"http/1.1"];
        let workloads = match outbound {
            OutboundTls::Off => None,
            OutboundTls::Optional => Some(server_config_optional_client(
                identity.clone(),
                store.clone(),
                alpn,
            )?),
            OutboundTls::Required => Some(server_config(identity.clone(), store.clone(), alpn)?),
        };
        Ok(Arc::new(Self {
            identity,
            id,
            store,
            server: tokio_rustls::TlsAcceptor::from(cfg),
            workloads: workloads.map(tokio_rustls::TlsAcceptor::from),
            clients: ArcSwap::from_pointee(Default::default()),
            connect_timeout,
        }))
    }

    /// Accepts a TLS connection on the east-west listener; `None` (counted) if the handshake
    /// fails or the client cannot speak h2.
    pub async fn accept(
        &self,
        tcp: TcpStream,
        listener: &str,
        metrics: &Metrics,
    ) -> Option<(tokio_rustls::server::TlsStream<TcpStream>, Peer)> {
        self.handshake(&self.server, tcp, listener, metrics, true)
            .await
    }

    /// Accepts a workload's TLS connection on the outbound listener (`None`, counted, if the
    /// handshake fails); the peer is the workload's verified identity, when it presented one.
    pub async fn accept_workload(
        &self,
        tcp: TcpStream,
        metrics: &Metrics,
    ) -> Option<(tokio_rustls::server::TlsStream<TcpStream>, Peer)> {
        let acceptor = self.workloads.as_ref()?;
        self.handshake(acceptor, tcp, "outbound", metrics, false)
            .await
    }

    async fn handshake(
        &self,
        acceptor: &tokio_rustls::TlsAcceptor,
        tcp: TcpStream,
        listener: &str,
        metrics: &Metrics,
        need_h2: bool,
    ) -> Option<(tokio_rustls::server::TlsStream<TcpStream>, Peer)> {
        let refused = |r: &str| metrics.tls_errors.with_label_values(&[listener, r]).inc();
        match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
            Err(_) => {
                refused("timeout");
                None
            }
            Ok(Err(e)) => {
                let r = reason(&e);
                refused(r);
                tracing::debug!(listener, reason = r, error = %e, "tls handshake refused");
                None
            }
            Ok(Ok(tls)) => {
                let (_, conn) = tls.get_ref();
                if need_h2 && conn.alpn_protocol() != Some(b"h2") {
                    refused("no_h2");
                    return None;
                }
                let peer = Peer {
                    id: peer_id(conn.peer_certificates()),
                    chain: conn
                        .peer_certificates()
                        .map(|c| c.iter().map(|d| d.clone().into_owned()).collect())
                        .unwrap_or_default(),
                };
                // A resumed session skips the certificate check: the chain it carries over from
                // the first handshake must still verify against the bundles loaded now.
                if !peer.chain.is_empty()
                    && conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
                    && !self.store.still_trusts_client(&peer.chain)
                {
                    refused("revoked_session");
                    return None;
                }
                Some((tls, peer))
            }
        }
    }

    /// Drops the pooled clients whenever a trust bundle changes, so connections to remote
    /// gateways are made — and their server certificates verified — again against the bundles
    /// loaded now (requests already sent finish on the old connections).
    pub async fn follow_trust(self: Arc<Self>) {
        let mut changes = self.store.subscribe();
        while changes.changed().await.is_ok() {
            self.clients.store(Default::default());
        }
    }

    /// The pooled mTLS HTTP/2 client for gateways of `trust_domain`.
    pub fn client_for(
        &self,
        trust_domain: &str,
    ) -> Result<Client<MtlsConnector, BoxBody>, warden_federation::trust::TrustError> {
        if let Some(c) = self.clients.load().get(trust_domain) {
            return Ok(c.clone());
        }
        let cfg = client_config(
            self.identity.clone(),
            self.store.clone(),
            trust_domain,
            &[b"h2"],
        )?;
        let client = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .build(MtlsConnector {
                tls: tokio_rustls::TlsConnector::from(cfg),
                connect_timeout: self.connect_timeout,
            });
        self.clients.rcu(|m| {
            let mut m = m.as_ref().clone();
            m.insert(trust_domain.to_string(), client.clone());
            m
        });
        Ok(client)
    }

    /// A TLS stream to a remote gateway of `trust_domain` (for TCP over CONNECT).
    pub async fn dial(
        &self,
        addr: &str,
        trust_domain: &str,
    ) -> Result<TlsStream<TcpStream>, String> {
        let cfg = client_config(
            self.identity.clone(),
            self.store.clone(),
            trust_domain,
            &[b"h2"],
        )
        .map_err(|e| e.to_string())?;
        MtlsConnector {
            tls: tokio_rustls::TlsConnector::from(cfg),
            connect_timeout: self.connect_timeout,
        }
        .dial(addr)
        .await
        .map(|s| s.0.into_inner())
        .map_err(|e| e.to_string())
    }
}

/// Dials `host:port` of the request URI and runs the TLS client handshake.
#[derive(Clone)]
pub struct MtlsConnector {
    tls: tokio_rustls::TlsConnector,
    connect_timeout: Duration,
}

/// A TLS stream to a remote gateway.
pub struct MtlsStream(TokioIo<TlsStream<TcpStream>>);

impl MtlsConnector {
    async fn dial(&self, addr: &str) -> std::io::Result<MtlsStream> {
        let tcp = tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
        let _ = tcp.set_nodelay(true);
        // SPIFFE identity, not the DNS name, is verified; the name only fills SNI.
        let name = ServerName::try_from("warden-gateway.invalid")
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let tls = self.tls.connect(name, tcp).await?;
        Ok(MtlsStream(TokioIo::new(tls)))
    }
}

impl tower_service::Service<Uri> for MtlsConnector {
    type Response = MtlsStream;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<MtlsStream>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let addr = uri
                .authority()
                .map(|a| a.as_str().to_string())
                .ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, "no authority")
                })?;
            this.dial(&addr).await
        })
    }
}

impl Connection for MtlsStream {
    fn connected(&self) -> Connected {
        let h2 = self.0.inner().get_ref().1.alpn_protocol() == Some(b"h2");
        if h2 {
            Connected::new().negotiated_h2()
        } else {
            Connected::new()
        }
    }
}

impl hyper::rt::Read for MtlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for MtlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}
