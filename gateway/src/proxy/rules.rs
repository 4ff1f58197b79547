//! Stage "match a route". On the outbound listener, a service with a route has its request
//! matched against the rules: the first matching rule picks, by weight, the backend — a
//! service and a subset of its endpoints — or answers itself (a redirect); a request no rule
//! matches gets 404 `no_route`. On the east-west listener the calling gateway has chosen
//! already: the subset it names in `x-warden-subset` is kept to, so v2 traffic that fails
//! over to another cluster reaches v2 there, never v1.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use warden_federation::route::{HeaderModifier, RequestRedirect, RouteFilter};

use super::body::{BoxBody, empty};
use super::context::Listener;
use super::error::ProxyError;
use crate::key::ServiceKey;
use crate::route::{CompiledRoute, CompiledRule};
use crate::table::{LocalEndpoint, Tables};

/// Header naming the subset on the east-west hop (`version=v2,tier=gold`), set only by a
/// gateway (a client's `x-warden-*` headers are removed before forwarding).
pub const SUBSET_HEADER: &str = "x-warden-subset";

/// A label selector: an endpoint is in the subset when it has every label named.
pub type Subset = BTreeMap<String, String>;

/// What the route decided for one request.
#[derive(Debug)]
pub struct Routed {
    route: Arc<CompiledRoute>,
    index: usize,
    /// The entry of the rule's `matches` that held (its prefix is what `url_rewrite` replaces).
    matched: Option<usize>,
    /// The backend drawn.
    backend: usize,
}

impl Routed {
    pub fn rule(&self) -> &CompiledRule {
        &self.route.rules[self.index]
    }

    /// The service the request goes to: the backend's, else `asked` (the route's own).
    pub fn service<'a>(&'a self, asked: &'a ServiceKey) -> &'a ServiceKey {
        self.rule().service_of(self.backend).unwrap_or(asked)
    }

    /// The subset of that service's endpoints.
    pub fn subset(&self) -> &Subset {
        &self.rule().rule.backends[self.backend].subset
    }

    fn modifier(&self, response: bool) -> Option<&HeaderModifier> {
        self.rule()
            .rule
            .filters
            .iter()
            .find_map(|f| match (f, response) {
                (RouteFilter::RequestHeaderModifier(m), false) => Some(m),
                (RouteFilter::ResponseHeaderModifier(m), true) => Some(m),
                _ => None,
            })
    }

    /// The rule's request filters on the head to send: header changes and the prefix rewrite.
    pub fn apply_to_request(&self, head: &mut Parts) -> Result<(), ProxyError> {
        if let Some(m) = self.modifier(false) {
            modify(&mut head.headers, m);
        }
        let rewrite = self.rule().rule.filters.iter().find_map(|f| match f {
            RouteFilter::UrlRewrite(w) => Some(w.path_prefix.as_str()),
            _ => None,
        });
        let from = self.matched.and_then(|m| self.rule().prefix(m));
        if let (Some(to), Some(from)) = (rewrite, from) {
            let pq = head.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            let rest = pq.strip_prefix(from).unwrap_or(pq);
            let joined = match (to.ends_with('/'), rest.starts_with('/')) {
                (true, true) => format!("{to}{}", &rest[1..]),
                (false, false) if !rest.is_empty() && !rest.starts_with('?') => {
                    format!("{to}/{rest}")
                }
                _ => format!("{to}{rest}"),
            };
            let joined = if joined.starts_with('/') {
                joined
            } else {
                format!("/{joined}")
            };
            head.uri = joined.parse().map_err(|_| ProxyError::BadRequest {
                field: "path",
                message: format!("the rewritten path {joined:?} is not a path"),
            })?;
        }
        Ok(())
    }

    /// The rule's response header changes.
    pub fn apply_to_response(&self, headers: &mut HeaderMap) {
        if let Some(m) = self.modifier(true) {
            modify(headers, m);
        }
    }

    /// The subset as the east-west header carries it (`None` for the whole service).
    pub fn subset_header(&self) -> Option<HeaderValue> {
        subset_value(self.subset())
    }
}

/// What the stage decided.
#[derive(Debug)]
pub enum Decision {
    /// No route for the service: the whole service, as without routes.
    Whole,
    Routed(Routed),
    /// The rule answers (a redirect).
    Respond(Response<BoxBody>),
}

