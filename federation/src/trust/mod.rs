//! Federated trust: per-cluster CAs, SPIFFE identities, and TLS configurations that verify a
//! peer against the bundle of the trust domain named in its SPIFFE ID — and that one only, so
//! one cluster's CA can never mint another cluster's identities.
//!
//! - [`spiffe`]: SPIFFE IDs and reading them from certificates.
//! - [`ca`]: creating a CA and issuing leaf certificates (rcgen), writing keys with mode 0600.
//! - [`verify`]: the trust store (bundles by trust domain) and rustls verifiers built on it.
//! - [`tls`]: identities that can be swapped at run time, and rustls configs for mTLS.
//! - [`files`]: loading an identity from its files, and reloading it when they change.
//! - [`digest`]: hex SHA-256 (CA pins, join token secrets).

/// Installs the ring crypto provider as the process default (idempotent). HTTP clients built
/// with TLS support (reqwest with `rustls-no-provider`) panic without one, so every place that
/// builds a client calls this first.
pub fn ensure_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Bounded reason label for a failed handshake.
pub fn handshake_reason(e: &std::io::Error) -> &'static str {
    let text = e.to_string();
    let t = text.as_str();
    if t.contains("no certificates") || t.contains("NoCertificatesPresented") {
        "no_client_certificate"
    } else if t.contains("UnknownIssuer") {
        "untrusted_issuer"
    } else if t.contains("Expired") {
        "expired_certificate"
    } else if t.contains("NotValidYet") {
        "certificate_not_yet_valid"
    } else if t.contains("NotValidForName") {
        "wrong_trust_domain"
    } else if t.contains("application protocol") || t.contains("NoApplicationProtocol") {
        "no_h2"
    } else if t.contains("corrupt message")
        || t.contains("InvalidMessage")
        || t.contains("invalid") && t.contains("content type")
    {
        "not_tls"
    } else if t.contains("certificate") {
        "bad_certificate"
    } else {
        "other"
    }
}

pub mod ca;
pub mod digest;
pub mod files;
pub mod spiffe;
pub mod tls;
pub mod verify;

/// Why a trust operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("invalid SPIFFE ID {id:?}: {reason}")]
    BadSpiffeId { id: String, reason: &'static str },
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("PEM: {0}")]
    Pem(String),
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
}
