//! Test support: real `warden federation` processes on loopback, stopped by PID.
//!
//! Each node binds `127.0.0.1:0`, prints its bound addresses on stdout, and is restarted on the
//! same addresses (as a real member would be). Every process is killed by its PID on drop.
#![allow(dead_code)]

pub mod browser;
pub mod kube_fake;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
pub use warden_federation::paths;

pub const TOKEN: &str = "test-admin-token-0123456789";

/// Polls `f` until it returns `Some`, or panics with `what` after `patience`.
pub async fn eventually<T, F, Fut>(patience: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("gave up waiting for: {what} (after {patience:?})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends SIGTERM to `child` by its PID and waits up to `patience` for it to exit.
async fn terminate(
    child: &mut Option<Child>,
    patience: Duration,
) -> Option<std::process::ExitStatus> {
    let c = child.as_mut()?;
    let pid = c.id()?;
    // The shell's own `kill`: no procps needed.
    std::process::Command::new("bash")
        .args(["-c", &format!("kill -TERM {pid}")])
        .status()
        .ok()?;
    let status = tokio::time::timeout(patience, c.wait()).await.ok()?.ok()?;
    *child = None;
    Some(status)
}

/// One `warden federation` process.
pub struct NodeProc {
    pub id: u64,
    pub dir: PathBuf,
    pub api: String,
    pub raft: String,
    child: Option<Child>,
    /// Extra lines for the config file (e.g. bootstrap).
    extra: String,
    /// Command prefix, e.g. `ip netns exec ns1` for partition tests.
    prefix: Vec<String>,
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_warden")
}

impl NodeProc {
    /// Starts a node; `api`/`raft` are listen addresses (`127.0.0.1:0` for a fresh node).
    pub async fn start(
        id: u64,
        root: &Path,
        api: &str,
        raft: &str,
        extra: &str,
        prefix: &[String],
    ) -> NodeProc {
        let dir = root.join(format!("node-{id}"));
        std::fs::create_dir_all(&dir).expect("node dir");
        // Lines of `extra` written `raft.<key> = ...` go into the [raft] table.
        let (raft_extra, top_extra): (Vec<&str>, Vec<&str>) =
            extra.lines().partition(|l| l.starts_with("raft."));
        let raft_extra: Vec<&str> = raft_extra
            .iter()
            .map(|l| l.trim_start_matches("raft."))
            .collect();
        let cfg = format!(
            "node_id = {id}\ndata_dir = {data:?}\napi_listen = {api:?}\nraft_listen = {raft:?}\nwrite_timeout_ms = 3000\n{top}\n[raft]\nheartbeat_ms = 100\nelection_timeout_min_ms = 400\nelection_timeout_max_ms = 800\nsnapshot_after_logs = 50\nkeep_logs_after_snapshot = 10\n{rafts}\n",
            data = dir.join("data").display().to_string(),
            top = top_extra.join("\n"),
            rafts = raft_extra.join("\n"),
        );
        let cfg_path = dir.join("node.toml");
        std::fs::write(&cfg_path, cfg).expect("write config");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("node.log"))
            .expect("log file");
        let mut argv: Vec<String> = prefix.to_vec();
        argv.push(bin().to_string());
        argv.extend([
            "federation".into(),
            "--config".into(),
            cfg_path.display().to_string(),
        ]);
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .env("WARDEN_ADMIN_TOKEN", TOKEN)
            .env("WARDEN_LOG", "info,openraft=warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn warden federation");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("node did not report its addresses in time")
            .expect("read stdout")
            .unwrap_or_else(|| {
                panic!(
                    "node {id} exited before listening; see {}",
                    dir.join("node.log").display()
                )
            });
        let v: Value = serde_json::from_str(&line).expect("listening line is JSON");
        NodeProc {
            id,
            dir,
            api: v["api"].as_str().expect("api").to_string(),
            raft: v["raft"].as_str().expect("raft").to_string(),
            child: Some(child),
            extra: extra.to_string(),
            prefix: prefix.to_vec(),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    pub fn alive(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL by PID, then reap.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }

    /// SIGTERM by PID; waits up to `patience` for the exit and returns its status (`None` if
    /// it did not exit in time; it is then killed on drop).
    pub async fn terminate(&mut self, patience: Duration) -> Option<std::process::ExitStatus> {
        terminate(&mut self.child, patience).await
    }

    /// Starts the node again on the same addresses and data directory.
    pub async fn restart(&mut self) {
        self.kill().await;
        let root = self.dir.parent().expect("root").to_path_buf();
        // Bootstrap only ever applies to an empty store, so keeping `extra` is harmless.
        let n = NodeProc::start(
            self.id,
            &root,
            &self.api,
            &self.raft,
            &self.extra,
            &self.prefix,
        )
        .await;
        *self = n;
    }

    /// The API URL of `path`: https when the node runs with a `[tls]` table.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.extra.contains("[tls]") {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}{}", self.api, path)
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
    }
}

/// An HTTP client that sends the admin token (reads from outside loopback need it), with a
/// bound on every request.
pub fn http() -> reqwest::Client {
    warden_federation::trust::ensure_crypto_provider();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {TOKEN}").parse().expect("header"),
    );
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .default_headers(headers)
        .build()
        .expect("client")
}

/// Like [`http`], verifying an https API against the federation's CA bundle.
pub fn https_client(ca_bundle_pem: &str) -> reqwest::Client {
    warden_federation::trust::ensure_crypto_provider();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {TOKEN}").parse().expect("header"),
    );
    let tls =
        warden_federation::trust::tls::anonymous_client_config(ca_bundle_pem).expect("CA bundle");
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .default_headers(headers)
        .use_preconfigured_tls(tls)
        .build()
        .expect("client")
}

