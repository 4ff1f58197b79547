//! `warden check`: what to run when something is off. Asks the federation (any node) and every
//! member for their view, then reports quorum and leader, each node's reachability, lag and
//! clock skew, each cluster's lease, whether every cluster loaded the current trust bundles,
//! and whether each cluster's east-west gateway accepts connections from where the check runs and
//! presents a certificate its registered trust bundle verifies. It warns about listeners that
//! are plaintext on non-loopback addresses and about gateways that write with the admin token.
//! Every failing item says what to do; the exit code is non-zero when any item fails.

pub mod eval;

use std::time::{Duration, Instant};

use anyhow::Result;
use warden_federation::client::FederationClient;
use warden_federation::model::{Cluster, TrustBundle};
use warden_federation::wire::{Listing, MeshStatus, Role};

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

/// The Raft status of one node, with the clock offset measured around the request.
async fn member_status(
    client: &FederationClient,
    timeout: Duration,
) -> (Result<MeshStatus, String>, Option<(f64, f64)>) {
    let before = warden_federation::clock::now_ms() as f64;
    let t = Instant::now();
    let r = tokio::time::timeout(timeout, client.mesh_status()).await;
    let rtt = t.elapsed().as_secs_f64() * 1e3;
    match r {
        Err(_) => (Err(format!("no answer within {timeout:?}")), None),
        Ok(Err(e)) => (Err(e.to_string()), None),
        Ok(Ok(v)) => {
            let skew = (v.now_ms as f64 - (before + rtt / 2.0), rtt / 2.0);
            (Ok(v), Some(skew))
        }
    }
}

/// Whether the gateway at `addr` presents a certificate for a SPIFFE ID of its trust domain
/// signed by the bundle the store holds for it. Connecting without a client certificate: in
/// TLS 1.3 the client has verified the server before the server can refuse it.
async fn tls_identity(addr: &str, bundle_pem: &str, timeout: Duration) -> Result<(), String> {
    let cfg = warden_federation::trust::tls::anonymous_client_config(bundle_pem)
        .map_err(|e| format!("the registered bundle does not load: {e}"))?;
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let name = rustls::pki_types::ServerName::try_from("warden-gateway.invalid")
            .map_err(|e| e.to_string())?;
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
            .connect(name, tcp)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| format!("no TLS answer within {timeout:?}"))?
}

/// Each cluster's east-west gateway: accepts TCP from here, and — when the store holds its
/// trust domain's bundle — presents a certificate that bundle verifies.
async fn gateways(
    clusters: &Listing<Cluster>,
    bundles: Option<&Listing<TrustBundle>>,
    timeout: Duration,
) -> Vec<Item> {
    let mut out = Vec::new();
    for c in &clusters.items {
        let (name, gw, td) = (c.name.as_str(), c.gateway.as_str(), c.trust_domain.as_str());
        let r = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(gw)).await;
        match r {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                out.push(Item {
                    level: Level::Fail,
                    what: format!("cluster {name}: cannot connect to gateway {gw} from here: {e}"),
                    fix: Some("is the gateway running and listening on [listeners].eastwest? is the registered address (its `advertise`) reachable through the east-west Service / load balancer and firewalls?".into()),
                });
                continue;
            }
            Err(_) => {
                out.push(Item {
                    level: Level::Fail,
                    what: format!(
                        "cluster {name}: gateway {gw} does not answer within {timeout:?}"
                    ),
                    fix: Some(
                        "a firewall may drop the packets, or the address is not routable from here"
                            .into(),
                    ),
                });
                continue;
            }
        }
        let bundle = bundles
            .into_iter()
            .flat_map(|b| &b.items)
            .find(|b| b.trust_domain == td)
            .map(|b| b.ca_bundle_pem.as_str());
        let Some(pem) = bundle else {
            out.push(Item {
                level: Level::Ok,
                what: format!("cluster {name}: gateway {gw} accepts connections (from here; no trust bundle, plaintext)"),
                fix: None,
            });
            continue;
        };
        out.push(match tls_identity(gw, pem, timeout).await {
            Ok(()) => Item {
                level: Level::Ok,
                what: format!("cluster {name}: gateway {gw} accepts connections (from here) and presents a spiffe://{td} certificate its registered bundle verifies"),
                fix: None,
            },
            Err(e) => Item {
                level: Level::Fail,
                what: format!("cluster {name}: gateway {gw} does not present a certificate the registered {td} bundle verifies: {e}"),
                fix: Some("other gateways will refuse it: re-issue its certificate from a CA in the bundle, or publish its CA (old + new during a rotation) as the domain's trust bundle (the trust bundles API)".into()),
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
    let mut answering = Vec::new();
    for m in &first.members {
        let (id, addr) = (m.id, m.api_addr.clone());
        if m.role == Role::Voter {
            voters.push(id);
        }
        let client = args.conn.client_for(&format!("{scheme}://{addr}"))?;
        let (status, skew_ms) = member_status(&client, timeout).await;
        if status.is_ok() {
            answering.push(client);
        }
        members.push(MemberView {
            id,
            api: addr,
            status,
            skew_ms,
        });
    }
    let mut items = eval::federation(&members, &voters, args.max_skew_ms as f64);
    // The rest is read from whichever node answers (a follower serves its applied state).
    use tokio::time::timeout as within;
    let bundles = within(timeout, api.bundles())
        .await
        .ok()
        .and_then(Result::ok);
    match (
        within(timeout, api.clusters()).await,
        within(timeout, api.leases()).await,
    ) {
        (Ok(Ok(clusters)), Ok(Ok(mut leases))) => {
            // What each gateway advertises is known to the node it renews through: ask all.
            for c in &answering {
                if let Ok(Ok(seen)) = within(timeout, c.leases()).await {
                    eval::merge_adverts(&mut leases, &seen);
                }
            }
            items.extend(eval::leases(&clusters, &leases));
            items.extend(eval::credentials(&leases));
            let bundled: Vec<String> = bundles
                .iter()
                .flat_map(|b| &b.items)
                .map(|b| b.trust_domain.clone())
                .collect();
            items.extend(eval::plaintext(&members, &clusters, &bundled));
            items.extend(gateways(&clusters, bundles.as_ref(), timeout).await);
        }
        _ => items.push(Item {
            level: Level::Fail,
            what: "cannot read clusters and leases".into(),
            fix: Some("the node answered its status but not the API: see its log".into()),
        }),
    }
    if let Ok(Ok(trust)) = within(timeout, api.trust_status()).await {
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
