//! A fake Kubernetes API server at the HTTP level, for driving the gateway's real `kube`
//! client (no API server can run on the test machines).
//!
//! It serves what the gateway's watchers use, the way the real API server answers: cluster-wide
//! list and watch of Services, EndpointSlices and ServiceExports with one `resourceVersion`
//! counter; watches stream newline-delimited JSON events from a given version, send
//! `BOOKMARK`s every 500 ms, and answer a version older than the compaction point with an
//! `ERROR` event carrying a `410 Expired` Status (which forces a relist); and merge-patches of
//! the status subresource of ServiceExports, ServiceImports, HTTPRoutes and GRPCRoutes (the
//! server without the CRDs answers 404 for all of them); creates (`POST`, 409 AlreadyExists,
//! a ClusterIP allocated for a Service), replaces (`PUT`, 409 Conflict on a stale
//! `resourceVersion`, status and `clusterIP` kept — and a replace made to lose a race to
//! another writer, [`FakeKube::race_next_replace`]) and deletes, each recorded
//! ([`FakeKube::writes`]). Pods are served too, and — like the real API server —
//! as `PartialObjectMetadata` (metadata only) to a client whose `Accept` asks for it; such
//! requests are counted ([`FakeKube::metadata_requests`]). Tests mutate the state, drop watch
//! connections, or lose events on purpose ([`FakeKube::delete_unseen`]).

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// The resources the fake serves: (plural, apiVersion, kind).
pub const SERVICES: (&str, &str, &str) = ("services", "v1", "Service");
pub const SLICES: (&str, &str, &str) = ("endpointslices", "discovery.k8s.io/v1", "EndpointSlice");
pub const EXPORTS: (&str, &str, &str) = (
    "serviceexports",
    "multicluster.x-k8s.io/v1alpha1",
    "ServiceExport",
);
pub const PODS: (&str, &str, &str) = ("pods", "v1", "Pod");
pub const HTTP_ROUTES: (&str, &str, &str) =
    ("httproutes", "gateway.networking.k8s.io/v1", "HTTPRoute");
pub const GRPC_ROUTES: (&str, &str, &str) =
    ("grpcroutes", "gateway.networking.k8s.io/v1", "GRPCRoute");
pub const TRAFFIC_POLICIES: (&str, &str, &str) = (
    "wardentrafficpolicies",
    "warden.io/v1alpha1",
    "WardenTrafficPolicy",
);
pub const SECURITY_POLICIES: (&str, &str, &str) = (
    "wardensecuritypolicies",
    "warden.io/v1alpha1",
    "WardenSecurityPolicy",
);
pub const IMPORTS: (&str, &str, &str) = (
    "serviceimports",
    "multicluster.x-k8s.io/v1alpha1",
    "ServiceImport",
);

fn kind_of(plural: &str) -> (&'static str, &'static str, &'static str) {
    match plural {
        "services" => SERVICES,
        "endpointslices" => SLICES,
        "pods" => PODS,
        "httproutes" => HTTP_ROUTES,
        "grpcroutes" => GRPC_ROUTES,
        "serviceimports" => IMPORTS,
        "wardentrafficpolicies" => TRAFFIC_POLICIES,
        "wardensecuritypolicies" => SECURITY_POLICIES,
        _ => EXPORTS,
    }
}

/// `obj` as the API server sends it to a metadata-only client.
fn metadata_only(obj: &Value) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
           "metadata": obj["metadata"].clone()})
}

#[derive(Default)]
struct St {
    /// The ServiceExport CRD is not installed: its paths answer 404.
    no_crd: bool,
    rv: u64,
    /// Watches from a version below this answer 410 Expired.
    compacted: u64,
    objects: BTreeMap<(String, String, String), Value>,
    /// (rv, plural, event type, object) — the watch history.
    log: Vec<(u64, String, String, Value)>,
    /// (plural, metadata only, events): open watch connections.
    watchers: Vec<(String, bool, mpsc::UnboundedSender<Value>)>,
    /// Requests (lists and watches) that asked for metadata only, by plural.
    meta: HashMap<String, u32>,
    lists: HashMap<String, u32>,
    watches: HashMap<String, u32>,
    status_patches: Vec<(String, String, Value)>,
    /// (method, plural, namespace, name): every create, replace and delete served.
    writes: Vec<(String, String, String, String)>,
    /// ClusterIPs handed out so far.
    cluster_ips: u32,
    /// Objects whose next replace loses a race to another writer.
    races: std::collections::BTreeSet<(String, String, String)>,
}

