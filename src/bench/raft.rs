//! `warden bench raft`: the federation store's write throughput, commit latency and restart
//! time, on real nodes (HTTP/2 Raft RPC on loopback, redb with fsync on every commit).
//!
//! Writes go through the REST API with a real HTTP client, as a user's would: each is an
//! export upsert (`PUT /api/v1/clusters/bench/services/bench/svc-N`), so none is rejected.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use openraft::storage::RaftLogStorage;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Membership, Vote};
use warden_federation::client::FederationClient;
use warden_federation::command::Command;
use warden_federation::config::{NodeConfig, RaftTuning};
use warden_federation::model::{Protocol, ServiceExport, ServicePort};
use warden_federation::paths;
use warden_federation::startup::{RunningNode, start};
use warden_federation::state::DATA_FORMAT;
use warden_federation::types::{NodeInfo, TypeConfig};
use warden_federation::wire::{AddMember, ExportBody, RegisterCluster};
use warden_raft_store::LogStore;

use super::etcd::EtcdCluster;
use super::load::{Load, load, print_header, print_row};

const TOKEN: &str = "bench-admin-token-0123456789";

#[derive(clap::Args)]
pub struct RaftBenchArgs {
    /// Seconds of load per concurrency level.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Entries in the log for the restart measurement.
    #[arg(long, default_value_t = 1_000_000)]
    log_entries: u64,
    /// Skip the restart measurement.
    #[arg(long)]
    no_restart: bool,
}

fn node_config(id: u64, dir: &Path, bootstrap: bool, tuning: RaftTuning) -> NodeConfig {
    NodeConfig {
        node_id: id,
        data_dir: dir.join(format!("node-{id}")),
        api_listen: "127.0.0.1:0".into(),
        raft_listen: "127.0.0.1:0".into(),
        api_advertise: None,
        raft_advertise: None,
        admin_token: Some(TOKEN.into()),
        bootstrap,
        initial_members: vec![],
        write_timeout_ms: 10_000,
        raft: tuning,
        tls: None,
        admin_spiffe_ids: Vec::new(),
        drain_timeout_ms: 1_000,
        insecure_plaintext: false,
        limits: Default::default(),
    }
}

async fn three_nodes(dir: &Path) -> Result<Vec<RunningNode>> {
    let n1 = start(node_config(1, dir, true, RaftTuning::default())).await?;
    n1.node
        .raft
        .wait(Some(Duration::from_secs(10)))
        .current_leader(1, "bootstrap")
        .await
        .context("node 1 did not become leader")?;
    let api =
        FederationClient::single(&format!("http://{}", n1.api_addr), Some(TOKEN.into()), None)?;
    let mut nodes = vec![n1];
    for id in 2..=3 {
        let n = start(node_config(id, dir, false, RaftTuning::default())).await?;
        let req = AddMember {
            id,
            raft_addr: n.raft_addr.to_string(),
            api_addr: n.api_addr.to_string(),
            voter: true,
        };
        api.add_member(&req).await?;
        nodes.push(n);
    }
    let bench = RegisterCluster {
        name: "bench".into(),
        region: "r".into(),
        zone: "z".into(),
        network: "default".into(),
        gateway: "127.0.0.1:15008".into(),
        trust_domain: "bench.test".into(),
        ca_bundle_pem: None,
        labels: Default::default(),
    };
    api.register_cluster(&bench).await?;
    Ok(nodes)
}

/// The export body of write number `i`.
fn export_body(i: u64) -> ExportBody {
    ExportBody {
        ports: vec![ServicePort {
            name: "http".into(),
            port: 80,
            protocol: Protocol::Http,
        }],
        healthy_endpoints: (i % 7) as u32,
        weight: 100,
        subsets: Vec::new(),
        export_to: Vec::new(),
    }
}

fn export_command(i: u64) -> Command {
    let b = export_body(i);
    Command::ExportService {
        export: ServiceExport {
            cluster: "bench".into(),
            namespace: "bench".into(),
            service: format!("svc-{}", i % 1000),
            ports: b.ports,
            healthy_endpoints: b.healthy_endpoints,
            weight: b.weight,
            updated_at: i,
        },
    }
}

