//! `warden trust init|issue|bundle`: a cluster's CA and the SPIFFE certificates it issues.
//! Keys never leave the machine they are written on; only CA certificates are federated.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use warden_federation::trust::ca::{Pems, init_ca, issue_leaf, write_public, write_secret};
use warden_federation::trust::spiffe::SpiffeId;

#[derive(clap::Subcommand)]
pub enum TrustCmd {
    /// Create a CA for a trust domain: <dir>/ca.pem (public) and <dir>/ca.key (mode 0600).
    Init {
        #[arg(long)]
        trust_domain: String,
        #[arg(long)]
        dir: PathBuf,
        /// CA validity in days.
        #[arg(long, default_value_t = 3650)]
        days: u64,
    },
    /// Issue a leaf certificate with a SPIFFE ID: <out>.pem and <out>.key (mode 0600).
    Issue {
        /// Directory holding ca.pem and ca.key.
        #[arg(long)]
        ca_dir: PathBuf,
        /// spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>
        #[arg(long)]
        spiffe_id: String,
        /// Output path prefix.
        #[arg(long)]
        out: PathBuf,
        /// Validity in hours (renew at half-life).
        #[arg(long, default_value_t = 24)]
        hours: u64,
        /// Extra DNS names, repeatable.
        #[arg(long = "dns")]
        dns: Vec<String>,
    },
    /// Print a CA directory's bundle (the public certificate to register or publish).
    Bundle {
        #[arg(long)]
        ca_dir: PathBuf,
    },
}

fn read(p: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
}

pub fn run(cmd: TrustCmd) -> Result<()> {
    match cmd {
        TrustCmd::Init {
            trust_domain,
            dir,
            days,
        } => {
            warden_federation::model::validate_dns_name("trust_domain", &trust_domain)?;
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let key = dir.join("ca.key");
            if key.exists() {
                anyhow::bail!("{} exists: refusing to overwrite a CA key", key.display());
            }
            let ca = init_ca(&trust_domain, Duration::from_secs(days * 86_400))?;
            write_secret(&key, &ca.key_pem)?;
            write_public(&dir.join("ca.pem"), &ca.cert_pem)?;
            println!(
                "CA for {trust_domain}: {} (key {}, mode 0600)",
                dir.join("ca.pem").display(),
                key.display()
            );
        }
        TrustCmd::Issue {
            ca_dir,
            spiffe_id,
            out,
            hours,
            dns,
        } => {
            let id: SpiffeId = spiffe_id.parse()?;
            let ca = Pems {
                cert_pem: read(&ca_dir.join("ca.pem"))?,
                key_pem: read(&ca_dir.join("ca.key"))?,
            };
            let leaf = issue_leaf(&ca, &id, &dns, Duration::from_secs(hours * 3600))?;
            let (cert, key) = (out.with_extension("pem"), out.with_extension("key"));
            write_public(&cert, &leaf.cert_pem)?;
            write_secret(&key, &leaf.key_pem)?;
            println!(
                "{id}: {} (key {}, mode 0600), valid {hours} h",
                cert.display(),
                key.display()
            );
        }
        TrustCmd::Bundle { ca_dir } => {
            print!("{}", read(&ca_dir.join("ca.pem"))?);
        }
    }
    Ok(())
}
