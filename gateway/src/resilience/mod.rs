//! Resilience policies as the data path applies them, compiled once per change: each
//! policy's circuit [`breaker`], rate-limit [`bucket`]s and [`fault`]s, with their counters
//! (and what `/explain` shows of them, [`explain`]).
//! A policy unchanged across routing-table updates keeps its compiled form, so its counters
//! and buckets carry on ([`PolicyCache`]). Pure: the request stage that uses these is
//! `proxy/resilience.rs`.
//!
//! For one request, the policies acting are the service's (no `rule`) and the matched rule's:
//! the rate limits of both apply; the rule's fault and mirror, when it has them, replace the
//! service's;
//! the breaker is the service's.

pub mod breaker;
pub mod bucket;
pub mod explain;
pub mod fault;
pub mod share;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};

use http::HeaderMap;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use warden_federation::resilience::{RateKey, RateScope, ResiliencePolicy};

use crate::key::ServiceKey;

use breaker::Breaker;
use bucket::{Buckets, Exhausted};
use fault::Fault;

/// One rate limit with its buckets.
#[derive(Debug)]
pub struct Limit {
    /// Its name, `rate_limits[i]` when it has none.
    pub name: String,
    /// Tokens per `unit_secs`, and the bucket size.
    pub requests: u64,
    pub unit_secs: u64,
    pub burst: u64,
    key: RateKey,
    sources: Vec<String>,
    /// Mesh-wide: charged on the outbound listener only, scaled to this gateway's share.
    pub mesh: bool,
    pub buckets: Buckets,
}

impl Limit {
    /// Takes a token for a request from `source` with `headers`; a request the limit does
    /// not count (another source cluster) passes.
    pub fn take(&self, source: &str, headers: &HeaderMap, now: Instant) -> Result<(), Exhausted> {
        if !self.sources.is_empty() && !self.sources.iter().any(|s| s == source) {
            return Ok(());
        }
        let key: &[u8] = match &self.key {
            RateKey::Whole => b"",
            RateKey::SourceCluster => source.as_bytes(),
            RateKey::Header { name } => headers
                .get(name.as_str())
                .map(|v| v.as_bytes())
                .unwrap_or(b""),
        };
        self.buckets.take(key, now)
    }
}

/// Where a policy copies requests, and how many copies may be in flight.
#[derive(Debug)]
pub struct MirrorTarget {
    pub service: ServiceKey,
    pub subset: BTreeMap<String, String>,
    /// Share copied, parts per million.
    pub ppm: u32,
    pub max_body_bytes: u64,
    pub permits: Arc<Semaphore>,
}

/// A policy as the data path applies it.
#[derive(Debug)]
pub struct CompiledPolicy {
    pub source: ResiliencePolicy,
    pub breaker: Option<Breaker>,
    pub limits: Vec<Limit>,
    pub fault: Option<Fault>,
    pub mirror: Option<MirrorTarget>,
}

impl CompiledPolicy {
    pub fn compile(p: &ResiliencePolicy) -> Self {
        let now = Instant::now();
        Self {
            source: p.clone(),
            breaker: p.circuit_breaker.as_ref().map(Breaker::new),
            limits: p
                .rate_limits
                .iter()
                .enumerate()
                .map(|(i, l)| Limit {
                    name: l
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("rate_limits[{i}]")),
                    requests: l.requests,
                    unit_secs: l.unit.seconds(),
                    burst: l.capacity(),
                    key: l.key.clone(),
                    sources: l.source_clusters.clone(),
                    mesh: l.scope == RateScope::Mesh,
                    buckets: Buckets::new(l, now),
                })
                .collect(),
            fault: p.fault.as_ref().map(Fault::new),
            mirror: p.mirror.as_ref().and_then(|m| {
                let service = ServiceKey::parse(m.service.as_deref().unwrap_or(&p.service))?;
                Some(MirrorTarget {
                    service,
                    subset: m.subset.clone(),
                    ppm: fault::ppm(m.percent),
                    max_body_bytes: m.max_body_bytes,
                    permits: Arc::new(Semaphore::new(m.max_in_flight as usize)),
                })
            }),
        }
    }
}

/// The policies of one service: its own and its route rules'.
#[derive(Debug, Default)]
pub struct ServicePolicies {
    pub whole: Option<Arc<CompiledPolicy>>,
    pub rules: HashMap<String, Arc<CompiledPolicy>>,
}

impl ServicePolicies {
    /// The service's policy, then the matched rule's.
    pub fn acting<'a>(
        &'a self,
        rule: Option<&str>,
    ) -> impl Iterator<Item = &'a Arc<CompiledPolicy>> + 'a {
        let ruled = rule.and_then(|r| self.rules.get(r));
        self.whole.iter().chain(ruled)
    }

    /// The fault that applies: the rule's, else the service's.
    pub fn fault(&self, rule: Option<&str>) -> Option<(&str, &Fault)> {
        self.rule_first(rule, |p| p.fault.as_ref())
    }

    /// The mirror that applies: the rule's, else the service's.
    pub fn mirror(&self, rule: Option<&str>) -> Option<(&str, &MirrorTarget)> {
        self.rule_first(rule, |p| p.mirror.as_ref())
    }

    /// What `part` finds in the rule's policy, else in the service's, with that policy's id.
    fn rule_first<'a, T>(
        &'a self,
        rule: Option<&str>,
        part: impl Fn(&'a CompiledPolicy) -> Option<&'a T>,
    ) -> Option<(&'a str, &'a T)> {
        let ruled = rule.and_then(|r| self.rules.get(r));
        [ruled, self.whole.as_ref()]
            .into_iter()
            .flatten()
            .find_map(|p| Some((p.source.id.as_str(), part(p)?)))
    }

    /// The service's breaker.
    pub fn breaker(&self) -> Option<(&str, &Breaker)> {
        let p = self.whole.as_ref()?;
        Some((p.source.id.as_str(), p.breaker.as_ref()?))
    }
}

