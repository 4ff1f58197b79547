use super::*;

fn policy(v: serde_json::Value) -> Result<ResiliencePolicy, serde_json::Error> {
    let mut base = serde_json::json!({"id": "p", "service": "shop/cart"});
    if let (Some(b), Some(o)) = (base.as_object_mut(), v.as_object()) {
        b.extend(o.clone());
    }
    serde_json::from_value(base)
}

fn field_of(v: serde_json::Value) -> String {
    validate(&policy(v).expect("parses"))
        .expect_err("refused")
        .field
}

#[test]
fn a_full_policy_parses_with_its_defaults_and_validates() {
    let p = policy(serde_json::json!({
        "circuit_breaker": {"service": {"max_requests": 10, "max_pending_requests": 5},
                            "per_cluster": {"max_retries": 2}},
        "rate_limits": [{"requests": 100, "burst": 20},
                        {"name": "tenant", "requests": 5, "unit": "minute",
                         "key": {"type": "header", "name": "x-tenant"}, "max_buckets": 10}],
        "fault": {"abort": {"percent": 10, "http_status": 503}, "delay": {"percent": 0.5, "fixed_ms": 100}}
    }))
    .unwrap();
    validate(&p).unwrap();
    let l = &p.rate_limits[0];
    assert_eq!(l.unit, RateUnit::Second);
    assert_eq!(l.key, RateKey::Whole);
    assert_eq!(l.max_buckets, RateLimit::DEFAULT_MAX_BUCKETS);
    assert_eq!(p.rate_limits[1].capacity(), 5, "burst defaults to the rate");
}

#[test]
fn each_bad_value_is_named() {
    use serde_json::json;
    assert_eq!(field_of(json!({})), "circuit_breaker");
    assert_eq!(
        field_of(json!({"rule": "canary", "circuit_breaker": {"service": {"max_requests": 1}}})),
        "circuit_breaker"
    );
    assert_eq!(
        field_of(json!({"circuit_breaker": {"service": {"max_requests": 0}}})),
        "circuit_breaker.service.max_requests"
    );
    assert_eq!(
        field_of(
            json!({"circuit_breaker": {"per_cluster": {"max_retries": 1, "max_pending_requests": 3}}})
        ),
        "circuit_breaker.per_cluster.max_pending_requests"
    );
    assert_eq!(
        field_of(json!({"circuit_breaker": {"connections": {}}})),
        "circuit_breaker.connections"
    );
    assert_eq!(
        field_of(json!({"circuit_breaker": {"connections": {"max_connections": 0}}})),
        "circuit_breaker.connections.max_connections"
    );
    assert_eq!(
        field_of(
            json!({"circuit_breaker": {"connections": {"max_requests_per_connection": 1_000_001}}})
        ),
        "circuit_breaker.connections.max_requests_per_connection"
    );
    assert_eq!(
        field_of(json!({"rate_limits": [{"requests": 1}, {"requests": 0}]})),
        "rate_limits[1].requests"
    );
    assert_eq!(
        field_of(json!({"rate_limits": [{"requests": 1, "max_buckets": 0}]})),
        "rate_limits[0].max_buckets"
    );
    assert_eq!(
        field_of(
            json!({"rate_limits": [{"requests": 1, "key": {"type": "header", "name": "a b"}}]})
        ),
        "rate_limits[0].key.name"
    );
    assert_eq!(
        field_of(
            json!({"rate_limits": [{"name": "a", "requests": 1}, {"name": "a", "requests": 2}]})
        ),
        "rate_limits[1].name"
    );
    assert_eq!(
        field_of(json!({"rate_limits": [{"requests": 1, "source_clusters": ["Bad_Name"]}]})),
        "rate_limits[0].source_clusters[0]"
    );
    assert_eq!(
        field_of(json!({"fault": {"abort": {"percent": 101, "http_status": 503}}})),
        "fault.abort.percent"
    );
    assert_eq!(
        field_of(json!({"fault": {"abort": {"percent": 1}}})),
        "fault.abort"
    );
    assert_eq!(
        field_of(json!({"fault": {"abort": {"percent": 1, "http_status": 99}}})),
        "fault.abort.http_status"
    );
    assert_eq!(
        field_of(json!({"fault": {"delay": {"percent": 1, "fixed_ms": 60001}}})),
        "fault.delay.fixed_ms"
    );
    assert_eq!(field_of(json!({"fault": {}})), "fault");
    assert_eq!(field_of(json!({"mirror": {"percent": 50}})), "mirror");
    assert_eq!(
        field_of(json!({"mirror": {"percent": 50, "service": "nope"}})),
        "mirror.service"
    );
    assert_eq!(
        field_of(
            json!({"mirror": {"percent": 5, "subset": {"version": "v2"}, "max_in_flight": 0}})
        ),
        "mirror.max_in_flight"
    );
    validate(&policy(json!({"mirror": {"percent": 5, "service": "shop/shadow"}})).unwrap())
        .unwrap();
    assert_eq!(
        field_of(json!({"rule": "a", "outlier_detection": {}})),
        "outlier_detection"
    );
    assert_eq!(
        field_of(json!({"outlier_detection": {"interval_ms": 10}})),
        "outlier_detection.interval_ms"
    );
    assert_eq!(
        field_of(json!({"outlier_detection": {"success_rate": {"stdev_factor": 0}}})),
        "outlier_detection.success_rate.stdev_factor"
    );
    assert_eq!(
        field_of(json!({"outlier_detection": {"failure_percentage": {"threshold": 0}}})),
        "outlier_detection.failure_percentage.threshold"
    );
    assert_eq!(
        field_of(json!({"outlier_detection": {"latency": {"threshold_ms": 0}}})),
        "outlier_detection.latency.threshold_ms"
    );
}

#[test]
fn unknown_fields_are_refused() {
    assert!(policy(serde_json::json!({"circuit_breaker": {"max_requests": 1}})).is_err());
    assert!(
        policy(serde_json::json!({"rate_limits": [{"requests": 1, "per": "second"}]})).is_err()
    );
}
