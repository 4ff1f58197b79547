//! When the publisher attaches this gateway's placements to a lease renewal: when they
//! changed since the last report the node took, and at least every [`RESEND`] (the node keeps
//! a report for 90 s, and the gateway may have moved to another node). At 1,000 clusters
//! each reporting 50 services (~150 bytes each) every 30 s, the nodes take ~250 KB/s in
//! all; a failover makes only the gateways it touches report. While the routing tables are
//! the ones the last report was built from (every change publishes new ones), nothing is
//! computed at all: a gateway routing thousands of services plans them only after a change.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use warden_federation::placement::PlacementReport;

use crate::balance::Locality;
use crate::proxy::placement;
use crate::table::{LocalTable, RemoteTable, Tables};

/// The routing tables a report was built from, held weakly (they may be freed; a freed
/// table's address is not reused while this holds it).
type Built = (Weak<LocalTable>, Weak<RemoteTable>);

fn same(b: &Built, local: &Arc<LocalTable>, remote: &Arc<RemoteTable>) -> bool {
    Weak::ptr_eq(&b.0, &Arc::downgrade(local)) && Weak::ptr_eq(&b.1, &Arc::downgrade(remote))
}

/// An unchanged report goes again after this long.
pub const RESEND: Duration = Duration::from_secs(30);

/// The last report a node took, and whether the node takes them at all.
pub struct PlacementReports {
    me: Locality,
    overprovisioning_percent: u32,
    off: AtomicBool,
    /// The report the node took last, when, and the tables it was built from.
    last: Mutex<Option<(Instant, PlacementReport, Option<Built>)>>,
    /// The tables the report being sent was built from.
    pending: Mutex<Option<Built>>,
}

impl PlacementReports {
    pub fn new(me: Locality, overprovisioning_percent: u32) -> Self {
        Self {
            me,
            overprovisioning_percent,
            off: AtomicBool::new(false),
            last: Mutex::new(None),
            pending: Mutex::new(None),
        }
    }

    /// The report to send with this renewal, if one is due.
    pub fn due(&self, tables: &Tables) -> Option<PlacementReport> {
        if self.off.load(Ordering::Relaxed) {
            return None;
        }
        let (local, remote) = (tables.local.load_full(), tables.remote.load_full());
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, _, Some(built))) = &*last
            && at.elapsed() < RESEND
            && same(built, &local, &remote)
        {
            return None;
        }
        let now = placement::report(tables, &self.me, self.overprovisioning_percent);
        let built = (Arc::downgrade(&local), Arc::downgrade(&remote));
        if let Some((at, sent, from)) = &mut *last
            && *sent == now
            && at.elapsed() < RESEND
        {
            // New tables, the same plans: the node has them already.
            *from = Some(built);
            return None;
        }
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(built);
        Some(now)
    }

    /// The node took `report` (a renewal that failed sends it again next time).
    pub fn sent(&self, report: PlacementReport) {
        let built = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        *last = Some((Instant::now(), report, built));
    }

    /// A node from before placements refused the field: never send it again.
    pub fn refused(&self) {
        self.off.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::view::fixtures::{me, remote, tables};

    #[test]
    fn a_report_goes_once_and_again_only_after_a_change() {
        let (t, _) = tables(&[true], vec![remote("west", "z2", 1)]);
        let r = PlacementReports::new(me(), 100);
        let first = r.due(&t).expect("the first report is due");
        assert_eq!(r.due(&t), Some(first.clone()), "not taken yet: due again");
        r.sent(first.clone());
        assert_eq!(
            r.due(&t),
            None,
            "same tables: nothing computed, nothing due"
        );
        // New tables with the same plans: still nothing to send.
        let same = (**t.local.load()).clone();
        t.local.store(Arc::new(same));
        assert_eq!(r.due(&t), None);
        // The local endpoint goes down: a new plan is due.
        let mut down = (**t.local.load()).clone();
        for svc in down.services.values_mut() {
            let mut s = (**svc).clone();
            for e in &mut s.endpoints {
                e.available = false;
            }
            *svc = Arc::new(s);
        }
        t.local.store(Arc::new(down));
        let next = r.due(&t).expect("a changed plan is due");
        assert_ne!(next, first);
        r.refused();
        assert_eq!(r.due(&t), None, "a node that refuses the field gets none");
    }
}
