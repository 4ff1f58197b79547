//! Tokens already verified, so a client sending the same token again costs a lookup instead
//! of a signature check (Envoy's JWT cache does the same). An entry is the exact token, the
//! provider and key set it verified against, and its claims; a hit is taken only while the
//! key set is the very one (a reloaded or rotated set misses) and the token's `exp`/`nbf` still
//! hold. Bounded: at most [`MAX_ENTRIES`] per policy; when full, expired entries go, and if none
//! has, nothing more is cached.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

use http::{HeaderName, HeaderValue};
use jsonwebtoken::jwk::JwkSet;

pub const MAX_ENTRIES: usize = 4096;

/// A verified token's claims.
pub type Claims = serde_json::Map<String, serde_json::Value>;

struct Entry {
    token: Box<str>,
    provider: usize,
    keys: Arc<JwkSet>,
    exp: u64,
    nbf: Option<u64>,
    claims: Arc<Claims>,
    headers: Arc<[(HeaderName, HeaderValue)]>,
}

/// One policy's verified tokens.
#[derive(Default)]
pub struct TokenCache {
    hasher: RandomState,
    entries: Mutex<HashMap<u64, Entry>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").finish_non_exhaustive()
    }
}

/// A cache hit: which provider verified the token, and its claims.
pub struct Hit {
    pub provider: usize,
    pub claims: Arc<Claims>,
    /// The claim headers, made when the token was verified.
    pub headers: Arc<[(HeaderName, HeaderValue)]>,
}

/// The map key: a hash of the token's last bytes (its signature's, for a verified token: not
/// chosen by a caller). The whole token is compared on a hit.
fn tail(token: &str) -> &[u8] {
    let b = token.as_bytes();
    &b[b.len().saturating_sub(32)..]
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl TokenCache {
    /// The entry for `token`, if it verified against the key set `current` gives for its
    /// provider and is still within its time bounds (`leeway` of the provider).
    pub fn get(
        &self,
        token: &str,
        current: impl Fn(usize) -> Option<(Arc<JwkSet>, u64)>,
    ) -> Option<Hit> {
        let h = self.hasher.hash_one(tail(token));
        let m = self.entries.lock().ok()?;
        let e = m.get(&h).filter(|e| &*e.token == token)?;
        let (keys, leeway) = current(e.provider)?;
        let now = now_s();
        let fresh = Arc::ptr_eq(&keys, &e.keys)
            && now <= e.exp.saturating_add(leeway)
            && e.nbf.is_none_or(|n| n <= now.saturating_add(leeway));
        fresh.then(|| Hit {
            provider: e.provider,
            claims: e.claims.clone(),
            headers: e.headers.clone(),
        })
    }

    /// Remembers a token that verified against `keys` for `provider`.
    pub fn put(
        &self,
        token: &str,
        provider: usize,
        keys: Arc<JwkSet>,
        claims: Arc<Claims>,
        headers: Arc<[(HeaderName, HeaderValue)]>,
    ) {
        let Some(exp) = claims.get("exp").and_then(|v| v.as_u64()) else {
            return;
        };
        let nbf = claims.get("nbf").and_then(|v| v.as_u64());
        let Ok(mut m) = self.entries.lock() else {
            return;
        };
        if m.len() >= MAX_ENTRIES {
            let now = now_s();
            m.retain(|_, e| e.exp >= now);
            if m.len() >= MAX_ENTRIES {
                return;
            }
        }
        m.insert(
            self.hasher.hash_one(tail(token)),
            Entry {
                token: token.into(),
                provider,
                keys,
                exp,
                nbf,
                claims,
                headers,
            },
        );
    }
}
