//! `warden demo`: the whole story on one machine with no other setup — three clusters on
//! loopback, traffic, failover, failback, a cluster lost and back, a CA rotation — measured and
//! summed up. See [`scenario`] for the steps and [`mesh`] for what runs.

pub mod mesh;
pub mod scenario;
pub mod traffic;
pub mod view;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use mesh::Mesh;
use scenario::{Pace, Summary};
use traffic::Traffic;
use view::View;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Run non-interactively (for scripts and tests): no redrawing, short pauses, exit when done.
    #[arg(long)]
    scenario: bool,
    /// Keep the mesh running after the scenario and print its URLs; Ctrl-C stops it.
    #[arg(long)]
    keep_running: bool,
    /// Working directory for configs, certificates, data and logs (default: a temporary one,
    /// removed at the end unless something failed).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Also write the summary as JSON here.
    #[arg(long)]
    summary_json: Option<PathBuf>,
}

fn print_summary(s: &Summary) {
    let f = |v: Option<f64>| {
        v.map(|v| format!("{v:.1} ms"))
            .unwrap_or_else(|| "-".into())
    };
    println!(
        "\nSummary ({:.1} s, {} requests, {} failed)",
        s.seconds, s.total_requests, s.total_failed
    );
    println!("  {:<44} {:>12} {:>8}", "step", "measured", "failed");
    let rows = [
        (
            "failover: east's cart backends killed",
            f(s.failover_ms),
            s.failover_failed,
        ),
        (
            "failback: first local response",
            f(s.failback_first_local_ms),
            s.failback_failed,
        ),
        (
            "failback: all traffic local again",
            f(s.failback_all_local_ms),
            s.failback_failed,
        ),
        (
            "cluster central stopped: ledger rerouted",
            f(s.reroute_ms),
            s.reroute_failed,
        ),
        (
            "cluster central back: ledger returned",
            f(s.return_ms),
            s.return_failed,
        ),
        (
            "CA rotation of central under load",
            f(s.rotation_ms),
            s.rotation_failed,
        ),
    ];
    for (what, m, failed) in rows {
        println!("  {what:<44} {m:>12} {failed:>8}");
    }
    let split = |v: Option<(f64, f64)>| {
        v.map(|(a, b)| format!("{:.0}/{:.0}", a * 100.0, b * 100.0))
            .unwrap_or_else(|| "-".into())
    };
    println!(
        "  {:<44} {:>12} {:>8}",
        "canary ledger v1/v2: route 90/10, measured %",
        split(s.canary_90_10),
        s.canary_failed
    );
    println!(
        "  {:<44} {:>12} {:>8}",
        "canary shifted live to 50/50, measured %",
        split(s.canary_50_50),
        s.canary_failed
    );
    println!(
        "  Raft quorum while central was down: {} (leader node {}, {} changes committed)",
        if s.quorum_kept { "kept" } else { "LOST" },
        s.leader_while_down
            .map(|l| l.to_string())
            .unwrap_or_else(|| "-".into()),
        s.writes_committed_while_down
    );
}

fn print_urls(mesh: &Mesh) {
    println!("\nThe mesh keeps running. Ctrl-C stops it.\n");
    for (i, n) in mesh.nodes.iter().enumerate() {
        let c = &mesh.clusters[i];
        println!(
            "  {:<8} federation API  http://{}{}",
            c.name,
            n.api,
            warden_federation::paths::CLUSTERS
        );
        println!(
            "  {:<8} gateway admin   http://{}/explain?authority=ledger.shop",
            "", c.admin
        );
        println!("  {:<8} metrics         http://{}/metrics", "", c.admin);
        println!(
            "  {:<8} outbound        curl -H 'Host: cart.shop' http://{}/",
            "", c.outbound
        );
    }
    if let Some(n) = mesh.nodes.first() {
        println!(
            "\n  console         http://{}{}   (any node serves it)",
            n.api,
            warden_federation::paths::CONSOLE
        );
    }
    println!(
        "\n  admin token: {}   logs and configs: {}",
        mesh::TOKEN,
        mesh.dir.display()
    );
}

pub async fn run(args: DemoArgs) -> Result<()> {
    let live = !args.scenario && std::io::stdout().is_terminal();
    let view = View::new(live);
    let tmp = tempfile::Builder::new().prefix("warden-demo-").tempdir()?;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => tmp.path().to_path_buf(),
    };
    view.say("warden demo: three clusters on loopback (east, central: us-east; west: us-west)");
    let say = |s: &str| view.say(&format!("  {s}"));
    let started = tokio::select! {
        m = Mesh::start(&dir, &say) => Some(m),
        _ = crate::cli::signals::terminated() => None,
    };
    let Some(mesh) = started else {
        view.say("interrupted");
        return Ok(());
    };
    let mut mesh = match mesh {
        Ok(m) => m,
        Err(e) => {
            // The processes started so far die with `mesh`; their logs stay.
            let kept = if args.dir.is_some() { dir } else { tmp.keep() };
            return Err(e.context(format!(
                "starting the mesh (logs kept in {})",
                kept.display()
            )));
        }
    };
    let traffic = Traffic::start(&mesh.cluster("east").outbound.clone(), &view::SERVICES);
    view.say(
        "  traffic: 2 clients per service calling cart.shop and ledger.shop through east's gateway",
    );
    let pace = Pace {
        hold: if args.scenario {
            Duration::from_millis(1500)
        } else {
            Duration::from_secs(3)
        },
    };
    let outcome = tokio::select! {
        r = scenario::run(&mut mesh, &traffic, &view, &pace) => Some(r),
        _ = crate::cli::signals::terminated() => None,
    };
    let result = match outcome {
        None => {
            view.say("interrupted");
            Ok(())
        }
        Some(Ok(summary)) => {
            print_summary(&summary);
            if let Some(p) = &args.summary_json {
                std::fs::write(p, serde_json::to_vec_pretty(&summary)?)?;
            }
            if args.keep_running {
                print_urls(&mesh);
                let live_table = async {
                    loop {
                        view.table(&traffic, false);
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                };
                tokio::select! {
                    _ = live_table => {}
                    _ = crate::cli::signals::terminated() => {}
                }
            }
            Ok(())
        }
        Some(Err(e)) => Err(e),
    };
    traffic.stop().await;
    let n = mesh.shutdown().await;
    println!("stopped {n} processes");
    if let Err(e) = result {
        // Keep the logs of a failed run.
        let kept = match args.dir {
            Some(d) => d,
            None => tmp.keep(),
        };
        return Err(e.context(format!("logs kept in {}", kept.display())));
    }
    Ok(())
}
