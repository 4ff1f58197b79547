//! JWT policies as the data path applies them: compiled once per change ([`CompiledJwt`]), and
//! [`verify`] — pure, given the key sets the JWKS actor has loaded (`control/jwks.rs`). A
//! token is checked against the provider its `iss` names: algorithm allow-listed (`none` never
//! parses), a known key id, signature, `exp`/`nbf` within the clock skew, issuer, audience.
//! The claim headers a policy sets are first removed from the caller's request, so they only
//! ever carry verified claims.

pub mod cache;
pub mod explain;

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use warden_federation::authn::{JwtAlgorithm, JwtPolicy};

/// Key sets by JWKS location (path or URL), as the JWKS actor last loaded them.
pub type KeySets = HashMap<String, Arc<JwkSet>>;

/// One provider, ready to check tokens.
#[derive(Debug)]
pub struct Provider {
    pub issuer: String,
    pub jwks: String,
    /// One validation per allowed algorithm (the crate checks the key's family against
    /// every algorithm a validation lists, so each lists exactly one).
    validations: Vec<(Algorithm, Validation)>,
    claim_headers: Vec<(String, HeaderName)>,
    forward_token: bool,
    leeway: u64,
}

/// A policy, compiled.
#[derive(Debug)]
pub struct CompiledJwt {
    pub source: JwtPolicy,
    pub providers: Vec<Provider>,
    /// Tokens this policy verified, with their claims.
    cache: cache::TokenCache,
}

fn algorithm(a: JwtAlgorithm) -> Algorithm {
    match a {
        JwtAlgorithm::RS256 => Algorithm::RS256,
        JwtAlgorithm::RS384 => Algorithm::RS384,
        JwtAlgorithm::RS512 => Algorithm::RS512,
        JwtAlgorithm::PS256 => Algorithm::PS256,
        JwtAlgorithm::PS384 => Algorithm::PS384,
        JwtAlgorithm::PS512 => Algorithm::PS512,
        JwtAlgorithm::ES256 => Algorithm::ES256,
        JwtAlgorithm::ES384 => Algorithm::ES384,
        JwtAlgorithm::EdDSA => Algorithm::EdDSA,
    }
}

impl CompiledJwt {
    pub fn compile(p: &JwtPolicy) -> Self {
        let providers = p
            .providers
            .iter()
            .map(|pr| {
                let validation = |alg: Algorithm| {
                    let mut v = Validation::new(alg);
                    v.set_issuer(&[pr.issuer.as_str()]);
                    if pr.audiences.is_empty() {
                        v.validate_aud = false;
                    } else {
                        v.set_audience(&pr.audiences);
                    }
                    v.leeway = pr.clock_skew_s;
                    v.validate_nbf = true;
                    (alg, v)
                };
                Provider {
                    issuer: pr.issuer.clone(),
                    jwks: pr.jwks.location().to_string(),
                    validations: pr
                        .algorithms
                        .iter()
                        .map(|a| validation(algorithm(*a)))
                        .collect(),
                    claim_headers: pr
                        .claims_to_headers
                        .iter()
                        .filter_map(|c| {
                            let h =
                                HeaderName::from_bytes(c.header.to_ascii_lowercase().as_bytes());
                            Some((c.claim.clone(), h.ok()?))
                        })
                        .collect(),
                    forward_token: pr.forward_token,
                    leeway: pr.clock_skew_s,
                }
            })
            .collect();
        Self {
            source: p.clone(),
            providers,
            cache: cache::TokenCache::default(),
        }
    }
}

/// The JWT policies of one service: its own and its route rules'.
#[derive(Debug, Default)]
pub struct ServiceJwt {
    pub whole: Option<Arc<CompiledJwt>>,
    pub rules: HashMap<String, Arc<CompiledJwt>>,
}

/// Why a request was refused (`error_description` in `www-authenticate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No token, and the policy requires one.
    Missing,
    /// A token that does not verify; `refresh` names a key set to fetch again (a key id it
    /// does not have).
    Invalid {
        why: String,
        refresh: Option<String>,
    },
}

fn invalid(why: impl Into<String>) -> Refused {
    Refused::Invalid {
        why: why.into(),
        refresh: None,
    }
}

