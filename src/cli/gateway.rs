//! `warden gateway --config F` (one east-west gateway) and `warden run --config F` (a
//! federation node and a gateway in one process). Both run inside an actix `System` hosted on
//! a multi-thread tokio runtime: actors on the system arbiter, the data path on the workers.
//! On SIGTERM/SIGINT they drain: the lease is withdrawn, new connections are refused, and
//! requests in flight finish within `timeouts.drain_ms` before the process exits (code 0).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;
use warden_federation::config::NodeConfig;
use warden_gateway::config::GatewayConfig;

#[derive(clap::Args)]
pub struct GatewayArgs {
    /// The gateway's TOML config (see docs/examples/gateway-east.toml).
    #[arg(long)]
    config: PathBuf,
}

/// `warden run`: `[node]` is a federation node config, `[gateway]` a gateway config whose
/// `federation.endpoints` may be left empty to use this process's own node.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunConfig {
    node: NodeConfig,
    gateway: toml::Value,
}

fn runtime() -> Result<actix_rt::SystemRunner> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the runtime")?;
    Ok(actix_rt::System::with_tokio_rt(move || rt))
}

fn print_listening(h: &warden_gateway::control::GatewayHandle, extra: serde_json::Value) {
    let mut v = serde_json::json!({
        "event": "listening",
        "outbound": h.outbound.to_string(),
        "eastwest": h.eastwest.to_string(),
        "admin": h.admin.to_string(),
        "tcp": h.tcp.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
    });
    if let (Some(o), serde_json::Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    println!("{v}");
}

pub fn gateway(args: GatewayArgs) -> Result<()> {
    let cfg = GatewayConfig::load(&args.config)?;
    let deadline = Duration::from_millis(cfg.timeouts.drain_ms);
    runtime()?.block_on(async move {
        let h = warden_gateway::control::start(cfg)
            .await
            .context("starting the gateway")?;
        print_listening(&h, serde_json::json!({}));
        super::signals::terminated().await?;
        h.drain(deadline).await;
        actix_rt::System::current().stop();
        Ok(())
    })
}

fn load_run(path: &Path) -> Result<(NodeConfig, toml::Value)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let rc: RunConfig =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    rc.node.validate()?;
    Ok((rc.node, rc.gateway))
}

pub fn run(args: GatewayArgs) -> Result<()> {
    let (node_cfg, mut gw_value) = load_run(&args.config)?;
    runtime()?.block_on(async move {
        let node = warden_federation::startup::start(node_cfg)
            .await
            .context("starting the federation node")?;
        // An empty endpoint list means "this process's own node".
        let own = format!("http://{}", node.api_addr);
        if let Some(fed) = gw_value.get_mut("federation").and_then(|f| f.as_table_mut()) {
            let empty = fed
                .get("endpoints")
                .and_then(|e| e.as_array())
                .is_none_or(|a| a.is_empty());
            if empty {
                fed.insert("endpoints".into(), toml::Value::Array(vec![toml::Value::String(own)]));
            }
        }
        let explicit = gw_value
            .as_table()
            .map(warden_gateway::config::explicit_keys)
            .unwrap_or_default();
        let mut cfg: GatewayConfig = gw_value.try_into().context("parsing [gateway]")?;
        cfg.explicit = explicit;
        cfg.validate()?;
        let deadline = Duration::from_millis(cfg.timeouts.drain_ms);
        let h = warden_gateway::control::start(cfg).await.context("starting the gateway")?;
        print_listening(
            &h,
            serde_json::json!({"node_id": node.node.id, "api": node.api_addr.to_string(), "raft": node.raft_addr.to_string()}),
        );
        super::signals::terminated().await?;
        h.drain(deadline).await;
        node.shutdown().await;
        actix_rt::System::current().stop();
        Ok(())
    })
}