/// Matches the request against `key`'s route (outbound listener only); `draw` picks the
/// backend by weight.
pub fn decide(
    tables: &Tables,
    listener: Listener,
    key: &ServiceKey,
    head: &Parts,
    draw: u32,
) -> Result<Decision, ProxyError> {
    if listener != Listener::Outbound {
        return Ok(Decision::Whole);
    }
    let Some(route) = tables.remote.load().routes.get(key).cloned() else {
        return Ok(Decision::Whole);
    };
    let Some(selected) = route.select_match(&head.method, &head.uri, &head.headers) else {
        return Err(ProxyError::NoRoute(key.to_string()));
    };
    let (index, matched) = (selected.index, selected.matched);
    let rule = &route.rules[index];
    if let Some(r) = rule.rule.filters.iter().find_map(|f| match f {
        RouteFilter::RequestRedirect(r) => Some(r),
        _ => None,
    }) {
        return Ok(Decision::Respond(redirect(r, head)));
    }
    let Some(backend) = rule.backend_index(draw) else {
        return Err(ProxyError::NoRoute(key.to_string()));
    };
    Ok(Decision::Routed(Routed {
        route,
        index,
        matched,
        backend,
    }))
}

/// The subset the calling gateway named on the east-west hop, if any.
pub fn subset_from(headers: &HeaderMap) -> Option<Subset> {
    let v = headers.get(SUBSET_HEADER)?.to_str().ok()?;
    let subset: Subset = v
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    (!subset.is_empty()).then_some(subset)
}

/// The east-west header value of a subset (`None` for the whole service).
pub fn subset_value(subset: &Subset) -> Option<HeaderValue> {
    if subset.is_empty() {
        return None;
    }
    let v: Vec<String> = subset.iter().map(|(k, v)| format!("{k}={v}")).collect();
    HeaderValue::from_str(&v.join(",")).ok()
}

/// Whether `e` is in `subset` (every label it names, with that value).
pub fn in_subset(e: &LocalEndpoint, subset: &Subset) -> bool {
    subset.is_empty()
        || e.labels
            .as_deref()
            .is_some_and(|l| subset.iter().all(|(k, v)| l.get(k) == Some(v)))
}

fn modify(h: &mut HeaderMap, m: &HeaderModifier) {
    // Names and values were checked when the route was applied; one that does not parse
    // here is skipped rather than failing the request.
    let pair = |name: &str, value: &str| {
        Some((
            HeaderName::from_bytes(name.as_bytes()).ok()?,
            HeaderValue::from_str(value).ok()?,
        ))
    };
    for p in &m.set {
        if let Some((n, v)) = pair(&p.name, &p.value) {
            h.insert(n, v);
        }
    }
    for p in &m.add {
        if let Some((n, v)) = pair(&p.name, &p.value) {
            h.append(n, v);
        }
    }
    for name in &m.remove {
        if let Ok(n) = HeaderName::from_bytes(name.as_bytes()) {
            h.remove(n);
        }
    }
}

/// The redirect a rule answers with: each part of the location is the request's unless the
/// filter names it.
fn redirect(r: &RequestRedirect, head: &Parts) -> Response<BoxBody> {
    let host_header = head
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok());
    let authority = head
        .uri
        .authority()
        .map(|a| a.as_str())
        .or(host_header)
        .unwrap_or("");
    let (req_host, req_port) = match authority.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
        _ => (authority, None),
    };
    let scheme = r.scheme.as_deref().unwrap_or("http");
    let host = r.hostname.as_deref().unwrap_or(req_host);
    let port = match (r.port, req_port) {
        (Some(p), _) => format!(":{p}"),
        (None, Some(p)) if r.hostname.is_none() => format!(":{p}"),
        _ => String::new(),
    };
    let path = r.path.as_deref().unwrap_or(head.uri.path());
    let query = head
        .uri
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let location = format!("{scheme}://{host}{port}{path}{query}");
    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::from_u16(r.status_code).unwrap_or(StatusCode::FOUND);
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(http::header::LOCATION, v);
    }
    resp
}

#[cfg(test)]
mod tests;
