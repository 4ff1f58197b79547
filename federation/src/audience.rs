//! [`ExportAudience`]: the clusters one cluster's export is for (`export_to`). Other clusters
//! do not route to that copy, get no ServiceImport for it, and the exporting gateway refuses
//! their requests. Kept beside the export as a JSON document ([`crate::stored::Stored`]).

use serde::{Deserialize, Serialize};

use crate::model::{FieldError, validate_dns_label};

/// Who may import an export: the named clusters, or (empty) every cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportAudience {
    /// Cluster names (at most 64); empty: every cluster.
    #[serde(default)]
    pub export_to: Vec<String>,
}

/// Clusters an audience may name.
pub const MAX_AUDIENCE: usize = 64;

impl ExportAudience {
    /// Whether cluster `c` may import the export.
    pub fn allows(&self, c: &str) -> bool {
        self.export_to.is_empty() || self.export_to.iter().any(|x| x == c)
    }

    /// Checks the list; the error names `field[i]`.
    pub fn validate(&self, field: &str) -> Result<(), FieldError> {
        if self.export_to.len() > MAX_AUDIENCE {
            return Err(FieldError::new(
                field,
                format!("at most {MAX_AUDIENCE} clusters"),
            ));
        }
        for (i, c) in self.export_to.iter().enumerate() {
            validate_dns_label(&format!("{field}[{i}]"), c)?;
        }
        Ok(())
    }
}

/// Whether `export_to` (empty: everyone) lets cluster `c` in.
pub fn allows(export_to: &[String], c: &str) -> bool {
    export_to.is_empty() || export_to.iter().any(|x| x == c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_audience_is_everyone_and_names_are_checked() {
        let all = ExportAudience::default();
        assert!(all.allows("anyone"));
        let west = ExportAudience {
            export_to: vec!["west".into()],
        };
        assert!(west.allows("west") && !west.allows("south"));
        let bad = ExportAudience {
            export_to: vec!["west".into(), "Not A Label".into()],
        };
        assert_eq!(bad.validate("export_to").unwrap_err().field, "export_to[1]");
    }
}
