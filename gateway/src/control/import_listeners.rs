//! [`ImportListenersActor`]: the listeners of imported services' raw TCP ports. The
//! Kubernetes actor sends, each round, which pod port serves which (service, port)
//! (`control::k8s::tcp_ports`); this actor publishes that map for the data path
//! ([`crate::table::Tables::tcp_imports`]), opens a [`ListenerActor`] on the outbound
//! listener's address for each new pod port (with the same connection limit, drain and
//! supervision as every listener) and stops accepting on ports no longer wanted — connections
//! already accepted on them run to their end. A port that cannot be bound (taken by another
//! process) is retried on the next round. Once the gateway drains, no port is opened again.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use actix::prelude::*;
use actix::{ArbiterHandle, Supervisor};

use super::listener::{ListenerActor, StopAccepting};
use crate::metrics::Metrics;
use crate::proxy::context::{Listener, ProxyCtx, TcpSource};
use crate::table::TcpImports;

/// The pod ports to serve now (the whole set: ports missing from it are closed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ServeImports(pub TcpImports);

pub struct ImportListenersActor {
    /// The outbound listener's address: import listeners share it.
    host: IpAddr,
    open: BTreeMap<u16, Addr<ListenerActor>>,
    proxy: Arc<ProxyCtx>,
    metrics: Arc<Metrics>,
    workers: Vec<(ArbiterHandle, Arc<ProxyCtx>)>,
    /// Set on drain: nothing is opened again.
    closed: bool,
}

impl ImportListenersActor {
    pub fn new(
        host: IpAddr,
        proxy: Arc<ProxyCtx>,
        metrics: Arc<Metrics>,
        workers: Vec<(ArbiterHandle, Arc<ProxyCtx>)>,
    ) -> Self {
        Self {
            host,
            open: BTreeMap::new(),
            proxy,
            metrics,
            workers,
            closed: false,
        }
    }

    fn open_port(&mut self, port: u16) {
        let addr = SocketAddr::new(self.host, port);
        let sock = match super::listener::bind(addr) {
            Ok(s) => s,
            Err(e) => {
                self.metrics
                    .proxy_errors
                    .with_label_values(&["tcp_import_bind"])
                    .inc();
                tracing::warn!(%addr, error = %e, "cannot open an import listener; retrying next round");
                return;
            }
        };
        let (p, m, w) = (
            self.proxy.clone(),
            self.metrics.clone(),
            self.workers.clone(),
        );
        let listener = Supervisor::start(move |_| {
            ListenerActor::new(
                "listener_import".into(),
                sock,
                Listener::Tcp(TcpSource::Import(port)),
                p,
                m,
            )
            .per_core(w)
        });
        self.open.insert(port, listener);
    }
}

impl Actor for ImportListenersActor {
    type Context = Context<Self>;
}

impl Supervised for ImportListenersActor {}

impl Handler<ServeImports> for ImportListenersActor {
    type Result = ();
    fn handle(&mut self, ServeImports(want): ServeImports, _: &mut Context<Self>) {
        if self.closed {
            return;
        }
        let gone: Vec<u16> = self
            .open
            .keys()
            .filter(|p| !want.contains_key(p))
            .copied()
            .collect();
        for p in gone {
            if let Some(l) = self.open.remove(&p) {
                l.do_send(StopAccepting);
                tracing::info!(port = p, "import listener closed");
            }
        }
        // Published before a port opens, so its first connection finds its service.
        if **self.proxy.tables.tcp_imports.load() != want {
            self.proxy.tables.tcp_imports.store(Arc::new(want.clone()));
        }
        for (port, (key, service_port)) in &want {
            if !self.open.contains_key(port) {
                self.open_port(*port);
                if self.open.contains_key(port) {
                    tracing::info!(port, service = %key, service_port, "import listener open");
                }
            }
        }
    }
}

impl Handler<StopAccepting> for ImportListenersActor {
    type Result = ();
    fn handle(&mut self, _: StopAccepting, _: &mut Context<Self>) {
        self.closed = true;
        for (_, l) in std::mem::take(&mut self.open) {
            l.do_send(StopAccepting);
        }
    }
}
