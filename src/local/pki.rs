//! A cluster's CA and gateway certificate for local runs (benchmarks, the demo), written as
//! files a gateway's `[tls]` table points at.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

/// A cluster's CA and gateway certificate, written under `dir/<trust domain>/`.
pub struct Pki {
    pub td: String,
    pub ca: warden_federation::trust::ca::Pems,
    pub leaf: warden_federation::trust::ca::Pems,
    pub tls_table: String,
}

/// Makes a CA for `td` and a gateway certificate `spiffe://<td>/ns/warden/sa/gateway` (24 h).
pub fn pki(dir: &Path, td: &str) -> Result<Pki> {
    use warden_federation::trust::ca::{init_ca, issue_leaf, write_public, write_secret};
    let ca = init_ca(td, Duration::from_secs(86_400))?;
    let id = format!("spiffe://{td}/ns/warden/sa/gateway").parse()?;
    let leaf = issue_leaf(&ca, &id, &[], Duration::from_secs(86_400))?;
    let base = dir.join(td);
    std::fs::create_dir_all(&base)?;
    write_public(&base.join("ca.pem"), &ca.cert_pem)?;
    write_public(&base.join("gw.pem"), &leaf.cert_pem)?;
    write_secret(&base.join("gw.key"), &leaf.key_pem)?;
    let tls_table = format!(
        "[tls]\ncert = {:?}\nkey = {:?}\nca_bundle = {:?}\n",
        base.join("gw.pem").display().to_string(),
        base.join("gw.key").display().to_string(),
        base.join("ca.pem").display().to_string()
    );
    Ok(Pki {
        td: td.to_string(),
        ca,
        leaf,
        tls_table,
    })
}

/// Whether a new mTLS connection to the east-west listener at `addr` succeeds with `me`'s
/// certificate, trusting only `peer_ca_pem` for `peer_td` (e.g. after a CA rotation).
pub async fn handshake(addr: &str, me: &Pki, peer_td: &str, peer_ca_pem: &str) -> bool {
    use warden_federation::trust::tls::{Identity, client_config};
    use warden_federation::trust::verify::TrustStore;
    let attempt = async {
        let store = TrustStore::new();
        store.set(peer_td, peer_ca_pem, 1)?;
        let (id, _) = Identity::from_pem(&me.leaf.cert_pem, &me.leaf.key_pem)?;
        let cfg = client_config(id, store, peer_td, &[b"h2"])?;
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = rustls::pki_types::ServerName::try_from("warden-gateway.invalid")?;
        tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await?;
        anyhow::Ok(())
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Ok(()))
    )
}
