//! The checks a resilience policy passes before it is proposed: every number within a stated
//! range, every list bounded, names HTTP can carry, and combinations that mean something (a
//! breaker is service-wide; an abort names one status). Each error names its field.

use std::collections::BTreeSet;

use super::types::{
    CircuitBreaker, FaultAbort, FaultInjection, OutlierDetection, RateKey, RateLimit,
    ResiliencePolicy, Thresholds,
};
use crate::model::{FieldError, validate_dns_label, validate_service_ref};

/// Longest injected delay.
pub const MAX_DELAY_MS: u64 = 60_000;
const MAX_RATE_LIMITS: usize = 8;
const MAX_SOURCES: usize = 64;
const MAX_BUCKETS: u32 = 100_000;
const MAX_TOKENS: u64 = 1_000_000_000;

fn err(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError::new(field, message)
}

use crate::model::validate_range as range;

/// Checks a policy; the error names the field at fault, e.g. `rate_limits[1].burst`.
pub fn validate(p: &ResiliencePolicy) -> Result<(), FieldError> {
    validate_dns_label("id", &p.id)?;
    validate_service_ref("service", &p.service)?;
    if let Some(rule) = &p.rule {
        validate_dns_label("rule", rule)?;
    }
    if p.circuit_breaker.is_none()
        && p.outlier_detection.is_none()
        && p.rate_limits.is_empty()
        && p.fault.is_none()
        && p.mirror.is_none()
    {
        return Err(err(
            "circuit_breaker",
            "a policy sets at least one of circuit_breaker, outlier_detection, rate_limits, fault, mirror",
        ));
    }
    if let Some(m) = &p.mirror {
        percent("mirror.percent", m.percent)?;
        if let Some(s) = &m.service {
            validate_service_ref("mirror.service", s)?;
        }
        crate::model::validate_labels("mirror.subset", &m.subset, 16)?;
        for (k, v) in &m.subset {
            crate::model::validate_label_value(&format!("mirror.subset.{k}"), v)?;
        }
        range("mirror.max_in_flight", Some(m.max_in_flight), 1, 10_000)?;
        range(
            "mirror.max_body_bytes",
            Some(m.max_body_bytes),
            0,
            1_048_576,
        )?;
        if m.service.as_ref().is_none_or(|s| *s == p.service) && m.subset.is_empty() {
            return Err(err(
                "mirror",
                "copies to the service itself: name another service or a subset",
            ));
        }
    }
    if let Some(o) = &p.outlier_detection {
        if p.rule.is_some() {
            return Err(err(
                "outlier_detection",
                "outlier detection judges a service's endpoints: set it on a policy without `rule`",
            ));
        }
        outlier(o)?;
    }
    if let Some(cb) = &p.circuit_breaker {
        if p.rule.is_some() {
            return Err(err(
                "circuit_breaker",
                "a circuit breaker bounds a whole service: set it on a policy without `rule`",
            ));
        }
        breaker(cb)?;
    }
    if p.rate_limits.len() > MAX_RATE_LIMITS {
        return Err(err(
            "rate_limits",
            format!("at most {MAX_RATE_LIMITS} limits"),
        ));
    }
    let mut names = BTreeSet::new();
    for (i, l) in p.rate_limits.iter().enumerate() {
        let f = format!("rate_limits[{i}]");
        rate_limit(&f, l)?;
        if let Some(n) = &l.name
            && !names.insert(n)
        {
            return Err(err(format!("{f}.name"), format!("{n:?} is used twice")));
        }
    }
    if let Some(fault) = &p.fault {
        fault_injection(fault)?;
    }
    Ok(())
}

fn breaker(cb: &CircuitBreaker) -> Result<(), FieldError> {
    if cb.service.is_none() && cb.per_cluster.is_none() && cb.connections.is_none() {
        return Err(err(
            "circuit_breaker",
            "set `service`, `per_cluster`, `connections` or several",
        ));
    }
    if let Some(c) = &cb.connections {
        let f = "circuit_breaker.connections";
        if c.max_connections.is_none() && c.max_requests_per_connection.is_none() {
            return Err(err(
                f,
                "set max_connections, max_requests_per_connection or both",
            ));
        }
        range(
            &format!("{f}.max_connections"),
            c.max_connections,
            1,
            100_000,
        )?;
        range(
            &format!("{f}.max_requests_per_connection"),
            c.max_requests_per_connection,
            1,
            1_000_000,
        )?;
    }
    for (name, t) in [("service", &cb.service), ("per_cluster", &cb.per_cluster)] {
        if let Some(t) = t {
            thresholds(&format!("circuit_breaker.{name}"), t)?;
        }
    }
    if let Some(t) = &cb.per_cluster
        && t.max_pending_requests.is_some_and(|p| p > 0)
    {
        return Err(err(
            "circuit_breaker.per_cluster.max_pending_requests",
            "a full cluster is passed over for the next one: nothing waits for it",
        ));
    }
    Ok(())
}

