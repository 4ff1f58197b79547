//! What `/explain` says about the resilience policies that would act on a request: which
//! policies, their limits with the buckets each holds now, the fault, the mirror and the
//! breaker with what each has in flight.

use serde_json::{Value, json};

use super::ServicePolicies;

/// The policies acting on a request to the service whose route matched `rule`.
pub fn explain(policies: &ServicePolicies, rule: Option<&str>) -> Value {
    let acting: Vec<&str> = policies
        .acting(rule)
        .map(|p| p.source.id.as_str())
        .collect();
    let limits: Vec<Value> = policies
        .acting(rule)
        .flat_map(|p| {
            p.limits.iter().zip(&p.source.rate_limits).map(|(l, spec)| {
                json!({"policy": p.source.id, "name": l.name, "requests": l.requests,
                    "unit": spec.unit, "burst": l.burst, "key": spec.key,
                    "source_clusters": spec.source_clusters,
                    "buckets": l.buckets.len(), "max_buckets": spec.max_buckets,
                    "scope": spec.scope, "share": l.buckets.share()})
            })
        })
        .collect();
    let fault = policies.fault(rule).map(|(id, _)| {
        let spec = policies
            .acting(rule)
            .find(|p| p.source.id == id)
            .and_then(|p| p.source.fault.clone());
        json!({"policy": id, "spec": spec})
    });
    let breaker = policies.breaker().map(|(id, b)| {
        let spec = policies
            .whole
            .as_ref()
            .and_then(|p| p.source.circuit_breaker.clone())
            .unwrap_or_default();
        let max = spec
            .service
            .as_ref()
            .and_then(|t| t.max_requests)
            .unwrap_or(0);
        let in_flight = b.service.as_ref().map(|g| g.in_flight(max)).unwrap_or(0);
        let open = b.connections.as_ref().map(|c| c.open());
        json!({"policy": id, "service": spec.service, "per_cluster": spec.per_cluster,
            "connections": spec.connections, "in_flight": in_flight,
            "connections_open": open})
    });
    let mirror = policies.mirror(rule).map(|(id, m)| {
        let max = policies
            .acting(rule)
            .find(|p| p.source.id == id)
            .and_then(|p| p.source.mirror.as_ref())
            .map(|s| s.max_in_flight)
            .unwrap_or(0);
        json!({"policy": id, "service": m.service.to_string(), "subset": m.subset,
            "percent": f64::from(m.ppm) / 10_000.0, "max_body_bytes": m.max_body_bytes,
            "in_flight": max.saturating_sub(m.permits.available_permits() as u32)})
    });
    json!({"policies": acting, "rate_limits": limits, "fault": fault, "circuit_breaker": breaker,
        "mirror": mirror})
}
