//! The route part of `/explain`: for a request described in the query (`path`, `method`,
//! `header=name:value`, repeatable), the rule of the service's route that matches and the
//! share each of its backends gets — or that no rule matches.

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use serde_json::{Value, json};

use super::CompiledRoute;
use warden_federation::route::RouteBackend;

/// A request as `/explain` describes it.
#[derive(Debug)]
pub struct Described {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
}

/// Why a description could not be read; names the query parameter.
#[derive(Debug, PartialEq, Eq)]
pub struct BadQuery {
    pub param: &'static str,
    pub message: String,
}

/// Decodes `%XX` escapes and `+` (a space) in a query value.
fn unescape(v: &str) -> Option<String> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Reads `path` (default `/`), `method` (default GET) and every `header=name:value`.
pub fn describe(query: &str) -> Result<Described, BadQuery> {
    let bad = |param, message: String| BadQuery { param, message };
    let (mut method, mut path, mut headers) = (Method::GET, "/".to_string(), HeaderMap::new());
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(v) = unescape(v) else {
            return Err(bad("query", format!("{pair:?} is not a valid escape")));
        };
        match k {
            "path" => path = v,
            "method" => {
                method = Method::from_bytes(v.as_bytes())
                    .map_err(|_| bad("method", format!("{v:?} is not a method")))?;
            }
            "header" => {
                let (name, value) = v
                    .split_once(':')
                    .ok_or_else(|| bad("header", format!("{v:?} is not name:value")))?;
                let name = HeaderName::from_bytes(name.trim().as_bytes())
                    .map_err(|_| bad("header", format!("{name:?} is not a header name")))?;
                let value = HeaderValue::from_str(value.trim())
                    .map_err(|_| bad("header", format!("{value:?} is not a header value")))?;
                headers.append(name, value);
            }
            _ => {}
        }
    }
    let uri: Uri = path
        .parse()
        .map_err(|_| bad("path", format!("{path:?} is not a request path")))?;
    Ok(Described {
        method,
        uri,
        headers,
    })
}

/// The matching rule and its backends' shares, as JSON; `place` says where each backend's
/// traffic would go (the admin listener plans it against the routing tables).
pub fn explain(
    route: &CompiledRoute,
    req: &Described,
    place: &dyn Fn(&RouteBackend) -> Value,
) -> Value {
    let Some((index, rule)) = route.select(&req.method, &req.uri, &req.headers) else {
        return json!({"id": route.id, "matched": false,
            "reason": "no rule of the route matches"});
    };
    let total: u32 = rule.rule.backends.iter().map(|b| b.weight).sum();
    let backends: Vec<Value> = rule
        .rule
        .backends
        .iter()
        .map(|b| {
            let share = if total == 0 {
                0.0
            } else {
                f64::from(b.weight) / f64::from(total)
            };
            json!({"service": b.service, "subset": b.subset, "weight": b.weight, "share": share,
                "placement": place(b)})
        })
        .collect();
    json!({"id": route.id, "matched": true, "rule": rule.name, "index": index,
        "backends": backends, "filters": rule.rule.filters,
        "timeouts": rule.rule.timeouts, "retry": rule.rule.retry})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_described_request_names_its_rule_and_shares() {
        let route: warden_federation::route::Route = serde_json::from_value(json!({
            "id": "cart", "service": "shop/cart",
            "rules": [
                {"name": "opted-in", "matches": [{"headers": [{"name": "x-canary", "value": "on"}]}],
                 "backends": [{"subset": {"version": "v2"}}]},
                {"name": "api", "matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                 "backends": [{"subset": {"version": "v1"}, "weight": 90},
                              {"subset": {"version": "v2"}, "weight": 10}]}
            ]
        }))
        .unwrap();
        let route = CompiledRoute::compile(&route).unwrap();
        let place = |b: &RouteBackend| json!(b.subset.get("version"));
        let v = explain(
            &route,
            &describe("path=%2Fapi%2Fx&header=x-canary:on").unwrap(),
            &place,
        );
        assert_eq!(
            (v["rule"].as_str(), v["index"].as_u64()),
            (Some("opted-in"), Some(0))
        );
        let v = explain(&route, &describe("path=/api/x").unwrap(), &place);
        assert_eq!(v["rule"], "api");
        assert_eq!(v["backends"][0]["share"], 0.9);
        assert_eq!(v["backends"][1]["placement"], "v2");
        let v = explain(&route, &describe("path=/other").unwrap(), &place);
        assert_eq!(v["matched"], false);
        assert_eq!(describe("method=G%20T").unwrap_err().param, "method");
        assert_eq!(describe("header=nocolon").unwrap_err().param, "header");
        assert_eq!(describe("path=%zz").unwrap_err().param, "query");
    }
}
