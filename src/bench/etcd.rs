//! A 3-member etcd cluster on loopback, for side-by-side write figures. Used only when `etcd`
//! is on PATH; every process is stopped by its PID on drop.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::json;

/// Running etcd members.
pub struct EtcdCluster {
    children: Vec<Child>,
    /// Client URL of the member that leads.
    leader_url: String,
}

/// A port that was free a moment ago (etcd needs its peers' URLs before it starts).
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl EtcdCluster {
    /// Starts three members under `dir`; `Ok(None)` when etcd is not installed.
    pub async fn start(dir: &Path) -> Result<Option<EtcdCluster>> {
        if Command::new("etcd").arg("--version").output().is_err() {
            return Ok(None);
        }
        let ports: Vec<(u16, u16)> = (0..3)
            .map(|_| Ok((free_port()?, free_port()?)))
            .collect::<Result<_>>()?;
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, p))| format!("e{i}=http://127.0.0.1:{p}"))
            .collect();
        let mut cluster = EtcdCluster {
            children: Vec::new(),
            leader_url: String::new(),
        };
        for (i, (client, peer)) in ports.iter().enumerate() {
            let log = std::fs::File::create(dir.join(format!("etcd-{i}.log")))?;
            let child = Command::new("etcd")
                .args(["--name", &format!("e{i}")])
                .args([
                    "--data-dir",
                    &dir.join(format!("etcd-{i}")).display().to_string(),
                ])
                .args([
                    "--listen-client-urls",
                    &format!("http://127.0.0.1:{client}"),
                ])
                .args([
                    "--advertise-client-urls",
                    &format!("http://127.0.0.1:{client}"),
                ])
                .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
                .args([
                    "--initial-advertise-peer-urls",
                    &format!("http://127.0.0.1:{peer}"),
                ])
                .args(["--initial-cluster", &initial.join(",")])
                .args([
                    "--initial-cluster-state",
                    "new",
                    "--initial-cluster-token",
                    "warden-bench",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .context("starting etcd")?;
            cluster.children.push(child);
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        for _ in 0..150 {
            for (client, _) in &ports {
                let url = format!("http://127.0.0.1:{client}");
                let Ok(r) = http
                    .post(format!("{url}/v3/maintenance/status"))
                    .body("{}")
                    .send()
                    .await
                else {
                    continue;
                };
                let Ok(v) = r.json::<serde_json::Value>().await else {
                    continue;
                };
                let (me, leader) = (&v["header"]["member_id"], &v["leader"]);
                if !leader.is_null() && me == leader {
                    cluster.leader_url = url;
                    return Ok(Some(cluster));
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("etcd elected no leader in 15 s (logs in {})", dir.display())
    }

    /// Builds `PUT key` requests on the leader, values of `value_len` bytes (like warden's bodies).
    pub fn put_request(
        &self,
        value_len: usize,
    ) -> impl Fn(&reqwest::Client, usize, u64) -> reqwest::RequestBuilder + Send + Sync + 'static
    {
        let url = format!("{}/v3/kv/put", self.leader_url);
        let value = b64(&vec![b'x'; value_len]);
        move |http, w, i| {
            let key = b64(format!("bench/svc-{w}-{}", i % 50).as_bytes());
            http.post(&url).json(&json!({ "key": key, "value": value }))
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
