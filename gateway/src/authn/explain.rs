//! What `/explain` says about the JWT policies that would check a request: the service's and
//! the matched rule's, each provider's issuer and whether its key set is loaded.

use serde_json::{Value, json};

use super::{KeySets, ServiceJwt};

pub fn explain(policies: &ServiceJwt, rule: Option<&str>, keys: &KeySets) -> Value {
    let ruled = rule.and_then(|r| policies.rules.get(r));
    let checks: Vec<Value> = policies
        .whole
        .iter()
        .chain(ruled)
        .map(|p| {
            let providers: Vec<Value> = p
                .providers
                .iter()
                .map(|pr| {
                    json!({"issuer": pr.issuer, "jwks": pr.jwks,
                        "keys_loaded": keys.get(&pr.jwks).map(|s| s.keys.len())})
                })
                .collect();
            json!({"policy": p.source.id, "rule": p.source.rule, "require": p.source.require,
                "providers": providers})
        })
        .collect();
    json!({"policies": checks})
}
