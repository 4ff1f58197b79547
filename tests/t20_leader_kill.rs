//! SIGKILL the leader five times while a client streams writes: a new leader takes over,
//! writes continue, and no acknowledged write is ever lost.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::*;

/// Every write that got a 2xx is on every node after five leader kills and restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kills_lose_no_acknowledged_write() {
    const KILLS: usize = 5;
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = three_nodes(tmp.path()).await;
    let client = http();
    let apis: Arc<Mutex<Vec<String>>> =
        Arc::new(Mutex::new(nodes.iter().map(|n| n.api.clone()).collect()));
    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // The writer: round-robin over the nodes, one write at a time, records what got a 2xx.
    let writer = {
        let (apis, acked, stop, client) =
            (apis.clone(), acked.clone(), stop.clone(), client.clone());
        tokio::spawn(async move {
            let mut attempts = 0u64;
            let mut i = 0usize;
            // Bounded: stops when told, or after 20,000 attempts at most.
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
    };

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
    converged(&client, &nodes, Duration::from_secs(60)).await;
    for n in &nodes {
        let v = get_json(&client, &n.url(paths::CLUSTERS)).await.unwrap();
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
    eprintln!(
        "{} acked of {attempts} attempts; leaders killed: {leaders_killed:?}",
        acked.len()
    );
}
