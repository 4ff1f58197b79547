//! Stage "authenticate": a JWT policy of the service (before its route is matched, so claim
//! headers can be matched on) or of the matched rule (after) checks the request's bearer token
//! on the outbound listener, where the request enters the mesh; 401 with `www-authenticate`
//! otherwise. Keys come from the JWKS actor's last load, never fetched here: a token naming a
//! key it does not have asks the actor to fetch its key set again.

use http::request::Parts;

use super::context::{Listener, ProxyCtx, RequestCtx};
use super::error::ProxyError;
use crate::authn::{Refused, verify};
use crate::key::ServiceKey;

/// Checks `head` against the JWT policy of `key` (`rule`: of that rule of its route; `None`:
/// the service's own).
pub fn authenticate(
    ctx: &ProxyCtx,
    rc: &mut RequestCtx,
    key: &ServiceKey,
    rule: Option<&str>,
    head: &mut Parts,
) -> Result<(), ProxyError> {
    if rc.listener != Listener::Outbound {
        return Ok(());
    }
    let remote = ctx.tables.remote.load();
    let Some(policies) = remote.jwt.get(key) else {
        return Ok(());
    };
    let policy = match rule {
        None => policies.whole.as_ref(),
        Some(r) => policies.rules.get(r),
    };
    let Some(p) = policy else {
        return Ok(());
    };
    let keys = ctx.tables.jwks.load();
    let refused = match verify(p, &mut head.headers, &keys) {
        Ok(claims) => {
            if let Some(c) = claims {
                rc.claims = Some(c);
            }
            return Ok(());
        }
        Err(r) => r,
    };
    let (why, presented) = match refused {
        Refused::Missing => ("no bearer token".to_string(), false),
        Refused::Invalid { why, refresh } => {
            if let Some(location) = refresh {
                let mut wanted = match ctx.tables.jwks_wanted.lock() {
                    Ok(w) => w,
                    Err(e) => e.into_inner(),
                };
                wanted.insert(location);
            }
            (why, true)
        }
    };
    super::resilience::count(ctx, key, &p.source.id, "jwt_refused");
    Err(ProxyError::Unauthenticated {
        service: key.to_string(),
        policy: p.source.id.clone(),
        why,
        presented,
    })
}
