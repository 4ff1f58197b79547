//! Graceful drain: the signal that tells every open connection to finish what it is doing
//! and close, and the wait until they have.
//!
//! Each served connection holds a [`Draining`] while it runs. [`Drain::start`] tells them all
//! (HTTP/2 connections send GOAWAY, HTTP/1.1 ones close after the response in flight, idle ones
//! at once); [`Drain::wait`] returns when the last one has ended, or at the deadline.
//!
//! The request path never touches a shared lock for this: each connection waits on its own
//! one-shot channel (an atomic check when polled); the registry of open connections is locked
//! only when a connection opens or closes, and when the drain starts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};

/// The owner's side: start the drain and wait for it.
#[derive(Clone, Debug, Default)]
pub struct Drain {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: AtomicU64,
    /// The drain was announced (`/readyz` answers 503), connections may not be told yet.
    announced: AtomicBool,
    draining: AtomicBool,
    /// Open connections, each with the sender that tells it to finish (taken when sent).
    open: Mutex<HashMap<u64, Option<oneshot::Sender<()>>>>,
    /// Woken when the last connection closes during a drain.
    all_closed: Notify,
}

impl Inner {
    fn open(&self) -> MutexGuard<'_, HashMap<u64, Option<oneshot::Sender<()>>>> {
        // A panic while holding this lock leaves the map as it was: still usable.
        match self.open.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

/// A connection's side: resolves once draining begins; counts as open until dropped.
pub struct Draining {
    id: u64,
    rx: oneshot::Receiver<()>,
    inner: Arc<Inner>,
}

impl Drain {
    /// Registers one connection.
    pub fn watch(&self) -> Draining {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let mut open = self.inner.open();
        // Started already: the dropped sender makes `started` resolve at once.
        let tx = (!self.inner.draining.load(Ordering::Acquire)).then_some(tx);
        open.insert(id, tx);
        Draining {
            id,
            rx,
            inner: self.inner.clone(),
        }
    }

    /// Announces the drain (readiness fails) before connections are told.
    pub fn announce(&self) {
        self.inner.announced.store(true, Ordering::Release);
    }

    /// Tells every connection to finish and close.
    pub fn start(&self) {
        self.announce();
        let mut open = self.inner.open();
        self.inner.draining.store(true, Ordering::Release);
        for tx in open.values_mut() {
            if let Some(tx) = tx.take() {
                let _ = tx.send(());
            }
        }
    }

    /// The drain was announced or started.
    pub fn is_draining(&self) -> bool {
        self.inner.announced.load(Ordering::Acquire)
    }

    /// Connections still open.
    pub fn open(&self) -> usize {
        self.inner.open().len()
    }

    /// Waits until every connection has ended; `false` if some were still open at the
    /// deadline.
    pub async fn wait(&self, deadline: Duration) -> bool {
        tokio::time::timeout(deadline, async {
            loop {
                let closed = self.inner.all_closed.notified();
                tokio::pin!(closed);
                // Registered before the check, so a close in between is not missed.
                closed.as_mut().enable();
                if self.inner.open().is_empty() {
                    return;
                }
                closed.await;
            }
        })
        .await
        .is_ok()
    }
}

impl Draining {
    /// Resolves when draining begins (at once if it has).
    pub async fn started(&mut self) {
        let _ = (&mut self.rx).await;
    }
}

impl Drop for Draining {
    fn drop(&mut self) {
        let mut open = self.inner.open();
        open.remove(&self.id);
        if open.is_empty() && self.inner.draining.load(Ordering::Acquire) {
            self.inner.all_closed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_for_every_connection_or_the_deadline() {
        let drain = Drain::default();
        let mut a = drain.watch();
        let b = drain.watch();
        assert_eq!(drain.open(), 2);
        let task = tokio::spawn(async move {
            a.started().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop(a);
        });
        drain.start();
        assert!(!drain.wait(Duration::from_secs(1)).await, "b never closes");
        assert_eq!(drain.open(), 1);
        drop(b);
        task.await.unwrap();
        assert!(drain.wait(Duration::from_secs(1)).await);
        assert!(drain.is_draining());
        // A connection that opens after the drain began is told at once.
        let mut late = drain.watch();
        tokio::time::timeout(Duration::from_millis(1), late.started())
            .await
            .expect("a late connection starts draining at once");
    }
}
