//! Pure authorization decisions for callers arriving over the east-west hop. No I/O.
//!
//! A matching deny policy wins; otherwise, if any allow policy exists for the service, the
//! caller must match one; otherwise the configured default applies.

use warden_federation::model::{AuthzAction, SecurityPolicy};

/// Who is calling: the verified SPIFFE ID of the peer gateway, and its cluster when the claimed
/// source cluster is registered with that same trust domain.
#[derive(Debug, Clone)]
pub struct Caller {
    pub spiffe_id: String,
    pub trust_domain: String,
    pub cluster: Option<String>,
}

/// The outcome and the policy that decided it (`None`: the default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub policy: Option<String>,
}

fn matches(p: &SecurityPolicy, c: &Caller) -> bool {
    let s = &p.sources;
    s.trust_domains.contains(&c.trust_domain)
        || s.spiffe_ids.contains(&c.spiffe_id)
        || c.cluster
            .as_ref()
            .is_some_and(|cl| s.clusters.iter().any(|x| x == cl))
}

/// Decides for `caller` given the policies of one service.
pub fn decide(policies: &[SecurityPolicy], default_allow: bool, caller: &Caller) -> Decision {
    if let Some(p) = policies
        .iter()
        .find(|p| p.action == AuthzAction::Deny && matches(p, caller))
    {
        return Decision {
            allowed: false,
            policy: Some(p.id.clone()),
        };
    }
    let allows: Vec<&SecurityPolicy> = policies
        .iter()
        .filter(|p| p.action == AuthzAction::Allow)
        .collect();
    if allows.is_empty() {
        return Decision {
            allowed: default_allow,
            policy: None,
        };
    }
    match allows.iter().find(|p| matches(p, caller)) {
        Some(p) => Decision {
            allowed: true,
            policy: Some(p.id.clone()),
        },
        None => Decision {
            allowed: false,
            policy: Some(allows[0].id.clone()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_federation::model::AuthzSources;

    fn policy(id: &str, action: AuthzAction, tds: &[&str], clusters: &[&str]) -> SecurityPolicy {
        SecurityPolicy {
            id: id.into(),
            service: "shop/cart".into(),
            action,
            sources: AuthzSources {
                trust_domains: tds.iter().map(|s| s.to_string()).collect(),
                spiffe_ids: vec![],
                clusters: clusters.iter().map(|s| s.to_string()).collect(),
            },
            updated_at: 0,
        }
    }

    fn caller(td: &str, cluster: Option<&str>) -> Caller {
        Caller {
            spiffe_id: format!("spiffe://{td}/gw"),
            trust_domain: td.into(),
            cluster: cluster.map(str::to_string),
        }
    }

    #[test]
    fn default_applies_without_policies() {
        assert!(decide(&[], true, &caller("a", None)).allowed);
        assert!(!decide(&[], false, &caller("a", None)).allowed);
    }

    #[test]
    fn deny_wins_and_allow_lists_restrict() {
        let ps = vec![
            policy("allow-a", AuthzAction::Allow, &["a", "b"], &[]),
            policy("deny-b", AuthzAction::Deny, &["b"], &[]),
        ];
        assert_eq!(
            decide(&ps, true, &caller("a", None)),
            Decision {
                allowed: true,
                policy: Some("allow-a".into())
            }
        );
        assert_eq!(
            decide(&ps, true, &caller("b", None)),
            Decision {
                allowed: false,
                policy: Some("deny-b".into())
            }
        );
        assert!(
            !decide(&ps, true, &caller("c", None)).allowed,
            "not on the allow list"
        );
        let by_cluster = vec![policy("deny-west", AuthzAction::Deny, &[], &["west"])];
        assert!(!decide(&by_cluster, true, &caller("w", Some("west"))).allowed);
        assert!(
            decide(&by_cluster, true, &caller("w", None)).allowed,
            "an unverified cluster claim matches nothing"
        );
    }
}
