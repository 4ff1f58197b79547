//! What `/explain` says about L7 authorization for a described request arriving on the
//! outbound listener from this gateway's own cluster (no token claims): the policies of the
//! service and the verdict.

use serde_json::{Value, json};

use super::{Attributes, CompiledAuthz, Verdict, decide};
use crate::route::explain::Described;

pub fn explain(policies: &[CompiledAuthz], req: &Described, me: &str) -> Value {
    let attrs = Attributes {
        method: &req.method,
        path: req.uri.path(),
        headers: &req.headers,
        source_cluster: Some(me),
        spiffe_id: None,
        claims: None,
        workload: None,
        caller_known_here: true,
    };
    let verdict = match decide(policies, &attrs) {
        Verdict::Allow => json!({"allowed": true}),
        Verdict::Deny(by) => {
            json!({"allowed": false, "policy": by.unwrap_or_else(|| "default-deny".into())})
        }
    };
    let ids: Vec<&str> = policies.iter().map(|p| p.id.as_str()).collect();
    json!({"policies": ids, "verdict": verdict,
        "note": "for a caller of this cluster without JWT claims; rules on claims do not hold here"})
}
