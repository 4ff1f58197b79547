//! `warden federation --config F`: one federation node until SIGINT or SIGTERM, then a
//! graceful drain (`drain_timeout_ms`).

use std::path::PathBuf;

use anyhow::Context;
use warden_federation::config::NodeConfig;

#[derive(clap::Args)]
pub struct FederationArgs {
    /// The node's TOML config (see docs/examples/federation-1.toml).
    #[arg(long)]
    config: PathBuf,
}

pub async fn run(args: FederationArgs) -> anyhow::Result<()> {
    let cfg = NodeConfig::load(&args.config)?;
    let running = warden_federation::startup::start(cfg)
        .await
        .context("starting the federation node")?;
    // One machine-readable line on stdout, so scripts and tests learn the bound addresses.
    println!(
        "{}",
        serde_json::json!({
            "event": "listening",
            "node_id": running.node.id,
            "api": running.api_addr.to_string(),
            "raft": running.raft_addr.to_string(),
        })
    );
    super::signals::terminated().await?;
    tracing::info!("shutting down: draining requests in flight");
    running.shutdown().await;
    Ok(())
}
