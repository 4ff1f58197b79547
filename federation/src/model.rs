//! The federation's domain types and their validation.
//!
//! Everything here is plain data: what a cluster, an exported service and a trust bundle are,
//! and the rules a value must meet before it may be proposed to Raft. Validation errors name
//! the offending field so the API can answer 400 with it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A registered cluster: where its east-west gateway is and which trust domain it speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Cluster {
    /// DNS label, unique in the federation.
    pub name: String,
    pub region: String,
    pub zone: String,
    /// Clusters on the same network can reach each other's endpoints directly (later issues).
    pub network: String,
    /// `host:port` of the cluster's east-west gateway listener.
    pub gateway: String,
    pub trust_domain: String,
    pub labels: BTreeMap<String, String>,
    /// Milliseconds since the Unix epoch, stamped by the proposer.
    pub registered_at: u64,
}

/// Application protocol of an exported port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Http,
    Http2,
    Grpc,
    Tcp,
}

/// One port of an exported service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServicePort {
    pub name: String,
    pub port: u16,
    pub protocol: Protocol,
}

/// A service a cluster offers to the others. Only counts cross clusters, never pod addresses:
/// remote callers reach the service through the exporting cluster's gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServiceExport {
    pub cluster: String,
    pub namespace: String,
    pub service: String,
    pub ports: Vec<ServicePort>,
    pub healthy_endpoints: u32,
    /// Relative weight of this cluster's copy in cross-cluster splits.
    pub weight: u32,
    pub updated_at: u64,
}

/// How many of an export's endpoints carry one set of labels and are healthy: what lets
/// another cluster's gateway send a route's subset (e.g. `version=v2`) only where that subset
/// can serve. Published by the exporting gateway with every export update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubsetHealth {
    /// The endpoints' labels (empty for endpoints without labels).
    pub labels: BTreeMap<String, String>,
    pub healthy_endpoints: u32,
}

/// At most this many label sets per export; at most [`MAX_SUBSET_LABELS`] labels in each.
pub const MAX_SUBSETS: usize = 32;
/// Labels in one published label set.
pub const MAX_SUBSET_LABELS: usize = 16;

/// Checks the label sets published with an export.
pub fn validate_subsets(field: &str, subsets: &[SubsetHealth]) -> Result<(), FieldError> {
    if subsets.len() > MAX_SUBSETS {
        return Err(FieldError::new(
            field,
            format!("at most {MAX_SUBSETS} label sets"),
        ));
    }
    for (i, s) in subsets.iter().enumerate() {
        let f = format!("{field}[{i}].labels");
        validate_labels(&f, &s.labels, MAX_SUBSET_LABELS)?;
        for (k, v) in &s.labels {
            validate_label_value(&format!("{f}.{k}"), v)?;
        }
    }
    Ok(())
}

/// Healthy endpoints of `subsets` whose labels hold every pair of `selector`; with an empty
/// selector, all of them.
pub fn healthy_in(subsets: &[SubsetHealth], selector: &BTreeMap<String, String>) -> u32 {
    subsets
        .iter()
        .filter(|s| selector.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| s.healthy_endpoints)
        .fold(0u32, u32::saturating_add)
}

/// The CA certificates accepted for one trust domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrustBundle {
    pub trust_domain: String,
    pub ca_bundle_pem: String,
    /// Starts at 1 and grows by one with every update.
    pub version: u64,
    pub updated_at: u64,
}

/// A cluster's liveness lease: its gateway renews it; once `renewed_at + ttl_ms` has passed,
/// gateways stop sending to the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Lease {
    pub cluster: String,
    pub renewed_at: u64,
    pub ttl_ms: u64,
    /// Trust bundle versions the cluster's gateway has loaded, by trust domain: how a staged
    /// CA rotation knows every cluster is ready for the next step.
    #[serde(default)]
    pub trust_versions: BTreeMap<String, u64>,
}

/// How a service's traffic is spread across clusters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrafficPolicy {
    /// DNS label, unique.
    pub id: String,
    /// `namespace/service` this policy applies to.
    pub service: String,
    /// Explicit failover order of clusters (replaces locality priorities).
    pub failover_order: Vec<String>,
    /// Cross-cluster weights, e.g. `{"east": 80, "west": 20}`.
    pub weights: BTreeMap<String, u32>,
    /// Overrides the gateway's overprovisioning factor (percent, 100–1000).
    pub overprovisioning_percent: Option<u32>,
    /// Cap (percent) on the share of a cluster's traffic that may leave it while it can serve.
    pub max_egress_percent: Option<u32>,
    pub updated_at: u64,
}

