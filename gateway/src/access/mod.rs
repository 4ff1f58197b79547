//! L7 authorization as the data path applies it: each service's authorization policies
//! compiled once per change (path expressions compiled here, never per request), and
//! [`decide`] — pure — over one request's attributes. A matching `deny` wins; a service with
//! `allow` policies denies what none of them allows. Rules that ask for JWT claims or the
//! calling workload's identity can hold only where those are known (the outbound listener);
//! on the east-west hop a policy whose every rule asks for them is left to the calling
//! gateway, which checked them.

pub mod explain;

use http::{HeaderMap, Method};
use regex::Regex;
use warden_federation::authz::{AuthorizationPolicy, AuthzRule, ValuesCondition};
use warden_federation::model::AuthzAction;
use warden_federation::route::{PathMatchKind, compile_pattern};

/// One request as authorization sees it.
pub struct Attributes<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    /// The calling cluster (verified on the east-west hop), if known.
    pub source_cluster: Option<&'a str>,
    /// The calling gateway's SPIFFE ID (east-west with mTLS).
    pub spiffe_id: Option<&'a str>,
    /// The calling workload's SPIFFE ID (outbound listener with a client certificate).
    pub workload: Option<&'a str>,
    /// The verified JWT's claims, where a token was checked.
    pub claims: Option<&'a serde_json::Map<String, serde_json::Value>>,
    /// What only the caller's own gateway knows (claims, the workload) can be known here: the
    /// outbound listener.
    pub caller_known_here: bool,
}

enum PathCond {
    Exact(String),
    Prefix(String),
    Pattern(Regex),
    /// An expression this build cannot compile (a newer server's): matches nothing.
    Never,
}

impl PathCond {
    fn holds(&self, path: &str) -> bool {
        match self {
            PathCond::Exact(p) => path == p,
            PathCond::Prefix(p) => {
                let p = p.trim_end_matches('/');
                path == p
                    || path.strip_prefix(p).is_some_and(|r| r.starts_with('/'))
                    || p.is_empty()
            }
            PathCond::Pattern(r) => r.is_match(path),
            PathCond::Never => false,
        }
    }
}

struct Rule {
    source: AuthzRule,
    paths: Vec<PathCond>,
}

/// A policy, compiled.
pub struct CompiledAuthz {
    pub id: String,
    pub action: AuthzAction,
    rules: Vec<Rule>,
    /// Every rule asks for what only the caller's gateway knows.
    caller_only: bool,
}

impl std::fmt::Debug for CompiledAuthz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledAuthz")
            .field("id", &self.id)
            .finish()
    }
}

impl CompiledAuthz {
    /// Compiles a policy the federation validated; a path expression that does not compile
    /// (a newer server's) makes the rule match nothing.
    pub fn compile(p: &AuthorizationPolicy) -> Self {
        let rules = p
            .rules
            .iter()
            .map(|r| Rule {
                source: r.clone(),
                paths: r
                    .paths
                    .iter()
                    .map(|m| match m.kind {
                        PathMatchKind::Exact => PathCond::Exact(m.value.clone()),
                        PathMatchKind::PathPrefix => PathCond::Prefix(m.value.clone()),
                        PathMatchKind::RegularExpression => compile_pattern("path", &m.value)
                            .map(PathCond::Pattern)
                            .unwrap_or(PathCond::Never),
                    })
                    .collect(),
            })
            .collect();
        Self {
            id: p.id.clone(),
            action: p.action,
            caller_only: p.rules.iter().all(AuthzRule::needs_caller),
            rules,
        }
    }

    fn matches(&self, a: &Attributes<'_>) -> bool {
        self.rules.iter().any(|r| rule_holds(r, a))
    }
}

fn any_of(list: &[String], v: Option<&str>) -> bool {
    list.is_empty() || v.is_some_and(|v| list.iter().any(|x| x == v))
}

/// A workload ID matches an exact entry, or one ending in `/*` that it extends.
fn workload_holds(list: &[String], id: &str) -> bool {
    list.iter().any(|x| match x.strip_suffix('*') {
        Some(prefix) => id.len() > prefix.len() && id.starts_with(prefix),
        None => x == id,
    })
}

fn header_holds(c: &ValuesCondition, headers: &HeaderMap) -> bool {
    headers
        .get_all(c.name.as_str())
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| c.values.iter().any(|x| x == v))
}

fn claim_holds(c: &ValuesCondition, claims: &serde_json::Map<String, serde_json::Value>) -> bool {
    let one = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => c.values.iter().any(|x| x == s),
        serde_json::Value::Number(_) | serde_json::Value::Bool(_) => {
            let s = v.to_string();
            c.values.contains(&s)
        }
        _ => false,
    };
    match claims.get(&c.name) {
        Some(serde_json::Value::Array(items)) => items.iter().any(one),
        Some(v) => one(v),
        None => false,
    }
}

fn rule_holds(r: &Rule, a: &Attributes<'_>) -> bool {
    let s = &r.source;
    any_of(&s.source_clusters, a.source_cluster)
        && any_of(&s.spiffe_ids, a.spiffe_id)
        && (s.workloads.is_empty() || a.workload.is_some_and(|w| workload_holds(&s.workloads, w)))
        && (s.methods.is_empty() || s.methods.iter().any(|m| m == a.method.as_str()))
        && (r.paths.is_empty() || r.paths.iter().any(|p| p.holds(a.path)))
        && s.headers.iter().all(|c| header_holds(c, a.headers))
        && (s.claims.is_empty()
            || a.claims
                .is_some_and(|cl| s.claims.iter().all(|c| claim_holds(c, cl))))
}

/// The verdict on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Denied by this policy's id, or (`None`) because no allow policy matched.
    Deny(Option<String>),
}

/// Decides a request to a service with `policies`.
pub fn decide(policies: &[CompiledAuthz], a: &Attributes<'_>) -> Verdict {
    let here = |p: &&CompiledAuthz| a.caller_known_here || !p.caller_only;
    if let Some(p) = policies
        .iter()
        .filter(here)
        .find(|p| p.action == AuthzAction::Deny && p.matches(a))
    {
        return Verdict::Deny(Some(p.id.clone()));
    }
    let mut allows = policies
        .iter()
        .filter(here)
        .filter(|p| p.action == AuthzAction::Allow)
        .peekable();
    if allows.peek().is_none() {
        return Verdict::Allow;
    }
    match allows.any(|p| p.matches(a)) {
        true => Verdict::Allow,
        false => Verdict::Deny(None),
    }
}

#[cfg(test)]
mod tests;
