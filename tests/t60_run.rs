//! `warden run`: a federation node and a gateway in one process.

mod support;

use std::time::Duration;

use support::*;

/// One process founds a federation, registers its cluster and serves a local service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_hosts_a_node_and_a_gateway() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let backend = echo(root, "solo-1", "127.0.0.1:0").await;
    let cfg = format!(
        r#"[node]
node_id = 1
data_dir = {data:?}
api_listen = "127.0.0.1:0"
raft_listen = "127.0.0.1:0"
bootstrap = true

[gateway.cluster]
name = "solo"
region = "r"
zone = "z"
trust_domain = "solo.test"
[gateway.federation]
endpoints = []
[gateway.listeners]
outbound = "127.0.0.1:0"
eastwest = "127.0.0.1:0"
admin = "127.0.0.1:0"
[gateway.discovery]
allow_loopback_endpoints = true
[[gateway.services]]
namespace = "shop"
name = "cart"
endpoints = [{ep:?}]
"#,
        data = root.join("data").display().to_string(),
        ep = backend.addr("addr"),
    );
    let path = root.join("run.toml");
    std::fs::write(&path, cfg).unwrap();
    let proc_ = Proc::start(
        &["run".into(), "--config".into(), path.display().to_string()],
        &root.join("run.log"),
    )
    .await;
    let client = http();
    // The gateway registered its cluster in its own node's store.
    let api = proc_.addr("api");
    eventually(Duration::from_secs(20), "cluster registered", || async {
        get_json(&client, &format!("http://{api}{}", paths::cluster("solo"))).await
    })
    .await;
    let (s, server) = call(&client, &proc_.addr("outbound")).await;
    assert_eq!((s, server.as_str()), (200, "solo-1"));
}
