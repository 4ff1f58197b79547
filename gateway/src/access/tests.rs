use super::*;

fn policy(action: &str, rules: serde_json::Value) -> CompiledAuthz {
    CompiledAuthz::compile(
        &serde_json::from_value(serde_json::json!({
            "id": format!("{action}-1"), "service": "shop/cart", "action": action, "rules": rules
        }))
        .unwrap(),
    )
}

struct Req {
    method: Method,
    path: &'static str,
    headers: HeaderMap,
    claims: Option<serde_json::Map<String, serde_json::Value>>,
    source: Option<&'static str>,
    workload: Option<String>,
    outbound: bool,
}

impl Req {
    fn new(method: Method, path: &'static str) -> Self {
        Self {
            method,
            path,
            headers: HeaderMap::new(),
            claims: None,
            source: Some("east"),
            workload: None,
            outbound: true,
        }
    }
    fn attrs(&self) -> Attributes<'_> {
        Attributes {
            method: &self.method,
            path: self.path,
            headers: &self.headers,
            source_cluster: self.source,
            spiffe_id: None,
            claims: self.claims.as_ref(),
            workload: self.workload.as_deref(),
            caller_known_here: self.outbound,
        }
    }
}

#[test]
fn a_matching_deny_wins_and_allow_policies_deny_the_rest() {
    let deny = policy(
        "deny",
        serde_json::json!([{"methods": ["DELETE"], "paths": [{"type": "PathPrefix", "value": "/admin"}]}]),
    );
    let allow = policy(
        "allow",
        serde_json::json!([{"source_clusters": ["east", "west"]}]),
    );
    let ps = [deny, allow];
    assert_eq!(
        decide(&ps, &Req::new(Method::DELETE, "/admin/users").attrs()),
        Verdict::Deny(Some("deny-1".into()))
    );
    assert_eq!(
        decide(&ps, &Req::new(Method::GET, "/admin/users").attrs()),
        Verdict::Allow
    );
    assert_eq!(
        decide(&ps, &Req::new(Method::DELETE, "/administrator").attrs()),
        Verdict::Allow,
        "whole segments"
    );
    let mut from_north = Req::new(Method::GET, "/x");
    from_north.source = Some("north");
    assert_eq!(
        decide(&ps, &from_north.attrs()),
        Verdict::Deny(None),
        "default deny: no allow matched"
    );
    assert_eq!(
        decide(&[], &from_north.attrs()),
        Verdict::Allow,
        "no policy, no opinion"
    );
}

#[test]
fn headers_and_claims_must_each_hold_and_claims_only_where_a_token_was_checked() {
    let allow = policy(
        "allow",
        serde_json::json!([{
            "headers": [{"name": "x-env", "values": ["prod"]}],
            "claims": [{"name": "groups", "values": ["admins"]}]
        }]),
    );
    let ps = [allow];
    let mut r = Req::new(Method::GET, "/x");
    r.headers.insert("x-env", "prod".parse().unwrap());
    assert_eq!(decide(&ps, &r.attrs()), Verdict::Deny(None), "no claims");
    r.claims = serde_json::from_value(serde_json::json!({"groups": ["dev", "admins"]})).ok();
    assert_eq!(decide(&ps, &r.attrs()), Verdict::Allow);
    r.headers.insert("x-env", "dev".parse().unwrap());
    assert_eq!(decide(&ps, &r.attrs()), Verdict::Deny(None));
    // East-west: a claims-only policy is the calling gateway's to apply.
    let mut ew = Req::new(Method::GET, "/x");
    ew.outbound = false;
    assert_eq!(decide(&ps, &ew.attrs()), Verdict::Allow);
}

#[test]
fn workload_rules_match_the_presented_identity_exactly_or_by_prefix_and_only_outbound() {
    let allow = policy(
        "allow",
        serde_json::json!([{"workloads": ["spiffe://east.test/ns/shop/sa/web",
            "spiffe://east.test/ns/ops/*"]}]),
    );
    let ps = [allow];
    let mut r = Req::new(Method::GET, "/carts");
    assert_eq!(
        decide(&ps, &r.attrs()),
        Verdict::Deny(None),
        "no certificate"
    );
    for (id, allowed) in [
        ("spiffe://east.test/ns/shop/sa/web", true),
        ("spiffe://east.test/ns/shop/sa/web2", false),
        ("spiffe://east.test/ns/shop/sa/batch", false),
        ("spiffe://east.test/ns/ops/sa/probe", true),
        ("spiffe://east.test/ns/ops/", false),
        ("spiffe://west.test/ns/ops/sa/probe", false),
    ] {
        r.workload = Some(id.to_string());
        let want = if allowed {
            Verdict::Allow
        } else {
            Verdict::Deny(None)
        };
        assert_eq!(decide(&ps, &r.attrs()), want, "{id}");
    }
    // On the east-west hop the workload is not known: the calling gateway decided.
    r.workload = None;
    r.outbound = false;
    assert_eq!(decide(&ps, &r.attrs()), Verdict::Allow);
}