impl St {
    fn emit(&mut self, plural: &str, typ: &str, obj: Value) {
        self.log
            .push((self.rv, plural.to_string(), typ.to_string(), obj.clone()));
        let ev = json!({ "type": typ, "object": obj });
        let meta = json!({ "type": typ, "object": metadata_only(&obj) });
        self.watchers.retain(|(p, m, tx)| {
            p != plural || tx.send(if *m { meta.clone() } else { ev.clone() }).is_ok()
        });
    }

    fn put(&mut self, plural: &str, mut obj: Value) -> Value {
        let (_, api_version, kind) = kind_of(plural);
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        self.rv += 1;
        obj["apiVersion"] = json!(api_version);
        obj["kind"] = json!(kind);
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        if obj["metadata"]["uid"].is_null() {
            obj["metadata"]["uid"] = json!(format!("uid-{plural}-{ns}-{name}"));
        }
        let key = (plural.to_string(), ns, name);
        // metadata.generation counts changes of the spec (not of the status), as the API server
        // keeps it.
        let generation = match self.objects.get(&key) {
            None => 1,
            Some(old) => {
                let g = old["metadata"]["generation"].as_i64().unwrap_or(1);
                if old["spec"] == obj["spec"] { g } else { g + 1 }
            }
        };
        obj["metadata"]["generation"] = json!(generation);
        let typ = if self.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        self.objects.insert(key, obj.clone());
        self.emit(plural, typ, obj.clone());
        obj
    }
}

/// A running fake API server.
pub struct FakeKube {
    pub url: String,
    st: Arc<Mutex<St>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl FakeKube {
    pub async fn start() -> FakeKube {
        Self::start_with(false).await
    }

    /// A server on which the ServiceExport CRD is not installed.
    pub async fn start_without_crd() -> FakeKube {
        Self::start_with(true).await
    }

    async fn start_with(no_crd: bool) -> FakeKube {
        let st = Arc::new(Mutex::new(St {
            no_crd,
            ..St::default()
        }));
        let app = Router::new()
            .route("/api/v1/{plural}", get(list_or_watch))
            .route("/apis/{group}/{version}/{plural}", get(list_or_watch_group))
            .route(
                "/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}/status",
                patch(patch_status),
            )
            .route("/api/v1/namespaces/{ns}/{plural}", post(create_core))
            .route(
                "/api/v1/namespaces/{ns}/{plural}/{name}",
                put(replace_core).delete(delete_core),
            )
            .route(
                "/apis/{group}/{version}/namespaces/{ns}/{plural}",
                post(create_group),
            )
            .route(
                "/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}",
                put(replace_group).delete(delete_group),
            )
            .with_state(st.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake API server");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let bm = st.clone();
        let bookmarks = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let mut s = bm.lock().unwrap();
                let rv = s.rv.to_string();
                s.watchers.retain(|(plural, meta, tx)| {
                    let (_, api_version, kind) = kind_of(plural);
                    let (api_version, kind) = if *meta {
                        ("meta.k8s.io/v1", "PartialObjectMetadata")
                    } else {
                        (api_version, kind)
                    };
                    tx.send(json!({"type": "BOOKMARK", "object": {
                        "apiVersion": api_version, "kind": kind,
                        "metadata": {"resourceVersion": rv}
                    }}))
                    .is_ok()
                });
            }
        });
        FakeKube {
            url,
            st,
            tasks: vec![server, bookmarks],
        }
    }

    /// Creates or replaces an object; watchers see ADDED or MODIFIED.
    pub fn apply(&self, res: (&str, &str, &str), obj: Value) {
        self.st.lock().unwrap().put(res.0, obj);
    }

    /// Deletes an object; watchers see DELETED.
    pub fn delete(&self, res: (&str, &str, &str), ns: &str, name: &str) {
        let mut s = self.st.lock().unwrap();
        if let Some(mut obj) = s
            .objects
            .remove(&(res.0.to_string(), ns.into(), name.into()))
        {
            s.rv += 1;
            obj["metadata"]["resourceVersion"] = json!(s.rv.to_string());
            s.emit(res.0, "DELETED", obj);
        }
    }

    /// Deletes an object while no watcher sees it, and compacts the history past it: a watch
    /// that resumes from before the delete gets 410 Expired, as after an etcd compaction.
    pub fn delete_unseen(&self, res: (&str, &str, &str), ns: &str, name: &str) {
        let mut s = self.st.lock().unwrap();
        s.watchers.clear();
        s.objects
            .remove(&(res.0.to_string(), ns.into(), name.into()));
        s.rv += 1;
        s.compacted = s.rv;
        s.log.clear();
    }

    /// The next replace of this object loses a race: another writer updates it first (its
    /// `resourceVersion` moves on, watchers see the update), so the replace gets 409 Conflict —
    /// recorded as a `conflict` write. What the writer does next is up to it.
    pub fn race_next_replace(&self, res: (&str, &str, &str), ns: &str, name: &str) {
        let mut s = self.st.lock().unwrap();
        s.races
            .insert((res.0.to_string(), ns.to_string(), name.to_string()));
    }

    /// Closes every open watch connection (the client must resume from its last version).
    pub fn drop_watches(&self) {
        self.st.lock().unwrap().watchers.clear();
    }

    /// Lists and watches of a resource that asked for metadata only, so far.
    pub fn metadata_requests(&self, res: (&str, &str, &str)) -> u32 {
        let s = self.st.lock().unwrap();
        s.meta.get(res.0).copied().unwrap_or(0)
    }

    /// (lists, watches) served for a resource so far.
    pub fn requests(&self, res: (&str, &str, &str)) -> (u32, u32) {
        let s = self.st.lock().unwrap();
        (
            s.lists.get(res.0).copied().unwrap_or(0),
            s.watches.get(res.0).copied().unwrap_or(0),
        )
    }

    /// (method, namespace, name) of every write to a resource so far.
    pub fn writes(&self, res: (&str, &str, &str)) -> Vec<(String, String, String)> {
        let s = self.st.lock().unwrap();
        s.writes
            .iter()
            .filter(|(_, p, _, _)| p == res.0)
            .map(|(m, _, ns, n)| (m.clone(), ns.clone(), n.clone()))
            .collect()
    }

    /// Every object of a resource, by (namespace, name).
    pub fn objects(&self, res: (&str, &str, &str)) -> BTreeMap<(String, String), Value> {
        let s = self.st.lock().unwrap();
        s.objects
            .iter()
            .filter(|((p, _, _), _)| p == res.0)
            .map(|((_, ns, n), o)| ((ns.clone(), n.clone()), o.clone()))
            .collect()
    }

    pub fn object(&self, res: (&str, &str, &str), ns: &str, name: &str) -> Option<Value> {
        self.st
            .lock()
            .unwrap()
            .objects
            .get(&(res.0.to_string(), ns.into(), name.into()))
            .cloned()
    }

    /// A kubeconfig pointing at this server.
    pub fn kubeconfig(&self, path: &std::path::Path) {
        let cfg = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\nusers:\n- name: gateway\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: gateway\ncurrent-context: fake\n",
            self.url
        );
        std::fs::write(path, cfg).expect("write kubeconfig");
    }
}

