//! The demo's mesh: three clusters on loopback — east and central in one region (different
//! zones), west in another — each with a federation node, an east-west gateway (mTLS, its own
//! CA) and two echo backends. Everything is a real `warden` process started from this binary
//! and stopped by its PID; clusters and members are set up through the real API.
//!
//! Services: `shop/cart` runs in all three clusters; `shop/ledger` only in central and west,
//! so east's calls to it always cross clusters (that is where mTLS and rotation show). Central's
//! `ledger` endpoints carry `version=v1`, west's `version=v2`: the canary step splits by them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;
use warden_federation::client::FederationClient;
use warden_federation::wire::{AddMember, RegisterCluster};

use crate::local::pki::{Pki, pki};
use crate::local::procs::{self, Proc};
use crate::local::wait::{admin_json, wait_for};

pub const TOKEN: &str = "demo-admin-token-0123456789";

/// One federation node; restarted on the addresses it first bound.
pub struct Node {
    pub id: u64,
    pub api: String,
    pub raft: String,
    pub proc: Option<Proc>,
}

/// One echo backend; restarted on the address it first bound.
pub struct Backend {
    pub name: String,
    pub addr: String,
    pub proc: Option<Proc>,
}

pub struct Cluster {
    pub name: &'static str,
    pub region: &'static str,
    pub zone: &'static str,
    pub pki: Pki,
    pub outbound: String,
    pub eastwest: String,
    pub admin: String,
    pub gateway: Option<Proc>,
    pub backends: Vec<Backend>,
    pub services: &'static [&'static str],
}

pub struct Mesh {
    pub dir: PathBuf,
    pub nodes: Vec<Node>,
    pub clusters: Vec<Cluster>,
    pub http: reqwest::Client,
}

/// (name, region, zone, services).
const CLUSTERS: [(&str, &str, &str, &[&str]); 3] = [
    ("east", "us-east", "us-east-1a", &["cart"]),
    ("central", "us-east", "us-east-1b", &["cart", "ledger"]),
    ("west", "us-west", "us-west-1a", &["cart", "ledger"]),
];

/// The version label of a cluster's `ledger` endpoints: v1 in central, v2 in west.
pub fn ledger_version(cluster: &str) -> Option<&'static str> {
    match cluster {
        "central" => Some("v1"),
        "west" => Some("v2"),
        _ => None,
    }
}

fn log(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.log"))
}

fn node_config(dir: &Path, id: u64, api: &str, raft: &str) -> Result<PathBuf> {
    let path = dir.join(format!("node-{id}.toml"));
    std::fs::write(
        &path,
        format!(
            "node_id = {id}\ndata_dir = {data:?}\napi_listen = {api:?}\nraft_listen = {raft:?}\n\
             bootstrap = {boot}\nwrite_timeout_ms = 3000\n\
             [raft]\nheartbeat_ms = 150\nelection_timeout_min_ms = 600\nelection_timeout_max_ms = 1200\n",
            data = dir.join(format!("node-{id}")).display().to_string(),
            boot = id == 1,
        ),
    )?;
    Ok(path)
}

impl Mesh {
    /// A client of any node's API (the first that answers is used by callers in turn).
    pub fn api(&self, node: usize) -> Result<FederationClient> {
        Ok(FederationClient::single(
            &format!("http://{}", self.nodes[node].api),
            Some(TOKEN.into()),
            None,
        )?)
    }

    pub fn cluster(&self, name: &str) -> &Cluster {
        self.clusters
            .iter()
            .find(|c| c.name == name)
            .unwrap_or(&self.clusters[0])
    }

    pub fn cluster_mut(&mut self, name: &str) -> &mut Cluster {
        let i = self
            .clusters
            .iter()
            .position(|c| c.name == name)
            .unwrap_or(0);
        &mut self.clusters[i]
    }