/// Writes a single-node store whose log holds `n` committed entries, directly through the
/// storage layer (batched, fsynced), as a node that ran for a long time would have.
async fn build_long_log(dir: &Path, n: u64) -> Result<NodeInfo> {
    let db = warden_raft_store::open(&dir.join("node-1"), DATA_FORMAT)?;
    let mut log: LogStore<TypeConfig> = LogStore::new(db);
    let leader = CommittedLeaderId::new(1, 1);
    let info = NodeInfo {
        raft_addr: "127.0.0.1:1".into(),
        api_addr: "127.0.0.1:1".into(),
    };
    let membership = Membership::new(
        vec![BTreeSet::from([1u64])],
        BTreeMap::from([(1u64, info.clone())]),
    );
    let register = Command::RegisterCluster {
        cluster: warden_federation::model::Cluster {
            name: "bench".into(),
            region: "r".into(),
            zone: "z".into(),
            network: "n".into(),
            gateway: "127.0.0.1:15008".into(),
            trust_domain: "bench.test".into(),
            labels: Default::default(),
            registered_at: 0,
        },
        ca_bundle_pem: None,
    };
    log.append_entries([
        Entry::<TypeConfig> {
            log_id: LogId::new(leader, 0),
            payload: EntryPayload::Membership(membership),
        },
        Entry {
            log_id: LogId::new(leader, 1),
            payload: EntryPayload::Normal(register),
        },
    ])?;
    // Indexes 0..n: n entries, the last at n - 1 (Raft logs start at index 0).
    let mut next = 2u64;
    while next < n {
        let end = (next + 10_000).min(n);
        log.append_entries((next..end).map(|i| Entry {
            log_id: LogId::new(leader, i),
            payload: EntryPayload::Normal(export_command(i)),
        }))?;
        next = end;
    }
    log.save_vote(&Vote::new_committed(1, 1)).await?;
    log.save_committed(Some(LogId::new(leader, n - 1))).await?;
    Ok(info)
}

