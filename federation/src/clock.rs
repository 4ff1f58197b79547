//! The wall clock the federation agrees on: milliseconds since the Unix epoch. Proposers stamp
//! commands with it, leases expire by it, and gateways judge remote leases by it.

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
