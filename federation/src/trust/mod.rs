//! Federated trust: per-cluster CAs, SPIFFE identities, and TLS configurations that verify a
//! peer against the bundle of the trust domain named in its SPIFFE ID — and that one only, so
//! one cluster's CA can never mint another cluster's identities.
//!
//! - [`spiffe`]: SPIFFE IDs and reading them from certificates.
//! - [`ca`]: creating a CA and issuing leaf certificates (rcgen), writing keys with mode 0600.
//! - [`verify`]: the trust store (bundles by trust domain) and rustls verifiers built on it.
//! - [`tls`]: identities that can be swapped at run time, and rustls configs for mTLS.

/// Installs the ring crypto provider as the process default (idempotent). HTTP clients built
/// with TLS support (reqwest with `rustls-no-provider`) panic without one, so every place that
/// builds a client calls this first.
pub fn ensure_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub mod ca;
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
