//! Mesh configuration kept in the store: the defaults every gateway applies live
//! ([`MeshConfig`], one for the whole mesh, and one per cluster overriding it). Every field is
//! optional: an unset field leaves the value to the next layer down (the cluster's document,
//! then the mesh's, then the gateway's own file, then the built-in default; the gateway's
//! `/config_dump` shows each effective value and where it came from).
//!
//! Only settings a gateway can change without a restart are here; what a gateway needs to
//! start (identity, listeners, where the store is) stays in its file.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::FieldError;

/// Mesh-wide (or one cluster's) gateway settings; unset fields inherit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeshConfig {
    #[serde(default, skip_serializing_if = "TimeoutSettings::is_empty")]
    pub timeouts: TimeoutSettings,
    #[serde(default, skip_serializing_if = "RetrySettings::is_empty")]
    pub retries: RetrySettings,
    #[serde(default, skip_serializing_if = "HealthSettings::is_empty")]
    pub health: HealthSettings,
    #[serde(default, skip_serializing_if = "OutlierSettings::is_empty")]
    pub outlier: OutlierSettings,
    #[serde(default, skip_serializing_if = "RoutingSettings::is_empty")]
    pub routing: RoutingSettings,
    #[serde(default, skip_serializing_if = "AuthzSettings::is_empty")]
    pub authz: AuthzSettings,
    #[serde(default, skip_serializing_if = "TelemetrySettings::is_empty")]
    pub telemetry: TelemetrySettings,
}

/// Request timeouts (a route rule's own timeouts still win for its requests).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeoutSettings {
    /// One attempt, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_ms: Option<u64>,
    /// A whole request with its retries, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overall_ms: Option<u64>,
}

/// Retries of failed attempts and the budget that bounds them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrySettings {
    /// Retries per request (a route rule's `retry.attempts` still wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Retries may add at most this share of recent requests, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_percent: Option<u32>,
    /// Retries allowed per second whatever the request rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_retries_per_second: Option<u32>,
}

/// Active health checking of local endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthSettings {
    /// Time between probes of each endpoint, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
    /// How long one probe may take, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Passing probes in a row before an endpoint takes traffic again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_threshold: Option<u32>,
    /// Failing probes in a row before an endpoint is taken out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_threshold: Option<u32>,
}

/// Passive outlier detection (a resilience policy's own values still win for its service).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutlierSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_failures: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ejection_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ejection_percent: Option<u32>,
}

/// Failover and failback.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingSettings {
    /// How long a recovered endpoint takes to ramp back to its full share, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failback_ramp_ms: Option<u64>,
}

/// What inbound requests get when no authorization policy names their service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DefaultAction {
    Allow,
    Deny,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthzSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<DefaultAction>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// One access-log line per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log: Option<bool>,
    /// Requests recorded and exported as spans, per million (by trace id, so every hop of a
    /// trace decides alike); 5xx answers are recorded whatever this says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_per_million: Option<u32>,
}

impl TimeoutSettings {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
impl RetrySettings {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
impl HealthSettings {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
impl OutlierSettings {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
impl RoutingSettings {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
impl AuthzSettings {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
impl TelemetrySettings {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// One hour: no timeout, ramp or ejection in a gateway is meant to be longer.
const HOUR_MS: u64 = 3_600_000;

use crate::model::validate_range as within;

impl MeshConfig {
    /// Every field's path, in the order [`MeshConfig::set_fields`] lists them.
    pub const FIELDS: [&'static str; 16] = [
        "timeouts.per_try_ms",
        "timeouts.overall_ms",
        "retries.max_retries",
        "retries.budget_percent",
        "retries.min_retries_per_second",
        "health.interval_ms",
        "health.timeout_ms",
        "health.healthy_threshold",
        "health.unhealthy_threshold",
        "outlier.consecutive_failures",
        "outlier.base_ejection_ms",
        "outlier.max_ejection_percent",
        "routing.failback_ramp_ms",
        "authz.default",
        "telemetry.access_log",
        "telemetry.sample_per_million",
    ];

    /// Checks every set field's range; the error names the field.
    pub fn validate(&self) -> Result<(), FieldError> {
        let t = &self.timeouts;
        within("timeouts.per_try_ms", t.per_try_ms, 1, HOUR_MS)?;
        within("timeouts.overall_ms", t.overall_ms, 1, HOUR_MS)?;
        let r = &self.retries;
        within("retries.max_retries", r.max_retries, 0, 10)?;
        within("retries.budget_percent", r.budget_percent, 0, 100)?;
        within(
            "retries.min_retries_per_second",
            r.min_retries_per_second,
            0,
            100_000,
        )?;
        let h = &self.health;
        within("health.interval_ms", h.interval_ms, 50, HOUR_MS)?;
        within("health.timeout_ms", h.timeout_ms, 10, 60_000)?;
        within("health.healthy_threshold", h.healthy_threshold, 1, 100)?;
        within("health.unhealthy_threshold", h.unhealthy_threshold, 1, 100)?;
        let o = &self.outlier;
        within(
            "outlier.consecutive_failures",
            o.consecutive_failures,
            1,
            1_000,
        )?;
        within("outlier.base_ejection_ms", o.base_ejection_ms, 1, HOUR_MS)?;
        within(
            "outlier.max_ejection_percent",
            o.max_ejection_percent,
            0,
            100,
        )?;
        within(
            "routing.failback_ramp_ms",
            self.routing.failback_ramp_ms,
            0,
            HOUR_MS,
        )?;
        within(
            "telemetry.sample_per_million",
            self.telemetry.sample_per_million,
            0,
            1_000_000,
        )?;
        Ok(())
    }

