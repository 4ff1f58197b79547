//! The JWT policy objects (see the module above).

use serde::{Deserialize, Serialize};

/// Tokens required of one service's requests, or of those a rule of its route matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JwtPolicy {
    /// DNS label, unique.
    pub id: String,
    /// `namespace/service` whose requests need a token.
    pub service: String,
    /// The name of a rule of the service's route: only requests that rule matched. Absent:
    /// every request of the service, checked before the route is matched (so claim headers
    /// can be matched on). At most one policy per (service, rule).
    #[serde(default)]
    pub rule: Option<String>,
    /// 1–8 accepted issuers; a token is checked against the one its `iss` names.
    pub providers: Vec<JwtProvider>,
    /// A request without a token is refused (default true); when false it passes without
    /// claims, and a token that is present must still be valid.
    #[serde(default = "JwtPolicy::default_require")]
    pub require: bool,
    #[serde(default)]
    pub updated_at: u64,
}

impl JwtPolicy {
    fn default_require() -> bool {
        true
    }

    /// What the policy is attached to, for messages.
    pub fn scope(&self) -> String {
        match &self.rule {
            Some(r) => format!("{} rule {r:?}", self.service),
            None => self.service.clone(),
        }
    }
}

/// One issuer and how its tokens are checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JwtProvider {
    /// The token's `iss`, exactly.
    pub issuer: String,
    /// The token's `aud` must name one of these (empty: any audience, or none).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Where the signing keys are.
    pub jwks: JwksSource,
    /// Algorithms accepted (default RS256 and ES256); `none` is not an algorithm here.
    #[serde(default = "JwtProvider::default_algorithms")]
    pub algorithms: Vec<JwtAlgorithm>,
    /// Leeway for `exp` and `nbf`, 0–600 s (default 60).
    #[serde(default = "JwtProvider::default_skew")]
    pub clock_skew_s: u64,
    /// Verified claims set as request headers (at most 16). A header named here is always
    /// removed from the caller's request first, so it can only carry a verified claim.
    #[serde(default)]
    pub claims_to_headers: Vec<ClaimToHeader>,
    /// Keep the `authorization` header for the backend (default false: it is removed once
    /// verified).
    #[serde(default)]
    pub forward_token: bool,
}

impl JwtProvider {
    fn default_algorithms() -> Vec<JwtAlgorithm> {
        vec![JwtAlgorithm::RS256, JwtAlgorithm::ES256]
    }
    fn default_skew() -> u64 {
        60
    }
}

/// A JWKS (RFC 7517 key set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum JwksSource {
    /// A file on every gateway, read again every `refresh_s`.
    File {
        path: String,
        #[serde(default = "JwksSource::default_refresh")]
        refresh_s: u64,
    },
    /// An `https` URL, fetched by each gateway's JWKS actor (never on the request path) every
    /// `refresh_s` (1–86,400, default 300), and again when a token names a key it does not
    /// have (at most every 5 s). A failed fetch keeps the keys it had, and is retried with
    /// backoff (1 s doubling to 5 min).
    Url {
        url: String,
        #[serde(default = "JwksSource::default_refresh")]
        refresh_s: u64,
        /// CA certificates (PEM) to verify the server with; the system's roots when absent.
        #[serde(default)]
        ca_bundle_pem: Option<String>,
    },
}

impl JwksSource {
    fn default_refresh() -> u64 {
        300
    }

    /// The source's identity: the path or URL.
    pub fn location(&self) -> &str {
        match self {
            JwksSource::File { path, .. } => path,
            JwksSource::Url { url, .. } => url,
        }
    }

    pub fn refresh_s(&self) -> u64 {
        match self {
            JwksSource::File { refresh_s, .. } | JwksSource::Url { refresh_s, .. } => *refresh_s,
        }
    }
}

/// A signing algorithm a provider accepts (asymmetric only: a shared secret would have to be
/// stored in the federation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[allow(clippy::upper_case_acronyms)]
pub enum JwtAlgorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

/// One claim copied into a request header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimToHeader {
    /// A top-level claim name (a string, number or boolean; an array of them is joined with `,`).
    pub claim: String,
    pub header: String,
}
