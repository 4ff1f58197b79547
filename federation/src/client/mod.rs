//! The typed client of the federation API, used by the gateway, the CLI and `warden check`:
//! one method per endpoint, bodies from [`crate::wire`], errors as [`ClientError`].
//!
//! A client knows one or more federation nodes and tries them in turn, starting with the one
//! that answered last: a node that cannot be reached, or that answers 503, makes the call move
//! on to the next. A non-idempotent write (POST) moves on only when it certainly was not sent
//! (the connection was refused): after a 503 its outcome is unknown, and sending it again could
//! make a join fail on its own used token.

mod error;
mod watch;

pub use error::ClientError;
pub use watch::WatchStream;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::authn::JwtPolicy;
use crate::authz::AuthorizationPolicy;
use crate::mesh_config::{ConfigScope, MeshConfig};
use crate::model::{Cluster, Lease, SecurityPolicy, ServiceExport, TrafficPolicy, TrustBundle};
use crate::paths;
use crate::resilience::ResiliencePolicy;
use crate::route::Route;
use crate::wire::{
    AddMember, AuthorizationBody, BundleBody, BundleStatus, CatalogService, ClusterRegistered,
    ClusterStatus, ConfigDocument, CredentialIssued, DryRun, ErrorBody, ExportBody, GatewayBody,
    JoinRequest, JoinTokenIssued, JwtBody, LeaseBody, LeaseList, Listing, MemberAdded, MeshStatus,
    PolicyBody, Ready, RegisterCluster, ResilienceBody, RouteBody, RoutingCatalog, SecurityBody,
    TokenRequest, ValidateBundle, ValidationReport,
};

/// How long one request may take (watch streams excepted).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting to a node may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A client of the federation API on one or more nodes.
#[derive(Clone)]
pub struct FederationClient {
    /// Base URLs (`http://127.0.0.1:7700`), without a trailing slash.
    bases: Arc<Vec<String>>,
    token: Option<String>,
    http: reqwest::Client,
    /// Index of the node that answered last; tried first.
    preferred: Arc<AtomicUsize>,
}

/// What a successful answer carries.
enum Answer {
    Json(bytes::Bytes),
    Empty,
}

impl FederationClient {
    /// A client of the nodes at `bases` (like `http://127.0.0.1:7700`). An `https://` base is
    /// verified against `ca_bundle_pem` (the federation's CA): the server must hold a SPIFFE
    /// identity of that CA's trust domain.
    pub fn new(
        bases: &[String],
        token: Option<String>,
        ca_bundle_pem: Option<&str>,
    ) -> Result<Self, ClientError> {
        let https = bases.iter().any(|b| b.starts_with("https://"));
        let tls = match (https, ca_bundle_pem) {
            (false, _) => None,
            (true, Some(pem)) => Some(
                crate::trust::tls::anonymous_client_config(pem)
                    .map_err(|e| ClientError::Tls(e.to_string()))?,
            ),
            (true, None) => {
                return Err(ClientError::Tls(format!(
                    "{} is https: give the federation's CA bundle (--api-ca-bundle or WARDEN_API_CA_BUNDLE)",
                    bases.join(", ")
                )));
            }
        };
        Self::with_tls(bases, token, tls)
    }

    /// A client of one node.
    pub fn single(
        base: &str,
        token: Option<String>,
        ca_bundle_pem: Option<&str>,
    ) -> Result<Self, ClientError> {
        Self::new(&[base.to_string()], token, ca_bundle_pem)
    }

