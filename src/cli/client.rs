//! CLI clients of the REST API: `cluster`, `service`, `member`, `status`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use warden_federation::client::ApiClient;

/// Where the API is and how to authenticate.
#[derive(Args, Clone)]
pub struct Conn {
    /// Base URL of any federation node's API.
    #[arg(
        long,
        env = "WARDEN_API",
        default_value = "http://127.0.0.1:7700",
        global = true
    )]
    pub api: String,
    /// Admin bearer token (needed for writes).
    #[arg(
        long,
        env = "WARDEN_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    token: Option<String>,
    /// The federation's CA bundle, to verify an https API.
    #[arg(long, env = "WARDEN_API_CA_BUNDLE", global = true)]
    api_ca_bundle: Option<PathBuf>,
}

impl Conn {
    pub fn client(&self) -> anyhow::Result<ApiClient> {
        self.client_for(&self.api)
    }

    /// A client for another node's API with the same token and CA.
    pub fn client_for(&self, base: &str) -> anyhow::Result<ApiClient> {
        let pem = self.api_ca_bundle.as_deref().map(read_pem).transpose()?;
        Ok(ApiClient::with_ca(
            base,
            self.token.clone(),
            pem.as_deref(),
        )?)
    }
}

/// What a cluster registers with (`register` and `join`); serialized as the API body's fields.
#[derive(clap::Args, serde::Serialize)]
pub struct ClusterArgs {
    #[arg(long)]
    name: String,
    #[arg(long)]
    region: String,
    #[arg(long)]
    zone: String,
    #[arg(long, default_value = "default")]
    network: String,
    /// host:port of the cluster's east-west gateway.
    #[arg(long)]
    gateway: String,
    #[arg(long)]
    trust_domain: String,
}