/// Compiled policies by id, reused while unchanged and held by a table; forgotten once no
/// table holds them.
#[derive(Debug, Default)]
pub struct PolicyCache(Mutex<HashMap<String, Weak<CompiledPolicy>>>);

impl PolicyCache {
    /// `p` compiled: the same one as before if `p` has not changed.
    pub fn compiled(&self, p: &ResiliencePolicy) -> Arc<CompiledPolicy> {
        let mut m = match self.0.lock() {
            Ok(m) => m,
            Err(e) => e.into_inner(),
        };
        if let Some(c) = m.get(&p.id).and_then(Weak::upgrade)
            && c.source == *p
        {
            return c;
        }
        m.retain(|_, w| w.strong_count() > 0);
        let c = Arc::new(CompiledPolicy::compile(p));
        m.insert(p.id.clone(), Arc::downgrade(&c));
        c
    }

    /// The compiled policies some table still holds.
    pub fn live(&self) -> Vec<Arc<CompiledPolicy>> {
        let m = match self.0.lock() {
            Ok(m) => m,
            Err(e) => e.into_inner(),
        };
        m.values().filter_map(Weak::upgrade).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(v: serde_json::Value) -> ResiliencePolicy {
        let mut base = serde_json::json!({"id": "p", "service": "shop/cart"});
        if let (Some(b), Some(o)) = (base.as_object_mut(), v.as_object()) {
            b.extend(o.clone());
        }
        serde_json::from_value(base).unwrap()
    }

    #[tokio::test]
    async fn an_unchanged_policy_keeps_its_buckets_and_a_changed_one_starts_afresh() {
        let cache = PolicyCache::default();
        let p = policy(serde_json::json!({"rate_limits": [{"requests": 1, "burst": 1}]}));
        let a = cache.compiled(&p);
        let h = HeaderMap::new();
        assert!(a.limits[0].take("east", &h, Instant::now()).is_ok());
        let again = cache.compiled(&p);
        assert!(Arc::ptr_eq(&a, &again));
        assert!(again.limits[0].take("east", &h, Instant::now()).is_err());
        let mut changed = p.clone();
        changed.rate_limits[0].requests = 2;
        let b = cache.compiled(&changed);
        assert!(b.limits[0].take("east", &h, Instant::now()).is_ok());
    }

    #[test]
    fn limits_key_by_source_or_header_and_count_only_their_sources() {
        let p = CompiledPolicy::compile(&policy(serde_json::json!({"rate_limits": [
            {"requests": 1, "burst": 1, "key": {"type": "source_cluster"}},
            {"requests": 1, "burst": 1, "key": {"type": "header", "name": "x-tenant"}, "source_clusters": ["west"]}
        ]})));
        let now = Instant::now();
        let mut h = HeaderMap::new();
        let by_source = &p.limits[0];
        assert!(by_source.take("east", &h, now).is_ok());
        assert!(by_source.take("west", &h, now).is_ok());
        assert!(by_source.take("east", &h, now).is_err());
        let tenant = &p.limits[1];
        assert_eq!(tenant.name, "rate_limits[1]");
        h.insert("x-tenant", "a".parse().unwrap());
        assert!(tenant.take("west", &h, now).is_ok());
        assert!(tenant.take("west", &h, now).is_err());
        assert!(tenant.take("east", &h, now).is_ok(), "east is not counted");
        h.insert("x-tenant", "b".parse().unwrap());
        assert!(tenant.take("west", &h, now).is_ok());
    }

    #[test]
    fn the_rules_fault_replaces_the_services_and_limits_stack() {
        let whole = Arc::new(CompiledPolicy::compile(&policy(serde_json::json!({
            "rate_limits": [{"requests": 5}],
            "fault": {"abort": {"percent": 100, "http_status": 500}}
        }))));
        let mut r = policy(serde_json::json!({
            "id": "q", "rule": "canary", "rate_limits": [{"requests": 9}],
            "fault": {"abort": {"percent": 100, "http_status": 418}}
        }));
        r.id = "q".into();
        let ps = ServicePolicies {
            whole: Some(whole),
            rules: HashMap::from([("canary".to_string(), Arc::new(CompiledPolicy::compile(&r)))]),
        };
        assert_eq!(ps.acting(Some("canary")).count(), 2);
        assert_eq!(ps.acting(Some("other")).count(), 1);
        assert_eq!(ps.fault(Some("canary")).map(|f| f.0), Some("q"));
        assert_eq!(ps.fault(None).map(|f| f.0), Some("p"));
    }
}
