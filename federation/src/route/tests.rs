use super::*;

/// A canary route as a user writes it: `x-canary: on` to v2, the rest 90/10.
fn canary() -> Route {
    serde_json::from_value(serde_json::json!({
        "id": "cart-canary",
        "service": "shop/cart",
        "rules": [
            {
                "name": "opted-in",
                "matches": [{"headers": [{"name": "x-canary", "value": "on"}]}],
                "backends": [{"subset": {"version": "v2"}}]
            },
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/api"}, "method": "GET"}],
                "filters": [{"url_rewrite": {"path_prefix": "/"}}],
                "backends": [
                    {"subset": {"version": "v1"}, "weight": 90},
                    {"subset": {"version": "v2"}, "weight": 10}
                ],
                "timeouts": {"request_ms": 2000, "per_try_ms": 500},
                "retry": {"attempts": 2, "on": ["connect-failure", "5xx"]}
            },
            {
                "matches": [{"path": {"type": "Exact", "value": "/old"}}],
                "filters": [{"request_redirect": {"path": "/new", "status_code": 301}}]
            }
        ]
    }))
    .unwrap()
}

fn field_of(r: &Route) -> String {
    validate(r).unwrap_err().field
}

#[test]
fn a_route_reads_as_json_with_its_defaults_and_survives_the_codec() {
    let r = canary();
    validate(&r).unwrap();
    assert_eq!(r.rules[0].matches[0].headers[0].kind, ValueMatchKind::Exact);
    assert_eq!(r.rules[0].backends[0].weight, 1);
    let retry = r.rules[1].retry.as_ref().unwrap();
    assert_eq!((retry.backoff_base_ms, retry.backoff_max_ms), (25, 250));
    assert!(r.rules[2].backends.is_empty());
    let bytes = warden_raft_store::codec::encode(&r).unwrap();
    let back: Route = warden_raft_store::codec::decode(&bytes).unwrap();
    assert_eq!(back, r);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["rules"][1]["matches"][0]["path"]["type"], "PathPrefix");
    assert_eq!(json["rules"][1]["retry"]["on"][1], "5xx");
}

#[test]
fn each_mistake_is_named_by_its_field() {
    let mut r = canary();
    r.rules[0].matches[0].headers[0].kind = ValueMatchKind::RegularExpression;
    r.rules[0].matches[0].headers[0].value = "(unclosed".into();
    assert_eq!(field_of(&r), "rules[0].matches[0].headers[0].value");
    // A pattern may not escape the anchoring around it.
    r.rules[0].matches[0].headers[0].value = "a)|(b".into();
    assert_eq!(field_of(&r), "rules[0].matches[0].headers[0].value");
    r.rules[0].matches[0].headers[0].value = "x".repeat(MAX_PATTERN_BYTES + 1);
    assert_eq!(field_of(&r), "rules[0].matches[0].headers[0].value");
    // An expression whose compiled form is too large.
    r.rules[0].matches[0].headers[0].value = "(?:a{100}){100}".into();
    assert_eq!(field_of(&r), "rules[0].matches[0].headers[0].value");

    let mut r = canary();
    r.rules[1].backends.iter_mut().for_each(|b| b.weight = 0);
    assert_eq!(field_of(&r), "rules[1].backends");
    let mut r = canary();
    r.rules[2].backends = canary().rules[0].backends.clone();
    assert_eq!(field_of(&r), "rules[2].backends");
    let mut r = canary();
    r.rules[1].matches[0].path.as_mut().unwrap().kind = PathMatchKind::Exact;
    assert_eq!(field_of(&r), "rules[1].filters[0].path_prefix");
    let mut r = canary();
    r.rules[1].timeouts.as_mut().unwrap().per_try_ms = Some(5000);
    assert_eq!(field_of(&r), "rules[1].timeouts.per_try_ms");
    let mut r = canary();
    r.rules[1].retry.as_mut().unwrap().attempts = 0;
    assert_eq!(field_of(&r), "rules[1].retry.attempts");
    let mut r = canary();
    r.rules[1].matches[0].method = Some("get".into());
    assert_eq!(field_of(&r), "rules[1].matches[0].method");
    let mut r = canary();
    r.rules[1].backends[0]
        .subset
        .insert("version".into(), "v 1".into());
    assert_eq!(field_of(&r), "rules[1].backends[0].subset.version");
    let mut r = canary();
    r.rules[1].name = Some("opted-in".into());
    assert_eq!(field_of(&r), "rules[1].name");
    let mut r = canary();
    r.service = "cart".into();
    assert_eq!(field_of(&r), "service");
}

#[test]
fn a_route_cannot_speak_for_the_gateway_or_change_framing() {
    for name in [
        "x-warden-caller",
        "X-Warden-Service",
        "host",
        "transfer-encoding",
        "bad name",
    ] {
        let mut r = canary();
        r.rules[0].filters = vec![RouteFilter::RequestHeaderModifier(HeaderModifier {
            set: vec![HeaderPair {
                name: name.into(),
                value: "x".into(),
            }],
            ..Default::default()
        })];
        assert_eq!(field_of(&r), "rules[0].filters[0]", "{name}");
    }
    let mut r = canary();
    r.rules[0].filters = vec![
        RouteFilter::ResponseHeaderModifier(HeaderModifier::default()),
        RouteFilter::ResponseHeaderModifier(HeaderModifier::default()),
    ];
    assert_eq!(field_of(&r), "rules[0].filters[1]");
}

#[test]
fn patterns_match_the_whole_subject() {
    let re = compile_pattern("f", "/v[0-9]+").unwrap();
    assert!(re.is_match("/v12"));
    assert!(!re.is_match("/v12/x"));
    assert!(!re.is_match("x/v12"));
    let alt = compile_pattern("f", "a|b").unwrap();
    assert!(alt.is_match("a") && alt.is_match("b") && !alt.is_match("ab"));
}
