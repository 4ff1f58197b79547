//! The settings a gateway applies live, each with where its value came from: the built-in
//! default, this gateway's file, the mesh-wide document in the store, or this cluster's
//! overrides there (highest last). [`Settings::from_file`] is the layer below the store; the
//! catalog watcher lays the store's documents over it ([`Settings::with_store`]) on every
//! change and publishes the result in [`crate::table::Tables::settings`], which the data
//! path and the pools read per request or per decision. `/config_dump` shows it.

use serde::Serialize;
use warden_federation::mesh_config::{DefaultAction, MeshConfig};

use crate::config::{
    AuthzDefault, GatewayConfig, HealthSection, OutlierSection, RetrySection, RoutingSection,
    TelemetrySection, TimeoutSection,
};

/// Where an effective value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Default,
    /// This gateway's configuration file.
    File,
    /// `/api/v1/mesh/config`.
    Mesh,
    /// `/api/v1/clusters/{name}/config`.
    Cluster,
}

/// One effective value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Setting<T> {
    pub value: T,
    pub source: Source,
}

impl<T: Copy> Setting<T> {
    fn default(value: T) -> Self {
        Self {
            value,
            source: Source::Default,
        }
    }

    /// This value, or `over`'s when it is set, marked as coming from `source`.
    fn over(self, over: Option<T>, source: Source) -> Self {
        match over {
            Some(value) => Self { value, source },
            None => self,
        }
    }
}

/// Every live setting (names as in the file and the store's documents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settings {
    #[serde(rename = "timeouts.per_try_ms")]
    pub per_try_ms: Setting<u64>,
    #[serde(rename = "timeouts.overall_ms")]
    pub overall_ms: Setting<u64>,
    #[serde(rename = "retries.max_retries")]
    pub max_retries: Setting<u32>,
    #[serde(rename = "retries.budget_percent")]
    pub budget_percent: Setting<u32>,
    #[serde(rename = "retries.min_retries_per_second")]
    pub min_retries_per_second: Setting<u32>,
    #[serde(rename = "health.interval_ms")]
    pub health_interval_ms: Setting<u64>,
    #[serde(rename = "health.timeout_ms")]
    pub health_timeout_ms: Setting<u64>,
    #[serde(rename = "health.healthy_threshold")]
    pub healthy_threshold: Setting<u32>,
    #[serde(rename = "health.unhealthy_threshold")]
    pub unhealthy_threshold: Setting<u32>,
    #[serde(rename = "outlier.consecutive_failures")]
    pub consecutive_failures: Setting<u32>,
    #[serde(rename = "outlier.base_ejection_ms")]
    pub base_ejection_ms: Setting<u64>,
    #[serde(rename = "outlier.max_ejection_percent")]
    pub max_ejection_percent: Setting<u32>,
    #[serde(rename = "routing.failback_ramp_ms")]
    pub failback_ramp_ms: Setting<u64>,
    /// `authz.default` is allow.
    #[serde(rename = "authz.default", serialize_with = "allow_or_deny")]
    pub authz_allow: Setting<bool>,
    #[serde(rename = "telemetry.access_log")]
    pub access_log: Setting<bool>,
    #[serde(rename = "telemetry.sample_per_million")]
    pub sample_per_million: Setting<u32>,
}

fn allow_or_deny<S: serde::Serializer>(s: &Setting<bool>, ser: S) -> Result<S::Ok, S::Error> {
    Setting {
        value: if s.value { "allow" } else { "deny" },
        source: s.source,
    }
    .serialize(ser)
}

