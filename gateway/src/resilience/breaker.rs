//! Circuit breakers: bounds on what this gateway has in flight to a service, as a whole and
//! per target cluster. A request over `max_requests` waits, first come first served, while
//! fewer than `max_pending_requests` do (until its deadline), else is refused at once; a
//! retry over `max_retries` is not made; connections to the local endpoints are bounded in
//! number and in requests each ([`ConnLimits`]). Counts are shared by every worker of the gateway and
//! survive routing-table updates while the policy is unchanged.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use warden_federation::resilience::{CircuitBreaker, ConnectionLimits, Thresholds};

/// Which bound was reached (the `x-warden-error: overflow` detail and the metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    Requests,
    Pending,
    Retries,
    Connections,
}

impl Overflow {
    pub fn label(self) -> &'static str {
        match self {
            Overflow::Requests => "max_requests",
            Overflow::Pending => "max_pending_requests",
            Overflow::Retries => "max_retries",
            Overflow::Connections => "max_connections",
        }
    }
}

/// One set of bounds and its counters.
#[derive(Debug)]
pub struct Gate {
    requests: Option<Arc<Semaphore>>,
    max_pending: u32,
    pending: AtomicU32,
    max_retries: Option<u32>,
    retries: Arc<AtomicU32>,
}

/// Held while a request is in flight under a gate.
#[derive(Debug)]
pub struct Admitted(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

/// Held while a retry is in flight under a gate.
#[derive(Debug)]
pub struct RetryAdmitted(Option<Arc<AtomicU32>>);

impl Drop for RetryAdmitted {
    fn drop(&mut self) {
        if let Some(c) = &self.0 {
            c.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Gate {
    pub fn new(t: &Thresholds) -> Self {
        Self {
            requests: t.max_requests.map(|m| Arc::new(Semaphore::new(m as usize))),
            max_pending: t.max_pending_requests.unwrap_or(0),
            pending: AtomicU32::new(0),
            max_retries: t.max_retries,
            retries: Arc::new(AtomicU32::new(0)),
        }
    }

    /// Admits a request at once or not at all.
    pub fn try_admit(&self) -> Result<Admitted, Overflow> {
        match &self.requests {
            None => Ok(Admitted(None)),
            Some(s) => s
                .clone()
                .try_acquire_owned()
                .map(|p| Admitted(Some(p)))
                .map_err(|_| Overflow::Requests),
        }
    }

    /// Admits a request, waiting up to `wait` among at most `max_pending` others when the gate
    /// is full.
    pub async fn admit(&self, wait: std::time::Duration) -> Result<Admitted, Overflow> {
        let Some(s) = &self.requests else {
            return Ok(Admitted(None));
        };
        if let Ok(p) = s.clone().try_acquire_owned() {
            return Ok(Admitted(Some(p)));
        }
        let waiting = self.pending.fetch_add(1, Ordering::AcqRel);
        let _undo = Undo(&self.pending);
        if waiting >= self.max_pending {
            return Err(Overflow::Pending);
        }
        match tokio::time::timeout(wait, s.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(Admitted(Some(p))),
            _ => Err(Overflow::Pending),
        }
    }

    /// Admits a retry, or refuses it when `max_retries` are in flight.
    pub fn admit_retry(&self) -> Result<RetryAdmitted, Overflow> {
        let Some(max) = self.max_retries else {
            return Ok(RetryAdmitted(None));
        };
        let c = &self.retries;
        c.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .map(|_| RetryAdmitted(Some(c.clone())))
        .map_err(|_| Overflow::Retries)
    }

    /// Requests in flight under this gate (for `/explain`).
    pub fn in_flight(&self, max: u32) -> u32 {
        self.requests
            .as_ref()
            .map(|s| max.saturating_sub(s.available_permits() as u32))
            .unwrap_or(0)
    }
}

struct Undo<'a>(&'a AtomicU32);

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Bounds on the connections to a service's local endpoints, shared by every worker. The
/// proxy opens those connections through a pool of its own for these bounds, kept in `pool`
/// (made on first use, dropped with the policy).
pub struct ConnLimits {
    pub max_connections: Option<u32>,
    pub max_requests_per_connection: Option<u32>,
    /// One permit per open connection, held by the connection until it closes.
    pub permits: Option<Arc<Semaphore>>,
    pub pool: OnceLock<Arc<dyn Any + Send + Sync>>,
}

impl ConnLimits {
    pub fn new(c: &ConnectionLimits) -> Self {
        Self {
            max_connections: c.max_connections,
            max_requests_per_connection: c.max_requests_per_connection,
            permits: c
                .max_connections
                .map(|m| Arc::new(Semaphore::new(m as usize))),
            pool: OnceLock::new(),
        }
    }

    /// Connections open now (for `/explain`).
    pub fn open(&self) -> u32 {
        match (&self.permits, self.max_connections) {
            (Some(s), Some(max)) => max.saturating_sub(s.available_permits() as u32),
            _ => 0,
        }
    }
}

impl std::fmt::Debug for ConnLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnLimits")
            .field("max_connections", &self.max_connections)
            .field(
                "max_requests_per_connection",
                &self.max_requests_per_connection,
            )
            .field("open", &self.open())
            .finish()
    }
}

/// A service's breaker: its own gate and one per target cluster, made on first use (one per
/// cluster of the mesh at most: the names come from the routing table, not from requests).
#[derive(Debug)]
pub struct Breaker {
    pub service: Option<Gate>,
    per_cluster: Option<Thresholds>,
    clusters: Mutex<HashMap<String, Arc<Gate>>>,
    pub connections: Option<ConnLimits>,
}

impl Breaker {
    pub fn new(cb: &CircuitBreaker) -> Self {
        Self {
            service: cb.service.as_ref().map(Gate::new),
            per_cluster: cb.per_cluster.clone(),
            clusters: Mutex::new(HashMap::new()),
            connections: cb.connections.as_ref().map(ConnLimits::new),
        }
    }

    /// The gate of target cluster `cluster`, when the breaker bounds clusters.
    pub fn cluster(&self, cluster: &str) -> Option<Arc<Gate>> {
        let t = self.per_cluster.as_ref()?;
        let mut m = match self.clusters.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if let Some(g) = m.get(cluster) {
            return Some(g.clone());
        }
        let g = Arc::new(Gate::new(t));
        m.insert(cluster.to_string(), g.clone());
        Some(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::Instant;

    fn gate(max: u32, pending: u32, retries: Option<u32>) -> Gate {
        Gate::new(&Thresholds {
            max_requests: Some(max),
            max_pending_requests: Some(pending),
            max_retries: retries,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn over_the_bound_one_waits_for_a_slot_and_the_next_is_refused() {
        let g = Arc::new(gate(2, 1, None));
        let soon = Duration::from_secs(1);
        let a = g.admit(soon).await.unwrap();
        let _b = g.admit(soon).await.unwrap();
        assert_eq!(g.in_flight(2), 2);
        let waiter = {
            let g = g.clone();
            tokio::spawn(async move { g.admit(soon).await.map(|_| ()) })
        };
        tokio::task::yield_now().await;
        assert_eq!(g.admit(soon).await.unwrap_err(), Overflow::Pending);
        assert_eq!(g.try_admit().unwrap_err(), Overflow::Requests);
        drop(a);
        assert_eq!(
            waiter.await.unwrap(),
            Ok(()),
            "the waiter got the freed slot"
        );
        // A waiter gives up at its deadline.
        let _c = g.admit(soon).await.unwrap();
        let t0 = Instant::now();
        assert_eq!(
            g.admit(Duration::from_millis(250)).await.unwrap_err(),
            Overflow::Pending
        );
        assert_eq!(Instant::now() - t0, Duration::from_millis(250));
    }

    #[test]
    fn retries_in_flight_are_bounded_and_given_back() {
        let g = gate(10, 0, Some(1));
        let r = g.admit_retry().unwrap();
        assert_eq!(g.admit_retry().unwrap_err(), Overflow::Retries);
        drop(r);
        assert!(g.admit_retry().is_ok());
    }

    #[test]
    fn each_cluster_has_its_own_gate() {
        let b = Breaker::new(&CircuitBreaker {
            service: None,
            per_cluster: Some(Thresholds {
                max_requests: Some(1),
                ..Default::default()
            }),
            connections: None,
        });
        let east = b.cluster("east").unwrap();
        let _held = east.try_admit().unwrap();
        assert!(b.cluster("east").unwrap().try_admit().is_err());
        assert!(b.cluster("west").unwrap().try_admit().is_ok());
    }
}