impl TrafficPolicy {
    pub fn validate(&self) -> Result<(), FieldError> {
        validate_dns_label("id", &self.id)?;
        validate_service_ref("service", &self.service)?;
        for (i, c) in self.failover_order.iter().enumerate() {
            validate_dns_label(&format!("failover_order[{i}]"), c)?;
        }
        if self.weights.len() > 64 {
            return Err(FieldError::new("weights", "at most 64 clusters"));
        }
        for (c, w) in &self.weights {
            validate_dns_label(&format!("weights.{c}"), c)?;
            if *w > 10_000 {
                return Err(FieldError::new(format!("weights.{c}"), "must be 0-10000"));
            }
        }
        if !self.weights.is_empty() && self.weights.values().all(|w| *w == 0) {
            return Err(FieldError::new(
                "weights",
                "at least one weight must be > 0",
            ));
        }
        if let Some(o) = self.overprovisioning_percent
            && !(100..=1000).contains(&o)
        {
            return Err(FieldError::new(
                "overprovisioning_percent",
                "must be 100-1000",
            ));
        }
        if let Some(m) = self.max_egress_percent
            && m > 100
        {
            return Err(FieldError::new("max_egress_percent", "must be 0-100"));
        }
        Ok(())
    }
}

/// A single-use, expiring credential that lets a new cluster register itself. Only the hash of
/// its secret is stored (and replicated); the secret is shown once, to the admin who made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinToken {
    pub id: String,
    /// Hex SHA-256 of the secret.
    pub secret_sha256: String,
    pub created_at: u64,
    pub expires_at: u64,
    /// The cluster that used it; a used token is never accepted again.
    pub used_by: Option<String>,
}

/// A cluster's own API credential: only the hash of its secret is stored (and replicated);
/// the token is shown once, to whoever registered the cluster or issued it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterCredential {
    /// Hex SHA-256 of the secret.
    pub secret_sha256: String,
    pub issued_at: u64,
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuthzAction {
    Allow,
    Deny,
}

/// Who a security policy matches: any listed trust domain, SPIFFE ID or source cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthzSources {
    #[serde(default)]
    pub trust_domains: Vec<String>,
    #[serde(default)]
    pub spiffe_ids: Vec<String>,
    #[serde(default)]
    pub clusters: Vec<String>,
}

/// An authorization policy: callers from other clusters to `service` are allowed or denied.
/// A matching deny wins; if any allow policy exists for a service, only matching callers get
/// in; with none, the gateway's configured default applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SecurityPolicy {
    pub id: String,
    /// `namespace/service`.
    pub service: String,
    pub action: AuthzAction,
    pub sources: AuthzSources,
    pub updated_at: u64,
}

impl SecurityPolicy {
    pub fn validate(&self) -> Result<(), FieldError> {
        validate_dns_label("id", &self.id)?;
        validate_service_ref("service", &self.service)?;
        let s = &self.sources;
        if s.trust_domains.is_empty() && s.spiffe_ids.is_empty() && s.clusters.is_empty() {
            return Err(FieldError::new(
                "sources",
                "name at least one trust domain, SPIFFE ID or cluster",
            ));
        }
        for (i, td) in s.trust_domains.iter().enumerate() {
            validate_dns_name(&format!("sources.trust_domains[{i}]"), td)?;
        }
        for (i, id) in s.spiffe_ids.iter().enumerate() {
            if !id.starts_with("spiffe://") || id.len() > 2048 {
                return Err(FieldError::new(
                    format!("sources.spiffe_ids[{i}]"),
                    "must be a spiffe:// URI",
                ));
            }
        }
        for (i, c) in s.clusters.iter().enumerate() {
            validate_dns_label(&format!("sources.clusters[{i}]"), c)?;
        }
        Ok(())
    }
}

/// A value that failed validation: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// `v`, when set, is within `lo..=hi`.
pub fn validate_range<T: PartialOrd + std::fmt::Display + Copy>(
    field: &str,
    v: Option<T>,
    lo: T,
    hi: T,
) -> Result<(), FieldError> {
    match v {
        Some(v) if v < lo || v > hi => Err(FieldError::new(field, format!("must be {lo}-{hi}"))),
        _ => Ok(()),
    }
}

