//! The trust store — CA bundles by trust domain, swappable at run time — and rustls verifiers
//! that check a peer against the bundle of the trust domain in its SPIFFE ID only.
//!
//! A certificate for `spiffe://cluster-a/...` signed by cluster B's CA fails: it is checked
//! against cluster A's bundle, which does not contain B's CA.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DistinguishedName, Error};

use super::TrustError;
use super::spiffe::{SpiffeId, spiffe_id_of};

/// One trust domain's anchors and the bundle version they came from.
#[derive(Debug)]
pub struct Bundle {
    pub version: u64,
    anchors: Vec<TrustAnchor<'static>>,
}

/// CA bundles by trust domain. Readers load a snapshot; updates swap it whole, and tell
/// [`TrustStore::subscribe`]rs (so connections verified earlier can be checked again).
#[derive(Debug)]
pub struct TrustStore {
    bundles: ArcSwap<HashMap<String, Arc<Bundle>>>,
    /// Bumped on every change.
    changes: tokio::sync::watch::Sender<u64>,
}

impl Default for TrustStore {
    fn default() -> Self {
        Self {
            bundles: ArcSwap::default(),
            changes: tokio::sync::watch::Sender::new(0),
        }
    }
}

/// Parses every certificate of a PEM bundle into trust anchors.
pub fn anchors_from_pem(pem: &str) -> Result<Vec<TrustAnchor<'static>>, TrustError> {
    use rustls::pki_types::pem::PemObject;
    let mut out = Vec::new();
    for der in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let der = der.map_err(|e| TrustError::Pem(e.to_string()))?;
        let anchor = webpki::anchor_from_trusted_cert(&der)
            .map_err(|e| TrustError::Certificate(e.to_string()))?;
        out.push(anchor.to_owned());
    }
    if out.is_empty() {
        return Err(TrustError::Pem("no certificate in the bundle".into()));
    }
    Ok(out)
}

impl TrustStore {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Sets (or replaces) the bundle of one trust domain.
    pub fn set(&self, trust_domain: &str, pem: &str, version: u64) -> Result<(), TrustError> {
        let anchors = anchors_from_pem(pem)?;
        let bundle = Arc::new(Bundle { version, anchors });
        self.bundles.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.insert(trust_domain.to_string(), bundle.clone());
            m
        });
        self.changes.send_modify(|g| *g += 1);
        Ok(())
    }

    /// Removes a trust domain: its identities are no longer accepted.
    pub fn remove(&self, trust_domain: &str) {
        self.bundles.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.remove(trust_domain);
            m
        });
        self.changes.send_modify(|g| *g += 1);
    }

    /// Wakes on every later change of any bundle.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Checks again, against the bundles loaded now, a client chain verified at its handshake:
    /// `false` once its domain's bundle is gone or no longer has the CA that issued it (or the
    /// certificate expired).
    pub fn still_trusts_client(&self, chain: &[CertificateDer<'static>]) -> bool {
        let Some((end_entity, intermediates)) = chain.split_first() else {
            return false;
        };
        let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        self.verify(
            end_entity,
            intermediates,
            UnixTime::now(),
            webpki::KeyUsage::client_auth(),
            &algs,
        )
        .is_ok()
    }

    /// Loaded bundle versions by trust domain.
    pub fn versions(&self) -> HashMap<String, u64> {
        self.bundles
            .load()
            .iter()
            .map(|(k, v)| (k.clone(), v.version))
            .collect()
    }

    /// Verifies a peer chain for `usage` against its own trust domain's bundle only; returns
    /// the peer's SPIFFE ID.
    pub fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        usage: webpki::KeyUsage,
        algs: &WebPkiSupportedAlgorithms,
    ) -> Result<SpiffeId, Error> {
        let id = spiffe_id_of(end_entity).map_err(|e| {
            Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(e))))
        })?;
        let bundles = self.bundles.load();
        let bundle = bundles
            .get(&id.trust_domain)
            .ok_or(Error::InvalidCertificate(CertificateError::UnknownIssuer))?;
        let cert = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        cert.verify_for_usage(
            algs.all,
            &bundle.anchors,
            intermediates,
            now,
            usage,
            None,
            None,
        )
        .map_err(webpki_error)?;
        Ok(id)
    }
}

