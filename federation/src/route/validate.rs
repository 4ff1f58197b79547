//! The checks a route passes before it is proposed: every list and string bounded, names and
//! values HTTP can carry, regular expressions that compile within a size limit, and
//! combinations that mean something (a redirect has no backends, a prefix rewrite needs
//! prefix matches). Each error names its field.

use std::collections::BTreeSet;

use regex::Regex;

use super::types::{
    PathMatchKind, RequestRedirect, Route, RouteBackend, RouteFilter, RouteMatch, RouteRule,
    ValueMatch, ValueMatchKind,
};
use crate::model::{FieldError, validate_dns_label, validate_dns_name, validate_service_ref};

/// Longest regular expression a route may carry.
pub const MAX_PATTERN_BYTES: usize = 1024;
/// Memory a compiled expression (and its lazy DFA) may take.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;
const MAX_RULES: usize = 64;
const MAX_MATCHES: usize = 16;
const MAX_CONDITIONS: usize = 16;
const MAX_BACKENDS: usize = 16;
const MAX_FILTERS: usize = 8;
const MAX_VALUE_BYTES: usize = 4096;
const MAX_TIMEOUT_MS: u64 = 3_600_000;

fn err(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError::new(field, message)
}

/// Compiles a route's expression so that it must match the whole subject. The pattern is
/// compiled on its own first, so it cannot close the anchoring group (`a)|(b`).
pub fn compile_pattern(field: &str, pattern: &str) -> Result<Regex, FieldError> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(err(
            field,
            format!("at most {MAX_PATTERN_BYTES} bytes of regular expression"),
        ));
    }
    let build = |p: &str| {
        regex::RegexBuilder::new(p)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()
    };
    build(pattern)
        .and_then(|_| build(&format!("^(?:{pattern})$")))
        .map_err(|e| err(field, format!("not a usable regular expression: {e}")))
}

pub(super) fn route(r: &Route) -> Result<(), FieldError> {
    validate_dns_label("id", &r.id)?;
    validate_service_ref("service", &r.service)?;
    if r.rules.is_empty() || r.rules.len() > MAX_RULES {
        return Err(err("rules", format!("1-{MAX_RULES} rules")));
    }
    let mut names = BTreeSet::new();
    for (i, rule) in r.rules.iter().enumerate() {
        let f = format!("rules[{i}]");
        if let Some(name) = &rule.name {
            validate_dns_label(&format!("{f}.name"), name)?;
            if !names.insert(name.as_str()) {
                return Err(err(
                    format!("{f}.name"),
                    format!("{name:?} names two rules"),
                ));
            }
        }
        self::rule(&f, rule)?;
    }
    Ok(())
}

fn rule(f: &str, rule: &RouteRule) -> Result<(), FieldError> {
    if rule.matches.len() > MAX_MATCHES {
        return Err(err(
            format!("{f}.matches"),
            format!("at most {MAX_MATCHES}"),
        ));
    }
    for (j, m) in rule.matches.iter().enumerate() {
        route_match(&format!("{f}.matches[{j}]"), m)?;
    }
    let redirect = filters(f, rule)?;
    backends(f, &rule.backends, redirect)?;
    if let Some(t) = &rule.timeouts {
        for (name, v) in [("request_ms", t.request_ms), ("per_try_ms", t.per_try_ms)] {
            if v.is_some_and(|v| v == 0 || v > MAX_TIMEOUT_MS) {
                return Err(err(
                    format!("{f}.timeouts.{name}"),
                    format!("must be 1-{MAX_TIMEOUT_MS}"),
                ));
            }
        }
        if let (Some(req), Some(try_)) = (t.request_ms, t.per_try_ms)
            && try_ > req
        {
            return Err(err(
                format!("{f}.timeouts.per_try_ms"),
                "must not exceed request_ms",
            ));
        }
    }
    if let Some(r) = &rule.retry {
        let g = format!("{f}.retry");
        if !(1..=10).contains(&r.attempts) {
            return Err(err(format!("{g}.attempts"), "must be 1-10"));
        }
        if r.on.is_empty() || r.on.len() > 8 {
            return Err(err(format!("{g}.on"), "1-8 conditions"));
        }
        if !(1..=10_000).contains(&r.backoff_base_ms) {
            return Err(err(format!("{g}.backoff_base_ms"), "must be 1-10000"));
        }
        if !(r.backoff_base_ms..=60_000).contains(&r.backoff_max_ms) {
            return Err(err(
                format!("{g}.backoff_max_ms"),
                "must be between backoff_base_ms and 60000",
            ));
        }
    }
    Ok(())
}