/// An HTTP client without credentials.
pub fn http_anonymous() -> reqwest::Client {
    warden_federation::trust::ensure_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

pub fn cluster_body(name: &str) -> Value {
    json!({
        "name": name, "region": "r1", "zone": "z1", "gateway": "127.0.0.1:15008",
        "trust_domain": format!("{name}.test"),
    })
}

/// POSTs a cluster; returns the status code (or None if no answer).
pub async fn register(client: &reqwest::Client, node: &NodeProc, name: &str) -> Option<u16> {
    client
        .post(node.url(paths::CLUSTERS))
        .bearer_auth(TOKEN)
        .json(&cluster_body(name))
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// A fresh API credential for `cluster` (issued with the admin token).
pub async fn new_credential(client: &reqwest::Client, node: &NodeProc, cluster: &str) -> String {
    let r = client
        .post(node.url(&paths::cluster_credential(cluster)))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "credential for {cluster}: {}",
        r.status()
    );
    r.json::<Value>().await.unwrap()["credential"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Renews `cluster`'s lease on `node` with `body`, as the cluster (its `credential`): the
/// status and the answer's JSON.
pub async fn renew_as(
    node: &NodeProc,
    cluster: &str,
    credential: &str,
    body: &Value,
) -> (u16, Value) {
    let r = http_anonymous()
        .put(node.url(&paths::lease(cluster)))
        .bearer_auth(credential)
        .json(body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

pub async fn get_json(client: &reqwest::Client, url: &str) -> Option<Value> {
    let r = client.get(url).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

pub async fn mesh_status(client: &reqwest::Client, node: &NodeProc) -> Option<Value> {
    get_json(client, &node.url(paths::MESH_STATUS)).await
}

/// The cluster names a node serves from its local state, with its revision.
pub async fn cluster_names(
    client: &reqwest::Client,
    node: &NodeProc,
) -> Option<(u64, Vec<String>)> {
    let v = get_json(client, &node.url(paths::CLUSTERS)).await?;
    let names = v["items"]
        .as_array()?
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    Some((v["revision"].as_u64()?, names))
}

/// The current leader id as the given live nodes agree on it.
pub async fn leader(client: &reqwest::Client, nodes: &[NodeProc]) -> Option<u64> {
    for n in nodes.iter().filter(|n| n.alive()) {
        if let Some(s) = mesh_status(client, n).await
            && s["state"] == "Leader"
        {
            return s["node_id"].as_u64();
        }
    }
    None
}

/// Starts a one-node federation (node 1 bootstraps) and waits until it leads.
pub async fn one_node(root: &Path) -> NodeProc {
    one_node_with(root, "").await
}

/// [`one_node`] with `extra` config lines.
pub async fn one_node_with(root: &Path, extra: &str) -> NodeProc {
    let extra = format!("bootstrap = true\n{extra}");
    let node = NodeProc::start(1, root, "127.0.0.1:0", "127.0.0.1:0", &extra, &[]).await;
    let client = http();
    eventually(Duration::from_secs(20), "node 1 leads", || async {
        mesh_status(&client, &node)
            .await
            .filter(|s| s["state"] == "Leader")
    })
    .await;
    node
}

/// Starts a 3-node federation: node 1 bootstraps, 2 and 3 join through the members API.
pub async fn three_nodes(root: &Path) -> Vec<NodeProc> {
    three_nodes_with(root, &["127.0.0.1:0"; 3], &[vec![], vec![], vec![]]).await
}

/// Like [`three_nodes`] with explicit listen hosts and command prefixes per node.
pub async fn three_nodes_with(
    root: &Path,
    hosts: &[&str; 3],
    prefixes: &[Vec<String>; 3],
) -> Vec<NodeProc> {
    three_nodes_extra(root, hosts, prefixes, "").await
}

/// [`three_nodes_with`], with `extra` config lines for every node.
pub async fn three_nodes_extra(
    root: &Path,
    hosts: &[&str; 3],
    prefixes: &[Vec<String>; 3],
    extra_all: &str,
) -> Vec<NodeProc> {
    let client = http();
    // Nodes in the test's own network namespaces listen on their namespace's address, in
    // plaintext: that needs saying.
    let extra = |i: usize| {
        let plain = if warden_federation::config::is_loopback(hosts[i]) {
            ""
        } else {
            "insecure_plaintext = true"
        };
        format!("{plain}\n{extra_all}")
    };
    let n1 = NodeProc::start(
        1,
        root,
        hosts[0],
        hosts[0],
        &format!("bootstrap = true\n{}", extra(0)),
        &prefixes[0],
    )
    .await;
    eventually(Duration::from_secs(20), "node 1 leads", || async {
        mesh_status(&client, &n1)
            .await
            .filter(|s| s["state"] == "Leader")
    })
    .await;
    let mut nodes = vec![n1];
    for id in 2..=3u64 {
        let n = NodeProc::start(
            id,
            root,
            hosts[id as usize - 1],
            hosts[id as usize - 1],
            &extra(id as usize - 1),
            &prefixes[id as usize - 1],
        )
        .await;
        let r = client
            .post(nodes[0].url(paths::MEMBERS))
            .bearer_auth(TOKEN)
            .json(&json!({ "id": id, "raft_addr": n.raft, "api_addr": n.api }))
            .send()
            .await
            .expect("add member");
        assert_eq!(
            r.status().as_u16(),
            200,
            "add member {id}: {}",
            r.text().await.unwrap_or_default()
        );
        nodes.push(n);
    }
    nodes
}

/// Waits until every live node serves the same revision, and returns it.
pub async fn converged(client: &reqwest::Client, nodes: &[NodeProc], patience: Duration) -> u64 {
    eventually(patience, "all live nodes at the same revision", || async {
        let mut revs = Vec::new();
        for n in nodes.iter().filter(|n| n.alive()) {
            revs.push(cluster_names(client, n).await?.0);
        }
        (revs.windows(2).all(|w| w[0] == w[1])).then(|| revs[0])
    })
    .await
}

/// Any `warden` child process that prints one JSON "listening" line on stdout.
pub struct Proc {
    child: Option<Child>,
    pub info: Value,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
}

impl Proc {
    pub async fn start(args: &[String], log: &Path) -> Proc {
        Proc::start_env(args, log, &[]).await
    }

    /// [`Proc::start`] with extra environment variables.
    pub async fn start_env(args: &[String], log: &Path, env: &[(&str, &str)]) -> Proc {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let mut child = Command::new(bin())
            .args(args)
            .env("WARDEN_ADMIN_TOKEN", TOKEN)
            .env("WARDEN_LOG", "info,openraft=warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(file))
            .spawn()
            .expect("spawn warden");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("process did not report its addresses in time")
            .expect("read stdout")
            .unwrap_or_else(|| panic!("{args:?} exited early; see {}", log.display()));
        Proc {
            child: Some(child),
            info: serde_json::from_str(&line).expect("JSON listening line"),
            args: args.to_vec(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            log: log.to_path_buf(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().and_then(|c| c.id()).expect("running")
    }

    /// Whether the process is still running (not exited, not killed).
    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn addr(&self, key: &str) -> String {
        self.info[key]
            .as_str()
            .unwrap_or_else(|| panic!("no {key} in {}", self.info))
            .to_string()
    }

    /// SIGKILL by PID, then reap.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }

    /// SIGTERM by PID; waits up to `patience` for the exit and returns its status (`None` if
    /// it did not exit in time; it is then killed on drop).
    pub async fn terminate(&mut self, patience: Duration) -> Option<std::process::ExitStatus> {
        terminate(&mut self.child, patience).await
    }

    /// Starts the same command again (with `args` replaced when given).
    pub async fn restart_with(&mut self, args: Option<Vec<String>>) {
        self.kill().await;
        let args = args.unwrap_or_else(|| self.args.clone());
        let env = self.env.clone();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        *self = Proc::start_env(&args, &self.log.clone(), &env).await;
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
    }
}

/// An echo backend answering with `name`.
/// An echo backend that passes its probes and answers every request with `status`.
pub async fn echo_failing(root: &Path, name: &str, status: u16) -> Proc {
    let args: Vec<String> = vec![
        "echo".into(),
        "--name".into(),
        name.into(),
        "--fail-status".into(),
        status.to_string(),
    ];
    Proc::start(&args, &root.join(format!("echo-{name}.log"))).await
}

pub async fn echo(root: &Path, name: &str, listen: &str) -> Proc {
    let args: Vec<String> = ["echo", "--name", name, "--listen", listen]
        .map(String::from)
        .to_vec();
    Proc::start(&args, &root.join(format!("echo-{name}.log"))).await
}

/// One cluster of the end-to-end mesh: its gateway and two echo backends.
pub struct ClusterProcs {
    pub name: String,
    pub gateway: Proc,
    pub backends: Vec<Proc>,
    pub config: PathBuf,
}

impl ClusterProcs {
    pub fn outbound(&self) -> String {
        self.gateway.addr("outbound")
    }
    pub fn admin(&self) -> String {
        self.gateway.addr("admin")
    }
}

/// Starts a gateway for `name` (region/zone given) with two echo backends exporting shop/cart.
pub async fn cluster(
    root: &Path,
    name: &str,
    region: &str,
    zone: &str,
    federation: &[String],
) -> ClusterProcs {
    cluster_with(root, name, region, zone, federation, "").await
}

/// [`cluster`] with extra config appended (e.g. a `[tls]` table).
/// Cluster `east` (region r1, zone z1) of the federation `node`, with `extra` config.
pub async fn east_of(root: &Path, node: &NodeProc, extra: &str) -> ClusterProcs {
    cluster_with(
        root,
        "east",
        "r1",
        "z1",
        std::slice::from_ref(&node.api),
        extra,
    )
    .await
}

/// A federation node and cluster east (with `extra` config) serving shop/cart, and a client
/// with a 20 s timeout; returns once cart answers through east's outbound listener.
pub async fn east_serving(root: &Path, extra: &str) -> (NodeProc, ClusterProcs, reqwest::Client) {
    let node = one_node(root).await;
    let east = east_of(root, &node, extra).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let out = east.outbound();
    eventually(Duration::from_secs(30), "cart is served", || async {
        (call(&client, &out).await.0 == 200).then_some(())
    })
    .await;
    (node, east, client)
}

pub async fn cluster_with(
    root: &Path,
    name: &str,
    region: &str,
    zone: &str,
    federation: &[String],
    extra: &str,
) -> ClusterProcs {
    cluster_opts(root, name, region, zone, federation, "", extra).await
}

/// [`cluster_with`], plus `cluster_extra` lines in the `[cluster]` table (e.g. `register =
/// false`).
pub async fn cluster_opts(
    root: &Path,
    name: &str,
    region: &str,
    zone: &str,
    federation: &[String],
    cluster_extra: &str,
    extra: &str,
) -> ClusterProcs {
    cluster_env(
        root,
        name,
        region,
        zone,
        federation,
        cluster_extra,
        extra,
        &[],
    )
    .await
}

/// [`cluster_opts`] with extra environment variables for the gateway (e.g. its credential).
#[allow(clippy::too_many_arguments)]
pub async fn cluster_env(
    root: &Path,
    name: &str,
    region: &str,
    zone: &str,
    federation: &[String],
    cluster_extra: &str,
    extra: &str,
    env: &[(&str, &str)],
) -> ClusterProcs {
    let mut backends = Vec::new();
    for i in 1..=2 {
        backends.push(echo(root, &format!("{name}-{i}"), "127.0.0.1:0").await);
    }
    let endpoints: Vec<String> = backends
        .iter()
        .map(|b| format!("{:?}", b.addr("addr")))
        .collect();
    let feds: Vec<String> = federation
        .iter()
        .map(|f| format!("{:?}", format!("http://{f}")))
        .collect();
    let cfg = format!(
        r#"test_hooks = true
[cluster]
name = "{name}"
region = "{region}"
zone = "{zone}"
trust_domain = "{name}.test"
{cluster_extra}
[federation]
endpoints = [{feds}]
lease_ttl_ms = 1500
publish_interval_ms = 200
[listeners]
outbound = "127.0.0.1:0"
eastwest = "127.0.0.1:0"
admin = "127.0.0.1:0"
[[listeners.tcp]]
listen = "127.0.0.1:0"
service = "shop/cart"
port = 80
[health]
interval_ms = 200
timeout_ms = 200
healthy_threshold = 2
unhealthy_threshold = 2
[routing]
failback_ramp_ms = 1000
[discovery]
allow_loopback_endpoints = true
[[services]]
namespace = "shop"
name = "cart"
endpoints = [{eps}]
probe = "/healthz"
[[services]]
namespace = "shop"
name = "grpc-echo"
ports = [{{ name = "grpc", port = 50051, protocol = "grpc" }}]
endpoints = [{eps}]
probe = "tcp"
{extra}
"#,
        feds = feds.join(", "),
        eps = endpoints.join(", "),
    );
    let path = root.join(format!("gateway-{name}.toml"));
    std::fs::write(&path, cfg).expect("write gateway config");
    let args: Vec<String> = vec![
        "gateway".into(),
        "--config".into(),
        path.display().to_string(),
    ];
    let log = root.join(format!("gateway-{name}.log"));
    let gateway = Proc::start_env(&args, &log, env).await;
    ClusterProcs {
        name: name.to_string(),
        gateway,
        backends,
        config: path,
    }
}

/// Sends `bytes` on a new TCP connection to `addr` and reads until the server closes it (at
/// most `within`); returns what was read. For heads and bodies no HTTP client would send.
pub async fn raw_http(addr: &str, bytes: &[u8], within: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // The server may answer (431) before it has read everything: a failed write is fine.
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(within, async {
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
    });
    assert!(
        read.await.is_ok(),
        "{addr} did not close the connection within {within:?}"
    );
    String::from_utf8_lossy(&out).into_owned()
}

/// One round of a slowloris attack: each connection not yet `closed` sends the next byte of
/// `head` (round `round`), or is marked closed when the server closed it or answered.
pub fn trickle(
    conns: &mut [tokio::net::TcpStream],
    closed: &mut [bool],
    head: &[u8],
    round: usize,
) {
    for (s, closed) in conns.iter_mut().zip(closed.iter_mut()) {
        if *closed {
            continue;
        }
        let mut buf = [0u8; 512];
        *closed = match s.try_read(&mut buf) {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                s.try_write(&head[round % head.len()..][..1]).is_err()
            }
            Err(_) => true,
        };
    }
}

/// Who answered: the echo backend's `x-echo-server`, else the gateway's `x-warden-error` code.
pub fn served_by(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("x-echo-server")
        .or_else(|| resp.headers().get("x-warden-error"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// A route for `shop/web`: `x-canary: on` to subset `version=v2`, everything else to v1.
pub fn canary_route() -> Value {
    json!({"service": "shop/web", "rules": [
        {"name": "canary", "matches": [{"headers": [{"name": "x-canary", "value": "on"}]}],
         "backends": [{"subset": {"version": "v2"}}]},
        {"name": "stable", "backends": [{"subset": {"version": "v1"}}]}
    ]})
}

/// Puts route `id` through the API (admin token) and expects 200.
pub async fn put_route(admin: &reqwest::Client, node: &NodeProc, id: &str, route: &Value) {
    put_ok(admin, &node.url(&paths::route(id)), route).await
}

/// PUTs `body` to `url` and expects 200 (the answer's text in the failure).
pub async fn put_ok(client: &reqwest::Client, url: &str, body: &Value) {
    let r = client.put(url).json(body).send().await.unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "{}",
        r.text().await.unwrap_or_default()
    );
}

/// GET through a gateway's outbound listener for shop/cart; returns (status, serving backend).
pub async fn call(client: &reqwest::Client, outbound: &str) -> (u16, String) {
    match client
        .get(format!("http://{outbound}/hello"))
        .header("host", "cart.shop")
        .send()
        .await
    {
        Ok(r) => {
            let status = r.status().as_u16();
            let server = r
                .headers()
                .get("x-echo-server")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            (status, server)
        }
        Err(_) => (0, String::new()),
    }
}

/// A gRPC-shaped call (HTTP/2 prior knowledge, `content-type: application/grpc`) to
/// shop/grpc-echo through a gateway; returns (status, serving backend, grpc-status: the
/// trailer's, or the header's of a trailers-only answer).
pub async fn grpc_call(outbound: &str) -> (u16, String, Option<String>) {
    use http_body_util::BodyExt;
    // As a gRPC client with an authority override: dial the gateway, name the service in
    // `:authority` (a Host header that differs from it would be refused).
    let Ok(Ok(tcp)) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(outbound),
    )
    .await
    else {
        return (0, String::new(), None);
    };
    let Ok((mut send, conn)) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    else {
        return (0, String::new(), None);
    };
    tokio::spawn(conn);
    let req = http::Request::post("http://grpc-echo.shop/echo.Echo/Say")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            b"\0\0\0\0\x02hi",
        )))
        .expect("request");
    let Ok(Ok(resp)) = tokio::time::timeout(Duration::from_secs(10), send.send_request(req)).await
    else {
        return (0, String::new(), None);
    };
    let status = resp.status().as_u16();
    let server = resp
        .headers()
        .get("x-echo-server")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let in_head = resp
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let collected = resp.into_body().collect().await.ok();
    let grpc_status = collected
        .and_then(|c| c.trailers().cloned())
        .and_then(|t| {
            t.get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
        .or(in_head);
    (status, server, grpc_status)
}

/// A raw TCP exchange through a gateway's TCP route: sends an HTTP/1.0 request as bytes and
/// returns the `x-echo-server` of the response ("" if none came back).
pub async fn tcp_call(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(Ok(mut s)) =
        tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr)).await
    else {
        return String::new();
    };
    if s.write_all(b"GET /tcp HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .is_err()
    {
        return String::new();
    }
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    text.lines()
        .find_map(|l| l.strip_prefix("x-echo-server: "))
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Tries an mTLS client handshake (ALPN h2) with the given certificate against a listener,
/// expecting the server in `expect_td`; true when the server answered the HTTP/2 preface.
pub async fn tls_attempt(
    addr: &str,
    cert: &str,
    key: &str,
    store: std::sync::Arc<warden_federation::trust::verify::TrustStore>,
    expect_td: &str,
) -> bool {
    use warden_federation::trust::tls::{Identity, client_config};
    let (id, _) = Identity::from_pem(cert, key).unwrap();
    let cfg = client_config(id, store, expect_td, &[b"h2"]).unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("x.invalid").unwrap();
    let Ok(mut tls) = tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
    else {
        return false;
    };
    // TLS 1.3: a refused client certificate surfaces on the first read.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    let mut buf = [0u8; 64];
    matches!(tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf)).await, Ok(Ok(n)) if n > 0)
}

/// Runs `warden mesh ARGS` against `node` with the admin token; (success, stdout, stderr).
pub async fn mesh_cli(node: &NodeProc, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("mesh")
        .args(args)
        .env("WARDEN_API", format!("http://{}", node.api))
        .env("WARDEN_ADMIN_TOKEN", TOKEN)
        .output()
        .await
        .expect("run warden mesh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Runs a `warden` CLI command to completion; panics with its stderr if it fails.
pub fn warden(args: &[&str]) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .output()
        .expect("run warden");
    assert!(
        out.status.success(),
        "warden {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes a CA for `td` and a gateway leaf; returns the `[tls]` table for the gateway config.
pub fn pki(root: &std::path::Path, td: &str) -> String {
    let dir = root.join(format!("pki-{td}"));
    let d = dir.display().to_string();
    warden(&["trust", "init", "--trust-domain", td, "--dir", &d]);
    let out = dir.join("gateway").display().to_string();
    warden(&[
        "trust",
        "issue",
        "--ca-dir",
        &d,
        "--spiffe-id",
        &format!("spiffe://{td}/ns/warden/sa/gateway"),
        "--out",
        &out,
    ]);
    format!(
        "[tls]\ncert = {:?}\nkey = {:?}\nca_bundle = {:?}\nreload_interval_ms = 200\n",
        dir.join("gateway.pem").display().to_string(),
        dir.join("gateway.key").display().to_string(),
        dir.join("ca.pem").display().to_string()
    )
}

/// A bootstrapped one-node federation with `[tls]` (the API over HTTPS, join tokens on).
pub struct TlsNode {
    pub node: NodeProc,
    /// The federation CA (trust domain `federation.test`).
    pub ca: warden_federation::trust::ca::Pems,
    pub ca_path: PathBuf,
    /// An admin client that trusts the federation CA.
    pub client: reqwest::Client,
}

/// Starts node 1 of `federation.test` with `[tls]` and waits until it leads.
pub async fn tls_node(root: &Path) -> TlsNode {
    use warden_federation::trust::ca::{init_ca, issue_leaf, write_public, write_secret};
    let day = Duration::from_secs(86_400);
    let ca = init_ca("federation.test", day).unwrap();
    let leaf = issue_leaf(
        &ca,
        &"spiffe://federation.test/node/1".parse().unwrap(),
        &[],
        day,
    )
    .unwrap();
    let ca_path = root.join("fed-ca.pem");
    write_public(&ca_path, &ca.cert_pem).unwrap();
    write_public(&root.join("n1.pem"), &leaf.cert_pem).unwrap();
    write_secret(&root.join("n1.key"), &leaf.key_pem).unwrap();
    let tls = format!(
        "bootstrap = true\n[tls]\ncert = {:?}\nkey = {:?}\nca_bundle = {:?}\n",
        root.join("n1.pem").display().to_string(),
        root.join("n1.key").display().to_string(),
        ca_path.display().to_string()
    );
    let node = NodeProc::start(1, root, "127.0.0.1:0", "127.0.0.1:0", &tls, &[]).await;
    let client = https_client(&ca.cert_pem);
    eventually(Duration::from_secs(20), "leader", || async {
        mesh_status(&client, &node)
            .await
            .filter(|s| s["state"] == "Leader")
    })
    .await;
    TlsNode {
        node,
        ca,
        ca_path,
        client,
    }
}

/// `warden cluster join` for cluster `name` under `trust_domain`, with `ca_bundle`.
pub fn join_cli(
    api: &str,
    token: &str,
    name: &str,
    trust_domain: &str,
    ca_bundle: &Path,
) -> std::process::Output {
    std::process::Command::new(bin())
        .args(["cluster", "join", "--api", &format!("https://{api}")])
        .args([
            "--token", token, "--name", name, "--region", "r", "--zone", "z",
        ])
        .args([
            "--gateway",
            "127.0.0.1:15008",
            "--trust-domain",
            trust_domain,
        ])
        .arg("--ca-bundle")
        .arg(ca_bundle)
        .env_remove("WARDEN_ADMIN_TOKEN")
        .output()
        .expect("run warden cluster join")
}

/// A join token from `warden cluster join-token`, valid for `ttl` seconds.
pub fn join_token(api: &str, ca: &Path, ttl: u64) -> String {
    let out = std::process::Command::new(bin())
        .args(["cluster", "join-token", "--api", &format!("https://{api}")])
        .args(["--ttl-seconds", &ttl.to_string(), "--api-ca-bundle"])
        .arg(ca)
        .env("WARDEN_ADMIN_TOKEN", TOKEN)
        .output()
        .expect("run warden cluster join-token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Resident set size of a process, in KiB (0 if it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A gateway's Prometheus text from its admin listener.
pub async fn metrics_text(client: &reqwest::Client, admin: &str) -> String {
    client
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("metrics text")
}

/// The sum of the samples of `family` whose labels contain every one of `labels`
/// (`name="value"` each).
pub fn metric_sum(text: &str, family: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// How many series of `family` a scrape holds.
pub fn series_count(text: &str, family: &str) -> usize {
    text.lines()
        .filter(|l| l.strip_prefix(family).is_some_and(|r| r.starts_with('{')))
        .count()
}

/// Starts a gateway of cluster `name` with Kubernetes discovery (kubeconfig `root/kubeconfig`,
/// fast probes), `kube_extra` in its `[discovery.kubernetes]` table; config and log are
/// `root/gateway-<name>.{toml,log}`.
pub async fn kube_gateway(root: &Path, node: &NodeProc, name: &str, kube_extra: &str) -> Proc {
    let cfg = format!(
        r#"[cluster]
name = "{name}"
region = "r1"
zone = "z1"
trust_domain = "{name}.test"
[federation]
endpoints = ["http://{api}"]
lease_ttl_ms = 1500
publish_interval_ms = 200
[listeners]
outbound = "127.0.0.1:0"
eastwest = "127.0.0.1:0"
admin = "127.0.0.1:0"
[health]
interval_ms = 200
timeout_ms = 200
healthy_threshold = 1
unhealthy_threshold = 1
[discovery]
source = "kubernetes"
allow_loopback_endpoints = true
[discovery.kubernetes]
{kube_extra}"#,
        api = node.api
    );
    let path = root.join(format!("gateway-{name}.toml"));
    std::fs::write(&path, cfg).expect("write gateway config");
    let args: Vec<String> = vec![
        "gateway".into(),
        "--config".into(),
        path.display().to_string(),
    ];
    let kc = root.join("kubeconfig").display().to_string();
    Proc::start_env(
        &args,
        &root.join(format!("gateway-{name}.log")),
        &[("KUBECONFIG", kc.as_str())],
    )
    .await
}
