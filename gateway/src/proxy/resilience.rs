//! Stage "resilience": the resilience policies acting on a request (its service's and its
//! matched rule's, see [`crate::resilience`]), in this order:
//!
//! 1. rate limits, on both listeners, each gateway with its own buckets (a request from
//!    another cluster is counted under its verified source cluster) — 429 with
//!    `retry-after` when a bucket is empty; a mesh-wide limit on the outbound listener only,
//!    at this gateway's share;
//! 2. faults, on the outbound listener only (where the request enters the mesh, so it is
//!    faulted once): a delay, then an abort answered instead of forwarding;
//! 3. after the plan, the circuit breaker of the service the request is sent to: the request
//!    holds a slot until its response head arrives (503 `overflow` when none is free and no
//!    wait is allowed), taken once the body is read; per-cluster slots and retries are taken in `forward`.

use std::sync::Arc;

use http::HeaderMap;
use tokio::time::Instant;
use warden_federation::resilience::FAULT_HEADER;

use super::context::{Listener, ProxyCtx, RequestCtx, UNKNOWN};
use super::error::ProxyError;
use super::plan::Plan;
use crate::key::ServiceKey;
use crate::resilience::breaker::Admitted;
use crate::resilience::{CompiledPolicy, MirrorTarget, ServicePolicies};

/// Counts a policy's action on a request.
pub fn count(ctx: &ProxyCtx, service: &ServiceKey, policy: &str, action: &str) {
    ctx.metrics
        .resilience_actions
        .with_label_values(&[service.to_string().as_str(), policy, action])
        .inc();
}

/// The policies acting on one request, read from one load of the routing snapshot.
#[derive(Default)]
pub struct Acting {
    /// The policies of the service the request names (rate limits, faults).
    named: Option<Arc<ServicePolicies>>,
    /// The service-wide policy with a breaker of the service it is sent to.
    breaker: Option<Arc<CompiledPolicy>>,
}

impl Acting {
    /// For a request naming `key` that goes to `target` (a route backend's service, or `key`).
    pub fn load(ctx: &ProxyCtx, key: &ServiceKey, target: &ServiceKey) -> Self {
        let remote = ctx.tables.remote.load();
        if remote.resilience.is_empty() {
            return Self::default();
        }
        Self {
            named: remote.resilience.get(key).cloned(),
            breaker: remote
                .resilience
                .get(target)
                .and_then(|p| p.whole.clone())
                .filter(|p| p.breaker.is_some()),
        }
    }
}

impl Acting {
    /// The mirror in force for a request whose route matched `rule`.
    pub fn mirror(&self, rule: Option<&str>) -> Option<(&str, &MirrorTarget)> {
        self.named.as_deref()?.mirror(rule)
    }
}

/// Rate limits, then faults, for a request to `key` whose route matched `rule`.
pub async fn police(
    ctx: &ProxyCtx,
    rc: &RequestCtx,
    acting: &Acting,
    key: &ServiceKey,
    rule: Option<&str>,
    headers: &HeaderMap,
) -> Result<(), ProxyError> {
    let Some(policies) = acting.named.as_deref() else {
        return Ok(());
    };
    let source = rc.src_cluster.as_deref().unwrap_or(UNKNOWN);
    let now = Instant::now();
    let entering = rc.listener == Listener::Outbound;
    for p in policies.acting(rule) {
        // A mesh-wide limit is charged once: where the request enters the mesh.
        for l in p.limits.iter().filter(|l| entering || !l.mesh) {
            if let Err(e) = l.take(source, headers, now) {
                count(ctx, key, &p.source.id, "rate_limited");
                return Err(ProxyError::RateLimited {
                    service: key.to_string(),
                    policy: p.source.id.clone(),
                    limit: l.name.clone(),
                    requests: l.requests,
                    unit_secs: l.unit_secs,
                    burst: l.burst,
                    retry_after_ms: e.retry_after.as_millis() as u64,
                });
            }
        }
    }
    if rc.listener != Listener::Outbound {
        return Ok(());
    }
    let Some((policy, fault)) = policies.fault(rule) else {
        return Ok(());
    };
    let injected = fault
        .decide(source, headers.get(FAULT_HEADER), || {
            fastrand::u32(..1_000_000)
        })
        .map_err(|e| ProxyError::BadRequest {
            field: FAULT_HEADER,
            message: e.0,
        })?;
    if let Some(d) = injected.delay {
        count(ctx, key, policy, "fault_delay");
        tokio::time::sleep(d).await;
    }
    if let Some(a) = injected.abort {
        count(ctx, key, policy, "fault_abort");
        return Err(ProxyError::FaultAbort {
            policy: policy.to_string(),
            http: a.http,
            grpc: a.grpc,
        });
    }
    Ok(())
}

/// A slot under the service breaker of the planned service, held until dropped; the policy
/// goes to `plan.breaker` for the per-cluster and retry bounds.
pub async fn admit(
    ctx: &ProxyCtx,
    acting: Acting,
    plan: &mut Plan<'_>,
) -> Result<Option<Admitted>, ProxyError> {
    let Some(policy) = acting.breaker else {
        return Ok(None);
    };
    let admitted = match policy.breaker.as_ref().and_then(|b| b.service.as_ref()) {
        None => None,
        Some(gate) => match gate.admit(plan.overall).await {
            Ok(a) => Some(a),
            Err(bound) => {
                count(ctx, plan.key, &policy.source.id, "overflow");
                return Err(ProxyError::Overflow {
                    service: plan.key.to_string(),
                    policy: policy.source.id.clone(),
                    bound: bound.label(),
                });
            }
        },
    };
    plan.breaker = Some(policy);
    Ok(admitted)
}
