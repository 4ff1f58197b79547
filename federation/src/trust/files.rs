//! A process's TLS identity from its files — certificate, key and its own domain's CA bundle —
//! and noticing when they are replaced on disk (rotated by `warden trust issue`,
//! cert-manager, ...). Gateways and federation nodes load and reload the same way.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use super::TrustError;
use super::spiffe::SpiffeId;
use super::tls::Identity;
use super::verify::TrustStore;

fn read(path: &Path) -> Result<String, TrustError> {
    std::fs::read_to_string(path).map_err(|source| TrustError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Everything loaded from an identity's files.
pub struct LoadedTls {
    pub cert_pem: String,
    pub key_pem: String,
    /// The CA bundle of this process's own trust domain.
    pub bundle_pem: String,
    pub identity: Arc<Identity>,
    pub id: SpiffeId,
    /// A trust store seeded with the own domain's bundle (version 0: from the files; the
    /// federation's copies replace it).
    pub store: Arc<TrustStore>,
}

/// Reads and checks the certificate, key and CA bundle files.
pub fn load(cert: &Path, key: &Path, ca_bundle: &Path) -> Result<LoadedTls, TrustError> {
    let (cert_pem, key_pem, bundle_pem) = (read(cert)?, read(key)?, read(ca_bundle)?);
    let (identity, id) = Identity::from_pem(&cert_pem, &key_pem)?;
    let store = TrustStore::new();
    store.set(&id.trust_domain, &bundle_pem, 0)?;
    Ok(LoadedTls {
        cert_pem,
        key_pem,
        bundle_pem,
        identity,
        id,
        store,
    })
}

/// The certificate and key files of an identity, and the modification times last loaded.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    loaded: Option<(SystemTime, SystemTime)>,
}

impl CertFiles {
    /// Starts from the files as they are now (they were just loaded).
    pub fn new(cert: &Path, key: &Path) -> Self {
        let mut f = Self {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            loaded: None,
        };
        f.loaded = f.mtimes();
        f
    }

    fn mtimes(&self) -> Option<(SystemTime, SystemTime)> {
        let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        Some((m(&self.cert)?, m(&self.key)?))
    }

    /// The new (certificate, key) PEMs when either file changed since the last load; `None`
    /// when nothing changed or a file cannot be read yet.
    pub fn changed(&self) -> Option<((String, String), (SystemTime, SystemTime))> {
        let now = self.mtimes()?;
        if Some(now) == self.loaded {
            return None;
        }
        let pems = (read(&self.cert).ok()?, read(&self.key).ok()?);
        Some((pems, now))
    }

    /// Records that the files of `changed` were loaded; a pair that failed to load (half
    /// written) is not recorded, so the next check tries again.
    pub fn mark_loaded(&mut self, mtimes: (SystemTime, SystemTime)) {
        self.loaded = Some(mtimes);
    }

    /// Replaces `identity` from the files when they changed: `Some(Ok(id))` on a reload,
    /// `Some(Err)` when changed files do not load yet, `None` when nothing changed.
    pub fn reload_into(&mut self, identity: &Identity) -> Option<Result<SpiffeId, TrustError>> {
        let ((cert, key), at) = self.changed()?;
        Some(
            identity
                .replace(&cert, &key)
                .inspect(|_| self.mark_loaded(at)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::ca::{init_ca, issue_leaf, write_public, write_secret};
    use std::time::Duration;

    #[test]
    fn loads_and_reloads_when_the_files_change() {
        let dir = tempfile::tempdir().unwrap();
        let ca = init_ca("east.test", Duration::from_secs(3600)).unwrap();
        let id = SpiffeId::workload("east.test", "warden", "gateway").unwrap();
        let leaf = issue_leaf(&ca, &id, &[], Duration::from_secs(600)).unwrap();
        let (c, k, b) = (
            dir.path().join("c.pem"),
            dir.path().join("k.pem"),
            dir.path().join("ca.pem"),
        );
        write_public(&c, &leaf.cert_pem).unwrap();
        write_secret(&k, &leaf.key_pem).unwrap();
        write_public(&b, &ca.cert_pem).unwrap();
        let loaded = load(&c, &k, &b).unwrap();
        assert_eq!(loaded.id, id);
        let mut files = CertFiles::new(&c, &k);
        assert!(files.reload_into(&loaded.identity).is_none(), "unchanged");
        // A half-written pair: the key is garbage. Not marked loaded: tried again.
        std::thread::sleep(Duration::from_millis(20));
        write_secret(&k, "not a key").unwrap();
        assert!(matches!(files.reload_into(&loaded.identity), Some(Err(_))));
        assert!(matches!(files.reload_into(&loaded.identity), Some(Err(_))));
        // The new key is in place but the certificate is still the old one: refused (it
        // would fail every handshake), tried again once the certificate follows.
        let next = issue_leaf(&ca, &id, &[], Duration::from_secs(600)).unwrap();
        write_secret(&k, &next.key_pem).unwrap();
        match files.reload_into(&loaded.identity) {
            Some(Err(e)) => assert!(e.to_string().contains("does not belong"), "{e}"),
            other => panic!("a mismatched pair loaded: {:?}", other.map(|r| r.is_ok())),
        }
        write_public(&c, &next.cert_pem).unwrap();
        assert!(matches!(files.reload_into(&loaded.identity), Some(Ok(_))));
        assert!(files.reload_into(&loaded.identity).is_none());
        assert!(load(&c, &dir.path().join("missing"), &b).is_err());
    }
}
