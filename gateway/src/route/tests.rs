use super::*;

fn route(json: serde_json::Value) -> CompiledRoute {
    CompiledRoute::compile(&serde_json::from_value(json).unwrap()).unwrap()
}

fn canary() -> CompiledRoute {
    route(serde_json::json!({
        "id": "cart", "service": "shop/cart",
        "rules": [
            {"name": "opted-in",
             "matches": [{"headers": [{"name": "x-canary", "value": "on"}]},
                         {"query_params": [{"name": "canary", "value": "1"}]}],
             "backends": [{"subset": {"version": "v2"}}]},
            {"name": "api",
             "matches": [{"path": {"type": "PathPrefix", "value": "/api/"}, "method": "GET"}],
             "backends": [{"subset": {"version": "v1"}, "weight": 90},
                          {"subset": {"version": "v2"}, "weight": 10}]},
            {"name": "versioned",
             "matches": [{"path": {"type": "RegularExpression", "value": "/v[0-9]+/.*"}}],
             "backends": [{"service": "shop/versions"}]},
            {"name": "grpc",
             "matches": [{"grpc": {"service": "shop.Cart", "method": "Get"}}],
             "backends": [{"subset": {"version": "v2"}}]},
            {"name": "rest", "backends": [{"subset": {"version": "v1"}}]}
        ]
    }))
}

fn pick(r: &CompiledRoute, method: &str, uri: &str, headers: &[(&str, &str)]) -> String {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let uri: Uri = uri.parse().unwrap();
    r.select(&Method::from_bytes(method.as_bytes()).unwrap(), &uri, &h)
        .map(|(_, rule)| rule.name.clone())
        .unwrap_or_default()
}

#[test]
fn the_first_matching_rule_decides() {
    let r = canary();
    assert_eq!(pick(&r, "GET", "/api/x", &[("x-canary", "on")]), "opted-in");
    assert_eq!(pick(&r, "GET", "/api/x?a=b&canary=1", &[]), "opted-in");
    assert_eq!(pick(&r, "GET", "/api/x?canary=10", &[]), "api");
    assert_eq!(pick(&r, "GET", "/api/x", &[("x-canary", "off")]), "api");
    // Any of the header's values may match; names are case-insensitive.
    assert_eq!(
        pick(&r, "GET", "/", &[("X-Canary", "no"), ("x-canary", "on")]),
        "opted-in"
    );
    // Prefixes are whole segments; the method must be the one named.
    assert_eq!(pick(&r, "GET", "/api", &[]), "api");
    assert_eq!(pick(&r, "GET", "/apix", &[]), "rest");
    assert_eq!(pick(&r, "POST", "/api/x", &[]), "rest");
    // The expression matches the whole path.
    assert_eq!(pick(&r, "GET", "/v2/items", &[]), "versioned");
    assert_eq!(pick(&r, "GET", "/x/v2/items", &[]), "rest");
    // gRPC needs the content type and the exact service and method.
    let grpc = [("content-type", "application/grpc+proto")];
    assert_eq!(pick(&r, "POST", "/shop.Cart/Get", &grpc), "grpc");
    assert_eq!(pick(&r, "POST", "/shop.Cart/Put", &grpc), "rest");
    assert_eq!(pick(&r, "POST", "/shop.Cart/Get", &[]), "rest");
}

#[test]
fn no_rule_no_match() {
    let r = route(serde_json::json!({
        "id": "only-api", "service": "shop/cart",
        "rules": [{"matches": [{"path": {"type": "Exact", "value": "/api"}}],
                   "backends": [{}]}]
    }));
    assert_eq!(pick(&r, "GET", "/api", &[]), "rules[0]");
    assert_eq!(pick(&r, "GET", "/api/", &[]), "");
}

#[test]
fn backends_are_drawn_by_weight() {
    let r = canary();
    let api = &r.rules[1];
    let mut v2 = 0;
    const N: u32 = 10_000;
    for i in 0..N {
        // Draws at the middles of N equal slices of the u32 range.
        let draw = ((2 * u64::from(i) + 1) * (1 << 32) / (2 * u64::from(N))) as u32;
        let b = api.backend(draw).unwrap();
        if b.subset.get("version").map(String::as_str) == Some("v2") {
            v2 += 1;
        }
    }
    assert_eq!(v2, N / 10);
    assert!(api.backend(u32::MAX).is_some());
    assert!(api.backend(0).is_some());
}

#[test]
fn zero_weights_are_never_drawn_and_redirects_have_no_backend() {
    let r = route(serde_json::json!({
        "id": "r", "service": "shop/cart",
        "rules": [
            {"matches": [{"path": {"type": "Exact", "value": "/old"}}],
             "filters": [{"request_redirect": {"path": "/new"}}]},
            {"backends": [{"subset": {"version": "v1"}, "weight": 0},
                          {"subset": {"version": "v2"}, "weight": 3}]}
        ]
    }));
    assert!(r.rules[0].backend(7).is_none());
    for draw in [0, 1, u32::MAX / 2, u32::MAX] {
        let b = r.rules[1].backend(draw).unwrap();
        assert_eq!(b.subset["version"], "v2");
    }
}

#[test]
fn a_bad_route_is_refused_naming_the_field() {
    let bad: Route = serde_json::from_value(serde_json::json!({
        "id": "r", "service": "shop/cart",
        "rules": [{"matches": [{"path": {"type": "RegularExpression", "value": "("}}],
                   "backends": [{}]}]
    }))
    .unwrap();
    let e = CompiledRoute::compile(&bad).unwrap_err();
    assert_eq!(e.field, "rules[0].matches[0].path.value");
}