fn webpki_error(e: webpki::Error) -> Error {
    use webpki::Error as W;
    let c = match e {
        W::CertExpired { .. } => CertificateError::Expired,
        W::CertNotValidYet { .. } => CertificateError::NotValidYet,
        W::UnknownIssuer => CertificateError::UnknownIssuer,
        W::InvalidSignatureForPublicKey => CertificateError::BadSignature,
        _ => CertificateError::Other(rustls::OtherError(Arc::new(e))),
    };
    Error::InvalidCertificate(c)
}

/// The handshake-signature checks of a verifier with an `algs` field: delegated to rustls with
/// those algorithms (the same in every verifier here).
macro_rules! delegate_signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.algs.supported_schemes()
        }
    };
}
pub(crate) use delegate_signature_checks;

/// Server side of mTLS: a client certificate is mandatory and must verify in its own trust
/// domain (optionally one of `allowed_domains`).
#[derive(Debug)]
pub struct SpiffeClientVerifier {
    store: Arc<TrustStore>,
    algs: WebPkiSupportedAlgorithms,
    /// False for listeners where a certificate is optional (the REST API: the bearer token
    /// authenticates there), though one that is presented must still verify.
    mandatory: bool,
}

impl SpiffeClientVerifier {
    pub fn new(store: Arc<TrustStore>) -> Arc<Self> {
        Arc::new(Self {
            store,
            algs: rustls::crypto::ring::default_provider().signature_verification_algorithms,
            mandatory: true,
        })
    }

    /// A verifier that lets clients without a certificate in.
    pub fn optional(store: Arc<TrustStore>) -> Arc<Self> {
        Arc::new(Self {
            store,
            algs: rustls::crypto::ring::default_provider().signature_verification_algorithms,
            mandatory: false,
        })
    }
}

impl ClientCertVerifier for SpiffeClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        self.store.verify(
            end_entity,
            intermediates,
            now,
            webpki::KeyUsage::client_auth(),
            &self.algs,
        )?;
        Ok(ClientCertVerified::assertion())
    }
    delegate_signature_checks!();
}

/// Client side: the server must present an identity of `expected_trust_domain`, verified
/// against that domain's bundle. DNS names are not used: SPIFFE identity is the name.
#[derive(Debug)]
pub struct SpiffeServerVerifier {
    store: Arc<TrustStore>,
    expected_trust_domain: String,
    algs: WebPkiSupportedAlgorithms,
}

impl SpiffeServerVerifier {
    pub fn new(store: Arc<TrustStore>, expected_trust_domain: &str) -> Arc<Self> {
        Arc::new(Self {
            store,
            expected_trust_domain: expected_trust_domain.to_string(),
            algs: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        })
    }
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let id = self.store.verify(
            end_entity,
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            &self.algs,
        )?;
        if id.trust_domain != self.expected_trust_domain {
            return Err(Error::InvalidCertificate(CertificateError::NotValidForName));
        }
        Ok(ServerCertVerified::assertion())
    }
    delegate_signature_checks!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::ca::{init_ca, issue_leaf};
    use rustls::pki_types::pem::PemObject;
    use std::time::Duration;

    #[test]
    fn a_verified_chain_is_checked_again_after_a_rotation_or_removal() {
        let day = Duration::from_secs(86_400);
        let (old, new) = (
            init_ca("east.test", day).unwrap(),
            init_ca("east.test", day).unwrap(),
        );
        let id = "spiffe://east.test/ns/warden/sa/gateway".parse().unwrap();
        let leaf = issue_leaf(&old, &id, &[], day).unwrap();
        let chain = vec![CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap()];
        let store = TrustStore::new();
        let mut changes = store.subscribe();
        store.set("east.test", &old.cert_pem, 1).unwrap();
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        assert!(store.still_trusts_client(&chain));
        // Old + new: still trusted (the staged rotation's first step).
        store
            .set("east.test", &format!("{}{}", old.cert_pem, new.cert_pem), 2)
            .unwrap();
        assert!(store.still_trusts_client(&chain));
        // The old CA rotated out, then the domain removed: no longer.
        store.set("east.test", &new.cert_pem, 3).unwrap();
        assert!(!store.still_trusts_client(&chain));
        store.set("east.test", &old.cert_pem, 4).unwrap();
        store.remove("east.test");
        assert!(changes.has_changed().unwrap());
        assert!(!store.still_trusts_client(&chain));
        assert!(!store.still_trusts_client(&[]));
    }
}