impl Default for Settings {
    /// The built-in defaults (the file's sections' own).
    fn default() -> Self {
        let (t, r, h, o, ro) = (
            TimeoutSection::default(),
            RetrySection::default(),
            HealthSection::default(),
            OutlierSection::default(),
            RoutingSection::default(),
        );
        Self {
            per_try_ms: Setting::default(t.per_try_ms),
            overall_ms: Setting::default(t.overall_ms),
            max_retries: Setting::default(r.max_retries),
            budget_percent: Setting::default(r.budget_percent),
            min_retries_per_second: Setting::default(r.min_retries_per_second),
            health_interval_ms: Setting::default(h.interval_ms),
            health_timeout_ms: Setting::default(h.timeout_ms),
            healthy_threshold: Setting::default(h.healthy_threshold),
            unhealthy_threshold: Setting::default(h.unhealthy_threshold),
            consecutive_failures: Setting::default(o.consecutive_failures),
            base_ejection_ms: Setting::default(o.base_ejection_ms),
            max_ejection_percent: Setting::default(o.max_ejection_percent),
            failback_ramp_ms: Setting::default(ro.failback_ramp_ms),
            authz_allow: Setting::default(AuthzDefault::default() == AuthzDefault::Allow),
            access_log: Setting::default(TelemetrySection::default().access_log),
            sample_per_million: Setting::default(TelemetrySection::default().sample_per_million),
        }
    }
}

impl Settings {
    /// `cfg`'s values: from the file where it sets them (or where they differ from the
    /// default, for a config not read through [`GatewayConfig::load`]), else the defaults.
    pub fn from_file(cfg: &GatewayConfig) -> Self {
        let d = Self::default();
        fn file<T: Copy + PartialEq>(
            cfg: &GatewayConfig,
            s: Setting<T>,
            key: &str,
            v: T,
        ) -> Setting<T> {
            let from_file = cfg.explicit.contains(key) || v != s.value;
            Setting {
                value: v,
                source: if from_file { Source::File } else { s.source },
            }
        }
        let file32 = |s, key: &str, v| file(cfg, s, key, v);
        let fileb = |s, key: &str, v| file(cfg, s, key, v);
        let file = |s, key: &str, v| file(cfg, s, key, v);
        Self {
            per_try_ms: file(d.per_try_ms, "timeouts.per_try_ms", cfg.timeouts.per_try_ms),
            overall_ms: file(d.overall_ms, "timeouts.overall_ms", cfg.timeouts.overall_ms),
            max_retries: file32(
                d.max_retries,
                "retries.max_retries",
                cfg.retries.max_retries,
            ),
            budget_percent: file32(
                d.budget_percent,
                "retries.budget_percent",
                cfg.retries.budget_percent,
            ),
            min_retries_per_second: file32(
                d.min_retries_per_second,
                "retries.min_retries_per_second",
                cfg.retries.min_retries_per_second,
            ),
            health_interval_ms: file(
                d.health_interval_ms,
                "health.interval_ms",
                cfg.health.interval_ms,
            ),
            health_timeout_ms: file(
                d.health_timeout_ms,
                "health.timeout_ms",
                cfg.health.timeout_ms,
            ),
            healthy_threshold: file32(
                d.healthy_threshold,
                "health.healthy_threshold",
                cfg.health.healthy_threshold,
            ),
            unhealthy_threshold: file32(
                d.unhealthy_threshold,
                "health.unhealthy_threshold",
                cfg.health.unhealthy_threshold,
            ),
            consecutive_failures: file32(
                d.consecutive_failures,
                "outlier.consecutive_failures",
                cfg.outlier.consecutive_failures,
            ),
            base_ejection_ms: file(
                d.base_ejection_ms,
                "outlier.base_ejection_ms",
                cfg.outlier.base_ejection_ms,
            ),
            max_ejection_percent: file32(
                d.max_ejection_percent,
                "outlier.max_ejection_percent",
                cfg.outlier.max_ejection_percent,
            ),
            failback_ramp_ms: file(
                d.failback_ramp_ms,
                "routing.failback_ramp_ms",
                cfg.routing.failback_ramp_ms,
            ),
            authz_allow: fileb(
                d.authz_allow,
                "authz.default",
                cfg.authz.default == AuthzDefault::Allow,
            ),
            access_log: fileb(
                d.access_log,
                "telemetry.access_log",
                cfg.telemetry.access_log,
            ),
            sample_per_million: file32(
                d.sample_per_million,
                "telemetry.sample_per_million",
                cfg.telemetry.sample_per_million,
            ),
        }
    }