fn read_pem(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

#[derive(Subcommand)]
pub enum ClusterCmd {
    /// Register a cluster.
    Register {
        #[command(flatten)]
        conn: Conn,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// PEM file with the cluster's CA certificate(s).
        #[arg(long)]
        ca_bundle: Option<PathBuf>,
        /// key=value, repeatable.
        #[arg(long = "label")]
        labels: Vec<String>,
    },
    /// Make a single-use, expiring join token (the API must be served over TLS).
    JoinToken {
        #[command(flatten)]
        conn: Conn,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl_seconds: u64,
    },
    /// Register this cluster with a join token: no admin token or kubeconfig needed. The API's
    /// certificate is verified against the CA pinned in the token.
    Join {
        /// https://<federation node>:<api port>
        #[arg(long)]
        api: String,
        #[arg(long)]
        token: String,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// PEM file with the cluster's CA certificate(s).
        #[arg(long)]
        ca_bundle: PathBuf,
    },
    /// List clusters.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Show one cluster and its observed status.
    Get {
        #[command(flatten)]
        conn: Conn,
        name: String,
    },
    /// Remove a cluster and its exports.
    Remove {
        #[command(flatten)]
        conn: Conn,
        name: String,
    },
}

#[derive(Subcommand)]
pub enum ServiceCmd {
    /// Export a service of a cluster: `warden service export east shop/cart --port http:8080/http`.
    Export {
        #[command(flatten)]
        conn: Conn,
        cluster: String,
        /// namespace/service
        service: String,
        /// name:port[/protocol], protocol one of http, http2, grpc, tcp (default http); repeatable.
        #[arg(long = "port", required = true)]
        ports: Vec<String>,
        #[arg(long, default_value_t = 0)]
        healthy_endpoints: u32,
        #[arg(long, default_value_t = 100)]
        weight: u32,
    },
    /// Stop exporting a service.
    Unexport {
        #[command(flatten)]
        conn: Conn,
        cluster: String,
        /// namespace/service
        service: String,
    },
    /// The global catalog.
    List {
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Subcommand)]
pub enum MemberCmd {
    /// Add a node: it joins as a learner, catches up, then becomes a voter.
    Add {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        id: u64,
        #[arg(long)]
        raft_addr: String,
        #[arg(long)]
        api_addr: String,
        /// Keep it a learner (read replica).
        #[arg(long)]
        learner: bool,
    },
    /// Remove a node from the federation.
    Remove {
        #[command(flatten)]
        conn: Conn,
        id: u64,
    },
}

fn print(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

fn split_service(s: &str) -> anyhow::Result<(&str, &str)> {
    match s.split_once('/') {
        Some((ns, svc)) if !ns.is_empty() && !svc.is_empty() => Ok((ns, svc)),
        _ => bail!("service must be namespace/service, got {s:?}"),
    }
}

fn parse_port(s: &str) -> anyhow::Result<Value> {
    let (name, rest) = s
        .split_once(':')
        .with_context(|| format!("port {s:?} must be name:port[/protocol]"))?;
    let (port, proto) = rest.split_once('/').unwrap_or((rest, "http"));
    let port: u16 = port
        .parse()
        .with_context(|| format!("port {s:?}: {port:?} is not a port number"))?;
    Ok(json!({ "name": name, "port": port, "protocol": proto }))
}

pub async fn cluster(cmd: ClusterCmd) -> anyhow::Result<()> {
    match cmd {
        ClusterCmd::Register {
            conn,
            cluster,
            ca_bundle,
            labels,
        } => {
            let mut label_map = BTreeMap::new();
            for l in labels {
                let (k, v) = l
                    .split_once('=')
                    .with_context(|| format!("label {l:?} must be key=value"))?;
                label_map.insert(k.to_string(), v.to_string());
            }
            let mut body = serde_json::to_value(&cluster)?;
            body["ca_bundle_pem"] = json!(ca_bundle.as_deref().map(read_pem).transpose()?);
            body["labels"] = json!(label_map);
            print(&conn.client()?.post("/api/v1/clusters", &body).await?);
        }
        ClusterCmd::JoinToken { conn, ttl_seconds } => {
            let v = conn
                .client()?
                .post("/api/v1/join-tokens", &json!({ "ttl_s": ttl_seconds }))
                .await?;
            println!("{}", v["token"].as_str().unwrap_or_default());
            eprintln!(
                "single use; expires at {} (ms since epoch)",
                v["expires_at"]
            );
        }
        ClusterCmd::Join {
            api,
            token,
            cluster,
            ca_bundle,
        } => {
            let pin = token
                .split('.')
                .nth(2)
                .filter(|p| p.len() == 64)
                .context("the token has no CA pin: <id>.<secret>.<ca-pin>")?;
            if !api.starts_with("https://") {
                bail!("joining needs the API over https (the token pins its CA)");
            }
            let tls = warden_federation::trust::tls::pinned_client_config(pin)?;
            let client = warden_federation::client::ApiClient::with_tls(&api, None, Some(tls))?;
            let mut body = serde_json::to_value(&cluster)?;
            body["ca_bundle_pem"] = json!(read_pem(&ca_bundle)?);
            body["token"] = json!(token);
            print(&client.post("/api/v1/join", &body).await?);
        }
        ClusterCmd::List { conn } => {
            let v = conn.client()?.get("/api/v1/clusters").await?;
            println!(
                "{:<20} {:<14} {:<14} {:<24} TRUST DOMAIN",
                "NAME", "REGION", "ZONE", "GATEWAY"
            );
            for c in v["items"].as_array().into_iter().flatten() {
                println!(
                    "{:<20} {:<14} {:<14} {:<24} {}",
                    c["name"].as_str().unwrap_or(""),
                    c["region"].as_str().unwrap_or(""),
                    c["zone"].as_str().unwrap_or(""),
                    c["gateway"].as_str().unwrap_or(""),
                    c["trust_domain"].as_str().unwrap_or("")
                );
            }
        }
        ClusterCmd::Get { conn, name } => {
            let client = conn.client()?;
            let mut c = client.get(&format!("/api/v1/clusters/{name}")).await?;
            let status = client
                .get(&format!("/api/v1/clusters/{name}/status"))
                .await?;
            if let Some(obj) = c.as_object_mut() {
                obj.insert("status".into(), status);
            }
            print(&c);
        }
        ClusterCmd::Remove { conn, name } => {
            conn.client()?
                .delete(&format!("/api/v1/clusters/{name}"))
                .await?;
            println!("cluster {name} removed");
        }
    }
    Ok(())
}

pub async fn service(cmd: ServiceCmd) -> anyhow::Result<()> {
    match cmd {
        ServiceCmd::Export {
            conn,
            cluster,
            service,
            ports,
            healthy_endpoints,
            weight,
        } => {
            let (ns, svc) = split_service(&service)?;
            let ports = ports
                .iter()
                .map(|p| parse_port(p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let body =
                json!({ "ports": ports, "healthy_endpoints": healthy_endpoints, "weight": weight });
            let path = format!("/api/v1/clusters/{cluster}/services/{ns}/{svc}");
            print(&conn.client()?.put(&path, &body).await?);
        }
        ServiceCmd::Unexport {
            conn,
            cluster,
            service,
        } => {
            let (ns, svc) = split_service(&service)?;
            let path = format!("/api/v1/clusters/{cluster}/services/{ns}/{svc}");
            conn.client()?.delete(&path).await?;
            println!("{service} no longer exported from {cluster}");
        }
        ServiceCmd::List { conn } => {
            let v = conn.client()?.get("/api/v1/services").await?;
            println!("{:<32} CLUSTERS (healthy endpoints, weight)", "SERVICE");
            for s in v["items"].as_array().into_iter().flatten() {
                let clusters: Vec<String> = s["clusters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        format!(
                            "{}({},{})",
                            c["cluster"].as_str().unwrap_or(""),
                            c["healthy_endpoints"],
                            c["weight"]
                        )
                    })
                    .collect();
                let name = format!(
                    "{}/{}",
                    s["namespace"].as_str().unwrap_or(""),
                    s["service"].as_str().unwrap_or("")
                );
                println!("{name:<32} {}", clusters.join(" "));
            }
        }
    }
    Ok(())
}

pub async fn member(cmd: MemberCmd) -> anyhow::Result<()> {
    match cmd {
        MemberCmd::Add {
            conn,
            id,
            raft_addr,
            api_addr,
            learner,
        } => {
            let body = json!({ "id": id, "raft_addr": raft_addr, "api_addr": api_addr, "voter": !learner });
            print(
                &conn
                    .client()?
                    .post("/api/v1/federation/members", &body)
                    .await?,
            );
        }
        MemberCmd::Remove { conn, id } => {
            conn.client()?
                .delete(&format!("/api/v1/federation/members/{id}"))
                .await?;
            println!("member {id} removed");
        }
    }
    Ok(())
}

pub async fn status(conn: Conn) -> anyhow::Result<()> {
    print(&conn.client()?.get("/api/v1/mesh/status").await?);
    Ok(())
}