/// The bearer token of an `authorization` value, if it is one.
fn bearer(v: &HeaderValue) -> Option<&str> {
    let v = v.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The `iss` of a token, read before its signature is checked (only to pick the provider).
fn issuer_of(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    #[derive(serde::Deserialize)]
    struct Iss {
        iss: String,
    }
    serde_json::from_slice::<Iss>(&bytes).ok().map(|i| i.iss)
}

fn claim_value(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Array(a) => {
            let parts: Option<Vec<String>> = a
                .iter()
                .map(|x| match x {
                    serde_json::Value::Array(_) | serde_json::Value::Object(_) => None,
                    other => claim_value(other),
                })
                .collect();
            Some(parts?.join(","))
        }
        _ => None,
    }
}

pub use cache::Claims;

/// The headers `pr` sets from `claims`.
fn claim_headers(pr: &Provider, claims: &Claims) -> Vec<(HeaderName, HeaderValue)> {
    pr.claim_headers
        .iter()
        .filter_map(|(claim, h)| {
            let v = claims.get(claim).and_then(claim_value)?;
            Some((h.clone(), HeaderValue::from_str(&v).ok()?))
        })
        .collect()
}

/// Sets the claim headers, and puts the token back when `pr` forwards it.
fn admit(
    pr: &Provider,
    set: &[(HeaderName, HeaderValue)],
    token: HeaderValue,
    headers: &mut HeaderMap,
) {
    for (h, v) in set {
        headers.insert(h.clone(), v.clone());
    }
    if pr.forward_token {
        headers.insert(http::header::AUTHORIZATION, token);
    }
}

/// Checks the request `headers` against policy `p` with the loaded `keys`; on success sets
/// the claim headers (and drops `authorization` unless the provider forwards it) and answers
/// the claims (`None`: no token, and none required).
pub fn verify(
    p: &CompiledJwt,
    headers: &mut HeaderMap,
    keys: &KeySets,
) -> Result<Option<Arc<Claims>>, Refused> {
    for pr in &p.providers {
        for (_, h) in &pr.claim_headers {
            headers.remove(h);
        }
    }
    // Taken out (not copied); put back only for a provider that forwards it.
    let value = headers.remove(http::header::AUTHORIZATION);
    let Some(token) = value.as_ref().and_then(bearer) else {
        return match (p.source.require, value) {
            (true, _) => Err(Refused::Missing),
            (false, v) => {
                if let Some(v) = v {
                    headers.insert(http::header::AUTHORIZATION, v);
                }
                Ok(None)
            }
        };
    };
    let current = |i: usize| {
        let pr: &Provider = p.providers.get(i)?;
        Some((keys.get(&pr.jwks)?.clone(), pr.leeway))
    };
    if let Some(hit) = p.cache.get(token, current)
        && let Some(pr) = p.providers.get(hit.provider)
    {
        let value = value.clone().unwrap_or(HeaderValue::from_static(""));
        admit(pr, &hit.headers, value, headers);
        return Ok(Some(hit.claims));
    }
    let header = jsonwebtoken::decode_header(token)
        .map_err(|e| invalid(format!("not a usable JWT: {e}")))?;
    let iss = issuer_of(token).ok_or_else(|| invalid("the token names no issuer"))?;
    let (index, pr) = p
        .providers
        .iter()
        .enumerate()
        .find(|(_, pr)| pr.issuer == iss)
        .ok_or_else(|| invalid("the token's issuer is not accepted"))?;
    let validation = pr
        .validations
        .iter()
        .find(|(a, _)| *a == header.alg)
        .map(|(_, v)| v)
        .ok_or_else(|| invalid(format!("algorithm {:?} is not accepted", header.alg)))?;
    let want = || Refused::Invalid {
        why: "the token's key is not known".into(),
        refresh: Some(pr.jwks.clone()),
    };
    let set = keys.get(&pr.jwks).ok_or_else(want)?;
    let jwk = match &header.kid {
        Some(kid) => set.find(kid).ok_or_else(want)?,
        None if set.keys.len() == 1 => &set.keys[0],
        None => return Err(invalid("the token names no key id")),
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|e| invalid(format!("unusable key: {e}")))?;
    let data = jsonwebtoken::decode::<Claims>(token, &key, validation)
        .map_err(|e| invalid(e.to_string()))?;
    let claims = Arc::new(data.claims);
    let set_headers: Arc<[(HeaderName, HeaderValue)]> = claim_headers(pr, &claims).into();
    let token_value = value.clone().unwrap_or(HeaderValue::from_static(""));
    admit(pr, &set_headers, token_value, headers);
    p.cache
        .put(token, index, set.clone(), claims.clone(), set_headers);
    Ok(Some(claims))
}

#[cfg(test)]
mod tests;