fn thresholds(f: &str, t: &Thresholds) -> Result<(), FieldError> {
    if t.max_requests.is_none() && t.max_retries.is_none() {
        return Err(err(f, "set max_requests, max_retries or both"));
    }
    range(&format!("{f}.max_requests"), t.max_requests, 1, 1_000_000)?;
    range(
        &format!("{f}.max_pending_requests"),
        t.max_pending_requests,
        0,
        100_000,
    )?;
    if t.max_pending_requests.is_some_and(|p| p > 0) && t.max_requests.is_none() {
        return Err(err(
            format!("{f}.max_pending_requests"),
            "requests wait only for max_requests: set it too",
        ));
    }
    range(&format!("{f}.max_retries"), t.max_retries, 0, 100_000)
}

fn outlier(o: &OutlierDetection) -> Result<(), FieldError> {
    let f = "outlier_detection";
    range(
        &format!("{f}.consecutive_failures"),
        o.consecutive_failures,
        1,
        100_000,
    )?;
    range(
        &format!("{f}.base_ejection_ms"),
        o.base_ejection_ms,
        1,
        3_600_000,
    )?;
    range(
        &format!("{f}.max_ejection_percent"),
        o.max_ejection_percent,
        0,
        100,
    )?;
    range(
        &format!("{f}.interval_ms"),
        Some(o.interval_ms),
        1_000,
        600_000,
    )?;
    if let Some(s) = &o.success_rate {
        range(
            &format!("{f}.success_rate.min_hosts"),
            Some(s.min_hosts),
            2,
            1_000,
        )?;
        range(
            &format!("{f}.success_rate.request_volume"),
            Some(s.request_volume),
            1,
            1_000_000,
        )?;
        if !(0.1..=10.0).contains(&s.stdev_factor) {
            return Err(err(
                format!("{f}.success_rate.stdev_factor"),
                "must be 0.1-10",
            ));
        }
    }
    if let Some(p) = &o.failure_percentage {
        range(
            &format!("{f}.failure_percentage.threshold"),
            Some(p.threshold),
            1,
            100,
        )?;
        range(
            &format!("{f}.failure_percentage.min_hosts"),
            Some(p.min_hosts),
            1,
            1_000,
        )?;
        range(
            &format!("{f}.failure_percentage.request_volume"),
            Some(p.request_volume),
            1,
            1_000_000,
        )?;
    }
    if let Some(l) = &o.latency {
        range(
            &format!("{f}.latency.threshold_ms"),
            Some(l.threshold_ms),
            1,
            600_000,
        )?;
        range(
            &format!("{f}.latency.request_volume"),
            Some(l.request_volume),
            1,
            1_000_000,
        )?;
    }
    Ok(())
}

fn rate_limit(f: &str, l: &RateLimit) -> Result<(), FieldError> {
    if let Some(n) = &l.name {
        validate_dns_label(&format!("{f}.name"), n)?;
    }
    range(&format!("{f}.requests"), Some(l.requests), 1, MAX_TOKENS)?;
    range(&format!("{f}.burst"), l.burst, 1, MAX_TOKENS)?;
    range(
        &format!("{f}.max_buckets"),
        Some(l.max_buckets),
        1,
        MAX_BUCKETS,
    )?;
    if let RateKey::Header { name } = &l.key
        && (http::HeaderName::from_bytes(name.as_bytes()).is_err() || name.len() > 256)
    {
        return Err(err(format!("{f}.key.name"), "not an HTTP header name"));
    }
    sources(&format!("{f}.source_clusters"), &l.source_clusters)
}

fn sources(f: &str, clusters: &[String]) -> Result<(), FieldError> {
    if clusters.len() > MAX_SOURCES {
        return Err(err(f, format!("at most {MAX_SOURCES} clusters")));
    }
    for (i, c) in clusters.iter().enumerate() {
        validate_dns_label(&format!("{f}[{i}]"), c)?;
    }
    Ok(())
}

fn percent(f: &str, p: f64) -> Result<(), FieldError> {
    if !(0.0..=100.0).contains(&p) {
        return Err(err(f, "must be 0-100"));
    }
    Ok(())
}

fn fault_injection(fault: &FaultInjection) -> Result<(), FieldError> {
    if fault.delay.is_none() && fault.abort.is_none() && !fault.header_trigger {
        return Err(err("fault", "set delay, abort or header_trigger"));
    }
    if let Some(d) = &fault.delay {
        percent("fault.delay.percent", d.percent)?;
        range("fault.delay.fixed_ms", Some(d.fixed_ms), 1, MAX_DELAY_MS)?;
    }
    if let Some(a) = &fault.abort {
        abort(a)?;
    }
    sources("fault.source_clusters", &fault.source_clusters)
}

fn abort(a: &FaultAbort) -> Result<(), FieldError> {
    percent("fault.abort.percent", a.percent)?;
    match (a.http_status, a.grpc_status) {
        (None, None) => Err(err(
            "fault.abort",
            "name the answer: http_status, grpc_status or both",
        )),
        (h, g) => {
            range("fault.abort.http_status", h, 200, 599)?;
            range("fault.abort.grpc_status", g, 1, 16)
        }
    }
}
