//! SIGKILL the leader five times while a client streams writes: a new leader takes over,
//! writes continue, and no acknowledged write is ever lost. SIGTERM the leader three times in
//! quick succession (a rolling restart): it hands leadership over before it exits.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::*;

type Acked = Arc<Mutex<BTreeSet<String>>>;

/// The writer: round-robin over the nodes, one write at a time, records what got a 2xx.
/// Bounded: stops when told, or after 20,000 attempts at most; answers its attempts.
fn spawn_writer(
    apis: Arc<Mutex<Vec<String>>>,
    acked: Acked,
    stop: Arc<std::sync::atomic::AtomicBool>,
    client: reqwest::Client,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut attempts = 0u64;
        let mut i = 0usize;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) && attempts < 20_000 {
            attempts += 1;
            let api = {
                let a = apis.lock().unwrap();
                a[i % a.len()].clone()
            };
            i += 1;
            let name = format!("w-{attempts}");
            let r = client
                .post(format!("http://{api}{}", paths::CLUSTERS))
                .bearer_auth(TOKEN)
                .json(&cluster_body(&name))
                .send()
                .await;
            match r {
                Ok(r) if r.status().is_success() => {
                    acked.lock().unwrap().insert(name);
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        attempts
    })
}

/// Every node holds every acknowledged write.
async fn assert_all_acked_present(
    client: &reqwest::Client,
    nodes: &[NodeProc],
    acked: &BTreeSet<String>,
) {
    converged(client, nodes, Duration::from_secs(60)).await;
    for n in nodes {
        let v = get_json(client, &n.url(paths::CLUSTERS)).await.unwrap();
        let names: BTreeSet<String> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect();
        let missing: Vec<_> = acked.difference(&names).collect();
        assert!(
            missing.is_empty(),
            "node {} lost acknowledged writes: {missing:?}",
            n.id
        );
    }
}

/// Every write that got a 2xx is on every node after five leader kills and restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kills_lose_no_acknowledged_write() {
    const KILLS: usize = 5;
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = three_nodes(tmp.path()).await;
    let client = http();
    let apis: Arc<Mutex<Vec<String>>> =
        Arc::new(Mutex::new(nodes.iter().map(|n| n.api.clone()).collect()));
    let acked: Acked = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));

    let writer = spawn_writer(apis.clone(), acked.clone(), stop.clone(), client.clone());

    let mut leaders_killed = Vec::new();
    for round in 0..KILLS {
        // Let some writes land under the current leader.
        let before = acked.lock().unwrap().len();
        eventually(
            Duration::from_secs(30),
            "writes progress before the kill",
            || async { (acked.lock().unwrap().len() >= before + 10).then_some(()) },
        )
        .await;
        let leader_id = eventually(Duration::from_secs(30), "a leader", || {
            leader(&client, &nodes)
        })
        .await;
        let idx = nodes.iter().position(|n| n.id == leader_id).unwrap();
        nodes[idx].kill().await;
        leaders_killed.push(leader_id);
        // A new leader among the survivors.
        let new_leader = eventually(Duration::from_secs(30), "a new leader", || async {
            leader(&client, &nodes).await.filter(|l| *l != leader_id)
        })
        .await;
        // Writes continue without the killed node.
        let at_kill = acked.lock().unwrap().len();
        eventually(
            Duration::from_secs(30),
            "writes continue after the kill",
            || async { (acked.lock().unwrap().len() >= at_kill + 10).then_some(()) },
        )
        .await;
        eprintln!(
            "round {round}: killed leader {leader_id}, new leader {new_leader}, acked {at_kill}"
        );
        nodes[idx].restart().await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let attempts = writer.await.unwrap();
    let acked = acked.lock().unwrap().clone();
    assert_eq!(leaders_killed.len(), KILLS);
    assert!(
        acked.len() >= KILLS * 20,
        "only {} of {attempts} writes acked",
        acked.len()
    );

    // Every node, including every restarted one, converges and holds every acked write.
    assert_all_acked_present(&client, &nodes, &acked).await;
    eprintln!(
        "{} acked of {attempts} attempts; leaders killed: {leaders_killed:?}",
        acked.len()
    );
}

/// A leader stopped with SIGTERM hands leadership to an up-to-date voter before it exits: by
/// the time its process has exited a survivor already reports itself leader (no election
/// timeout was waited out), the term rose by exactly one (one election, no split vote), and
/// the stopped node logged the hand-over. Three stops in a row, each leader stopped as soon
/// as the previous one is back (so a leader is stopped within its vote lease of being
/// elected), under a steady writer (so a stop meets writes in flight); no acknowledged write
/// is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_leader_stop_hands_leadership_over() {
    const STOPS: usize = 3;
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = three_nodes(tmp.path()).await;
    let client = http();
    let apis = Arc::new(Mutex::new(nodes.iter().map(|n| n.api.clone()).collect()));
    let acked: Acked = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = spawn_writer(apis, acked.clone(), stop.clone(), client.clone());

    for round in 0..STOPS {
        let before = acked.lock().unwrap().len();
        eventually(
            Duration::from_secs(30),
            "writes progress before the stop",
            || async { (acked.lock().unwrap().len() >= before + 5).then_some(()) },
        )
        .await;
        let leader_id = eventually(Duration::from_secs(30), "a leader", || {
            leader(&client, &nodes)
        })
        .await;
        let idx = nodes.iter().position(|n| n.id == leader_id).unwrap();
        let term_before = mesh_status(&client, &nodes[idx]).await.unwrap()["term"]
            .as_u64()
            .unwrap();
        let log_path = nodes[idx].dir.join("node.log");
        let log_before = std::fs::read_to_string(&log_path).unwrap().len();

        let status = nodes[idx]
            .terminate(Duration::from_secs(30))
            .await
            .expect("the leader exits on SIGTERM");
        assert!(status.success(), "round {round}: exit status {status}");

        // Asked once, straight after the exit: a leader is already there.
        let new_leader = leader(&client, &nodes)
            .await
            .unwrap_or_else(|| panic!("round {round}: no leader when node {leader_id} had exited"));
        assert_ne!(new_leader, leader_id);
        let survivor = nodes.iter().find(|n| n.id == new_leader).unwrap();
        let term_after = mesh_status(&client, survivor).await.unwrap()["term"]
            .as_u64()
            .unwrap();
        assert_eq!(
            term_after,
            term_before + 1,
            "round {round}: one election for the hand-over"
        );
        let log = std::fs::read_to_string(&log_path).unwrap();
        let tail = &log[log_before..];
        assert!(
            tail.contains("handed leadership over before stopping"),
            "round {round}: node {leader_id} did not hand over:\n{tail}"
        );
        eprintln!(
            "round {round}: node {leader_id} handed over to {new_leader} in term {term_after}"
        );
        nodes[idx].restart().await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let attempts = writer.await.unwrap();
    assert!(
        acked.lock().unwrap().len() >= STOPS * 5,
        "too few writes acked of {attempts}"
    );
    let acked = acked.lock().unwrap().clone();
    assert_all_acked_present(&client, &nodes, &acked).await;
}
