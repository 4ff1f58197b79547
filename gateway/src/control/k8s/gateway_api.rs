//! Kubernetes Gateway API routes (GAMMA: `HTTPRoute` / `GRPCRoute` whose `parentRef` is a
//! Service) turned into Warden routes. Pure: the typed subset of the objects Warden reads, the
//! translation, and the route id a cluster owns for each object. What cannot be expressed is
//! refused with the field that says so, for the object's `Accepted` condition — never guessed.
//!
//! Ids: `k8s-<cluster>-<12 hex>`, the hex from a SHA-256 of `<kind>/<namespace>/<name>`: the
//! cluster's credential may write exactly the ids of this shape (the federation's scope rule),
//! so a cluster never overwrites a route another cluster or the REST API made.

use std::collections::BTreeMap;

use serde::Deserialize;
use warden_federation::route::{
    GrpcMatch, HeaderModifier, HeaderPair, PathMatch, PathMatchKind, RequestRedirect, RetryOn,
    RouteBackend, RouteFilter, RouteMatch, RouteRetry, RouteRule, RouteTimeouts, UrlRewrite,
    ValueMatch, ValueMatchKind,
};
use warden_federation::trust::digest::sha256_hex;
use warden_federation::wire::RouteBody;

/// `HTTPRoute` or `GRPCRoute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Http,
    Grpc,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Http => "HTTPRoute",
            Kind::Grpc => "GRPCRoute",
        }
    }
}

/// Why an object is not (fully) applied: the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    pub field: String,
    pub message: String,
}

