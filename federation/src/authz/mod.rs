//! Authorization policies on L7 attributes: who may call a service (the verified source
//! cluster, the calling gateway's or workload's SPIFFE ID) and with what (method, path, headers, verified JWT
//! claims). A service with any `allow` policy denies what none of them allows; a matching `deny`
//! policy wins. Stored as JSON documents ([`crate::stored::Stored`]); [`validate`] names the
//! field at fault.

use serde::{Deserialize, Serialize};

use crate::model::{
    AuthzAction, FieldError, validate_dns_label, validate_dns_name, validate_service_ref,
};
use crate::route::{PathMatch, PathMatchKind, compile_pattern};

/// Allow or deny requests to one service that match any of `rules`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationPolicy {
    /// DNS label, unique.
    pub id: String,
    /// `namespace/service` the policy guards.
    pub service: String,
    pub action: AuthzAction,
    /// 1–16 rules; the policy matches a request that any one of them matches.
    pub rules: Vec<AuthzRule>,
    #[serde(default)]
    pub updated_at: u64,
}

/// Conditions that must all hold (an empty list holds for every request).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthzRule {
    /// The calling cluster is one of these (this gateway's own cluster for its own callers; the
    /// verified peer's on the east-west hop).
    #[serde(default)]
    pub source_clusters: Vec<String>,
    /// The calling gateway's SPIFFE ID is one of these (east-west, with mTLS; never matches on
    /// the outbound listener, whose callers are workloads: see `workloads`).
    #[serde(default)]
    pub spiffe_ids: Vec<String>,
    /// The calling workload's SPIFFE ID is one of these — exact, or a prefix ending in `/*`
    /// (`spiffe://east.example/ns/shop/*`). Known only on the outbound listener with
    /// `listeners.outbound_tls`, from the client certificate the workload presented; a
    /// workload without one never matches, and on the east-west hop such a rule is left to
    /// the calling gateway.
    #[serde(default)]
    pub workloads: Vec<String>,
    /// The method is one of these, e.g. `GET`.
    #[serde(default)]
    pub methods: Vec<String>,
    /// The path matches one of these (Exact, PathPrefix or RegularExpression, as in routes).
    #[serde(default)]
    pub paths: Vec<PathMatch>,
    /// Each named header has one of its values.
    #[serde(default)]
    pub headers: Vec<ValuesCondition>,
    /// Each named claim of the verified JWT has one of its values (an array claim: any of its
    /// elements). Only where the token is checked — the outbound listener — can it hold.
    #[serde(default)]
    pub claims: Vec<ValuesCondition>,
}

/// A name and the values it may have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValuesCondition {
    pub name: String,
    /// 1–32 values, exact.
    pub values: Vec<String>,
}

impl AuthzRule {
    /// Whether the rule asks for what only the caller's own gateway knows — JWT claims, the
    /// workload's identity — and so can hold only on the outbound listener.
    pub fn needs_caller(&self) -> bool {
        !self.claims.is_empty() || !self.workloads.is_empty()
    }
}

/// Checks a `spiffe://<trust domain>/…` URI (a `workloads` entry may end in `/*`).
fn spiffe_uri(field: &str, id: &str, prefix_ok: bool) -> Result<(), FieldError> {
    let td = id
        .strip_prefix("spiffe://")
        .and_then(|r| r.split('/').next());
    let star = id.find('*');
    let star_ok = match star {
        None => true,
        Some(i) => prefix_ok && i + 1 == id.len() && id.ends_with("/*"),
    };
    match td {
        Some(td) if id.len() <= 2048 && star_ok => validate_dns_name(field, td),
        _ if !star_ok => Err(err(field, "`*` only as a last `/*` segment")),
        _ => Err(err(field, "a spiffe:// URI")),
    }
}

const MAX_RULES: usize = 16;
const MAX_LIST: usize = 32;

fn err(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError::new(field, message)
}

fn list<T>(field: &str, v: &[T]) -> Result<(), FieldError> {
    if v.len() > MAX_LIST {
        return Err(err(field, format!("at most {MAX_LIST}")));
    }
    Ok(())
}

fn values(field: &str, conds: &[ValuesCondition], header: bool) -> Result<(), FieldError> {
    list(field, conds)?;
    for (i, c) in conds.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let bad_name = c.name.is_empty()
            || c.name.len() > 256
            || (header && http::HeaderName::from_bytes(c.name.as_bytes()).is_err());
        if bad_name {
            return Err(err(format!("{f}.name"), "a header or claim name"));
        }
        if c.values.is_empty() || c.values.len() > MAX_LIST {
            return Err(err(format!("{f}.values"), format!("1-{MAX_LIST} values")));
        }
        if let Some(j) = c.values.iter().position(|v| v.len() > 4096) {
            return Err(err(format!("{f}.values[{j}]"), "at most 4096 bytes"));
        }
    }
    Ok(())
}