/// RFC 1123 label: 1–63 of `[a-z0-9-]`, starting and ending with an alphanumeric.
/// `namespace/service`, both DNS labels.
pub fn validate_service_ref(field: &str, v: &str) -> Result<(), FieldError> {
    let Some((ns, svc)) = v.split_once('/') else {
        return Err(FieldError::new(field, "must be namespace/service"));
    };
    validate_dns_label(field, ns)?;
    validate_dns_label(field, svc)
}

pub fn validate_dns_label(field: &str, v: &str) -> Result<(), FieldError> {
    let ok = !v.is_empty()
        && v.len() <= 63
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !v.starts_with('-')
        && !v.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!(
                "{v:?} is not a DNS label (1-63 lowercase letters, digits or '-', starting and ending with a letter or digit)"
            ),
        ))
    }
}

/// A DNS name: dot-separated labels, at most 253 characters.
pub fn validate_dns_name(field: &str, v: &str) -> Result<(), FieldError> {
    if v.is_empty() || v.len() > 253 {
        return Err(FieldError::new(field, format!("{v:?} is not a DNS name")));
    }
    for label in v.split('.') {
        validate_dns_label(field, label)
            .map_err(|_| FieldError::new(field, format!("{v:?} is not a DNS name")))?;
    }
    Ok(())
}

/// `host:port` where host is an IP address or a DNS name and port is 1–65535.
pub fn validate_host_port(field: &str, v: &str) -> Result<(), FieldError> {
    if let Ok(addr) = v.parse::<std::net::SocketAddr>() {
        if addr.port() == 0 {
            return Err(FieldError::new(field, "port must be 1-65535"));
        }
        return Ok(());
    }
    let bad = || FieldError::new(field, format!("{v:?} is not host:port"));
    let (host, port) = v.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if port == 0 {
        return Err(FieldError::new(field, "port must be 1-65535"));
    }
    validate_dns_name(field, host).map_err(|_| bad())
}

/// At least one PEM certificate, each of which parses as an X.509 trust anchor.
pub fn validate_ca_bundle(field: &str, pem: &str) -> Result<(), FieldError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| FieldError::new(field, format!("PEM does not parse: {e}")))?;
        webpki::anchor_from_trusted_cert(&cert).map_err(|e| {
            FieldError::new(
                field,
                format!("certificate {} is not a valid X.509 CA: {e}", count + 1),
            )
        })?;
        count += 1;
    }
    if count == 0 {
        return Err(FieldError::new(field, "no PEM CERTIFICATE block found"));
    }
    Ok(())
}

/// Label keys (1-253 of `[A-Za-z0-9-_./]`) and values (at most 63 characters), at most `max`
/// of them; errors name `<field>.<key>`.
pub fn validate_labels(
    field: &str,
    labels: &BTreeMap<String, String>,
    max: usize,
) -> Result<(), FieldError> {
    if labels.len() > max {
        return Err(FieldError::new(field, format!("at most {max} labels")));
    }
    for (k, v) in labels {
        let f = format!("{field}.{k}");
        let key_ok = !k.is_empty()
            && k.len() <= 253
            && k.bytes().all(|b| {
                b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' || b == b'/'
            });
        if !key_ok {
            return Err(FieldError::new(
                f,
                "label keys are 1-253 characters of [A-Za-z0-9-_./]",
            ));
        }
        if v.len() > 63 {
            return Err(FieldError::new(f, "label values are at most 63 characters"));
        }
    }
    Ok(())
}

pub(crate) fn validate_label_value(field: &str, v: &str) -> Result<(), FieldError> {
    let ok = !v.is_empty()
        && v.len() <= 63
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("{v:?} must be 1-63 characters of [A-Za-z0-9-_.]"),
        ))
    }
}

impl Cluster {
    /// Builds and validates a cluster from registration fields, stamped `registered_at`; a CA
    /// bundle given with it must parse too.
    #[allow(clippy::too_many_arguments)]
    pub fn registration(
        name: String,
        region: String,
        zone: String,
        network: String,
        gateway: String,
        trust_domain: String,
        labels: BTreeMap<String, String>,
        registered_at: u64,
        ca_bundle_pem: Option<&str>,
    ) -> Result<Self, FieldError> {
        let c = Cluster {
            name,
            region,
            zone,
            network,
            gateway,
            trust_domain,
            labels,
            registered_at,
        };
        c.validate()?;
        if let Some(pem) = ca_bundle_pem {
            validate_ca_bundle("ca_bundle_pem", pem)?;
        }
        Ok(c)
    }

