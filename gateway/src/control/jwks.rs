//! [`JwksActor`]: loads the key sets (JWKS) the JWT policies name — files, and https URLs —
//! and publishes them for the data path (`Tables::jwks`), which never fetches. Each set is
//! loaded again every `refresh_s`, and sooner (at most every [`REFETCH_MIN`]) when a token named
//! a key it did not have. A failed load keeps the keys the set had and is retried with backoff
//! (1 s doubling to 5 min). Sets no policy names any more are dropped. Bounded: a set is at most
//! 1 MiB and a fetch takes at most 5 s.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use jsonwebtoken::jwk::JwkSet;
use tokio::time::Instant;
use warden_federation::authn::JwksSource;

use super::guard::{InjectPanic, backoff, guarded};
use crate::metrics::Metrics;
use crate::table::Tables;

/// The soonest a set is fetched again for an unknown key id.
pub const REFETCH_MIN: Duration = Duration::from_secs(5);
const MAX_BYTES: usize = 1 << 20;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Why a key set did not load.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("fetching {url}: {message}")]
    Fetch { url: String, message: String },
    #[error("{location} is larger than {MAX_BYTES} bytes")]
    TooLarge { location: String },
    #[error("{location} is not a JWKS: {message}")]
    Parse { location: String, message: String },
}

#[derive(Debug, Default)]
struct SetState {
    loaded_at: Option<Instant>,
    tried_at: Option<Instant>,
    failures: u32,
    retry_at: Option<Instant>,
    fetching: bool,
}

pub struct JwksActor {
    tables: Tables,
    metrics: Arc<Metrics>,
    sets: HashMap<String, SetState>,
    restarts: u32,
}

impl JwksActor {
    pub fn new(tables: Tables, metrics: Arc<Metrics>) -> Self {
        Self {
            tables,
            metrics,
            sets: HashMap::new(),
            restarts: 0,
        }
    }

    /// Every source the current JWT policies name.
    fn sources(&self) -> HashMap<String, JwksSource> {
        let remote = self.tables.remote.load();
        let mut out = HashMap::new();
        for s in remote.jwt.values() {
            for p in s.whole.iter().chain(s.rules.values()) {
                for pr in &p.source.providers {
                    out.insert(pr.jwks.location().to_string(), pr.jwks.clone());
                }
            }
        }
        out
    }

    /// The sets to load now (each marked as being fetched); drops the sets no policy names.
    fn due(&mut self) -> Vec<(String, JwksSource)> {
        let mut out = Vec::new();
        let sources = self.sources();
        let now = Instant::now();
        let wanted: HashSet<String> = match self.tables.jwks_wanted.lock() {
            Ok(mut w) => std::mem::take(&mut *w),
            Err(e) => std::mem::take(&mut *e.into_inner()),
        };
        self.sets.retain(|l, _| sources.contains_key(l));
        let gone: Vec<String> = self
            .tables
            .jwks
            .load()
            .keys()
            .filter(|l| !sources.contains_key(*l))
            .cloned()
            .collect();
        if !gone.is_empty() {
            self.tables.jwks.rcu(|m| {
                let mut m = (**m).clone();
                for l in &gone {
                    m.remove(l);
                }
                m
            });
        }
        for (location, source) in sources {
            let st = self.sets.entry(location.clone()).or_default();
            let refresh = Duration::from_secs(source.refresh_s());
            let due = match st.loaded_at {
                None => true,
                Some(at) => {
                    now >= at + refresh
                        || (wanted.contains(&location)
                            && st.tried_at.is_none_or(|t| now >= t + REFETCH_MIN))
                }
            };
            if st.fetching || !due || st.retry_at.is_some_and(|r| now < r) {
                continue;
            }
            st.fetching = true;
            st.tried_at = Some(now);
            out.push((location, source));
        }
        out
    }

    fn loaded(&mut self, location: String, res: Result<JwkSet, JwksError>) {
        let Some(st) = self.sets.get_mut(&location) else {
            return; // no policy names it any more
        };
        st.fetching = false;
        let outcome = match res {
            Ok(set) => {
                st.loaded_at = Some(Instant::now());
                st.failures = 0;
                st.retry_at = None;
                let set = Arc::new(set);
                self.tables.jwks.rcu(|m| {
                    let mut m = (**m).clone();
                    m.insert(location.clone(), set.clone());
                    m
                });
                "loaded"
            }
            Err(e) => {
                st.failures = st.failures.saturating_add(1);
                let wait =
                    Duration::from_secs(1 << st.failures.min(9).saturating_sub(1)).min(BACKOFF_MAX);
                st.retry_at = Some(Instant::now() + wait);
                tracing::warn!(jwks = %location, error = %e, retry_in_s = wait.as_secs(), "JWKS not loaded; keeping the keys it had");
                "failed"
            }
        };
        self.metrics.jwks_loads.with_label_values(&[outcome]).inc();
    }
}

/// Reads or fetches one key set.
async fn load(source: JwksSource) -> Result<JwkSet, JwksError> {
    let location = source.location().to_string();
    let bytes = match source {
        JwksSource::File { path, .. } => {
            let b = tokio::fs::read(&path)
                .await
                .map_err(|e| JwksError::Read { path, source: e })?;
            if b.len() > MAX_BYTES {
                return Err(JwksError::TooLarge { location });
            }
            b
        }
        JwksSource::Url {
            url, ca_bundle_pem, ..
        } => fetch(&url, ca_bundle_pem.as_deref()).await?,
    };
    serde_json::from_slice(&bytes).map_err(|e| JwksError::Parse {
        location,
        message: e.to_string(),
    })
}

/// GET `url` over TLS verified against `ca_bundle_pem` (else the system's roots).
async fn fetch(url: &str, ca_bundle_pem: Option<&str>) -> Result<Vec<u8>, JwksError> {
    let fail = |m: String| JwksError::Fetch {
        url: url.to_string(),
        message: m,
    };
    let mut roots = rustls::RootCertStore::empty();
    match ca_bundle_pem {
        Some(pem) => {
            use rustls::pki_types::pem::PemObject;
            for c in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let c = c.map_err(|e| fail(format!("ca_bundle_pem: {e}")))?;
                roots
                    .add(c)
                    .map_err(|e| fail(format!("ca_bundle_pem: {e}")))?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| fail(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .https_only(true)
        .timeout(FETCH_TIMEOUT)
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let mut resp = client
        .get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| fail(super::super::proxy::client::error_chain(&e)))?;
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| fail(e.to_string()))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BYTES {
            return Err(JwksError::TooLarge {
                location: url.to_string(),
            });
        }
    }
    Ok(body)
}

impl Actor for JwksActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_later(backoff(self.restarts), move |_, ctx| {
            ctx.run_interval(Duration::from_secs(1), |act, ctx| {
                for (location, source) in guarded("jwks", ctx, || act.due()).unwrap_or_default() {
                    let fut = load(source).into_actor(act).map(move |res, act, _| {
                        act.loaded(location, res);
                    });
                    ctx.spawn(fut);
                }
            });
        });
    }
}

impl Supervised for JwksActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.restarts += 1;
        self.sets.clear();
        self.metrics
            .actor_restarts
            .with_label_values(&["jwks"])
            .inc();
        tracing::warn!(restarts = self.restarts, "JWKS actor restarting");
    }
}

impl Handler<InjectPanic> for JwksActor {
    type Result = ();
    fn handle(&mut self, _: InjectPanic, ctx: &mut Context<Self>) {
        guarded("jwks", ctx, || panic!("injected panic in jwks"));
    }
}