/// Waits (up to 10 s) until a stopped node's storage tasks have released its database file:
/// openraft's state-machine worker and replication tasks finish shortly after `shutdown`.
async fn wait_released(dir: &Path) -> Result<()> {
    let path = dir.join("node-1");
    for _ in 0..200 {
        if warden_raft_store::open(&path, DATA_FORMAT).is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the store at {} stayed locked", path.display())
}

/// Starts node 1 on the long log; returns the time until it has applied all `n` entries.
async fn time_restart(dir: &Path, n: u64, tuning: RaftTuning) -> Result<(Duration, RunningNode)> {
    wait_released(dir).await?;
    let last = n - 1;
    let t = Instant::now();
    let node = start(node_config(1, dir, false, tuning)).await?;
    node.node
        .raft
        .wait(Some(Duration::from_secs(600)))
        .applied_index_at_least(Some(last), "restart")
        .await
        .context("replaying the log")?;
    Ok((t.elapsed(), node))
}

pub async fn run(args: RaftBenchArgs) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    println!("warden bench raft: 3 nodes on loopback, HTTP/2 Raft RPC, redb with fsync per commit");
    println!(
        "writes are REST export upserts through a real HTTP client; {} s per row\n",
        args.seconds
    );
    let nodes = three_nodes(tmp.path()).await?;
    let leader = nodes
        .iter()
        .find(|n| n.node.raft.metrics().borrow().current_leader == Some(n.node.id))
        .context("no leader")?;
    let follower = nodes
        .iter()
        .find(|n| n.node.id != leader.node.id)
        .context("no follower")?;
    print_header();
    let body = export_body;
    let warden_put = move |api: String| {
        move |http: &reqwest::Client, w: usize, i: u64| {
            let svc = format!("svc-{w}-{}", i % 50);
            http.put(format!(
                "http://{api}{}",
                paths::export("bench", "bench", &svc)
            ))
            .bearer_auth(TOKEN)
            .json(&body(i))
        }
    };
    let term = |nodes: &[RunningNode]| {
        nodes
            .iter()
            .map(|n| n.node.raft.metrics().borrow().current_term)
            .max()
            .unwrap_or(0)
    };
    let term_before = term(&nodes);
    let mut rows: Vec<(String, Load)> = Vec::new();
    for (label, api, c) in [
        ("warden leader, c=1", leader.api_addr, 1),
        ("warden follower (forwarded), c=1", follower.api_addr, 1),
        ("warden leader, c=64", leader.api_addr, 64),
        ("warden follower (forwarded), c=64", follower.api_addr, 64),
    ] {
        let l = load(c, args.seconds, warden_put(api.to_string())).await?;
        print_row(label, &l);
        rows.push((label.to_string(), l));
    }
    // With fsync on every node under 64 writers, a leader that keeps its followers' timers
    // reset starts no election: a term change here is a spurious election.
    let term_after = term(&nodes);
    println!(
        "Raft term over the warden rows: {term_before} -> {term_after} ({} elections without a failure)",
        term_after - term_before
    );
    for n in nodes {
        n.shutdown().await;
    }
    // The same writes against etcd (3 members on loopback, fsync'd WAL), when installed.
    match EtcdCluster::start(tmp.path()).await {
        Ok(Some(etcd)) => {
            let value_len = serde_json::to_string(&body(1))?.len();
            for (label, c) in [("etcd leader, c=1", 1), ("etcd leader, c=64", 64)] {
                let l = load(c, args.seconds, etcd.put_request(value_len)).await?;
                print_row(label, &l);
                rows.push((label.to_string(), l));
            }
            drop(etcd);
            let find = |k: &str| rows.iter().find(|(l, _)| l == k).map(|(_, l)| l);
            for c in ["c=1", "c=64"] {
                if let (Some(w), Some(e)) = (
                    find(&format!("warden leader, {c}")),
                    find(&format!("etcd leader, {c}")),
                ) {
                    println!(
                        "warden/etcd at {c}: throughput {:.2}x, p50 {:.2}x, p99 {:.2}x",
                        w.rate() / e.rate(),
                        w.latencies.ms(0.5) / e.latencies.ms(0.5),
                        w.latencies.ms(0.99) / e.latencies.ms(0.99)
                    );
                }
            }
        }
        Ok(None) => {
            println!("(etcd not installed: no side-by-side row; apt-get install etcd-server)")
        }
        Err(e) => println!("(etcd failed to start: {e:#})"),
    }
    if args.no_restart {
        return Ok(());
    }

    let n = args.log_entries;
    if n < 3 {
        bail!("--log-entries must be at least 3");
    }
    println!(
        "\nrestart of a node with a {n}-entry log (single-node store, entries built through the storage layer):"
    );
    let dir = tempfile::tempdir()?;
    let t = Instant::now();
    build_long_log(dir.path(), n).await?;
    let built = t.elapsed();
    let size = dir_size(&dir.path().join("node-1"));
    println!(
        "  built in {:.1} s, {:.0} MiB on disk",
        built.as_secs_f64(),
        size as f64 / 1048576.0
    );
    // No snapshot yet: the whole log is replayed into the state machine.
    let never = RaftTuning {
        snapshot_after_logs: u64::MAX / 2,
        ..RaftTuning::default()
    };
    let (replay, node) = time_restart(dir.path(), n, never.clone()).await?;
    println!(
        "  start -> all {n} entries applied (full log replay): {:.2} s",
        replay.as_secs_f64()
    );
    // Snapshot and compact, then restart again: the normal state of a long-running node.
    node.node.raft.trigger().snapshot().await?;
    node.node
        .raft
        .wait(Some(Duration::from_secs(300)))
        .snapshot(LogId::new(CommittedLeaderId::new(1, 1), n - 1), "snapshot")
        .await
        .ok();
    let snap = node.node.raft.metrics().borrow().snapshot;
    if let Some(s) = snap {
        node.node.raft.trigger().purge_log(s.index).await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    node.shutdown().await;
    let (from_snap, node) = time_restart(dir.path(), n, never).await?;
    println!(
        "  start -> applied {n} after snapshot + compaction (snapshot at {:?}): {:.3} s",
        snap.map(|s| s.index),
        from_snap.as_secs_f64()
    );
    node.shutdown().await;
    Ok(())
}

fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