/// The (status, reason) of condition `typ` in an object's `status.conditions`.
pub fn condition(obj: &Value, typ: &str) -> Option<(String, String)> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == typ)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or("").to_string(),
                c["reason"].as_str().unwrap_or("").to_string(),
            )
        })
}

/// Whether the client asked for metadata only (`Accept: ...;as=PartialObjectMetadata...`).
fn wants_metadata(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("as=PartialObjectMetadata"))
}

async fn list_or_watch(
    State(st): State<Arc<Mutex<St>>>,
    Path(plural): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Response {
    serve(st, "", &plural, q, wants_metadata(&headers))
}

async fn list_or_watch_group(
    State(st): State<Arc<Mutex<St>>>,
    Path((group, version, plural)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Response {
    serve(
        st,
        &format!("{group}/{version}"),
        &plural,
        q,
        wants_metadata(&headers),
    )
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": format!("the server could not find {what}"),
            "reason": "NotFound", "code": 404})),
    )
        .into_response()
}

fn serve(
    st: Arc<Mutex<St>>,
    group: &str,
    plural: &str,
    q: HashMap<String, String>,
    meta: bool,
) -> Response {
    let mut s = st.lock().unwrap();
    if !served(&s, group, plural) {
        return not_found(&format!("{group}/{plural}"));
    }
    let (_, api_version, kind) = kind_of(plural);
    let (api_version, kind) = if meta {
        *s.meta.entry(plural.to_string()).or_default() += 1;
        ("meta.k8s.io/v1", "PartialObjectMetadata")
    } else {
        (api_version, kind)
    };
    let watch = q.get("watch").is_some_and(|w| w == "true" || w == "1");
    if !watch {
        *s.lists.entry(plural.to_string()).or_default() += 1;
        let items: Vec<Value> = s
            .objects
            .iter()
            .filter(|((p, _, _), _)| p == plural)
            .map(|(_, o)| {
                // The real API server leaves kind and apiVersion out of list items.
                let mut o = if meta { metadata_only(o) } else { o.clone() };
                if let Some(m) = o.as_object_mut() {
                    m.remove("kind");
                    m.remove("apiVersion");
                }
                o
            })
            .collect();
        return axum::Json(json!({
            "apiVersion": api_version, "kind": format!("{kind}List"),
            "metadata": {"resourceVersion": s.rv.to_string()},
            "items": items,
        }))
        .into_response();
    }
    *s.watches.entry(plural.to_string()).or_default() += 1;
    let from: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (tx, rx) = mpsc::unbounded_channel();
    if from < s.compacted {
        let _ = tx.send(json!({"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("too old resource version: {from} ({})", s.compacted),
            "reason": "Expired", "code": 410}}));
        drop(tx);
    } else {
        for (rv, p, typ, obj) in &s.log {
            if p == plural && *rv > from {
                let obj = if meta {
                    metadata_only(obj)
                } else {
                    obj.clone()
                };
                let _ = tx.send(json!({"type": typ, "object": obj}));
            }
        }
        s.watchers.push((plural.to_string(), meta, tx));
    }
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let ev = rx.recv().await?;
        let mut line = serde_json::to_vec(&ev).expect("event JSON");
        line.push(b'\n');
        Some((Ok::<_, Infallible>(bytes::Bytes::from(line)), rx))
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .expect("watch response")
}

