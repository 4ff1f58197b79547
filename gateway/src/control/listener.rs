//! [`ListenerActor`]: owns one bound listener and its accept loops.
//!
//! The socket is bound once at start-up and kept by the actor, so a restart resumes accepting
//! on the same address and connections already accepted are never touched. Accept loops run
//! as tasks — on the shared runtime, or one per data-path arbiter (per-core mode, each with
//! its own proxy context); if one ends (error or panic) the actor stops and the supervisor
//! restarts it, which starts new loops on the same socket. One listener restarting does not
//! disturb another. [`StopAccepting`] (on drain) ends the loops and closes the socket, so new
//! connections are refused while accepted ones finish.
//!
//! Each listener holds at most `limits.max_connections` client connections, shared by its
//! loops and kept across restarts: one more is accepted and closed at once (counted in
//! `warden_listener_connections_refused_total{reason="connection_limit"}`), so a client sees
//! the refusal instead of waiting in the kernel's backlog.

use std::sync::Arc;

use actix::ArbiterHandle;
use actix::prelude::*;
use tokio::sync::{Semaphore, mpsc, watch};

use super::guard::{InjectPanic, backoff, guarded};
use crate::metrics::Metrics;
use crate::proxy::context::{Listener, ProxyCtx};
use crate::proxy::server::serve_connection;

/// Connections the kernel holds for a listener before it accepts them (capped by
/// `net.core.somaxconn`). std's default of 128 overflows under a burst of new connections —
/// each dropped SYN costs the client a 1 s retransmission.
pub const BACKLOG: i32 = 4096;

/// A non-blocking listening socket on `addr` with [`BACKLOG`] (and `SO_REUSEADDR`, so a
/// restarted gateway binds while old connections linger in TIME_WAIT).
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(BACKLOG)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// Stop accepting and close the listening socket (the gateway is draining).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopAccepting;

pub struct ListenerActor {
    pub name: String,
    /// `None` once closed for good (draining).
    socket: Option<std::net::TcpListener>,
    pub kind: Listener,
    pub proxy: Arc<ProxyCtx>,
    pub metrics: Arc<Metrics>,
    /// Per-core mode: accept loops run on these arbiters, each with its own proxy context.
    workers: Vec<(ArbiterHandle, Arc<ProxyCtx>)>,
    restarts: u32,
    /// Connection slots of this listener, across its loops and restarts.
    slots: Arc<Semaphore>,
    /// Stops the accept loops of the current incarnation.
    stop: Option<watch::Sender<bool>>,
}

impl ListenerActor {
    pub fn new(
        name: String,
        socket: std::net::TcpListener,
        kind: Listener,
        proxy: Arc<ProxyCtx>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let slots = Arc::new(Semaphore::new(proxy.cfg.limits.max_connections));
        Self {
            name,
            socket: Some(socket),
            kind,
            slots,
            proxy,
            metrics,
            workers: Vec::new(),
            restarts: 0,
            stop: None,
        }
    }

    /// Runs the accept loops on these arbiters instead of the shared runtime.
    pub fn per_core(mut self, workers: Vec<(ArbiterHandle, Arc<ProxyCtx>)>) -> Self {
        self.workers = workers;
        self
    }