    /// Checks every field; the first bad one is reported.
    pub fn validate(&self) -> Result<(), FieldError> {
        validate_dns_label("name", &self.name)?;
        validate_label_value("region", &self.region)?;
        validate_label_value("zone", &self.zone)?;
        validate_label_value("network", &self.network)?;
        validate_host_port("gateway", &self.gateway)?;
        validate_dns_name("trust_domain", &self.trust_domain)?;
        validate_labels("labels", &self.labels, 64)?;
        Ok(())
    }
}

impl ServiceExport {
    /// Checks names, ports and weight.
    pub fn validate(&self) -> Result<(), FieldError> {
        validate_dns_label("cluster", &self.cluster)?;
        validate_dns_label("namespace", &self.namespace)?;
        validate_dns_label("service", &self.service)?;
        if self.ports.is_empty() {
            return Err(FieldError::new("ports", "at least one port is required"));
        }
        if self.ports.len() > 64 {
            return Err(FieldError::new("ports", "at most 64 ports"));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, p) in self.ports.iter().enumerate() {
            validate_dns_label(&format!("ports[{i}].name"), &p.name)?;
            if p.port == 0 {
                return Err(FieldError::new(
                    format!("ports[{i}].port"),
                    "must be 1-65535",
                ));
            }
            if !names.insert(&p.name) {
                return Err(FieldError::new(
                    format!("ports[{i}].name"),
                    format!("duplicate port name {:?}", p.name),
                ));
            }
        }
        if self.weight > 10_000 {
            return Err(FieldError::new("weight", "must be 0-10000"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> Cluster {
        Cluster {
            name: "east".into(),
            region: "us-east-1".into(),
            zone: "us-east-1a".into(),
            network: "net-1".into(),
            gateway: "127.0.0.1:15008".into(),
            trust_domain: "east.example".into(),
            labels: BTreeMap::from([("tier".into(), "prod".into())]),
            registered_at: 1,
        }
    }

    #[test]
    fn a_good_cluster_validates() {
        cluster().validate().unwrap();
        let mut c = cluster();
        c.gateway = "gw.east.example:15008".into();
        c.validate().unwrap();
    }

    #[test]
    fn each_bad_field_is_named() {
        type Mutation = Box<dyn Fn(&mut Cluster)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("name", Box::new(|c| c.name = "East_1".into())),
            ("name", Box::new(|c| c.name = "-east".into())),
            ("name", Box::new(|c| c.name = "a".repeat(64))),
            ("region", Box::new(|c| c.region = "".into())),
            ("gateway", Box::new(|c| c.gateway = "nope".into())),
            ("gateway", Box::new(|c| c.gateway = "10.0.0.1:0".into())),
            ("gateway", Box::new(|c| c.gateway = "host:99999".into())),
            (
                "trust_domain",
                Box::new(|c| c.trust_domain = "Bad Domain".into()),
            ),
            (
                "labels.a b",
                Box::new(|c| {
                    c.labels.insert("a b".into(), "x".into());
                }),
            ),
        ];
        for (field, mutate) in cases {
            let mut c = cluster();
            mutate(&mut c);
            let err = c.validate().unwrap_err();
            assert_eq!(err.field, field, "{err}");
        }
    }

    #[test]
    fn exports_validate_ports() {
        let mut e = ServiceExport {
            cluster: "east".into(),
            namespace: "shop".into(),
            service: "cart".into(),
            ports: vec![ServicePort {
                name: "http".into(),
                port: 80,
                protocol: Protocol::Http,
            }],
            healthy_endpoints: 2,
            weight: 100,
            updated_at: 1,
        };
        e.validate().unwrap();
        e.ports.push(e.ports[0].clone());
        assert_eq!(e.validate().unwrap_err().field, "ports[1].name");
        e.ports.clear();
        assert_eq!(e.validate().unwrap_err().field, "ports");
    }

    #[test]
    fn ca_bundles_must_parse() {
        assert_eq!(
            validate_ca_bundle("ca_bundle_pem", "hello")
                .unwrap_err()
                .message,
            "no PEM CERTIFICATE block found"
        );
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(validate_ca_bundle("ca_bundle_pem", garbage).is_err());
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        validate_ca_bundle("ca_bundle_pem", &cert.pem()).unwrap();
    }
}
