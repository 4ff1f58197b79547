//! SPIFFE IDs: `spiffe://<trust-domain>/<path>`, for workloads `.../ns/<ns>/sa/<sa>`.

use std::fmt;
use std::str::FromStr;

use super::TrustError;

/// A parsed SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpiffeId {
    pub trust_domain: String,
    /// Begins with `/` (or is empty for the trust domain itself).
    pub path: String,
}

impl SpiffeId {
    /// `spiffe://<td>/ns/<ns>/sa/<sa>`.
    pub fn workload(
        trust_domain: &str,
        namespace: &str,
        service_account: &str,
    ) -> Result<Self, TrustError> {
        format!("spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}").parse()
    }
}

/// The SPIFFE ID a connection's client proved with a verified certificate, if it presented
/// one: attached to each request of that connection (the API's admin identities use it).
#[derive(Debug, Clone)]
pub struct PeerIdentity(pub Option<String>);

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spiffe://{}{}", self.trust_domain, self.path)
    }
}

impl FromStr for SpiffeId {
    type Err = TrustError;

    fn from_str(s: &str) -> Result<Self, TrustError> {
        let bad = |reason| TrustError::BadSpiffeId {
            id: s.to_string(),
            reason,
        };
        let rest = s
            .strip_prefix("spiffe://")
            .ok_or_else(|| bad("must start with spiffe://"))?;
        let (td, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if td.is_empty() || td.len() > 255 {
            return Err(bad("empty or overlong trust domain"));
        }
        if !td.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.' || b == b'_'
        }) {
            return Err(bad(
                "trust domain must be lowercase letters, digits, '-', '.', '_'",
            ));
        }
        if path.ends_with('/')
            || path.contains("//")
            || path.split('/').any(|seg| seg == "." || seg == "..")
        {
            return Err(bad("path segments must be non-empty and not . or .."));
        }
        if s.contains(['?', '#']) {
            return Err(bad("no query or fragment allowed"));
        }
        Ok(SpiffeId {
            trust_domain: td.to_string(),
            path: path.to_string(),
        })
    }
}

/// The SPIFFE ID in a certificate's URI SANs. A SPIFFE SVID carries exactly one.
pub fn spiffe_id_of(cert_der: &[u8]) -> Result<SpiffeId, TrustError> {
    use x509_parser::prelude::*;
    let (_, cert) =
        X509Certificate::from_der(cert_der).map_err(|e| TrustError::Certificate(e.to_string()))?;
    let mut ids = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::URI(uri) = name
                && uri.starts_with("spiffe://")
            {
                ids.push(uri.parse::<SpiffeId>()?);
            }
        }
    }
    match ids.len() {
        1 => Ok(ids.remove(0)),
        0 => Err(TrustError::Certificate("no spiffe:// URI SAN".into())),
        _ => Err(TrustError::Certificate(
            "more than one spiffe:// URI SAN".into(),
        )),
    }
}

/// A certificate's validity window, in seconds since the Unix epoch.
pub fn validity(cert_der: &[u8]) -> Result<(i64, i64), TrustError> {
    use x509_parser::prelude::*;
    let (_, cert) =
        X509Certificate::from_der(cert_der).map_err(|e| TrustError::Certificate(e.to_string()))?;
    let v = cert.validity();
    Ok((v.not_before.timestamp(), v.not_after.timestamp()))
}

/// The first certificate of a PEM chain, as DER.
pub fn first_cert_der(pem: &str) -> Result<Vec<u8>, TrustError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .ok_or_else(|| TrustError::Pem("no certificate".into()))?
        .map(|c| c.to_vec())
        .map_err(|e| TrustError::Pem(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let id: SpiffeId = "spiffe://east.example/ns/shop/sa/cart".parse().unwrap();
        assert_eq!(id.trust_domain, "east.example");
        assert_eq!(id.path, "/ns/shop/sa/cart");
        assert_eq!(id.to_string(), "spiffe://east.example/ns/shop/sa/cart");
        for bad in [
            "http://x/y",
            "spiffe://",
            "spiffe://East/x",
            "spiffe://td/a//b",
            "spiffe://td/a/",
            "spiffe://td/../x",
            "spiffe://td/x?y",
        ] {
            assert!(bad.parse::<SpiffeId>().is_err(), "{bad}");
        }
    }
}
