//! Stage "match a route": a service's route, compiled once when it is applied (expressions
//! included, never per request), and the choice of the rule a request matches and of the
//! weighted subset backend it goes to. Pure: no sockets, no clock; the balancing draw is
//! passed in.

use crate::key::ServiceKey;
use http::{HeaderMap, HeaderName, Method, Uri};
use regex::Regex;
use warden_federation::model::FieldError;
use warden_federation::route::{
    GrpcMatch, PathMatchKind, Route, RouteBackend, RouteRule, ValueMatch, ValueMatchKind,
    compile_pattern,
};

/// A route ready for requests.
#[derive(Debug)]
pub struct CompiledRoute {
    pub id: String,
    pub rules: Vec<CompiledRule>,
}

/// The rule a request matched.
#[derive(Debug, Clone, Copy)]
pub struct Selected<'a> {
    pub index: usize,
    /// Which entry of the rule's `matches` held (`None`: the rule matches everything).
    pub matched: Option<usize>,
    /// The `PathPrefix` of the matching entry (without a trailing `/`), for `url_rewrite`.
    pub prefix: Option<&'a str>,
}

/// One rule: its conditions, and the route rule it came from (filters, timeouts, retry).
#[derive(Debug)]
pub struct CompiledRule {
    /// The rule's name, or `rules[i]`.
    pub name: String,
    matches: Vec<Conditions>,
    pub rule: RouteRule,
    /// Each backend's service when it names another than the route's (parsed once).
    services: Vec<Option<ServiceKey>>,
    /// Sum of the backends' weights (> 0 unless the rule redirects).
    total_weight: u32,
}

#[derive(Debug)]
struct Conditions {
    path: Option<PathCond>,
    method: Option<Method>,
    headers: Vec<(HeaderName, ValueCond)>,
    query: Vec<(String, ValueCond)>,
    grpc: Option<GrpcMatch>,
}

#[derive(Debug)]
enum PathCond {
    Exact(String),
    /// Without a trailing `/` (except the root prefix, which is empty here).
    Prefix(String),
    Regex(Regex),
}

#[derive(Debug)]
enum ValueCond {
    Exact(String),
    Regex(Regex),
}

impl ValueCond {
    fn compile(field: &str, m: &ValueMatch) -> Result<Self, FieldError> {
        Ok(match m.kind {
            ValueMatchKind::Exact => Self::Exact(m.value.clone()),
            ValueMatchKind::RegularExpression => Self::Regex(compile_pattern(field, &m.value)?),
        })
    }

    fn holds(&self, v: &str) -> bool {
        match self {
            Self::Exact(want) => v == want,
            Self::Regex(re) => re.is_match(v),
        }
    }
}

impl CompiledRoute {
    /// Compiles a route (validated by the federation already; an error here names the
    /// field all the same).
    pub fn compile(route: &Route) -> Result<Self, FieldError> {
        warden_federation::route::validate(route)?;
        let rules = route
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| CompiledRule::compile(i, r))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            id: route.id.clone(),
            rules,
        })
    }

    /// The first rule a request matches, with its index.
    pub fn select(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Option<(usize, &CompiledRule)> {
        let s = self.select_match(method, uri, headers)?;
        Some((s.index, &self.rules[s.index]))
    }

    /// The first rule a request matches, and the path prefix its matching entry named.
    pub fn select_match(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Option<Selected<'_>> {
        self.rules.iter().enumerate().find_map(|(index, r)| {
            if r.matches.is_empty() {
                return Some(Selected {
                    index,
                    matched: None,
                    prefix: None,
                });
            }
            let m = r
                .matches
                .iter()
                .position(|c| c.hold(method, uri, headers))?;
            Some(Selected {
                index,
                matched: Some(m),
                prefix: r.prefix(m),
            })
        })
    }
}

