//! [`LoadReport`]: what a gateway says, with each lease renewal, about the traffic its
//! mesh-wide rate limits see — the requests per second offered to each (admitted or not) over
//! its last renewal interval. Every gateway divides a mesh-wide limit by these shares. The
//! report rides in the renewal's one log entry (no write of its own) and in the watch stream's
//! `lease.renewed` event; the state keeps the latest lease, not the report, so a gateway that
//! lists afresh learns each cluster's load at that cluster's next renewal.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::FieldError;

/// Demand on mesh-wide rate limits, as one gateway saw it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadReport {
    /// Requests per second offered, by `<policy id>/<limit name>` (at most 256 entries, each
    /// 0–1,000,000,000).
    #[serde(default)]
    pub demand: BTreeMap<String, f64>,
}

/// Entries a report may hold.
pub const MAX_ENTRIES: usize = 256;

/// The key of one limit in a report.
pub fn limit_key(policy: &str, limit: &str) -> String {
    format!("{policy}/{limit}")
}

impl LoadReport {
    /// Checks the report; the error names the field at fault.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.demand.len() > MAX_ENTRIES {
            return Err(FieldError::new(
                "load.demand",
                format!("at most {MAX_ENTRIES} entries"),
            ));
        }
        for (k, v) in &self.demand {
            if k.is_empty() || k.len() > 256 {
                return Err(FieldError::new("load.demand", "keys are 1-256 bytes"));
            }
            if !v.is_finite() || *v < 0.0 || *v > 1e9 {
                return Err(FieldError::new(
                    format!("load.demand[{k:?}]"),
                    "requests per second, 0-1000000000",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_reports_are_named() {
        let mut r = LoadReport::default();
        r.demand.insert(limit_key("cart-limits", "all"), 12.5);
        assert!(r.validate().is_ok());
        r.demand.insert("x".into(), f64::NAN);
        assert_eq!(r.validate().unwrap_err().field, "load.demand[\"x\"]");
        r.demand.insert("x".into(), -1.0);
        assert!(r.validate().is_err());
        let big = LoadReport {
            demand: (0..=MAX_ENTRIES).map(|i| (i.to_string(), 1.0)).collect(),
        };
        assert_eq!(big.validate().unwrap_err().field, "load.demand");
    }
}
