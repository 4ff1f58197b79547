use super::*;
use crate::table::RemoteTable;

fn tables_with(route: serde_json::Value) -> Tables {
    let t = Tables::default();
    let r: warden_federation::route::Route = serde_json::from_value(route).unwrap();
    let mut rt = RemoteTable::default();
    rt.routes.insert(
        ServiceKey::new("shop", "cart"),
        Arc::new(CompiledRoute::compile(&r).unwrap()),
    );
    t.remote.store(Arc::new(rt));
    t
}

fn head(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut b = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap().into_parts().0
}

fn canary() -> Tables {
    tables_with(serde_json::json!({
        "id": "cart", "service": "shop/cart",
        "rules": [
            {"matches": [{"headers": [{"name": "x-canary", "value": "on"}]}],
             "filters": [{"request_header_modifier": {"set": [{"name": "x-version", "value": "v2"}]}},
                         {"response_header_modifier": {"add": [{"name": "x-routed", "value": "canary"}]}}],
             "backends": [{"subset": {"version": "v2"}}]},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
             "filters": [{"url_rewrite": {"path_prefix": "/v1"}}],
             "backends": [{"service": "shop/api"}]},
            {"matches": [{"path": {"type": "Exact", "value": "/old"}}],
             "filters": [{"request_redirect": {"path": "/new", "status_code": 301}}]},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/"}, "method": "GET"}],
             "backends": [{"subset": {"version": "v1"}, "weight": 9},
                          {"subset": {"version": "v2"}, "weight": 1}]}
        ]
    }))
}

fn routed(d: Decision) -> Routed {
    match d {
        Decision::Routed(r) => r,
        other => panic!("not routed: {other:?}"),
    }
}

#[test]
fn the_rule_picks_service_subset_and_filters() {
    let (t, cart) = (canary(), ServiceKey::new("shop", "cart"));
    let h = head("GET", "/x", &[("host", "cart.shop"), ("x-canary", "on")]);
    let r = routed(decide(&t, Listener::Outbound, &cart, &h, 0).unwrap());
    assert_eq!(r.service(&cart), &cart);
    assert_eq!(r.subset()["version"], "v2");
    assert_eq!(r.subset_header().unwrap(), "version=v2");
    let mut h2 = h;
    r.apply_to_request(&mut h2).unwrap();
    assert_eq!(h2.headers["x-version"], "v2");
    let mut resp = HeaderMap::new();
    r.apply_to_response(&mut resp);
    assert_eq!(resp["x-routed"], "canary");

    // Another service, with the matched prefix rewritten.
    let mut h = head("POST", "/api/items?id=3", &[]);
    let r = routed(decide(&t, Listener::Outbound, &cart, &h, 0).unwrap());
    assert_eq!(r.service(&cart), &ServiceKey::new("shop", "api"));
    assert!(r.subset().is_empty() && r.subset_header().is_none());
    r.apply_to_request(&mut h).unwrap();
    assert_eq!(h.uri, "/v1/items?id=3");
    let mut h = head("POST", "/api", &[]);
    r.apply_to_request(&mut h).unwrap();
    assert_eq!(h.uri, "/v1");

    // The split by weight: 9 of 10 slices of the draw go to v1.
    let v2 = (0..10u32)
        .map(|i| ((2 * u64::from(i) + 1) * (1 << 32) / 20) as u32)
        .filter(|draw| {
            let h = head("GET", "/y", &[]);
            routed(decide(&t, Listener::Outbound, &cart, &h, *draw).unwrap()).subset()["version"]
                == "v2"
        })
        .count();
    assert_eq!(v2, 1);
}

#[test]
fn redirects_answer_and_unmatched_requests_have_no_route() {
    let (t, cart) = (canary(), ServiceKey::new("shop", "cart"));
    let h = head("GET", "/old?a=1", &[("host", "cart.shop:15001")]);
    let Decision::Respond(resp) = decide(&t, Listener::Outbound, &cart, &h, 0).unwrap() else {
        panic!("a redirect answers");
    };
    assert_eq!(resp.status(), 301);
    assert_eq!(resp.headers()["location"], "http://cart.shop:15001/new?a=1");
    let h = head("DELETE", "/y", &[]);
    let e = decide(&t, Listener::Outbound, &cart, &h, 0).unwrap_err();
    assert_eq!((e.cause(), e.status()), ("no_route", StatusCode::NOT_FOUND));
    // No route for the service, or the east-west listener: the whole service.
    let other = ServiceKey::new("shop", "other");
    assert!(matches!(
        decide(&t, Listener::Outbound, &other, &h, 0).unwrap(),
        Decision::Whole
    ));
    assert!(matches!(
        decide(&t, Listener::EastWest, &cart, &h, 0).unwrap(),
        Decision::Whole
    ));
}

#[test]
fn subsets_select_by_every_label_and_travel_as_one_header() {
    let ep = |labels: Option<&[(&str, &str)]>| LocalEndpoint {
        addr: "10.0.0.1:80".into(),
        labels: labels.map(|l| {
            Arc::new(
                l.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        }),
        available: true,
        ramp: 1.0,
        inflight: Default::default(),
    };
    let v2: Subset = [("version".to_string(), "v2".to_string())].into();
    assert!(in_subset(
        &ep(Some(&[("version", "v2"), ("tier", "a")])),
        &v2
    ));
    assert!(!in_subset(&ep(Some(&[("version", "v1")])), &v2));
    assert!(!in_subset(&ep(None), &v2));
    assert!(in_subset(&ep(None), &Subset::new()));
    let two: Subset = [
        ("tier".to_string(), "gold".to_string()),
        ("version".to_string(), "v2".to_string()),
    ]
    .into();
    let v = subset_value(&two).unwrap();
    assert_eq!(v, "tier=gold,version=v2");
    let mut h = HeaderMap::new();
    h.insert(SUBSET_HEADER, v);
    assert_eq!(subset_from(&h), Some(two));
    assert_eq!(subset_from(&HeaderMap::new()), None);
}