fn route_match(f: &str, m: &RouteMatch) -> Result<(), FieldError> {
    if let Some(p) = &m.path {
        let field = format!("{f}.path.value");
        match p.kind {
            PathMatchKind::RegularExpression => {
                compile_pattern(&field, &p.value)?;
            }
            PathMatchKind::Exact | PathMatchKind::PathPrefix => {
                if !p.value.starts_with('/') || p.value.len() > MAX_VALUE_BYTES {
                    return Err(err(field, "must start with / (at most 4096 bytes)"));
                }
                if p.value.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'?') {
                    return Err(err(field, "no spaces, control characters or ?"));
                }
            }
        }
    }
    if let Some(method) = &m.method {
        let ok = !method.is_empty()
            && method.len() <= 32
            && method.bytes().all(|b| b.is_ascii_uppercase());
        if !ok {
            return Err(err(format!("{f}.method"), "an upper-case HTTP method"));
        }
    }
    conditions(&format!("{f}.headers"), &m.headers, true)?;
    conditions(&format!("{f}.query_params"), &m.query_params, false)?;
    if let Some(g) = &m.grpc {
        if g.service.is_none() && g.method.is_none() {
            return Err(err(format!("{f}.grpc"), "give service, method or both"));
        }
        let part = |name: &str, v: &Option<String>, dots: bool| match v {
            Some(v)
                if v.is_empty()
                    || v.len() > 256
                    || !v
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || (dots && b == b'.')) =>
            {
                Err(err(
                    format!("{f}.grpc.{name}"),
                    "letters, digits, _ (and . in service)",
                ))
            }
            _ => Ok(()),
        };
        part("service", &g.service, true)?;
        part("method", &g.method, false)?;
    }
    Ok(())
}