/// Checks a policy; the error names the field at fault, e.g. `rules[0].paths[1].value`.
pub fn validate(p: &AuthorizationPolicy) -> Result<(), FieldError> {
    validate_dns_label("id", &p.id)?;
    validate_service_ref("service", &p.service)?;
    if p.rules.is_empty() || p.rules.len() > MAX_RULES {
        return Err(err("rules", format!("1-{MAX_RULES} rules")));
    }
    for (i, r) in p.rules.iter().enumerate() {
        let f = format!("rules[{i}]");
        list(&format!("{f}.source_clusters"), &r.source_clusters)?;
        for (j, c) in r.source_clusters.iter().enumerate() {
            validate_dns_label(&format!("{f}.source_clusters[{j}]"), c)?;
        }
        list(&format!("{f}.spiffe_ids"), &r.spiffe_ids)?;
        for (j, id) in r.spiffe_ids.iter().enumerate() {
            spiffe_uri(&format!("{f}.spiffe_ids[{j}]"), id, false)?;
        }
        list(&format!("{f}.workloads"), &r.workloads)?;
        for (j, id) in r.workloads.iter().enumerate() {
            spiffe_uri(&format!("{f}.workloads[{j}]"), id, true)?;
        }
        list(&format!("{f}.methods"), &r.methods)?;
        for (j, m) in r.methods.iter().enumerate() {
            if http::Method::from_bytes(m.as_bytes()).is_err() || m.len() > 32 {
                return Err(err(format!("{f}.methods[{j}]"), "an HTTP method"));
            }
        }
        list(&format!("{f}.paths"), &r.paths)?;
        for (j, pm) in r.paths.iter().enumerate() {
            let g = format!("{f}.paths[{j}].value");
            match pm.kind {
                PathMatchKind::RegularExpression => {
                    compile_pattern(&g, &pm.value)?;
                }
                _ if !pm.value.starts_with('/') || pm.value.len() > 4096 => {
                    return Err(err(g, "starts with /"));
                }
                _ => {}
            }
        }
        values(&format!("{f}.headers"), &r.headers, true)?;
        values(&format!("{f}.claims"), &r.claims, false)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(rules: serde_json::Value) -> String {
        let p: AuthorizationPolicy = serde_json::from_value(serde_json::json!({
            "id": "p", "service": "shop/cart", "action": "deny", "rules": rules
        }))
        .unwrap();
        validate(&p).expect_err("refused").field
    }

    #[test]
    fn each_bad_condition_is_named() {
        use serde_json::json;
        assert_eq!(field_of(json!([])), "rules");
        assert_eq!(
            field_of(json!([{"methods": ["GE T"]}])),
            "rules[0].methods[0]"
        );
        assert_eq!(
            field_of(json!([{}, {"paths": [{"type": "PathPrefix", "value": "admin"}]}])),
            "rules[1].paths[0].value"
        );
        assert_eq!(
            field_of(json!([{"paths": [{"type": "RegularExpression", "value": "("}]}])),
            "rules[0].paths[0].value"
        );
        assert_eq!(
            field_of(json!([{"headers": [{"name": "x y", "values": ["a"]}]}])),
            "rules[0].headers[0].name"
        );
        assert_eq!(
            field_of(json!([{"claims": [{"name": "tenant", "values": []}]}])),
            "rules[0].claims[0].values"
        );
        assert_eq!(
            field_of(json!([{"spiffe_ids": ["west"]}])),
            "rules[0].spiffe_ids[0]"
        );
        assert_eq!(
            field_of(json!([{"spiffe_ids": ["spiffe://east.test/ns/shop/*"]}])),
            "rules[0].spiffe_ids[0]"
        );
        assert_eq!(
            field_of(json!([{"workloads": ["spiffe://east.test/ns/*/sa/web"]}])),
            "rules[0].workloads[0]"
        );
        assert_eq!(
            field_of(
                json!([{"workloads": ["spiffe://east.test/ns/shop/*"]}, {"workloads": ["shop"]}])
            ),
            "rules[1].workloads[0]"
        );
        assert_eq!(
            field_of(json!([{"source_clusters": ["West_1"]}])),
            "rules[0].source_clusters[0]"
        );
    }
}
