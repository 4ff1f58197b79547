//! Identities that can be swapped without dropping connections, and rustls configurations for
//! mTLS between gateways and between federation nodes (TLS 1.3/1.2, ring provider, ALPN).

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ServerConfig, SignatureScheme};

use super::TrustError;
use super::spiffe::{SpiffeId, spiffe_id_of};
use super::verify::{SpiffeClientVerifier, SpiffeServerVerifier, TrustStore};

/// This process's current certificate and key. New handshakes use the newest; connections
/// already established keep theirs.
#[derive(Debug)]
pub struct Identity {
    current: ArcSwap<CertifiedKey>,
}

fn certified_key(cert_pem: &str, key_pem: &str) -> Result<(CertifiedKey, SpiffeId), TrustError> {
    use rustls::pki_types::pem::PemObject;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| TrustError::Pem(e.to_string()))?;
    let leaf = chain
        .first()
        .ok_or_else(|| TrustError::Pem("no certificate".into()))?;
    let id = spiffe_id_of(leaf)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| TrustError::Pem(e.to_string()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)?;
    let ck = CertifiedKey::new(chain, signing);
    // A key that is not the certificate's (a rotation caught between the two files, or the
    // wrong file) would load and then fail every handshake; refuse it here instead. `Unknown`
    // means the key type cannot say its public key: nothing to compare, not a mismatch.
    match ck.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(TrustError::Certificate(
                "the private key does not belong to the certificate".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    Ok((ck, id))
}

impl Identity {
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<(Arc<Self>, SpiffeId), TrustError> {
        let (ck, id) = certified_key(cert_pem, key_pem)?;
        Ok((
            Arc::new(Self {
                current: ArcSwap::from_pointee(ck),
            }),
            id,
        ))
    }

    /// Replaces the certificate for future handshakes.
    pub fn replace(&self, cert_pem: &str, key_pem: &str) -> Result<SpiffeId, TrustError> {
        let (ck, id) = certified_key(cert_pem, key_pem)?;
        self.current.store(Arc::new(ck));
        Ok(id)
    }
}

impl ResolvesServerCert for Identity {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl ResolvesClientCert for Identity {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server that requires a client certificate valid in the client's own trust domain.
pub fn server_config(
    identity: Arc<Identity>,
    store: Arc<TrustStore>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TrustError> {
    server_with(identity, SpiffeClientVerifier::new(store), alpn)
}

/// A server where a client certificate is optional (verified if presented): the REST API.
pub fn server_config_optional_client(
    identity: Arc<Identity>,
    store: Arc<TrustStore>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TrustError> {
    server_with(identity, SpiffeClientVerifier::optional(store), alpn)
}

fn server_with(
    identity: Arc<Identity>,
    verifier: Arc<SpiffeClientVerifier>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TrustError> {
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(identity);
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(cfg))
}

/// A client without a certificate that accepts only a server whose SPIFFE identity verifies in
/// the trust domain of `ca_bundle_pem` (read from the CA's own `spiffe://<td>` URI SAN).
pub fn anonymous_client_config(ca_bundle_pem: &str) -> Result<ClientConfig, TrustError> {
    let der = super::spiffe::first_cert_der(ca_bundle_pem)?;
    let td = super::spiffe::spiffe_id_of(&der)?.trust_domain;
    let store = TrustStore::new();
    store.set(&td, ca_bundle_pem, 0)?;
    let mut cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(SpiffeServerVerifier::new(store, &td))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

/// A client without a certificate that trusts whatever CA in the server's chain hashes to
/// `pin_sha256_hex` (from a join token), and verifies the server certificate against it.
pub fn pinned_client_config(pin_sha256_hex: &str) -> Result<ClientConfig, TrustError> {
    let mut cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCaVerifier {
            pin: pin_sha256_hex.to_ascii_lowercase(),
            algs: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

#[derive(Debug)]
struct PinnedCaVerifier {
    pin: String,
    algs: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::{CertificateError, Error};
        let hex = |d: &[u8]| -> String {
            ring::digest::digest(&ring::digest::SHA256, d)
                .as_ref()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        let ca = intermediates
            .iter()
            .find(|c| hex(c) == self.pin)
            .ok_or(Error::InvalidCertificate(CertificateError::UnknownIssuer))?;
        let anchor = webpki::anchor_from_trusted_cert(ca)
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let cert = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        cert.verify_for_usage(
            self.algs.all,
            &[anchor],
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(|_| Error::InvalidCertificate(CertificateError::UnknownIssuer))?;
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    crate::trust::verify::delegate_signature_checks!();
}

/// A client that presents `identity` and accepts only a server of `expected_trust_domain`.
pub fn client_config(
    identity: Arc<Identity>,
    store: Arc<TrustStore>,
    expected_trust_domain: &str,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, TrustError> {
    let mut cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(SpiffeServerVerifier::new(store, expected_trust_domain))
        .with_client_cert_resolver(identity);
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(cfg))
}

/// The SPIFFE ID of an established connection's peer.
pub fn peer_id(certs: Option<&[CertificateDer<'_>]>) -> Option<SpiffeId> {
    certs
        .and_then(|c| c.first())
        .and_then(|c| spiffe_id_of(c).ok())
}