fn unsupported(field: impl Into<String>, message: impl Into<String>) -> Unsupported {
    Unsupported {
        field: field.into(),
        message: message.into(),
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentRef {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Spec {
    pub parent_refs: Vec<ParentRef>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Rule {
    pub name: Option<String>,
    pub matches: Vec<Match>,
    pub filters: Vec<Filter>,
    pub backend_refs: Vec<BackendRef>,
    pub timeouts: Option<Timeouts>,
    pub retry: Option<Retry>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Match {
    pub path: Option<KPath>,
    pub headers: Vec<KValue>,
    pub query_params: Vec<KValue>,
    pub method: Option<KMethod>,
}

/// An HTTPRoute match's method (a name), or a GRPCRoute match's (service and method).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum KMethod {
    Name(String),
    Grpc(KGrpcMethod),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct KGrpcMethod {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub service: Option<String>,
    pub method: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KPath {
    #[serde(rename = "type", default = "prefix")]
    pub kind: String,
    #[serde(default = "slash")]
    pub value: String,
}

fn prefix() -> String {
    "PathPrefix".into()
}
fn slash() -> String {
    "/".into()
}
fn exact() -> String {
    "Exact".into()
}

#[derive(Debug, Clone, Deserialize)]
pub struct KValue {
    #[serde(rename = "type", default = "exact")]
    pub kind: String,
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub request_header_modifier: Option<KHeaderModifier>,
    #[serde(default)]
    pub response_header_modifier: Option<KHeaderModifier>,
    #[serde(default)]
    pub url_rewrite: Option<KUrlRewrite>,
    #[serde(default)]
    pub request_redirect: Option<KRedirect>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct KHeaderModifier {
    pub set: Vec<KPair>,
    pub add: Vec<KPair>,
    pub remove: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KPair {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KUrlRewrite {
    pub hostname: Option<String>,
    pub path: Option<KPathModifier>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KPathModifier {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub replace_full_path: Option<String>,
    #[serde(default)]
    pub replace_prefix_match: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KRedirect {
    pub scheme: Option<String>,
    pub hostname: Option<String>,
    pub port: Option<u16>,
    pub path: Option<KPathModifier>,
    pub status_code: Option<u16>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct BackendRef {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub weight: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Timeouts {
    pub request: Option<String>,
    pub backend_request: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Retry {
    pub codes: Vec<u16>,
    pub attempts: Option<u32>,
    pub backoff: Option<String>,
}

/// The Service an object is attached to: its first `parentRef` of kind Service (core group).
pub fn parent_service(spec: &Spec, ns: &str) -> Result<(String, String), Unsupported> {
    spec.parent_refs
        .iter()
        .find(|p| {
            p.kind.as_deref() == Some("Service")
                && p.group
                    .as_deref()
                    .is_none_or(|g| g.is_empty() || g == "core")
        })
        .map(|p| {
            (
                p.namespace.clone().unwrap_or_else(|| ns.to_string()),
                p.name.clone(),
            )
        })
        .ok_or_else(|| {
            unsupported(
                "spec.parentRefs",
                "no parentRef of kind Service: only service routes (GAMMA) are served here",
            )
        })
}

/// The id cluster `me` writes the route of object `kind` `ns`/`name` under.
pub fn route_id(me: &str, kind: Kind, ns: &str, name: &str) -> String {
    let h = sha256_hex(format!("{}/{ns}/{name}", kind.name()).as_bytes());
    format!("k8s-{me}-{}", &h[..12])
}

/// A Gateway API duration (`1h`, `30s`, `500ms`, `1m30s`) in milliseconds.
pub fn duration_ms(field: &str, d: &str) -> Result<u64, Unsupported> {
    let bad = || {
        unsupported(
            field,
            format!("{d:?} is not a Gateway API duration (e.g. 10s, 500ms)"),
        )
    };
    let mut total = 0u64;
    let mut rest = d;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (1, 2)
        } else if rest.starts_with('h') {
            (3_600_000, 1)
        } else if rest.starts_with('m') {
            (60_000, 1)
        } else if rest.starts_with('s') {
            (1_000, 1)
        } else {
            return Err(bad());
        };
        rest = &rest[len..];
        total = total.saturating_add(n.saturating_mul(unit));
    }
    Ok(total)
}

fn pairs(v: &[KPair]) -> Vec<HeaderPair> {
    v.iter()
        .map(|p| HeaderPair {
            name: p.name.clone(),
            value: p.value.clone(),
        })
        .collect()
}

fn modifier(m: &KHeaderModifier) -> HeaderModifier {
    HeaderModifier {
        set: pairs(&m.set),
        add: pairs(&m.add),
        remove: m.remove.clone(),
    }
}

fn value_kind(field: &str, k: &str) -> Result<ValueMatchKind, Unsupported> {
    match k {
        "Exact" => Ok(ValueMatchKind::Exact),
        "RegularExpression" => Ok(ValueMatchKind::RegularExpression),
        other => Err(unsupported(
            field,
            format!("match type {other:?} is not supported"),
        )),
    }
}

fn values(field: &str, v: &[KValue]) -> Result<Vec<ValueMatch>, Unsupported> {
    v.iter()
        .enumerate()
        .map(|(i, h)| {
            Ok(ValueMatch {
                kind: value_kind(&format!("{field}[{i}].type"), &h.kind)?,
                name: h.name.clone(),
                value: h.value.clone(),
            })
        })
        .collect()
}

fn one_match(kind: Kind, f: &str, m: &Match) -> Result<RouteMatch, Unsupported> {
    let path = match &m.path {
        None => None,
        Some(p) => Some(PathMatch {
            kind: match p.kind.as_str() {
                "Exact" => PathMatchKind::Exact,
                "PathPrefix" => PathMatchKind::PathPrefix,
                "RegularExpression" => PathMatchKind::RegularExpression,
                other => {
                    return Err(unsupported(
                        format!("{f}.path.type"),
                        format!("path type {other:?} is not supported"),
                    ));
                }
            },
            value: p.value.clone(),
        }),
    };
    let (method, grpc) = match (kind, &m.method) {
        (_, None) => (None, None),
        (Kind::Http, Some(KMethod::Name(v))) => (Some(v.clone()), None),
        (Kind::Grpc, Some(KMethod::Grpc(g))) => {
            let t = g.kind.as_deref().unwrap_or("Exact");
            if t != "Exact" {
                return Err(unsupported(
                    format!("{f}.method.type"),
                    format!("gRPC method match type {t:?} is not supported (Exact only)"),
                ));
            }
            let g = GrpcMatch {
                service: g.service.clone(),
                method: g.method.clone(),
            };
            (None, Some(g))
        }
        (Kind::Http, Some(_)) => {
            return Err(unsupported(
                format!("{f}.method"),
                "must be an HTTP method name",
            ));
        }
        (Kind::Grpc, Some(_)) => {
            return Err(unsupported(
                format!("{f}.method"),
                "must be {service, method}",
            ));
        }
    };
    Ok(RouteMatch {
        path,
        method,
        headers: values(&format!("{f}.headers"), &m.headers)?,
        query_params: values(&format!("{f}.queryParams"), &m.query_params)?,
        grpc,
    })
}

fn filter(f: &str, x: &Filter) -> Result<RouteFilter, Unsupported> {
    let missing = || unsupported(f, format!("filter {:?} has no settings", x.kind));
    match x.kind.as_str() {
        "RequestHeaderModifier" => Ok(RouteFilter::RequestHeaderModifier(modifier(
            x.request_header_modifier.as_ref().ok_or_else(missing)?,
        ))),
        "ResponseHeaderModifier" => Ok(RouteFilter::ResponseHeaderModifier(modifier(
            x.response_header_modifier.as_ref().ok_or_else(missing)?,
        ))),
        "URLRewrite" => {
            let r = x.url_rewrite.as_ref().ok_or_else(missing)?;
            if r.hostname.is_some() {
                return Err(unsupported(
                    format!("{f}.urlRewrite.hostname"),
                    "rewriting the hostname is not supported",
                ));
            }
            let p = r.path.as_ref().ok_or_else(|| {
                unsupported(
                    format!("{f}.urlRewrite.path"),
                    "only path rewrites are supported",
                )
            })?;
            match (p.kind.as_str(), &p.replace_prefix_match) {
                ("ReplacePrefixMatch", Some(v)) => Ok(RouteFilter::UrlRewrite(UrlRewrite {
                    path_prefix: v.clone(),
                })),
                _ => Err(unsupported(
                    format!("{f}.urlRewrite.path.type"),
                    "only ReplacePrefixMatch is supported",
                )),
            }
        }
        "RequestRedirect" => {
            let r = x.request_redirect.as_ref().ok_or_else(missing)?;
            let path = match &r.path {
                None => None,
                Some(p) => match (p.kind.as_str(), &p.replace_full_path) {
                    ("ReplaceFullPath", Some(v)) => Some(v.clone()),
                    _ => {
                        return Err(unsupported(
                            format!("{f}.requestRedirect.path.type"),
                            "only ReplaceFullPath is supported in a redirect",
                        ));
                    }
                },
            };
            Ok(RouteFilter::RequestRedirect(RequestRedirect {
                scheme: r.scheme.clone(),
                hostname: r.hostname.clone(),
                port: r.port,
                path,
                status_code: r.status_code.unwrap_or(302),
            }))
        }
        other => Err(unsupported(
            format!("{f}.type"),
            format!("filter {other:?} is not supported"),
        )),
    }
}

fn backend(f: &str, ns: &str, b: &BackendRef) -> Result<RouteBackend, Unsupported> {
    let core = b
        .group
        .as_deref()
        .is_none_or(|g| g.is_empty() || g == "core");
    if !core || b.kind.as_deref().is_some_and(|k| k != "Service") {
        return Err(unsupported(
            format!("{f}.kind"),
            "only Service backends are supported",
        ));
    }
    let ns = b.namespace.clone().unwrap_or_else(|| ns.to_string());
    Ok(RouteBackend {
        service: Some(format!("{ns}/{}", b.name)),
        subset: BTreeMap::new(),
        weight: b.weight.unwrap_or(1),
    })
}

fn retry(f: &str, r: &Retry) -> Result<RouteRetry, Unsupported> {
    // Gateway API names status codes; Warden's conditions are classes. 5xx codes map to the
    // class that holds all of them: 502/503/504 only → gateway-error, any other 5xx → 5xx.
    if let Some(c) = r.codes.iter().find(|c| !(500..=599).contains(*c)) {
        return Err(unsupported(
            format!("{f}.codes"),
            format!("retrying on {c} is not supported (5xx codes only)"),
        ));
    }
    let gateway_only = !r.codes.is_empty() && r.codes.iter().all(|c| matches!(c, 502..=504));
    let mut on = vec![RetryOn::ConnectFailure];
    on.push(if gateway_only {
        RetryOn::GatewayError
    } else {
        RetryOn::Status5xx
    });
    let base = match &r.backoff {
        Some(b) => duration_ms(&format!("{f}.backoff"), b)?,
        None => 25,
    };
    Ok(RouteRetry {
        attempts: r.attempts.unwrap_or(1),
        on,
        backoff_base_ms: base,
        backoff_max_ms: base.saturating_mul(10).clamp(base, 10_000),
    })
}

/// The Warden route for one object's spec (its Service parent resolved by the caller).
pub fn translate(
    kind: Kind,
    ns: &str,
    service: &(String, String),
    spec: &Spec,
) -> Result<RouteBody, Unsupported> {
    let mut rules = Vec::new();
    for (i, r) in spec.rules.iter().enumerate() {
        let f = format!("spec.rules[{i}]");
        let matches = r
            .matches
            .iter()
            .enumerate()
            .map(|(j, m)| one_match(kind, &format!("{f}.matches[{j}]"), m))
            .collect::<Result<Vec<_>, _>>()?;
        let filters = r
            .filters
            .iter()
            .enumerate()
            .map(|(j, x)| filter(&format!("{f}.filters[{j}]"), x))
            .collect::<Result<Vec<_>, _>>()?;
        let backends = r
            .backend_refs
            .iter()
            .enumerate()
            .map(|(j, b)| backend(&format!("{f}.backendRefs[{j}]"), ns, b))
            .collect::<Result<Vec<_>, _>>()?;
        let timeouts = match &r.timeouts {
            None => None,
            Some(t) => Some(RouteTimeouts {
                request_ms: t
                    .request
                    .as_deref()
                    .map(|d| duration_ms(&format!("{f}.timeouts.request"), d))
                    .transpose()?,
                per_try_ms: t
                    .backend_request
                    .as_deref()
                    .map(|d| duration_ms(&format!("{f}.timeouts.backendRequest"), d))
                    .transpose()?,
            }),
        };
        rules.push(RouteRule {
            name: r.name.clone(),
            matches,
            filters,
            backends,
            timeouts,
            retry: r
                .retry
                .as_ref()
                .map(|x| retry(&format!("{f}.retry"), x))
                .transpose()?,
        });
    }
    if rules.is_empty() {
        // An empty rule list sends everything to the parent Service (Gateway API default).
        rules.push(RouteRule {
            name: None,
            matches: Vec::new(),
            filters: Vec::new(),
            backends: vec![RouteBackend {
                service: None,
                subset: BTreeMap::new(),
                weight: 1,
            }],
            timeouts: None,
            retry: None,
        });
    }
    Ok(RouteBody {
        id: None,
        service: format!("{}/{}", service.0, service.1),
        rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> Spec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn an_httproute_becomes_a_route_of_its_parent_service() {
        let s = spec(json!({
            "parentRefs": [{"group": "", "kind": "Service", "name": "cart"}],
            "rules": [
                {"matches": [{"path": {"type": "PathPrefix", "value": "/v2"},
                              "headers": [{"name": "x-canary", "value": "on"}]}],
                 "filters": [{"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}}],
                 "backendRefs": [{"name": "cart-v2", "port": 80, "weight": 10}],
                 "timeouts": {"request": "2s", "backendRequest": "500ms"},
                 "retry": {"codes": [503], "attempts": 2, "backoff": "100ms"}},
                {"backendRefs": [{"name": "cart"}]}
            ]
        }));
        let parent = parent_service(&s, "shop").unwrap();
        assert_eq!(parent, ("shop".to_string(), "cart".to_string()));
        let r = translate(Kind::Http, "shop", &parent, &s).unwrap();
        assert_eq!(r.service, "shop/cart");
        let first = &r.rules[0];
        assert_eq!(first.backends[0].service.as_deref(), Some("shop/cart-v2"));
        assert_eq!(first.backends[0].weight, 10);
        assert_eq!(first.matches[0].headers[0].kind, ValueMatchKind::Exact);
        let t = first.timeouts.as_ref().unwrap();
        assert_eq!((t.request_ms, t.per_try_ms), (Some(2000), Some(500)));
        let retry = first.retry.as_ref().unwrap();
        assert_eq!(
            retry.on,
            vec![RetryOn::ConnectFailure, RetryOn::GatewayError]
        );
        assert_eq!(retry.backoff_base_ms, 100);
        assert!(matches!(&first.filters[0], RouteFilter::UrlRewrite(u) if u.path_prefix == "/"));
        // The Warden route it makes passes Warden's own validation.
        let route = warden_federation::route::Route {
            id: route_id("east", Kind::Http, "shop", "cart"),
            service: r.service.clone(),
            rules: r.rules.clone(),
            updated_at: 0,
        };
        warden_federation::route::validate(&route).unwrap();
    }

    #[test]
    fn a_grpcroute_matches_service_and_method() {
        let s = spec(json!({
            "parentRefs": [{"kind": "Service", "name": "ledger", "namespace": "bank"}],
            "rules": [{"matches": [{"method": {"service": "bank.Ledger", "method": "Post"}}],
                       "backendRefs": [{"name": "ledger-v2"}]}]
        }));
        let parent = parent_service(&s, "other").unwrap();
        assert_eq!(parent.0, "bank", "the parentRef's namespace");
        let r = translate(Kind::Grpc, "other", &parent, &s).unwrap();
        let g = r.rules[0].matches[0].grpc.as_ref().unwrap();
        assert_eq!(
            (g.service.as_deref(), g.method.as_deref()),
            (Some("bank.Ledger"), Some("Post"))
        );
        assert_eq!(
            r.rules[0].backends[0].service.as_deref(),
            Some("other/ledger-v2")
        );
    }

    #[test]
    fn what_cannot_be_said_is_refused_with_its_field() {
        let field = |v: serde_json::Value| {
            let s = spec(v);
            match parent_service(&s, "shop") {
                Err(e) => e.field,
                Ok(p) => translate(Kind::Http, "shop", &p, &s).unwrap_err().field,
            }
        };
        let parent = json!([{"kind": "Service", "name": "cart"}]);
        assert_eq!(
            field(json!({"parentRefs": [{"kind": "Gateway", "name": "gw"}]})),
            "spec.parentRefs"
        );
        assert_eq!(
            field(
                json!({"parentRefs": parent, "rules": [{"filters": [{"type": "RequestMirror"}]}]})
            ),
            "spec.rules[0].filters[0].type"
        );
        assert_eq!(
            field(
                json!({"parentRefs": parent, "rules": [{"backendRefs": [{"kind": "Bucket", "name": "b"}]}]})
            ),
            "spec.rules[0].backendRefs[0].kind"
        );
        assert_eq!(
            field(json!({"parentRefs": parent, "rules": [{"timeouts": {"request": "soon"}}]})),
            "spec.rules[0].timeouts.request"
        );
        assert_eq!(
            field(json!({"parentRefs": parent, "rules": [{"retry": {"codes": [404]}}]})),
            "spec.rules[0].retry.codes"
        );
    }

    #[test]
    fn durations_and_ids() {
        assert_eq!(duration_ms("f", "1m30s").unwrap(), 90_000);
        assert_eq!(duration_ms("f", "250ms").unwrap(), 250);
        assert_eq!(duration_ms("f", "1h").unwrap(), 3_600_000);
        for bad in ["", "10", "s", "1d", "1.5s"] {
            assert!(duration_ms("f", bad).is_err(), "{bad}");
        }
        let a = route_id("east", Kind::Http, "shop", "cart");
        assert!(a.starts_with("k8s-east-") && a.len() == "k8s-east-".len() + 12);
        assert_ne!(a, route_id("east", Kind::Grpc, "shop", "cart"));
        assert_ne!(a, route_id("west", Kind::Http, "shop", "cart"));
    }
}
