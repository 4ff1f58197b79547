//! `warden bench ...`: benchmarks that print figures (never run as tests).

use anyhow::Result;

#[derive(clap::Subcommand)]
pub enum BenchCmd {
    /// Federation store: 3 nodes on loopback with fsync on. Committed writes/s and commit
    /// latency at concurrency 1 and 64, then restart time of a node with a 1M-entry log.
    Raft(crate::bench::raft::RaftBenchArgs),
    /// Data path side by side (direct, one gateway, two gateways, HAProxy) and failover trials.
    Gateway(crate::bench::gateway::GatewayBenchArgs),
}

pub async fn run(cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Raft(a) => crate::bench::raft::run(a).await,
        BenchCmd::Gateway(a) => crate::bench::gateway::run(a).await,
    }
}