    /// This layer with the mesh's document, then the cluster's overrides, laid over it.
    pub fn with_store(&self, mesh: &MeshConfig, cluster: Option<&MeshConfig>) -> Self {
        let mut s = self.clone().with(mesh, Source::Mesh);
        if let Some(c) = cluster {
            s = s.with(c, Source::Cluster);
        }
        s
    }

    fn with(self, c: &MeshConfig, src: Source) -> Self {
        let allow = c.authz.default.map(|d| d == DefaultAction::Allow);
        Self {
            per_try_ms: self.per_try_ms.over(c.timeouts.per_try_ms, src),
            overall_ms: self.overall_ms.over(c.timeouts.overall_ms, src),
            max_retries: self.max_retries.over(c.retries.max_retries, src),
            budget_percent: self.budget_percent.over(c.retries.budget_percent, src),
            min_retries_per_second: self
                .min_retries_per_second
                .over(c.retries.min_retries_per_second, src),
            health_interval_ms: self.health_interval_ms.over(c.health.interval_ms, src),
            health_timeout_ms: self.health_timeout_ms.over(c.health.timeout_ms, src),
            healthy_threshold: self.healthy_threshold.over(c.health.healthy_threshold, src),
            unhealthy_threshold: self
                .unhealthy_threshold
                .over(c.health.unhealthy_threshold, src),
            consecutive_failures: self
                .consecutive_failures
                .over(c.outlier.consecutive_failures, src),
            base_ejection_ms: self.base_ejection_ms.over(c.outlier.base_ejection_ms, src),
            max_ejection_percent: self
                .max_ejection_percent
                .over(c.outlier.max_ejection_percent, src),
            failback_ramp_ms: self.failback_ramp_ms.over(c.routing.failback_ramp_ms, src),
            authz_allow: self.authz_allow.over(allow, src),
            access_log: self.access_log.over(c.telemetry.access_log, src),
            sample_per_million: self
                .sample_per_million
                .over(c.telemetry.sample_per_million, src),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_comes_from_the_highest_layer_that_sets_it() {
        let mut cfg: GatewayConfig = toml::from_str(
            "[cluster]\nname = \"east\"\nregion = \"r\"\nzone = \"z\"\ntrust_domain = \"east.test\"\n\
             [federation]\nendpoints = [\"http://127.0.0.1:9\"]\n\
             [timeouts]\nper_try_ms = 700\noverall_ms = 900\n",
        )
        .unwrap();
        cfg.explicit = ["timeouts.per_try_ms", "timeouts.overall_ms"]
            .map(String::from)
            .into();
        let file = Settings::from_file(&cfg);
        assert_eq!(
            file.per_try_ms,
            Setting {
                value: 700,
                source: Source::File
            }
        );
        assert_eq!(file.max_retries.source, Source::Default);
        let mesh: MeshConfig = serde_json::from_str(
            r#"{"timeouts":{"per_try_ms":50},"retries":{"max_retries":0},"authz":{"default":"deny"}}"#,
        )
        .unwrap();
        let cluster: MeshConfig =
            serde_json::from_str(r#"{"timeouts":{"per_try_ms":60}}"#).unwrap();
        let s = file.with_store(&mesh, Some(&cluster));
        assert_eq!(
            (s.per_try_ms.value, s.per_try_ms.source),
            (60, Source::Cluster)
        );
        assert_eq!(
            (s.overall_ms.value, s.overall_ms.source),
            (900, Source::File)
        );
        assert_eq!(
            (s.max_retries.value, s.max_retries.source),
            (0, Source::Mesh)
        );
        assert!(!s.authz_allow.value);
        let dump = serde_json::to_value(&s).unwrap();
        assert_eq!(
            dump["authz.default"],
            serde_json::json!({"value": "deny", "source": "mesh"})
        );
        assert_eq!(
            dump["timeouts.per_try_ms"],
            serde_json::json!({"value": 60, "source": "cluster"})
        );
        assert_eq!(file.with_store(&MeshConfig::default(), None), file);
    }
}
