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
    // Written beside the target and renamed over it: a reader sees the old file or the new
    // one, never half of one, and the result is 0600 even where an older file was readable
    // by others (opening that file in place would keep its mode).
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a file path",
        ))
    })?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    // A leftover from a write that died half way; `create_new` below refuses to follow
    // anything that appears there in between.
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io)
}

/// Writes a public file (certificates).
pub fn write_public(path: &Path, contents: &str) -> Result<(), TrustError> {
    std::fs::write(path, contents).map_err(|source| TrustError::Io {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_secret_ends_up_owner_only_even_over_a_readable_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "old").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_secret(&key, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "new");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "mode {mode:o}");
        // Nothing is left beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("key.pem")]);
    }
}
