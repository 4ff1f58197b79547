use super::*;

fn policy(v: serde_json::Value) -> Result<JwtPolicy, serde_json::Error> {
    let mut base = serde_json::json!({"id": "p", "service": "shop/cart", "providers": [
        {"issuer": "https://idp.test", "jwks": {"type": "url", "url": "https://idp.test/jwks"}}
    ]});
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
fn defaults_and_refusals_name_their_field() {
    let p = policy(serde_json::json!({})).unwrap();
    validate(&p).unwrap();
    assert!(p.require);
    let pr = &p.providers[0];
    assert_eq!(
        pr.algorithms,
        vec![JwtAlgorithm::RS256, JwtAlgorithm::ES256]
    );
    assert_eq!((pr.clock_skew_s, pr.jwks.refresh_s()), (60, 300));
    use serde_json::json;
    let provider = |extra: serde_json::Value| {
        let mut p = json!({"issuer": "i", "jwks": {"type": "url", "url": "https://idp.test/jwks"}});
        if let (Some(b), Some(o)) = (p.as_object_mut(), extra.as_object()) {
            b.extend(o.clone());
        }
        json!({"providers": [p]})
    };
    assert_eq!(field_of(json!({"providers": []})), "providers");
    assert_eq!(
        field_of(provider(
            json!({"jwks": {"type": "url", "url": "http://idp.test/jwks"}})
        )),
        "providers[0].jwks.url"
    );
    assert_eq!(
        field_of(provider(
            json!({"jwks": {"type": "file", "path": "keys.json"}})
        )),
        "providers[0].jwks.path"
    );
    assert_eq!(
        field_of(provider(json!({"algorithms": []}))),
        "providers[0].algorithms"
    );
    assert_eq!(
        field_of(provider(json!({"clock_skew_s": 601}))),
        "providers[0].clock_skew_s"
    );
    assert_eq!(
        field_of(provider(
            json!({"claims_to_headers": [{"claim": "sub", "header": "x-warden-caller"}]})
        )),
        "providers[0].claims_to_headers[0].header"
    );
    assert_eq!(
        field_of(provider(
            json!({"claims_to_headers": [{"claim": "sub", "header": "Authorization"}]})
        )),
        "providers[0].claims_to_headers[0].header"
    );
    // `none` (or a shared-secret algorithm) is not an algorithm a provider can accept.
    assert!(policy(provider(json!({"algorithms": ["none"]}))).is_err());
    assert!(policy(provider(json!({"algorithms": ["HS256"]}))).is_err());
}
