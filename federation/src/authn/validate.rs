//! The checks a JWT policy passes before it is proposed; each error names its field.

use std::collections::BTreeSet;

use super::types::{JwksSource, JwtPolicy};
use crate::model::{FieldError, validate_dns_label, validate_service_ref};

const MAX_PROVIDERS: usize = 8;
const MAX_CLAIM_HEADERS: usize = 16;
const MAX_TEXT: usize = 2048;

fn err(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError::new(field, message)
}

fn text(field: &str, v: &str) -> Result<(), FieldError> {
    if v.is_empty() || v.len() > MAX_TEXT || v.chars().any(char::is_control) {
        return Err(err(field, format!("1-{MAX_TEXT} printable characters")));
    }
    Ok(())
}

/// Checks a policy; the error names the field at fault, e.g. `providers[0].jwks.url`.
pub fn validate(p: &JwtPolicy) -> Result<(), FieldError> {
    validate_dns_label("id", &p.id)?;
    validate_service_ref("service", &p.service)?;
    if let Some(rule) = &p.rule {
        validate_dns_label("rule", rule)?;
    }
    if p.providers.is_empty() || p.providers.len() > MAX_PROVIDERS {
        return Err(err("providers", format!("1-{MAX_PROVIDERS} providers")));
    }
    let mut issuers = BTreeSet::new();
    for (i, pr) in p.providers.iter().enumerate() {
        let f = format!("providers[{i}]");
        text(&format!("{f}.issuer"), &pr.issuer)?;
        if !issuers.insert(&pr.issuer) {
            return Err(err(format!("{f}.issuer"), "named by another provider"));
        }
        for (j, a) in pr.audiences.iter().enumerate() {
            text(&format!("{f}.audiences[{j}]"), a)?;
        }
        if pr.algorithms.is_empty() {
            return Err(err(format!("{f}.algorithms"), "name at least one"));
        }
        if pr.clock_skew_s > 600 {
            return Err(err(format!("{f}.clock_skew_s"), "must be 0-600"));
        }
        if !(1..=86_400).contains(&pr.jwks.refresh_s()) {
            return Err(err(format!("{f}.jwks.refresh_s"), "must be 1-86400"));
        }
        match &pr.jwks {
            JwksSource::File { path, .. } => {
                if !path.starts_with('/') || path.len() > MAX_TEXT {
                    return Err(err(format!("{f}.jwks.path"), "an absolute path"));
                }
            }
            JwksSource::Url {
                url, ca_bundle_pem, ..
            } => {
                let ok = url
                    .parse::<http::Uri>()
                    .ok()
                    .is_some_and(|u| u.scheme_str() == Some("https") && u.host().is_some());
                if !ok || url.len() > MAX_TEXT {
                    return Err(err(format!("{f}.jwks.url"), "an https:// URL"));
                }
                if let Some(pem) = ca_bundle_pem {
                    crate::model::validate_ca_bundle(&format!("{f}.jwks.ca_bundle_pem"), pem)?;
                }
            }
        }
        if pr.claims_to_headers.len() > MAX_CLAIM_HEADERS {
            return Err(err(
                format!("{f}.claims_to_headers"),
                format!("at most {MAX_CLAIM_HEADERS}"),
            ));
        }
        for (j, c) in pr.claims_to_headers.iter().enumerate() {
            let g = format!("{f}.claims_to_headers[{j}]");
            text(&format!("{g}.claim"), &c.claim)?;
            let name = c.header.to_ascii_lowercase();
            if http::HeaderName::from_bytes(name.as_bytes()).is_err()
                || name.starts_with("x-warden-")
                || matches!(
                    name.as_str(),
                    "host" | "authorization" | "connection" | "te"
                )
            {
                return Err(err(
                    format!("{g}.header"),
                    "an HTTP header name that is not host, authorization, connection, te or x-warden-*",
                ));
            }
        }
    }
    Ok(())
}