    /// Every field that is set, as `(path, value)` in a fixed order: for diffs and dumps.
    pub fn set_fields(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut put = |path: &'static str, v: Option<String>| {
            if let Some(v) = v {
                out.push((path, v));
            }
        };
        let s = |v: Option<u64>| v.map(|v| v.to_string());
        let s32 = |v: Option<u32>| v.map(|v| v.to_string());
        put("timeouts.per_try_ms", s(self.timeouts.per_try_ms));
        put("timeouts.overall_ms", s(self.timeouts.overall_ms));
        put("retries.max_retries", s32(self.retries.max_retries));
        put("retries.budget_percent", s32(self.retries.budget_percent));
        put(
            "retries.min_retries_per_second",
            s32(self.retries.min_retries_per_second),
        );
        put("health.interval_ms", s(self.health.interval_ms));
        put("health.timeout_ms", s(self.health.timeout_ms));
        put(
            "health.healthy_threshold",
            s32(self.health.healthy_threshold),
        );
        put(
            "health.unhealthy_threshold",
            s32(self.health.unhealthy_threshold),
        );
        put(
            "outlier.consecutive_failures",
            s32(self.outlier.consecutive_failures),
        );
        put("outlier.base_ejection_ms", s(self.outlier.base_ejection_ms));
        put(
            "outlier.max_ejection_percent",
            s32(self.outlier.max_ejection_percent),
        );
        put("routing.failback_ramp_ms", s(self.routing.failback_ramp_ms));
        put(
            "authz.default",
            self.authz.default.map(|d| match d {
                DefaultAction::Allow => "allow".to_string(),
                DefaultAction::Deny => "deny".to_string(),
            }),
        );
        put(
            "telemetry.access_log",
            self.telemetry.access_log.map(|b| b.to_string()),
        );
        put(
            "telemetry.sample_per_million",
            s32(self.telemetry.sample_per_million),
        );
        out
    }
}

/// Which document: the mesh's, or one cluster's overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigScope {
    Mesh,
    Cluster(String),
}

impl ConfigScope {
    /// Its API path.
    pub fn path(&self) -> String {
        match self {
            Self::Mesh => crate::paths::MESH_CONFIG.to_string(),
            Self::Cluster(c) => crate::paths::cluster_config(c),
        }
    }
}

/// What the store holds of mesh configuration (one JSON document in the state, see
/// [`crate::state::FederationState::extra`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigState {
    #[serde(default)]
    pub mesh: MeshConfig,
    /// The revision that last changed `mesh` (0: never set).
    #[serde(default)]
    pub mesh_revision: u64,
    /// Per-cluster overrides by cluster name (a cluster without one is absent).
    #[serde(default)]
    pub clusters: std::collections::BTreeMap<String, MeshConfig>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_out_of_range_fields_are_named() {
        let e = serde_json::from_str::<MeshConfig>(r#"{"timeouts":{"per_try":5}}"#).unwrap_err();
        assert!(e.to_string().contains("per_try"), "{e}");
        let c: MeshConfig = serde_json::from_str(r#"{"retries":{"max_retries":11}}"#).unwrap();
        assert_eq!(c.validate().unwrap_err().field, "retries.max_retries");
        let c: MeshConfig = serde_json::from_str(r#"{"timeouts":{"overall_ms":0}}"#).unwrap();
        assert_eq!(c.validate().unwrap_err().field, "timeouts.overall_ms");
        let c: MeshConfig =
            serde_json::from_str(r#"{"telemetry":{"sample_per_million":1000001}}"#).unwrap();
        assert_eq!(
            c.validate().unwrap_err().field,
            "telemetry.sample_per_million"
        );
    }

    #[test]
    fn set_fields_follow_the_field_list() {
        let all: MeshConfig = serde_json::from_str(
            r#"{"timeouts":{"per_try_ms":1,"overall_ms":2},
                "retries":{"max_retries":1,"budget_percent":1,"min_retries_per_second":1},
                "health":{"interval_ms":100,"timeout_ms":50,"healthy_threshold":1,"unhealthy_threshold":1},
                "outlier":{"consecutive_failures":1,"base_ejection_ms":1,"max_ejection_percent":1},
                "routing":{"failback_ramp_ms":1},"authz":{"default":"allow"},
                "telemetry":{"access_log":true,"sample_per_million":1}}"#,
        )
        .unwrap();
        let listed: Vec<&str> = all.set_fields().into_iter().map(|(k, _)| k).collect();
        assert_eq!(listed, MeshConfig::FIELDS);
    }

    #[test]
    fn an_empty_document_serializes_empty_and_lists_nothing() {
        let c = MeshConfig::default();
        assert_eq!(serde_json::to_string(&c).unwrap(), "{}");
        assert!(c.set_fields().is_empty());
        let c: MeshConfig = serde_json::from_str(
            r#"{"authz":{"default":"deny"},"telemetry":{"access_log":false}}"#,
        )
        .unwrap();
        assert_eq!(
            c.set_fields(),
            vec![
                ("authz.default", "deny".to_string()),
                ("telemetry.access_log", "false".to_string())
            ]
        );
    }
}
