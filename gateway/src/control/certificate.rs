//! [`CertificateActor`]: keeps this gateway's SPIFFE certificate fresh.
//!
//! Every `reload_interval_ms` it checks the certificate and key files; when they changed on
//! disk (rotated by `warden trust issue`, cert-manager, ...) it loads them into the shared
//! [`Identity`], which new handshakes use at once while established connections keep theirs —
//! no connection is dropped. With a `ca_dir` it also re-issues the certificate itself at
//! half-life, from the CA found there (the newest one during a CA rotation).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use warden_federation::trust::ca::{Pems, issue_leaf, write_public, write_secret};
use warden_federation::trust::files::CertFiles;
use warden_federation::trust::spiffe::{first_cert_der, spiffe_id_of, validity};
use warden_federation::trust::tls::Identity;

use super::guard::{InjectPanic, backoff, guarded};
use crate::config::TlsSection;
use crate::metrics::Metrics;

pub struct CertificateActor {
    cfg: TlsSection,
    identity: Arc<Identity>,
    metrics: Arc<Metrics>,
    /// The certificate and key files, and when they were last loaded.
    files: CertFiles,
    restarts: u32,
}

impl CertificateActor {
    pub fn new(cfg: TlsSection, identity: Arc<Identity>, metrics: Arc<Metrics>) -> Self {
        let files = CertFiles::new(&cfg.cert, &cfg.key);
        Self {
            cfg,
            identity,
            metrics,
            files,
            restarts: 0,
        }
    }

    fn check(&mut self) {
        if let Some(ca_dir) = self.cfg.ca_dir.clone()
            && let Err(e) = self.renew_at_half_life(&ca_dir)
        {
            tracing::warn!(error = %e, "certificate renewal failed");
        }
        match self.files.reload_into(&self.identity) {
            None => {}
            Some(Ok(id)) => tracing::info!(spiffe_id = %id, "certificate reloaded"),
            // A half-written pair is retried at the next check.
            Some(Err(e)) => {
                tracing::warn!(error = %e, "certificate files changed but do not load yet")
            }
        }
    }

    fn renew_at_half_life(&mut self, ca_dir: &std::path::Path) -> Result<(), String> {
        let cert = std::fs::read_to_string(&self.cfg.cert).map_err(|e| e.to_string())?;
        let der = first_cert_der(&cert).map_err(|e| e.to_string())?;
        let (from, until) = validity(&der).map_err(|e| e.to_string())?;
        let now = (warden_federation::clock::now_ms() / 1000) as i64;
        if now < from + (until - from) / 2 {
            return Ok(());
        }
        let id = spiffe_id_of(&der).map_err(|e| e.to_string())?;
        let ca = Pems {
            cert_pem: std::fs::read_to_string(ca_dir.join("ca.pem")).map_err(|e| e.to_string())?,
            key_pem: std::fs::read_to_string(ca_dir.join("ca.key")).map_err(|e| e.to_string())?,
        };
        let lifetime = Duration::from_secs((until - from).max(60) as u64);
        let leaf = issue_leaf(&ca, &id, &[], lifetime).map_err(|e| e.to_string())?;
        // Key first (owner-only), then the certificate; the reload check picks both up.
        write_secret(&self.cfg.key, &leaf.key_pem).map_err(|e| e.to_string())?;
        write_public(&self.cfg.cert, &leaf.cert_pem).map_err(|e| e.to_string())?;
        tracing::info!(spiffe_id = %id, "certificate renewed at half-life");
        Ok(())
    }
}

impl Actor for CertificateActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let every = Duration::from_millis(self.cfg.reload_interval_ms.max(100));
        ctx.run_later(backoff(self.restarts), move |_, ctx| {
            ctx.run_interval(every, |act, ctx| {
                guarded("certificate", ctx, || act.check());
            });
        });
    }
}

impl Supervised for CertificateActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.restarts += 1;
        self.metrics
            .actor_restarts
            .with_label_values(&["certificate"])
            .inc();
        tracing::warn!(restarts = self.restarts, "certificate actor restarting");
    }
}

impl Handler<InjectPanic> for CertificateActor {
    type Result = ();
    fn handle(&mut self, _: InjectPanic, ctx: &mut Context<Self>) {
        guarded("certificate", ctx, || {
            panic!("injected panic in certificate")
        });
    }
}
