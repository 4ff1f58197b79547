//! CLI clients of the REST API: `cluster`, `service`, `member`, `status`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde::Serialize;
use warden_federation::client::FederationClient;
use warden_federation::model::{Protocol, ServicePort};
use warden_federation::wire::{AddMember, ExportBody, JoinRequest, RegisterCluster};

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
    /// Bearer token for writes: the admin token, or a cluster credential (that cluster's own
    /// records only).
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
    pub fn client(&self) -> anyhow::Result<FederationClient> {
        self.client_for(&self.api)
    }

    /// A client for another node's API with the same token and CA.
    pub fn client_for(&self, base: &str) -> anyhow::Result<FederationClient> {
        let pem = self.api_ca_bundle.as_deref().map(read_pem).transpose()?;
        Ok(FederationClient::single(
            base,
            self.token.clone(),
            pem.as_deref(),
        )?)
    }
}

/// What a cluster registers with (`register` and `join`).
#[derive(clap::Args)]
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

impl ClusterArgs {
    /// The registration these arguments describe.
    fn registration(
        self,
        ca_bundle_pem: Option<String>,
        labels: BTreeMap<String, String>,
    ) -> RegisterCluster {
        RegisterCluster {
            name: self.name,
            region: self.region,
            zone: self.zone,
            network: self.network,
            gateway: self.gateway,
            trust_domain: self.trust_domain,
            ca_bundle_pem,
            labels,
        }
    }
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
    /// Issue a cluster a new API credential (admin, or the cluster's current credential); the
    /// previous one stops working. Give it to the cluster's gateway as WARDEN_CLUSTER_TOKEN.
    Credential {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        name: String,
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

fn print<T: Serialize>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("cannot print the answer: {e}"),
    }
}

fn split_service(s: &str) -> anyhow::Result<(&str, &str)> {
    match s.split_once('/') {
        Some((ns, svc)) if !ns.is_empty() && !svc.is_empty() => Ok((ns, svc)),
        _ => bail!("service must be namespace/service, got {s:?}"),
    }
}

fn parse_port(s: &str) -> anyhow::Result<ServicePort> {
    let (name, rest) = s
        .split_once(':')
        .with_context(|| format!("port {s:?} must be name:port[/protocol]"))?;
    let (port, proto) = rest.split_once('/').unwrap_or((rest, "http"));
    let port: u16 = port
        .parse()
        .with_context(|| format!("port {s:?}: {port:?} is not a port number"))?;
    let protocol = match proto {
        "http" => Protocol::Http,
        "http2" => Protocol::Http2,
        "grpc" => Protocol::Grpc,
        "tcp" => Protocol::Tcp,
        other => bail!("port {s:?}: protocol {other:?} is not http, http2, grpc or tcp"),
    };
    Ok(ServicePort {
        name: name.to_string(),
        port,
        protocol,
    })
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
            let pem = ca_bundle.as_deref().map(read_pem).transpose()?;
            let req = cluster.registration(pem, label_map);
            print(&conn.client()?.register_cluster(&req).await?);
        }
        ClusterCmd::Credential { conn, name } => {
            let c = conn.client()?.new_credential(&name).await?;
            println!("{}", c.credential);
            eprintln!(
                "the credential of cluster {} (shown once; the previous one no longer works): give it to its gateway as WARDEN_CLUSTER_TOKEN or federation.cluster_token",
                c.cluster
            );
        }
        ClusterCmd::JoinToken { conn, ttl_seconds } => {
            let t = conn.client()?.create_join_token(ttl_seconds).await?;
            println!("{}", t.token);
            eprintln!("single use; expires at {} (ms since epoch)", t.expires_at);
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
            let client = FederationClient::with_tls(&[api], None, Some(tls))?;
            let pem = read_pem(&ca_bundle)?;
            let req = JoinRequest::new(token, cluster.registration(None, BTreeMap::new()), pem);
            print(&client.join(&req).await?);
        }
        ClusterCmd::List { conn } => {
            let list = conn.client()?.clusters().await?;
            println!(
                "{:<20} {:<14} {:<14} {:<24} TRUST DOMAIN",
                "NAME", "REGION", "ZONE", "GATEWAY"
            );
            for c in list.items {
                println!(
                    "{:<20} {:<14} {:<14} {:<24} {}",
                    c.name, c.region, c.zone, c.gateway, c.trust_domain
                );
            }
        }
        ClusterCmd::Get { conn, name } => {
            let client = conn.client()?;
            #[derive(Serialize)]
            struct Shown {
                #[serde(flatten)]
                cluster: warden_federation::model::Cluster,
                status: warden_federation::wire::ClusterStatus,
            }
            let cluster = client.cluster(&name).await?;
            let status = client.cluster_status(&name).await?;
            print(&Shown { cluster, status });
        }
        ClusterCmd::Remove { conn, name } => {
            conn.client()?.remove_cluster(&name).await?;
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
            let body = ExportBody {
                ports: ports
                    .iter()
                    .map(|p| parse_port(p))
                    .collect::<anyhow::Result<Vec<_>>>()?,
                healthy_endpoints,
                weight,
                subsets: Vec::new(),
                export_to: Vec::new(),
            };
            print(&conn.client()?.export(&cluster, ns, svc, &body).await?);
        }
        ServiceCmd::Unexport {
            conn,
            cluster,
            service,
        } => {
            let (ns, svc) = split_service(&service)?;
            conn.client()?.unexport(&cluster, ns, svc).await?;
            println!("{service} no longer exported from {cluster}");
        }
        ServiceCmd::List { conn } => {
            let catalog = conn.client()?.services().await?;
            println!("{:<32} CLUSTERS (healthy endpoints, weight)", "SERVICE");
            for s in catalog.items {
                let clusters: Vec<String> = s
                    .clusters
                    .iter()
                    .map(|c| format!("{}({},{})", c.cluster, c.healthy_endpoints, c.weight))
                    .collect();
                let name = format!("{}/{}", s.namespace, s.service);
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
            let req = AddMember {
                id,
                raft_addr,
                api_addr,
                voter: !learner,
            };
            print(&conn.client()?.add_member(&req).await?);
        }
        MemberCmd::Remove { conn, id } => {
            conn.client()?.remove_member(id).await?;
            println!("member {id} removed");
        }
    }
    Ok(())
}

pub async fn status(conn: Conn) -> anyhow::Result<()> {
    print(&conn.client()?.mesh_status().await?);
    Ok(())
}
