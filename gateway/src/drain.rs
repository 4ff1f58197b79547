//! Graceful drain: the signal that tells every open connection to finish what it is doing
//! and close, and the wait until they have.
//!
//! Each served connection holds a [`Draining`] receiver while it runs. [`Drain::start`] flips
//! the signal (HTTP/2 connections send GOAWAY, HTTP/1.1 ones close after the response in
//! flight, idle ones at once); [`Drain::wait`] returns when the last connection has ended, or
//! at the deadline.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// The owner's side: start the drain and wait for it.
#[derive(Clone, Debug)]
pub struct Drain {
    tx: Arc<watch::Sender<bool>>,
}

/// A connection's side: resolves once draining begins.
pub struct Draining(watch::Receiver<bool>);

impl Default for Drain {
    fn default() -> Self {
        let (tx, _) = watch::channel(false);
        Self { tx: Arc::new(tx) }
    }
}

impl Drain {
    /// A receiver for one connection; it counts as open until dropped.
    pub fn watch(&self) -> Draining {
        Draining(self.tx.subscribe())
    }

    /// Tells every connection to finish and close.
    pub fn start(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_draining(&self) -> bool {
        *self.tx.borrow()
    }

    /// Connections still open.
    pub fn open(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Waits until every connection has ended; `false` if some were still open at the
    /// deadline.
    pub async fn wait(&self, deadline: Duration) -> bool {
        tokio::time::timeout(deadline, self.tx.closed())
            .await
            .is_ok()
    }
}

impl Draining {
    /// Resolves when draining begins (at once if it has).
    pub async fn started(&mut self) {
        let _ = self.0.wait_for(|d| *d).await;
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
        drop(b);
        task.await.unwrap();
        assert!(drain.wait(Duration::from_secs(1)).await);
        assert!(drain.is_draining());
    }
}