fn conditions(f: &str, list: &[ValueMatch], header: bool) -> Result<(), FieldError> {
    if list.len() > MAX_CONDITIONS {
        return Err(err(f, format!("at most {MAX_CONDITIONS}")));
    }
    for (k, c) in list.iter().enumerate() {
        let name_ok = if header {
            http::HeaderName::from_bytes(c.name.as_bytes()).is_ok()
        } else {
            !c.name.is_empty() && c.name.len() <= 256
        };
        if !name_ok {
            return Err(err(format!("{f}[{k}].name"), "not a valid name"));
        }
        let field = format!("{f}[{k}].value");
        match c.kind {
            ValueMatchKind::RegularExpression => {
                compile_pattern(&field, &c.value)?;
            }
            ValueMatchKind::Exact => {
                if c.value.len() > MAX_VALUE_BYTES
                    || (header && http::HeaderValue::from_str(&c.value).is_err())
                {
                    return Err(err(
                        field,
                        "not a value this can carry (at most 4096 bytes)",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Checks the filters; `true` when the rule redirects.
fn filters(f: &str, rule: &RouteRule) -> Result<bool, FieldError> {
    if rule.filters.len() > MAX_FILTERS {
        return Err(err(
            format!("{f}.filters"),
            format!("at most {MAX_FILTERS}"),
        ));
    }
    let mut kinds = std::collections::HashSet::new();
    let mut redirect = false;
    for (k, filter) in rule.filters.iter().enumerate() {
        let g = format!("{f}.filters[{k}]");
        if !kinds.insert(std::mem::discriminant(filter)) {
            return Err(err(g, "at most one filter of each kind per rule"));
        }
        match filter {
            RouteFilter::RequestHeaderModifier(m) | RouteFilter::ResponseHeaderModifier(m) => {
                let pairs = m
                    .set
                    .iter()
                    .chain(&m.add)
                    .map(|p| (&p.name, Some(&p.value)));
                let removes = m.remove.iter().map(|n| (n, None));
                for (name, value) in pairs.chain(removes) {
                    modifiable(&g, name, value)?;
                }
            }
            RouteFilter::UrlRewrite(w) => {
                if !w.path_prefix.starts_with('/') {
                    return Err(err(format!("{g}.path_prefix"), "must start with /"));
                }
                let prefixes = !rule.matches.is_empty()
                    && rule.matches.iter().all(|m| {
                        m.path
                            .as_ref()
                            .is_some_and(|p| p.kind == PathMatchKind::PathPrefix)
                    });
                if !prefixes {
                    return Err(err(
                        format!("{g}.path_prefix"),
                        "every match of the rule must have a PathPrefix path",
                    ));
                }
            }
            RouteFilter::RequestRedirect(r) => {
                redirect_ok(&g, r)?;
                redirect = true;
            }
        }
    }
    if redirect && kinds.len() > 1 {
        return Err(err(
            format!("{f}.filters"),
            "a redirect answers the request: no other filter applies",
        ));
    }
    Ok(redirect)
}

/// A header a route may change: not the gateways' own, not hop-by-hop, not framing.
fn modifiable(f: &str, name: &str, value: Option<&String>) -> Result<(), FieldError> {
    let n = name.to_ascii_lowercase();
    let reserved = n.starts_with("x-warden-")
        || matches!(
            n.as_str(),
            "host"
                | "connection"
                | "keep-alive"
                | "proxy-connection"
                | "transfer-encoding"
                | "upgrade"
                | "te"
                | "content-length"
        );
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() || reserved {
        return Err(err(
            f,
            format!("{name:?} is not a header a route may change"),
        ));
    }
    if let Some(v) = value
        && (v.len() > MAX_VALUE_BYTES || http::HeaderValue::from_str(v).is_err())
    {
        return Err(err(
            f,
            format!("the value for {name:?} is not a header value"),
        ));
    }
    Ok(())
}

fn redirect_ok(f: &str, r: &RequestRedirect) -> Result<(), FieldError> {
    if let Some(s) = &r.scheme
        && s != "http"
        && s != "https"
    {
        return Err(err(format!("{f}.scheme"), "http or https"));
    }
    if let Some(h) = &r.hostname {
        validate_dns_name(&format!("{f}.hostname"), h)?;
    }
    if r.port == Some(0) {
        return Err(err(format!("{f}.port"), "must be 1-65535"));
    }
    if let Some(p) = &r.path
        && (!p.starts_with('/') || p.len() > MAX_VALUE_BYTES || p.bytes().any(|b| b <= b' '))
    {
        return Err(err(
            format!("{f}.path"),
            "must start with / and have no spaces",
        ));
    }
    if ![301, 302, 303, 307, 308].contains(&r.status_code) {
        return Err(err(format!("{f}.status_code"), "301, 302, 303, 307 or 308"));
    }
    Ok(())
}

fn backends(f: &str, list: &[RouteBackend], redirect: bool) -> Result<(), FieldError> {
    let g = format!("{f}.backends");
    if redirect {
        return match list.is_empty() {
            true => Ok(()),
            false => Err(err(g, "a redirecting rule has no backends")),
        };
    }
    if list.is_empty() || list.len() > MAX_BACKENDS {
        return Err(err(g, format!("1-{MAX_BACKENDS} backends")));
    }
    for (k, b) in list.iter().enumerate() {
        let h = format!("{g}[{k}]");
        if let Some(s) = &b.service {
            validate_service_ref(&format!("{h}.service"), s)?;
        }
        crate::model::validate_labels(&format!("{h}.subset"), &b.subset, 16)?;
        for (key, value) in &b.subset {
            crate::model::validate_label_value(&format!("{h}.subset.{key}"), value)?;
        }
        if b.weight > 10_000 {
            return Err(err(format!("{h}.weight"), "must be 0-10000"));
        }
    }
    if list.iter().all(|b| b.weight == 0) {
        return Err(err(g, "the weights sum to 0: nothing would be served"));
    }
    Ok(())
}
