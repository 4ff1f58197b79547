//! A cluster's CA and the leaf certificates it issues, with rcgen. Validity is always set
//! explicitly (rcgen's default spans 1975–4096). Private keys are written with mode 0600.

use std::path::Path;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;

use super::TrustError;
use super::spiffe::SpiffeId;

/// PEM certificate and PEM private key.
pub struct Pems {
    pub cert_pem: String,
    pub key_pem: String,
}

fn window(valid_for: Duration) -> (OffsetDateTime, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    // A little backdating tolerates small clock skew between issuer and verifier.
    (now - time::Duration::minutes(5), now + valid_for)
}

/// A new self-signed CA for `trust_domain`.
pub fn init_ca(trust_domain: &str, valid_for: Duration) -> Result<Pems, TrustError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("warden CA {trust_domain}"));
    dn.push(DnType::OrganizationName, trust_domain);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.subject_alt_names = vec![SanType::URI(format!("spiffe://{trust_domain}").try_into()?)];
    (params.not_before, params.not_after) = window(valid_for);
    let cert = params.self_signed(&key)?;
    Ok(Pems {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Issues a leaf for `id`, signed by the CA, usable for both TLS client and server auth.
pub fn issue_leaf(
    ca: &Pems,
    id: &SpiffeId,
    dns_names: &[String],
    valid_for: Duration,
) -> Result<Pems, TrustError> {
    let (from, until) = window(valid_for);
    issue_leaf_between(ca, id, dns_names, from, until)
}

/// Issues a leaf valid from `not_before` to `not_after` (tests use it for expired leaves).
pub fn issue_leaf_between(
    ca: &Pems,
    id: &SpiffeId,
    dns_names: &[String],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<Pems, TrustError> {
    let ca_key = KeyPair::from_pem(&ca.key_pem)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, id.to_string());
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let mut sans = vec![SanType::URI(id.to_string().try_into()?)];
    for d in dns_names {
        sans.push(SanType::DnsName(d.clone().try_into()?));
    }
    params.subject_alt_names = sans;
    params.use_authority_key_identifier_extension = true;
    (params.not_before, params.not_after) = (not_before, not_after);
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Pems {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Writes a file readable and writable by its owner only.
pub fn write_secret(path: &Path, contents: &str) -> Result<(), TrustError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| TrustError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(contents.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

/// Writes a public file (certificates).
pub fn write_public(path: &Path, contents: &str) -> Result<(), TrustError> {
    std::fs::write(path, contents).map_err(|source| TrustError::Io {
        path: path.display().to_string(),
        source,
    })
}