/// Whether the server serves `group/plural` (a CRD's resources only when CRDs are installed).
fn served(s: &St, group: &str, plural: &str) -> bool {
    let known = matches!(
        (group, plural),
        ("", "services")
            | ("", "pods")
            | ("discovery.k8s.io/v1", "endpointslices")
            | (
                "multicluster.x-k8s.io/v1alpha1",
                "serviceexports" | "serviceimports"
            )
            | ("gateway.networking.k8s.io/v1", "httproutes" | "grpcroutes")
            | (
                "warden.io/v1alpha1",
                "wardentrafficpolicies" | "wardensecuritypolicies"
            )
    );
    known && (!s.no_crd || matches!(plural, "services" | "endpointslices" | "pods"))
}

fn status(code: StatusCode, reason: &str, message: String) -> Response {
    (
        code,
        axum::Json(json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason,
            "code": code.as_u16()})),
    )
        .into_response()
}

/// `POST`: creates an object; 409 AlreadyExists when it exists. A Service without a
/// `clusterIP` gets one, as the API server allocates it.
fn create(st: &Mutex<St>, group: &str, ns: &str, plural: &str, body: &[u8]) -> Response {
    let mut s = st.lock().unwrap();
    if !served(&s, group, plural) {
        return not_found(&format!("{group}/{plural}"));
    }
    let Ok(mut obj) = serde_json::from_slice::<Value>(body) else {
        return status(StatusCode::BAD_REQUEST, "BadRequest", "not JSON".into());
    };
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    if name.is_empty() {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "metadata.name: Required".into(),
        );
    }
    if s.objects
        .contains_key(&(plural.to_string(), ns.to_string(), name.clone()))
    {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("{plural} {name:?} already exists"),
        );
    }
    obj["metadata"]["namespace"] = json!(ns);
    obj["metadata"]
        .as_object_mut()
        .map(|m| m.remove("resourceVersion"));
    if plural == "services" && obj["spec"]["clusterIP"].as_str().unwrap_or("").is_empty() {
        s.cluster_ips += 1;
        let n = s.cluster_ips;
        obj["spec"]["clusterIP"] = json!(format!("10.96.{}.{}", n / 250, n % 250 + 1));
    }
    s.writes
        .push(("create".into(), plural.into(), ns.into(), name));
    let obj = s.put(plural, obj);
    (StatusCode::CREATED, axum::Json(obj)).into_response()
}

