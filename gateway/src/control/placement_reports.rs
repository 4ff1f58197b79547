//! When the publisher attaches this gateway's placements to a lease renewal: when they
//! changed since the last report the node took, and at least every [`RESEND`] (the node keeps
//! a report for 90 s, and the gateway may have moved to another node). At 1,000 clusters
//! each reporting 50 services (~150 bytes each) every 30 s, the nodes take ~250 KB/s in
//! all; a failover makes only the gateways it touches report.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use warden_federation::placement::PlacementReport;

use crate::balance::Locality;
use crate::proxy::placement;
use crate::table::Tables;

/// An unchanged report goes again after this long.
pub const RESEND: Duration = Duration::from_secs(30);

/// The last report a node took, and whether the node takes them at all.
pub struct PlacementReports {
    me: Locality,
    overprovisioning_percent: u32,
    off: AtomicBool,
    last: Mutex<Option<(Instant, PlacementReport)>>,
}

impl PlacementReports {
    pub fn new(me: Locality, overprovisioning_percent: u32) -> Self {
        Self {
            me,
            overprovisioning_percent,
            off: AtomicBool::new(false),
            last: Mutex::new(None),
        }
    }

    /// The report to send with this renewal, if one is due.
    pub fn due(&self, tables: &Tables) -> Option<PlacementReport> {
        if self.off.load(Ordering::Relaxed) {
            return None;
        }
        let now = placement::report(tables, &self.me, self.overprovisioning_percent);
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match &*last {
            Some((at, sent)) if *sent == now && at.elapsed() < RESEND => None,
            _ => Some(now),
        }
    }

    /// The node took `report` (a renewal that failed sends it again next time).
    pub fn sent(&self, report: PlacementReport) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        *last = Some((Instant::now(), report));
    }

    /// A node from before placements refused the field: never send it again.
    pub fn refused(&self) {
        self.off.store(true, Ordering::Relaxed);
    }
}
