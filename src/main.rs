//! `warden`: the one binary. Runs a federation node, or talks to one as a CLI client.
//!
//! Layout: `cli/` holds one file per command family; this file parses arguments, sets up
//! logging and the runtime, and maps errors to exit codes.

mod bench;
mod check;
mod cli;
mod demo;
mod local;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Warden: a multi-cluster mesh gateway.
#[derive(Parser)]
#[command(name = "warden", version, about)]
struct Args {
    /// Log format on stderr.
    #[arg(long, global = true, default_value = "pretty", value_parser = ["pretty", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Three clusters on this machine: failover, failback, a cluster lost, a CA rotation —
    /// measured. No other setup.
    Demo(demo::DemoArgs),
    /// Run one federation node (Raft member, REST API, watch stream).
    Federation(cli::federation::FederationArgs),
    /// Run one east-west gateway (listeners, upstream pools, health checks, catalog watcher).
    Gateway(cli::gateway::GatewayArgs),
    /// Run a federation node and a gateway in one process (`[node]` and `[gateway]` tables).
    Run(cli::gateway::GatewayArgs),
    /// A small HTTP backend answering with its name (demo, tests, benchmarks).
    Echo(cli::echo::EchoArgs),
    /// Register, list, read and remove clusters.
    #[command(subcommand)]
    Cluster(cli::client::ClusterCmd),
    /// Export, unexport and list services.
    #[command(subcommand)]
    Service(cli::client::ServiceCmd),
    /// Apply, read and delete L7 routes (`warden route apply -f route.yaml`).
    #[command(subcommand)]
    Route(cli::objects::ObjectCmd),
    /// Apply, read and delete resilience policies: circuit breakers, rate limits, fault
    /// injection (`warden resilience apply -f policy.yaml`).
    #[command(subcommand)]
    Resilience(cli::objects::ObjectCmd),
    /// Apply, read and delete JWT policies (`warden jwt apply -f jwt.yaml`).
    #[command(subcommand)]
    Jwt(cli::objects::ObjectCmd),
    /// Apply, read and delete L7 authorization policies (`warden authz apply -f authz.yaml`).
    #[command(subcommand)]
    Authz(cli::objects::ObjectCmd),
    /// Mesh-wide and per-cluster gateway settings kept in the store
    /// (`warden mesh config get|set|diff [--cluster NAME]`), and checking a bundle of objects
    /// before applying it (`warden mesh validate -f bundle.yaml`).
    #[command(subcommand)]
    Mesh(cli::mesh::MeshCmd),
    /// Add or remove federation members.
    #[command(subcommand)]
    Member(cli::client::MemberCmd),
    /// Per-cluster CAs and SPIFFE certificates.
    #[command(subcommand)]
    Trust(cli::trust::TrustCmd),
    /// Diagnose a mesh: quorum, nodes, clock skew, leases, trust bundles, gateway reachability.
    /// Exits non-zero when something fails.
    Check(check::CheckArgs),
    /// Show the federation's Raft status as one node sees it.
    Status(cli::client::Conn),
    /// Benchmarks (not tests): measured figures for docs/benchmarks.md.
    #[command(subcommand)]
    Bench(cli::bench::BenchCmd),
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    // Colors only on a terminal: log files and collectors get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(&args.log_format);
    warden_federation::trust::ensure_crypto_provider();
    // Every connection is a file: take what the hard limit allows before any listener opens.
    let open_files = warden_federation::limits::raise_open_files();
    tracing::debug!(?open_files, "open-file limit");
    // The gateway roles run inside an actix System with its own runtime.
    let result = match args.command {
        Command::Gateway(a) => cli::gateway::gateway(a),
        Command::Run(a) => cli::gateway::run(a),
        Command::Trust(t) => cli::trust::run(t),
        other => run_tokio(other),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_tokio(command: Command) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the runtime: {e}"))?;
    rt.block_on(async move {
        match command {
            Command::Federation(a) => cli::federation::run(a).await,
            Command::Cluster(c) => cli::client::cluster(c).await,
            Command::Service(c) => cli::client::service(c).await,
            Command::Member(c) => cli::client::member(c).await,
            Command::Mesh(c) => cli::mesh::run(c).await,
            Command::Route(c) => cli::objects::run::<cli::objects::Routes>(c).await,
            Command::Resilience(c) => cli::objects::run::<cli::objects::Resilience>(c).await,
            Command::Jwt(c) => cli::objects::run::<cli::objects::Jwt>(c).await,
            Command::Authz(c) => cli::objects::run::<cli::objects::Authorization>(c).await,
            Command::Status(conn) => cli::client::status(conn).await,
            Command::Bench(b) => cli::bench::run(b).await,
            Command::Echo(a) => cli::echo::run(a).await,
            Command::Demo(a) => demo::run(a).await,
            Command::Check(a) => {
                if check::run(a).await? {
                    Ok(())
                } else {
                    Err(anyhow::anyhow!("some checks failed"))
                }
            }
            Command::Gateway(_) | Command::Run(_) | Command::Trust(_) => {
                anyhow::bail!("the gateway roles run in their own actix system")
            }
        }
    })
}
