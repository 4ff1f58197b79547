//! `warden bench ...`: benchmarks that print figures (never run as tests).

#[derive(clap::Subcommand)]
pub enum BenchCmd {}

pub async fn run(cmd: BenchCmd) -> anyhow::Result<()> {
    match cmd {}
}
