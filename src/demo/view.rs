//! What the demo prints: step lines, and a table of the last second of traffic — redrawn in
//! place on a terminal, printed as a snapshot when asked for in `--scenario` mode.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use super::traffic::{Traffic, window};

pub const CLUSTERS: [&str; 3] = ["east", "central", "west"];
pub const SERVICES: [&str; 2] = ["cart", "ledger"];

pub struct View {
    /// Redraw the table in place (a terminal, not `--scenario`).
    pub live: bool,
    /// Lines of the table currently on screen (live mode).
    drawn: Mutex<usize>,
}

impl View {
    pub fn new(live: bool) -> Self {
        Self {
            live,
            drawn: Mutex::new(0),
        }
    }

    fn erase(&self, out: &mut impl Write, drawn: &mut usize) {
        if self.live && *drawn > 0 {
            // Up `drawn` lines, then clear to the end of the screen.
            let _ = write!(out, "\x1b[{}A\x1b[J", *drawn);
            *drawn = 0;
        }
    }

    /// Prints one line above the table.
    pub fn say(&self, line: &str) {
        let mut drawn = self.drawn.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = std::io::stdout().lock();
        self.erase(&mut out, &mut drawn);
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// Redraws the live table (live mode), or prints it to stay (`force`).
    pub fn table(&self, traffic: &Traffic, force: bool) {
        if !self.live && !force {
            return;
        }
        let text = render(traffic);
        let mut drawn = self.drawn.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = std::io::stdout().lock();
        self.erase(&mut out, &mut drawn);
        let _ = write!(out, "{text}");
        let _ = out.flush();
        // A forced table stays on screen as the record of a step; a live one is redrawn.
        if self.live && !force {
            *drawn = text.lines().count();
        }
    }
}

/// The last second of traffic, per service: share served by each cluster, rate, failures,
/// latency percentiles.
pub fn render(traffic: &Traffic) -> String {
    let now = traffic.now();
    let from = now.saturating_sub(Duration::from_secs(1));
    let samples = traffic.since(from);
    let mut s = format!(
        "  {:<8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>8} {:>8}\n",
        "service", CLUSTERS[0], CLUSTERS[1], CLUSTERS[2], "req/s", "failed", "p50 ms", "p99 ms"
    );
    for svc in SERVICES {
        let w = window(&samples, svc, &CLUSTERS);
        let pct = |x: f64| format!("{:.0}%", x * 100.0);
        s.push_str(&format!(
            "  {:<8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>8.2} {:>8.2}\n",
            svc,
            pct(w.shares[0]),
            pct(w.shares[1]),
            pct(w.shares[2]),
            w.requests,
            w.failed,
            w.p50_ms,
            w.p99_ms
        ));
    }
    s
}