    /// Starts everything and waits until east routes both services.
    pub async fn start(dir: &Path, say: &dyn Fn(&str)) -> Result<Mesh> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        let mut mesh = Mesh {
            dir: dir.to_path_buf(),
            nodes: Vec::new(),
            clusters: Vec::new(),
            http,
        };
        for id in 1..=3u64 {
            mesh.start_node(id, "127.0.0.1:0", "127.0.0.1:0").await?;
            if id == 1 {
                let url = format!("http://{}/readyz", mesh.nodes[0].api);
                let http = mesh.http.clone();
                wait_for("node 1 to lead", Duration::from_secs(20), || async {
                    http.get(&url)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success())
                })
                .await?;
            } else {
                // Through the real API: learner, catch-up, voter.
                let n = &mesh.nodes[id as usize - 1];
                let req = AddMember {
                    id,
                    raft_addr: n.raft.clone(),
                    api_addr: n.api.clone(),
                    voter: true,
                };
                mesh.api(0)?
                    .add_member(&req)
                    .await
                    .with_context(|| format!("adding node {id}"))?;
            }
        }
        say("federation: 3 nodes, Raft group formed through the members API");

        for (name, region, zone, services) in CLUSTERS {
            let mut backends = Vec::new();
            for i in 1..=2 {
                let bname = format!("{name}-{i}");
                let p = procs::warden(
                    &["echo", "--name", &bname, "--listen", "127.0.0.1:0"],
                    &log(dir, &bname),
                    TOKEN,
                )
                .await?;
                backends.push(Backend {
                    addr: p.addr("addr")?,
                    name: bname,
                    proc: Some(p),
                });
            }
            let pki = pki(dir, &format!("{name}.demo"))?;
            mesh.clusters.push(Cluster {
                name,
                region,
                zone,
                pki,
                outbound: "127.0.0.1:0".into(),
                eastwest: "127.0.0.1:0".into(),
                admin: "127.0.0.1:0".into(),
                gateway: None,
                backends,
                services,
            });
            mesh.start_gateway(name).await?;
        }
        say("gateways: east, central, west with mTLS (one CA per cluster), 6 echo backends");

        // Register the clusters (with their CA bundles) through the API.
        let api = mesh.api(0)?;
        for c in &mesh.clusters {
            let req = RegisterCluster {
                name: c.name.to_string(),
                region: c.region.to_string(),
                zone: c.zone.to_string(),
                network: "default".into(),
                gateway: c.eastwest.clone(),
                trust_domain: c.pki.td.clone(),
                ca_bundle_pem: Some(c.pki.ca.cert_pem.clone()),
                labels: Default::default(),
            };
            api.register_cluster(&req)
                .await
                .with_context(|| format!("registering {}", c.name))?;
        }
        say("clusters registered through the clusters API; gateways export their services");
        let admin = mesh.cluster("east").admin.clone();
        let http = mesh.http.clone();
        wait_for(
            "east to route ledger to central and west",
            Duration::from_secs(30),
            || async {
                let e = admin_json(&http, &admin, "/explain?authority=ledger.shop").await;
                available_clusters(e.as_ref()).len() == 2
            },
        )
        .await?;
        Ok(mesh)
    }

    /// Starts node `id` (again) on the given addresses.
    pub async fn start_node(&mut self, id: u64, api: &str, raft: &str) -> Result<()> {
        let cfg = node_config(&self.dir, id, api, raft)?;
        let p = procs::warden_logging(
            &["federation", "--config", &cfg.display().to_string()],
            &log(&self.dir, &format!("node-{id}")),
            TOKEN,
            "info,openraft=warn",
        )
        .await?;
        let (api, raft) = (p.addr("api")?, p.addr("raft")?);
        match self.nodes.iter_mut().find(|n| n.id == id) {
            Some(n) => n.proc = Some(p),
            None => self.nodes.push(Node {
                id,
                api,
                raft,
                proc: Some(p),
            }),
        }
        Ok(())
    }

    fn gateway_config(&self, c: &Cluster) -> Result<PathBuf> {
        let feds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("{:?}", format!("http://{}", n.api)))
            .collect();
        let mut cfg = format!(
            "[cluster]\nname = \"{name}\"\nregion = \"{region}\"\nzone = \"{zone}\"\n\
             trust_domain = \"{td}\"\nregister = false\n\
             [federation]\nendpoints = [{feds}]\nlease_ttl_ms = 1500\npublish_interval_ms = 200\n\
             [listeners]\noutbound = {out:?}\neastwest = {ew:?}\nadmin = {admin:?}\n\
             [health]\ninterval_ms = 200\ntimeout_ms = 200\nhealthy_threshold = 2\nunhealthy_threshold = 2\n\
             [routing]\nfailback_ramp_ms = 1000\n\
             [discovery]\nallow_loopback_endpoints = true\n{tls}reload_interval_ms = 200\n",
            name = c.name,
            region = c.region,
            zone = c.zone,
            td = c.pki.td,
            feds = feds.join(", "),
            out = c.outbound,
            ew = c.eastwest,
            admin = c.admin,
            tls = c.pki.tls_table,
        );
        let eps: Vec<String> = c.backends.iter().map(|b| format!("{:?}", b.addr)).collect();
        for svc in c.services {
            match ledger_version(c.name).filter(|_| *svc == "ledger") {
                // Labelled, so that the canary step can split it by version.
                Some(v) => cfg.push_str(&format!(
                    "[[services]]\nnamespace = \"shop\"\nname = \"{svc}\"\nprobe = \"/healthz\"\n\
                     [[services.subsets]]\nlabels = {{ version = \"{v}\" }}\nendpoints = [{}]\n",
                    eps.join(", ")
                )),
                None => cfg.push_str(&format!(
                    "[[services]]\nnamespace = \"shop\"\nname = \"{svc}\"\nendpoints = [{}]\nprobe = \"/healthz\"\n",
                    eps.join(", ")
                )),
            }
        }
        let path = self.dir.join(format!("gateway-{}.toml", c.name));
        std::fs::write(&path, cfg)?;
        Ok(path)
    }

    /// Starts a cluster's gateway (again, on the addresses it first bound).
    pub async fn start_gateway(&mut self, name: &str) -> Result<()> {
        let cfg = self.gateway_config(self.cluster(name))?;
        let p = procs::warden_logging(
            &["gateway", "--config", &cfg.display().to_string()],
            &log(&self.dir, &format!("gateway-{name}")),
            TOKEN,
            "info",
        )
        .await?;
        let c = self.cluster_mut(name);
        c.outbound = p.addr("outbound")?;
        c.eastwest = p.addr("eastwest")?;
        c.admin = p.addr("admin")?;
        c.gateway = Some(p);
        Ok(())
    }

    /// SIGKILLs a cluster's echo backends.
    pub async fn kill_backends(&mut self, name: &str) {
        for b in &mut self.cluster_mut(name).backends {
            if let Some(mut p) = b.proc.take() {
                p.kill().await;
            }
        }
    }

    /// Restarts a cluster's echo backends on their addresses.
    pub async fn restart_backends(&mut self, name: &str) -> Result<()> {
        let dir = self.dir.clone();
        for b in &mut self.cluster_mut(name).backends {
            let p = procs::warden(
                &["echo", "--name", &b.name, "--listen", &b.addr],
                &log(&dir, &b.name),
                TOKEN,
            )
            .await?;
            b.proc = Some(p);
        }
        Ok(())
    }

    /// The node serving a cluster (node i+1 for the i-th cluster).
    pub fn node_of(&self, name: &str) -> usize {
        self.clusters
            .iter()
            .position(|c| c.name == name)
            .unwrap_or(0)
    }

    /// SIGKILLs a whole cluster: its gateway and its federation node.
    pub async fn stop_cluster(&mut self, name: &str) {
        if let Some(mut p) = self.cluster_mut(name).gateway.take() {
            p.kill().await;
        }
        let i = self.node_of(name);
        if let Some(mut p) = self.nodes[i].proc.take() {
            p.kill().await;
        }
    }

    /// Restarts a stopped cluster's node and gateway.
    pub async fn restart_cluster(&mut self, name: &str) -> Result<()> {
        let i = self.node_of(name);
        let (id, api, raft) = (
            self.nodes[i].id,
            self.nodes[i].api.clone(),
            self.nodes[i].raft.clone(),
        );
        self.start_node(id, &api, &raft).await?;
        self.start_gateway(name).await
    }

    /// The federation's status from the first node that answers: (leader, revision, nodes up).
    pub async fn raft_status(&self) -> Option<(u64, u64)> {
        for (i, _) in self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.proc.is_some())
        {
            if let Ok(api) = self.api(i)
                && let Ok(s) = api.mesh_status().await
                && let Some(l) = s.leader
            {
                return Some((l, s.revision));
            }
        }
        None
    }

    /// Stops every process by its PID.
    pub async fn shutdown(&mut self) -> usize {
        let mut n = 0;
        for c in &mut self.clusters {
            for p in c
                .backends
                .iter_mut()
                .filter_map(|b| b.proc.as_mut())
                .chain(c.gateway.as_mut())
            {
                p.kill().await;
                n += 1;
            }
        }
        for node in &mut self.nodes {
            if let Some(p) = node.proc.as_mut() {
                p.kill().await;
                n += 1;
            }
        }
        n
    }
}

/// Remote clusters `/explain` lists as available for a service.
pub fn available_clusters(explain: Option<&Value>) -> Vec<String> {
    let Some(e) = explain else { return Vec::new() };
    e["levels"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["clusters"].as_array().cloned().unwrap_or_default())
        .filter(|c| c["available"] == true)
        .filter_map(|c| c["cluster"].as_str().map(str::to_string))
        .collect()
}
