//! `warden check`: what to run when something is off. Asks the federation (any node) and every
//! member for their view, then reports quorum and leader, each node's reachability, lag and
//! clock skew, each cluster's lease, whether every cluster loaded the current trust bundles,
//! and whether each cluster's east-west gateway accepts connections from where the check runs.
//! Every failing item says what to do; the exit code is non-zero when any item fails.

pub mod eval;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use serde_json::Value;
use warden_federation::client::ApiClient;

use eval::{Item, Level, MemberView};

#[derive(clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    conn: crate::cli::client::Conn,
    /// Largest tolerated clock difference between a node and this machine.
    #[arg(long, default_value_t = 500)]
    max_skew_ms: u64,
    /// How long to wait for each answer.
    #[arg(long, default_value_t = 3000)]
    timeout_ms: u64,
}

fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1e3)
        .unwrap_or(0.0)
}

/// `/api/v1/mesh/status` of one node, with the clock offset measured around the request.
async fn member_status(
    client: &ApiClient,
    timeout: Duration,
) -> (Result<Value, String>, Option<(f64, f64)>) {
    let before = wall_ms();
    let t = Instant::now();
    let r = tokio::time::timeout(timeout, client.get("/api/v1/mesh/status")).await;
    let rtt = t.elapsed().as_secs_f64() * 1e3;
    match r {
        Err(_) => (Err(format!("no answer within {timeout:?}")), None),
        Ok(Err(e)) => (Err(e.to_string()), None),
        Ok(Ok(v)) => {
            let skew = v["now_ms"]
                .as_f64()
                .map(|now| (now - (before + rtt / 2.0), rtt / 2.0));
            (Ok(v), skew)
        }
    }
}

async fn gateways(clusters: &Value, timeout: Duration) -> Vec<Item> {
    let mut out = Vec::new();
    for c in clusters["items"].as_array().into_iter().flatten() {
        let (name, gw) = (
            c["name"].as_str().unwrap_or("?"),
            c["gateway"].as_str().unwrap_or(""),
        );
        let r = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(gw)).await;
        out.push(match r {
            Ok(Ok(_)) => Item {
                level: Level::Ok,
                what: format!("cluster {name}: gateway {gw} accepts connections (from here)"),
                fix: None,
            },
            Ok(Err(e)) => Item {
                level: Level::Fail,
                what: format!("cluster {name}: cannot connect to gateway {gw} from here: {e}"),
                fix: Some("is the gateway running and listening on [listeners].eastwest? is the registered address (its `advertise`) reachable through the east-west Service / load balancer and firewalls?".into()),
            },
            Err(_) => Item {
                level: Level::Fail,
                what: format!("cluster {name}: gateway {gw} does not answer within {timeout:?}"),
                fix: Some("a firewall may drop the packets, or the address is not routable from here".into()),
            },
        });
    }
    out
}

fn print(items: &[Item]) -> usize {
    let mut failed = 0;
    for i in items {
        let tag = match i.level {
            Level::Ok => "  ok  ",
            Level::Warn => " warn ",
            Level::Fail => {
                failed += 1;
                " FAIL "
            }
        };
        println!("[{tag}] {}", i.what);
        if let Some(f) = &i.fix {
            println!("         -> {f}");
        }
    }
    failed
}

/// Runs every check; `Ok(false)` when any failed.
pub async fn run(args: CheckArgs) -> Result<bool> {
    let timeout = Duration::from_millis(args.timeout_ms);
    let api = args.conn.client()?;
    println!("warden check via {}", args.conn.api);
    let (first, _) = member_status(&api, timeout).await;
    let first = match first {
        Ok(v) => v,
        Err(e) => {
            print(&[Item {
                level: Level::Fail,
                what: format!("cannot read the federation status from {}: {e}", args.conn.api),
                fix: Some("is a node running there? use --api (or WARDEN_API) with any member's API URL, and --api-ca-bundle for https".into()),
            }]);
            return Ok(false);
        }
    };
    let scheme = if args.conn.api.starts_with("https://") {
        "https"
    } else {
        "http"
    };
    let mut members = Vec::new();
    let mut voters = Vec::new();
    for m in first["members"].as_array().into_iter().flatten() {
        let (id, addr) = (
            m["id"].as_u64().unwrap_or(0),
            m["api_addr"].as_str().unwrap_or("").to_string(),
        );
        if m["role"] == "voter" {
            voters.push(id);
        }
        let client = args.conn.client_for(&format!("{scheme}://{addr}"))?;
        let (status, skew_ms) = member_status(&client, timeout).await;
        members.push(MemberView {
            id,
            api: addr,
            status,
            skew_ms,
        });
    }
    let mut items = eval::federation(&members, &voters, args.max_skew_ms as f64);
    // The rest is read from whichever node answers (a follower serves its applied state).
    let read = |path: &'static str| {
        let api = api.clone();
        async move { tokio::time::timeout(timeout, api.get(path)).await }
    };
    match (read("/api/v1/clusters").await, read("/api/v1/leases").await) {
        (Ok(Ok(clusters)), Ok(Ok(leases))) => {
            items.extend(eval::leases(&clusters, &leases));
            items.extend(gateways(&clusters, timeout).await);
        }
        _ => items.push(Item {
            level: Level::Fail,
            what: "cannot read clusters and leases".into(),
            fix: Some("the node answered its status but not the API: see its log".into()),
        }),
    }
    if let Ok(Ok(trust)) = read("/api/v1/trust/status").await {
        items.extend(eval::trust(&trust));
    }
    let failed = print(&items);
    let warned = items.iter().filter(|i| i.level == Level::Warn).count();
    println!(
        "\n{} checks: {} ok, {warned} warnings, {failed} failed",
        items.len(),
        items.len() - failed - warned
    );
    Ok(failed == 0)
}