impl CompiledRule {
    fn compile(i: usize, rule: &RouteRule) -> Result<Self, FieldError> {
        let f = format!("rules[{i}]");
        let matches = rule
            .matches
            .iter()
            .enumerate()
            .map(|(j, m)| {
                let f = format!("{f}.matches[{j}]");
                let path = match &m.path {
                    None => None,
                    Some(p) => Some(match p.kind {
                        PathMatchKind::Exact => PathCond::Exact(p.value.clone()),
                        PathMatchKind::PathPrefix => {
                            PathCond::Prefix(p.value.trim_end_matches('/').to_string())
                        }
                        PathMatchKind::RegularExpression => {
                            PathCond::Regex(compile_pattern(&format!("{f}.path.value"), &p.value)?)
                        }
                    }),
                };
                let method = match &m.method {
                    None => None,
                    Some(v) => Some(Method::from_bytes(v.as_bytes()).map_err(|_| {
                        FieldError::new(format!("{f}.method"), "not an HTTP method")
                    })?),
                };
                let headers = m
                    .headers
                    .iter()
                    .enumerate()
                    .map(|(k, h)| {
                        let field = format!("{f}.headers[{k}]");
                        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| {
                            FieldError::new(format!("{field}.name"), "not a header name")
                        })?;
                        Ok((name, ValueCond::compile(&format!("{field}.value"), h)?))
                    })
                    .collect::<Result<_, FieldError>>()?;
                let query = m
                    .query_params
                    .iter()
                    .enumerate()
                    .map(|(k, q)| {
                        let field = format!("{f}.query_params[{k}].value");
                        Ok((q.name.clone(), ValueCond::compile(&field, q)?))
                    })
                    .collect::<Result<_, FieldError>>()?;
                Ok(Conditions {
                    path,
                    method,
                    headers,
                    query,
                    grpc: m.grpc.clone(),
                })
            })
            .collect::<Result<_, FieldError>>()?;
        let services = rule
            .backends
            .iter()
            .enumerate()
            .map(|(k, b)| match &b.service {
                None => Ok(None),
                Some(s) => ServiceKey::parse(s).map(Some).ok_or_else(|| {
                    FieldError::new(
                        format!("{f}.backends[{k}].service"),
                        "not namespace/service",
                    )
                }),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            name: rule.name.clone().unwrap_or(f),
            matches,
            services,
            total_weight: rule.backends.iter().map(|b| b.weight).sum(),
            rule: rule.clone(),
        })
    }

    /// The backend for a draw in `0..u32::MAX` (uniform): by weight, zero weights never.
    /// `None` for a redirecting rule.
    pub fn backend(&self, draw: u32) -> Option<&RouteBackend> {
        self.backend_index(draw).map(|k| &self.rule.backends[k])
    }

    /// [`Self::backend`]'s index in the rule's backends.
    pub fn backend_index(&self, draw: u32) -> Option<usize> {
        if self.total_weight == 0 {
            return None;
        }
        let mut point = ((u64::from(draw) * u64::from(self.total_weight)) >> 32) as u32;
        for (k, b) in self.rule.backends.iter().enumerate() {
            if point < b.weight {
                return Some(k);
            }
            point -= b.weight;
        }
        // Unreachable: point < total_weight, the sum of the weights walked above.
        self.rule.backends.iter().rposition(|b| b.weight > 0)
    }

    /// The service backend `k` names, when another than the route's.
    pub fn service_of(&self, k: usize) -> Option<&ServiceKey> {
        self.services.get(k).and_then(Option::as_ref)
    }

    /// The `PathPrefix` of match entry `m` (without a trailing `/`), if it has one.
    pub fn prefix(&self, m: usize) -> Option<&str> {
        match self.matches.get(m)?.path.as_ref()? {
            PathCond::Prefix(p) => Some(p.as_str()),
            _ => None,
        }
    }
}

impl Conditions {
    fn hold(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> bool {
        let path = uri.path();
        let path_ok = match &self.path {
            None => true,
            Some(PathCond::Exact(p)) => path == p,
            Some(PathCond::Prefix(p)) => path
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
            Some(PathCond::Regex(re)) => re.is_match(path),
        };
        path_ok
            && self.method.as_ref().is_none_or(|m| m == method)
            && self.headers.iter().all(|(name, cond)| {
                headers
                    .get_all(name)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .any(|v| cond.holds(v))
            })
            && self
                .query
                .iter()
                .all(|(name, cond)| query_values(uri, name).any(|v| cond.holds(v)))
            && self
                .grpc
                .as_ref()
                .is_none_or(|g| grpc_holds(g, path, headers))
    }
}

/// The raw values of query parameter `name` (as sent; not percent-decoded).
fn query_values<'a>(uri: &'a Uri, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(move |pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then_some(v)
        })
}

/// A gRPC call is `POST /<service>/<method>` with an `application/grpc` content type.
fn grpc_holds(g: &GrpcMatch, path: &str, headers: &HeaderMap) -> bool {
    let grpc = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    let Some((service, method)) = path.strip_prefix('/').and_then(|p| p.split_once('/')) else {
        return false;
    };
    grpc && g.service.as_deref().is_none_or(|s| s == service)
        && g.method.as_deref().is_none_or(|m| m == method)
}

pub mod explain;

#[cfg(test)]
mod tests;
