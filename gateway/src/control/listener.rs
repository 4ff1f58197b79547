//! [`ListenerActor`]: owns one bound listener and its accept loop.
//!
//! The socket is bound once at start-up and kept by the actor, so a restart resumes accepting
//! on the same address and connections already accepted are never touched. The accept loop
//! runs in a spawned task; if it ends (error or panic) the actor stops and the supervisor
//! restarts it, which starts a new loop on the same socket. One listener restarting does not
//! disturb another.

use std::sync::Arc;

use actix::ArbiterHandle;
use actix::prelude::*;

use super::guard::{InjectPanic, backoff, guarded};
use crate::metrics::Metrics;
use crate::proxy::{Listener, ProxyCtx};

pub struct ListenerActor {
    pub name: String,
    pub socket: std::net::TcpListener,
    pub kind: Listener,
    pub proxy: Arc<ProxyCtx>,
    pub metrics: Arc<Metrics>,
    /// Per-core mode: accept loops run on these arbiters, each with its own proxy context.
    workers: Vec<(ArbiterHandle, Arc<ProxyCtx>)>,
    restarts: u32,
    accept: Option<tokio::task::AbortHandle>,
    /// Stops the per-core accept loops of the previous incarnation.
    stop_workers: Option<tokio::sync::watch::Sender<bool>>,
}

impl ListenerActor {
    pub fn new(
        name: String,
        socket: std::net::TcpListener,
        kind: Listener,
        proxy: Arc<ProxyCtx>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            name,
            socket,
            kind,
            proxy,
            metrics,
            workers: Vec::new(),
            restarts: 0,
            accept: None,
            stop_workers: None,
        }
    }

    /// Runs the accept loops on these arbiters instead of the shared runtime.
    pub fn per_core(mut self, workers: Vec<(ArbiterHandle, Arc<ProxyCtx>)>) -> Self {
        self.workers = workers;
        self
    }

    fn start_per_core(&mut self, ctx: &mut Context<Self>) {
        let (stop_tx, _) = tokio::sync::watch::channel(false);
        let (died_tx, mut died_rx) =
            tokio::sync::mpsc::channel::<String>(self.workers.len().max(1));
        for (i, (arbiter, proxy)) in self.workers.iter().enumerate() {
            let sock = match self.socket.try_clone() {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(listener = %self.name, error = %e, "cannot share the listening socket");
                    ctx.stop();
                    return;
                }
            };
            let (proxy, kind, name) = (proxy.clone(), self.kind, self.name.clone());
            let (mut stop, died) = (stop_tx.subscribe(), died_tx.clone());
            arbiter.spawn(async move {
                // Registered with this arbiter's own reactor.
                let listener = match tokio::net::TcpListener::from_std(sock) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = died.send(format!("worker {i}: {e}")).await;
                        return;
                    }
                };
                loop {
                    tokio::select! {
                        _ = stop.changed() => return,
                        r = listener.accept() => match r {
                            Ok((stream, _)) => {
                                tokio::spawn(proxy.clone().serve_connection(stream, kind));
                            }
                            Err(e) => {
                                tracing::warn!(listener = %name, worker = i, error = %e, "accept failed");
                                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            }
                        }
                    }
                }
            });
        }
        self.stop_workers = Some(stop_tx);
        ctx.spawn(actix::fut::wrap_future::<_, Self>(async move { died_rx.recv().await }).map(|why, act, ctx| {
            if let Some(why) = why {
                tracing::error!(listener = %act.name, error = %why, "accept loop died; restarting");
                ctx.stop();
            }
        }));
        tracing::info!(listener = %self.name, workers = self.workers.len(), addr = ?self.socket.local_addr().ok(), "accepting on per-core arbiters");
    }

    fn start_accepting(&mut self, ctx: &mut Context<Self>) {
        if !self.workers.is_empty() {
            return self.start_per_core(ctx);
        }
        let std = match self.socket.try_clone().and_then(|s| {
            s.set_nonblocking(true)?;
            Ok(s)
        }) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(listener = %self.name, error = %e, "cannot reuse the listening socket");
                ctx.stop();
                return;
            }
        };
        let listener = match tokio::net::TcpListener::from_std(std) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(listener = %self.name, error = %e, "cannot register the listening socket");
                ctx.stop();
                return;
            }
        };
        let (proxy, kind, name) = (self.proxy.clone(), self.kind, self.name.clone());
        let task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        tokio::spawn(proxy.clone().serve_connection(stream, kind));
                    }
                    Err(e) => {
                        // EMFILE and friends: back off briefly instead of spinning.
                        tracing::warn!(listener = %name, error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
        });
        self.accept = Some(task.abort_handle());
        ctx.spawn(actix::fut::wrap_future::<_, Self>(task).map(|res, act, ctx| {
            if let Err(e) = res
                && !e.is_cancelled()
            {
                tracing::error!(listener = %act.name, error = %e, "accept loop died; restarting");
            }
            ctx.stop();
        }));
        tracing::info!(listener = %self.name, addr = ?self.socket.local_addr().ok(), "accepting");
    }
}

impl Actor for ListenerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let delay = backoff(self.restarts);
        if delay.is_zero() {
            self.start_accepting(ctx);
        } else {
            ctx.run_later(delay, |act, ctx| act.start_accepting(ctx));
        }
    }
}

impl Supervised for ListenerActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        if let Some(a) = self.accept.take() {
            a.abort();
        }
        if let Some(stop) = self.stop_workers.take() {
            let _ = stop.send(true);
        }
        self.restarts += 1;
        self.metrics
            .actor_restarts
            .with_label_values(&[self.name.as_str()])
            .inc();
        tracing::warn!(
            listener = self.name,
            restarts = self.restarts,
            "listener actor restarting"
        );
    }
}

impl Handler<InjectPanic> for ListenerActor {
    type Result = ();
    fn handle(&mut self, _: InjectPanic, ctx: &mut Context<Self>) {
        let name = self.name.clone();
        guarded(&name, ctx, || panic!("injected panic in {name}"));
    }
}