    fn start_accepting(&mut self, ctx: &mut Context<Self>) {
        let Some(socket) = &self.socket else { return };
        let (stop_tx, _) = watch::channel(false);
        let loops: Vec<(Option<ArbiterHandle>, Arc<ProxyCtx>)> = if self.workers.is_empty() {
            vec![(None, self.proxy.clone())]
        } else {
            self.workers
                .iter()
                .map(|(a, p)| (Some(a.clone()), p.clone()))
                .collect()
        };
        let (died_tx, mut died_rx) = mpsc::channel::<String>(loops.len());
        for (i, (arbiter, proxy)) in loops.into_iter().enumerate() {
            let sock = match socket.try_clone().and_then(|s| {
                s.set_nonblocking(true)?;
                Ok(s)
            }) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(listener = %self.name, error = %e, "cannot share the listening socket");
                    ctx.stop();
                    return;
                }
            };
            let run = accept_loop(
                sock,
                proxy,
                Loop {
                    kind: self.kind,
                    name: self.name.clone(),
                    slots: self.slots.clone(),
                    worker: i,
                },
                stop_tx.subscribe(),
                died_tx.clone(),
            );
            match arbiter {
                // Registered with that arbiter's own reactor.
                Some(a) => {
                    a.spawn(run);
                }
                None => {
                    tokio::spawn(run);
                }
            }
        }
        drop(died_tx);
        self.stop = Some(stop_tx);
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(async move { died_rx.recv().await }).map(
                |why, act, ctx| {
                    // `None`: every loop was stopped on purpose.
                    if let Some(why) = why {
                        tracing::error!(listener = %act.name, error = %why, "accept loop died; restarting");
                        ctx.stop();
                    }
                },
            ),
        );
        tracing::info!(listener = %self.name, loops = self.workers.len().max(1), addr = ?socket.local_addr().ok(), "accepting");
    }

    fn stop_loops(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
    }
}

/// Reports a loop's end to the actor unless it was stopped: dropped with the loop's future
/// (its end, a panic, or the runtime going away).
struct DeathNotice {
    tx: Option<mpsc::Sender<String>>,
    why: String,
}

impl Drop for DeathNotice {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.try_send(std::mem::take(&mut self.why));
        }
    }
}

/// Which listener an accept loop serves, and the slots it takes connections from.
struct Loop {
    kind: Listener,
    name: String,
    slots: Arc<Semaphore>,
    worker: usize,
}

/// One connection's slot and its place in the open-connections gauge, given back when the
/// connection's task ends — or unwinds.
struct Held {
    _slot: tokio::sync::OwnedSemaphorePermit,
    open: prometheus::IntGauge,
}

impl Held {
    fn new(slot: tokio::sync::OwnedSemaphorePermit, metrics: &Metrics, listener: &str) -> Self {
        let open = metrics.connections_open.with_label_values(&[listener]);
        open.inc();
        Self { _slot: slot, open }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.open.dec();
    }
}

/// Accepts connections and serves each in its own task, until `stop` flips.
async fn accept_loop(
    sock: std::net::TcpListener,
    proxy: Arc<ProxyCtx>,
    Loop {
        kind,
        name,
        slots,
        worker,
    }: Loop,
    mut stop: watch::Receiver<bool>,
    died: mpsc::Sender<String>,
) {
    let mut notice = DeathNotice {
        tx: Some(died),
        why: format!("accept loop {worker} ended"),
    };
    let listener = match tokio::net::TcpListener::from_std(sock) {
        Ok(l) => l,
        Err(e) => {
            notice.why = format!("worker {worker}: cannot register the socket: {e}");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = stop.changed() => {
                notice.tx = None;
                return;
            }
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        proxy
                            .metrics
                            .connections_refused
                            .with_label_values(&[name.as_str(), "connection_limit"])
                            .inc();
                        drop(stream);
                        continue;
                    };
                    let held = Held::new(slot, &proxy.metrics, &name);
                    let serve = serve_connection(proxy.clone(), stream, kind);
                    tokio::spawn(async move {
                        serve.await;
                        drop(held);
                    });
                }
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(listener = %name, worker, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
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
        self.stop_loops();
        if self.socket.is_none() {
            return; // closed on purpose
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

impl Handler<StopAccepting> for ListenerActor {
    type Result = ();
    fn handle(&mut self, _: StopAccepting, _ctx: &mut Context<Self>) {
        self.stop_loops();
        // The loops drop their copies as they stop; this is the last one.
        self.socket = None;
        tracing::info!(listener = %self.name, "stopped accepting");
    }
}

impl Handler<InjectPanic> for ListenerActor {
    type Result = ();
    fn handle(&mut self, _: InjectPanic, ctx: &mut Context<Self>) {
        let name = self.name.clone();
        guarded(&name, ctx, || panic!("injected panic in {name}"));
    }
}