    /// Like [`FederationClient::new`] with an explicit TLS configuration (e.g. a join token's
    /// pin).
    pub fn with_tls(
        bases: &[String],
        token: Option<String>,
        tls: Option<rustls::ClientConfig>,
    ) -> Result<Self, ClientError> {
        if bases.is_empty() {
            return Err(ClientError::NoEndpoints);
        }
        crate::trust::ensure_crypto_provider();
        let mut builder = reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT);
        if let Some(cfg) = tls {
            builder = builder.use_preconfigured_tls(cfg);
        }
        let http = builder.build().map_err(|source| ClientError::Transport {
            url: bases.join(", "),
            source,
        })?;
        Ok(Self {
            bases: Arc::new(
                bases
                    .iter()
                    .map(|b| b.trim_end_matches('/').to_string())
                    .collect(),
            ),
            token,
            http,
            preferred: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The base URLs, in the order they were given.
    pub fn bases(&self) -> &[String] {
        &self.bases
    }

    /// Node indexes in the order to try them.
    fn order(&self) -> impl Iterator<Item = usize> + use<> {
        let n = self.bases.len();
        let p = self.preferred.load(Ordering::Relaxed) % n;
        (0..n).map(move |i| (p + i) % n)
    }

    async fn send_once(
        &self,
        base: &str,
        method: &Method,
        path: &str,
        body: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, ClientError> {
        let url = format!("{base}{path}");
        let mut req = self.http.request(method.clone(), &url);
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.to_vec());
        }
        let resp = req.send().await.map_err(|source| ClientError::Transport {
            url: url.clone(),
            source,
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|source| ClientError::Transport {
                url: url.clone(),
                source,
            })?;
        Err(error_of(status, &bytes))
    }

    /// Sends to each node in turn until one answers (see the module doc for when it moves
    /// on); the first answer is final.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, ClientError> {
        let mut last = ClientError::NoEndpoints;
        for i in self.order() {
            let base = &self.bases[i];
            let sent = self
                .send_once(base, &method, path, body.as_deref(), Some(REQUEST_TIMEOUT))
                .await;
            match sent {
                Ok(resp) => {
                    self.preferred.store(i, Ordering::Relaxed);
                    let url = format!("{base}{path}");
                    let bytes = resp
                        .bytes()
                        .await
                        .map_err(|source| ClientError::Transport { url, source })?;
                    return Ok(if bytes.is_empty() {
                        Answer::Empty
                    } else {
                        Answer::Json(bytes)
                    });
                }
                Err(e) => {
                    let move_on = if method == Method::POST {
                        e.never_sent()
                    } else {
                        e.try_another_node()
                    };
                    if !move_on {
                        return Err(e);
                    }
                    last = e;
                }
            }
        }
        Err(last)
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        let bytes = match self.call(method, path, body).await? {
            Answer::Json(b) => b,
            Answer::Empty => bytes::Bytes::from_static(b"null"),
        };
        serde_json::from_slice(&bytes).map_err(|source| ClientError::Decode {
            url: path.to_string(),
            source,
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.json(Method::GET, path, None).await
    }

    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.json(method, path, Some(encode(body)?)).await
    }

    async fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.call(Method::DELETE, path, None).await.map(|_| ())
    }

    // ---- clusters ----

    /// Registers a cluster (409 [`ClientError::Conflict`] if the name is taken).
    pub async fn register_cluster(
        &self,
        req: &RegisterCluster,
    ) -> Result<ClusterRegistered, ClientError> {
        self.send(Method::POST, paths::CLUSTERS, req).await
    }

    /// Registers a cluster with a join token.
    pub async fn join(&self, req: &JoinRequest) -> Result<ClusterRegistered, ClientError> {
        self.send(Method::POST, paths::JOIN, req).await
    }

    /// Issues `cluster` a new API credential (the previous one stops working).
    pub async fn new_credential(&self, cluster: &str) -> Result<CredentialIssued, ClientError> {
        self.send(Method::POST, &paths::cluster_credential(cluster), &())
            .await
    }

    /// Makes a single-use join token valid for `ttl_s` seconds.
    pub async fn create_join_token(&self, ttl_s: u64) -> Result<JoinTokenIssued, ClientError> {
        self.send(Method::POST, paths::JOIN_TOKENS, &TokenRequest { ttl_s })
            .await
    }

    pub async fn clusters(&self) -> Result<Listing<Cluster>, ClientError> {
        self.get(paths::CLUSTERS).await
    }

    pub async fn cluster(&self, name: &str) -> Result<Cluster, ClientError> {
        self.get(&paths::cluster(name)).await
    }

    pub async fn cluster_status(&self, name: &str) -> Result<ClusterStatus, ClientError> {
        self.get(&paths::cluster_status(name)).await
    }

    /// Removes a cluster with its exports and lease.
    pub async fn remove_cluster(&self, name: &str) -> Result<(), ClientError> {
        self.delete(&paths::cluster(name)).await
    }

    /// Points a registration at another east-west gateway address.
    pub async fn set_cluster_gateway(
        &self,
        name: &str,
        gateway: &str,
    ) -> Result<Cluster, ClientError> {
        let body = GatewayBody {
            gateway: gateway.to_string(),
        };
        self.send(Method::PUT, &paths::cluster_gateway(name), &body)
            .await
    }

    // ---- leases ----

    pub async fn renew_lease(&self, cluster: &str, body: &LeaseBody) -> Result<Lease, ClientError> {
        self.send(Method::PUT, &paths::lease(cluster), body).await
    }

    /// Withdraws a cluster's lease at once (its gateway is draining).
    pub async fn withdraw_lease(&self, cluster: &str) -> Result<(), ClientError> {
        self.delete(&paths::lease(cluster)).await
    }

    pub async fn leases(&self) -> Result<LeaseList, ClientError> {
        self.get(paths::LEASES).await
    }

    // ---- services ----

    /// Creates or updates an export.
    pub async fn export(
        &self,
        cluster: &str,
        namespace: &str,
        service: &str,
        body: &ExportBody,
    ) -> Result<ServiceExport, ClientError> {
        self.send(
            Method::PUT,
            &paths::export(cluster, namespace, service),
            body,
        )
        .await
    }

    pub async fn unexport(
        &self,
        cluster: &str,
        namespace: &str,
        service: &str,
    ) -> Result<(), ClientError> {
        self.delete(&paths::export(cluster, namespace, service))
            .await
    }

    /// The global catalog: every service with the clusters that export it.
    pub async fn services(&self) -> Result<Listing<CatalogService>, ClientError> {
        self.get(paths::SERVICES).await
    }

    /// Everything a gateway routes by, at one revision.
    pub async fn catalog(&self) -> Result<RoutingCatalog, ClientError> {
        self.get(paths::CATALOG).await
    }

    // ---- trust ----

    pub async fn bundles(&self) -> Result<Listing<TrustBundle>, ClientError> {
        self.get(paths::BUNDLES).await
    }

    pub async fn put_bundle(
        &self,
        trust_domain: &str,
        ca_bundle_pem: &str,
    ) -> Result<TrustBundle, ClientError> {
        let body = BundleBody {
            ca_bundle_pem: ca_bundle_pem.to_string(),
        };
        self.send(Method::PUT, &paths::bundle(trust_domain), &body)
            .await
    }

    pub async fn trust_status(&self) -> Result<Listing<BundleStatus>, ClientError> {
        self.get(paths::TRUST_STATUS).await
    }

    // ---- policies ----

    pub async fn traffic_policies(&self) -> Result<Listing<TrafficPolicy>, ClientError> {
        self.get(paths::TRAFFIC_POLICIES).await
    }

    /// Creates or replaces the traffic policy `id`.
    pub async fn put_traffic_policy(
        &self,
        id: &str,
        body: &PolicyBody,
    ) -> Result<TrafficPolicy, ClientError> {
        self.send(Method::PUT, &paths::traffic_policy(id), body)
            .await
    }

    pub async fn delete_traffic_policy(&self, id: &str) -> Result<(), ClientError> {
        self.delete(&paths::traffic_policy(id)).await
    }

    pub async fn security_policies(&self) -> Result<Listing<SecurityPolicy>, ClientError> {
        self.get(paths::SECURITY_POLICIES).await
    }

    /// Creates or replaces the authorization policy `id`.
    pub async fn put_security_policy(
        &self,
        id: &str,
        body: &SecurityBody,
    ) -> Result<SecurityPolicy, ClientError> {
        self.send(Method::PUT, &paths::security_policy(id), body)
            .await
    }

    pub async fn delete_security_policy(&self, id: &str) -> Result<(), ClientError> {
        self.delete(&paths::security_policy(id)).await
    }

    // ---- routes ----

    pub async fn routes(&self) -> Result<Listing<Route>, ClientError> {
        self.get(paths::ROUTES).await
    }

    pub async fn route(&self, id: &str) -> Result<Route, ClientError> {
        self.get(&paths::route(id)).await
    }

    /// Creates or replaces the route `id`.
    pub async fn put_route(&self, id: &str, body: &RouteBody) -> Result<Route, ClientError> {
        self.send(Method::PUT, &paths::route(id), body).await
    }

    /// What putting the route `id` would change; nothing is written.
    pub async fn dry_run_route(
        &self,
        id: &str,
        body: &RouteBody,
    ) -> Result<DryRun<Route>, ClientError> {
        self.send(Method::PUT, &paths::route_dry_run(id), body)
            .await
    }

    pub async fn delete_route(&self, id: &str) -> Result<(), ClientError> {
        self.delete(&paths::route(id)).await
    }

    // ---- mesh configuration ----

    /// The mesh's settings, or a cluster's overrides, with the revision read at.
    pub async fn config(&self, scope: &ConfigScope) -> Result<ConfigDocument, ClientError> {
        self.get(&scope.path()).await
    }

    /// Replaces the document (`MeshConfig::default()` clears it).
    pub async fn put_config(
        &self,
        scope: &ConfigScope,
        config: &MeshConfig,
    ) -> Result<ConfigDocument, ClientError> {
        self.send(Method::PUT, &scope.path(), config).await
    }

    /// What replacing the document would change; nothing is written.
    pub async fn dry_run_config(
        &self,
        scope: &ConfigScope,
        config: &MeshConfig,
    ) -> Result<DryRun<MeshConfig>, ClientError> {
        self.send(Method::PUT, &paths::dry_run(&scope.path()), config)
            .await
    }

    // ---- observability ----

    /// The golden signals per edge across the mesh over `window` (`1m` or `5m`).
    pub async fn signals(
        &self,
        window: &str,
        service: Option<&str>,
    ) -> Result<crate::signals::MeshSignals, ClientError> {
        self.get(&paths::observability_metrics(window, service))
            .await
    }

    /// Every hop of a trace the gateways recorded.
    pub async fn trace(
        &self,
        trace_id: &str,
    ) -> Result<crate::recent::RecentRequests, ClientError> {
        self.get(&paths::observability_trace(trace_id)).await
    }

    /// The newest recorded requests `q` selects.
    pub async fn recent_requests(
        &self,
        q: &crate::recent::RecentQuery,
    ) -> Result<crate::recent::RecentRequests, ClientError> {
        self.get(&paths::observability_logs(q)).await
    }

    /// Where each gateway sends each service's traffic now (`q` filters).
    pub async fn placements(
        &self,
        q: &crate::placement::PlacementQuery,
    ) -> Result<crate::placement::MeshPlacements, ClientError> {
        self.get(&paths::observability_placements(q)).await
    }

    /// Who changed what after revision `since` (oldest first, `limit` at most).
    pub async fn audit(
        &self,
        since: u64,
        limit: usize,
    ) -> Result<Listing<crate::audit::AuditRecord>, ClientError> {
        self.get(&paths::audit(since, limit)).await
    }

    /// Checks a bundle of objects without writing it: every error and warning.
    pub async fn validate(&self, bundle: &ValidateBundle) -> Result<ValidationReport, ClientError> {
        self.send(Method::POST, paths::MESH_VALIDATE, bundle).await
    }

    // ---- authorization policies ----

    pub async fn authorization_policies(
        &self,
    ) -> Result<Listing<AuthorizationPolicy>, ClientError> {
        self.get(paths::AUTHORIZATION_POLICIES).await
    }

    pub async fn authorization_policy(&self, id: &str) -> Result<AuthorizationPolicy, ClientError> {
        self.get(&paths::authorization_policy(id)).await
    }

    /// Creates or replaces the authorization policy `id`.
    pub async fn put_authorization_policy(
        &self,
        id: &str,
        body: &AuthorizationBody,
    ) -> Result<AuthorizationPolicy, ClientError> {
        self.send(Method::PUT, &paths::authorization_policy(id), body)
            .await
    }

    /// What putting the authorization policy `id` would change; nothing is written.
    pub async fn dry_run_authorization_policy(
        &self,
        id: &str,
        body: &AuthorizationBody,
    ) -> Result<DryRun<AuthorizationPolicy>, ClientError> {
        self.send(Method::PUT, &paths::authorization_policy_dry_run(id), body)
            .await
    }

    pub async fn delete_authorization_policy(&self, id: &str) -> Result<(), ClientError> {
        self.delete(&paths::authorization_policy(id)).await
    }

    // ---- JWT policies ----

    pub async fn jwt_policies(&self) -> Result<Listing<JwtPolicy>, ClientError> {
        self.get(paths::JWT_POLICIES).await
    }

    pub async fn jwt_policy(&self, id: &str) -> Result<JwtPolicy, ClientError> {
        self.get(&paths::jwt_policy(id)).await
    }

    /// Creates or replaces the JWT policy `id`.
    pub async fn put_jwt_policy(&self, id: &str, body: &JwtBody) -> Result<JwtPolicy, ClientError> {
        self.send(Method::PUT, &paths::jwt_policy(id), body).await
    }

    /// What putting the JWT policy `id` would change; nothing is written.
    pub async fn dry_run_jwt_policy(
        &self,
        id: &str,
        body: &JwtBody,
    ) -> Result<DryRun<JwtPolicy>, ClientError> {
        self.send(Method::PUT, &paths::jwt_policy_dry_run(id), body)
            .await
    }

    pub async fn delete_jwt_policy(&self, id: &str) -> Result<(), ClientError> {
        self.delete(&paths::jwt_policy(id)).await
    }

    // ---- resilience policies ----

    pub async fn resilience_policies(&self) -> Result<Listing<ResiliencePolicy>, ClientError> {
        self.get(paths::RESILIENCE_POLICIES).await
    }

    pub async fn resilience_policy(&self, id: &str) -> Result<ResiliencePolicy, ClientError> {
        self.get(&paths::resilience_policy(id)).await
    }

    /// Creates or replaces the resilience policy `id`.
    pub async fn put_resilience_policy(
        &self,
        id: &str,
        body: &ResilienceBody,
    ) -> Result<ResiliencePolicy, ClientError> {
        self.send(Method::PUT, &paths::resilience_policy(id), body)
            .await
    }

    /// What putting the resilience policy `id` would change; nothing is written.
    pub async fn dry_run_resilience_policy(
        &self,
        id: &str,
        body: &ResilienceBody,
    ) -> Result<DryRun<ResiliencePolicy>, ClientError> {
        self.send(Method::PUT, &paths::resilience_policy_dry_run(id), body)
            .await
    }

    pub async fn delete_resilience_policy(&self, id: &str) -> Result<(), ClientError> {
        self.delete(&paths::resilience_policy(id)).await
    }

    // ---- the Raft group ----

    /// The Raft view of the node that answers (a client of one node asks that node).
    pub async fn mesh_status(&self) -> Result<MeshStatus, ClientError> {
        self.get(paths::MESH_STATUS).await
    }

    pub async fn add_member(&self, req: &AddMember) -> Result<MemberAdded, ClientError> {
        self.send(Method::POST, paths::MEMBERS, req).await
    }

    pub async fn remove_member(&self, id: u64) -> Result<(), ClientError> {
        self.delete(&paths::member(id)).await
    }

    /// 200 once Raft runs and a leader is known; 503 [`ClientError::Unavailable`] otherwise.
    pub async fn readyz(&self) -> Result<Ready, ClientError> {
        self.get(paths::READYZ).await
    }

    // ---- the watch stream ----

    /// Follows changes after `after` on the first node that answers. A revision older than
    /// the retained history fails with [`ClientError::RevisionCompacted`] (at once, or as the
    /// stream's last item); any other refusal moves on to the next node.
    pub async fn watch(&self, after: u64) -> Result<WatchStream, ClientError> {
        let path = paths::watch(after);
        let mut last = ClientError::NoEndpoints;
        for i in self.order() {
            let base = &self.bases[i];
            match self.send_once(base, &Method::GET, &path, None, None).await {
                Ok(resp) => {
                    self.preferred.store(i, Ordering::Relaxed);
                    return Ok(watch::lines(format!("{base}{path}"), resp.bytes_stream()));
                }
                Err(e @ ClientError::RevisionCompacted { .. }) => return Err(e),
                Err(e) => last = e,
            }
        }
        // Start with the next node next time.
        self.preferred.fetch_add(1, Ordering::Relaxed);
        Err(last)
    }

    /// Moves the preferred node on (after a watch stream broke, say).
    pub fn prefer_next(&self) {
        self.preferred.fetch_add(1, Ordering::Relaxed);
    }
}

fn encode<B: Serialize>(body: &B) -> Result<Vec<u8>, ClientError> {
    serde_json::to_vec(body).map_err(|source| ClientError::Decode {
        url: "request body".into(),
        source,
    })
}

fn error_of(status: u16, bytes: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(b) => ClientError::from_answer(status, b.error.code, b.error.message, b.error.field),
        Err(_) => ClientError::from_answer(
            status,
            "unknown".into(),
            String::from_utf8_lossy(bytes).chars().take(500).collect(),
            None,
        ),
    }
}