/// `PUT`: replaces an object; 404 when it does not exist, 409 Conflict when the body's
/// `resourceVersion` is not the stored one (optimistic concurrency). Status is kept: it has
/// its own subresource.
fn replace(
    st: &Mutex<St>,
    group: &str,
    ns: &str,
    plural: &str,
    name: &str,
    body: &[u8],
) -> Response {
    let mut s = st.lock().unwrap();
    if !served(&s, group, plural) {
        return not_found(&format!("{group}/{plural}"));
    }
    let Ok(mut obj) = serde_json::from_slice::<Value>(body) else {
        return status(StatusCode::BAD_REQUEST, "BadRequest", "not JSON".into());
    };
    let key = (plural.to_string(), ns.to_string(), name.to_string());
    let Some(current) = s.objects.get(&key).cloned() else {
        return not_found(&format!("{plural} {ns}/{name}"));
    };
    if s.races.remove(&key) {
        s.put(plural, current.clone());
        s.writes
            .push(("conflict".into(), plural.into(), ns.into(), name.into()));
    }
    let current = s.objects.get(&key).cloned().unwrap_or(current);
    let theirs = obj["metadata"]["resourceVersion"].as_str().unwrap_or("");
    if theirs
        != current["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("")
    {
        return status(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {plural} {name:?}: the object has been modified; please apply your changes to the latest version and try again"
            ),
        );
    }
    obj["metadata"]["namespace"] = json!(ns);
    obj["metadata"]["uid"] = current["metadata"]["uid"].clone();
    if !current["status"].is_null() {
        obj["status"] = current["status"].clone();
    }
    if plural == "services" {
        // spec.clusterIP is immutable.
        obj["spec"]["clusterIP"] = current["spec"]["clusterIP"].clone();
    }
    s.writes
        .push(("replace".into(), plural.into(), ns.into(), name.into()));
    let obj = s.put(plural, obj);
    axum::Json(obj).into_response()
}

fn delete_obj(st: &Mutex<St>, group: &str, ns: &str, plural: &str, name: &str) -> Response {
    let mut s = st.lock().unwrap();
    if !served(&s, group, plural) {
        return not_found(&format!("{group}/{plural}"));
    }
    let Some(mut obj) = s
        .objects
        .remove(&(plural.to_string(), ns.to_string(), name.to_string()))
    else {
        return not_found(&format!("{plural} {ns}/{name}"));
    };
    s.rv += 1;
    obj["metadata"]["resourceVersion"] = json!(s.rv.to_string());
    s.writes
        .push(("delete".into(), plural.into(), ns.into(), name.into()));
    s.emit(plural, "DELETED", obj.clone());
    axum::Json(obj).into_response()
}

async fn create_core(
    State(st): State<Arc<Mutex<St>>>,
    Path((ns, plural)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    create(&st, "", &ns, &plural, &body)
}

async fn create_group(
    State(st): State<Arc<Mutex<St>>>,
    Path((group, version, ns, plural)): Path<(String, String, String, String)>,
    body: axum::body::Bytes,
) -> Response {
    create(&st, &format!("{group}/{version}"), &ns, &plural, &body)
}

async fn replace_core(
    State(st): State<Arc<Mutex<St>>>,
    Path((ns, plural, name)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Response {
    replace(&st, "", &ns, &plural, &name, &body)
}

async fn replace_group(
    State(st): State<Arc<Mutex<St>>>,
    Path((group, version, ns, plural, name)): Path<(String, String, String, String, String)>,
    body: axum::body::Bytes,
) -> Response {
    replace(
        &st,
        &format!("{group}/{version}"),
        &ns,
        &plural,
        &name,
        &body,
    )
}

async fn delete_core(
    State(st): State<Arc<Mutex<St>>>,
    Path((ns, plural, name)): Path<(String, String, String)>,
) -> Response {
    delete_obj(&st, "", &ns, &plural, &name)
}

async fn delete_group(
    State(st): State<Arc<Mutex<St>>>,
    Path((group, version, ns, plural, name)): Path<(String, String, String, String, String)>,
) -> Response {
    delete_obj(&st, &format!("{group}/{version}"), &ns, &plural, &name)
}

async fn patch_status(
    State(st): State<Arc<Mutex<St>>>,
    Path((_group, _version, ns, plural, name)): Path<(String, String, String, String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    let mut s = st.lock().unwrap();
    let key = (plural.clone(), ns.clone(), name.clone());
    let Some(mut obj) = s.objects.get(&key).cloned() else {
        return not_found(&format!("{plural} {ns}/{name}"));
    };
    // JSON merge patch of .status (arrays are replaced whole, as RFC 7386 says).
    if let Some(status) = patch.get("status").and_then(Value::as_object) {
        for (k, v) in status {
            obj["status"][k] = v.clone();
        }
    }
    s.status_patches.push((ns, name, patch));
    let obj = s.put(&plural, obj);
    axum::Json(obj).into_response()
}
