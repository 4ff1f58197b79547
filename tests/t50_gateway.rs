//! Three clusters, each with a federation node, a gateway (mTLS on the east-west hop, one CA
//! per cluster) and two echo backends, all real processes on loopback: local serving, failover
//! and failback under load, an 80/20 split, lease expiry of a dead gateway, and supervised
//! restarts after injected actor panics.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::*;

fn cluster_of(server: &str) -> &str {
    server.rsplit_once('-').map(|(c, _)| c).unwrap_or("")
}

async fn explain(client: &reqwest::Client, c: &ClusterProcs) -> Value {
    client
        .get(format!("http://{}/explain?authority=cart.shop", c.admin()))
        .send()
        .await
        .expect("explain")
        .json()
        .await
        .expect("explain JSON")
}

async fn metric(client: &reqwest::Client, c: &ClusterProcs, line_prefix: &str) -> f64 {
    let text = client
        .get(format!("http://{}/metrics", c.admin()))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Requests sent by a load loop: (status, serving cluster) in order.
type Log = Arc<Mutex<Vec<(u16, String)>>>;

fn spawn_load(
    client: reqwest::Client,
    outbound: String,
    log: Log,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // Bounded: at most 20,000 requests.
        for _ in 0..20_000 {
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            let (s, server) = call(&client, &outbound).await;
            log.lock()
                .unwrap()
                .push((s, cluster_of(&server).to_string()));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
}

/// The whole gateway story on one mesh, phase by phase.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_cluster_mesh() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let fed = three_nodes(root).await;
    let apis: Vec<String> = fed.iter().map(|n| n.api.clone()).collect();
    let client = http();
    // east and central share a region; west is far.
    // Every cluster has its own CA; the east-west hop runs over mTLS.
    let mut east = cluster_with(
        root,
        "east",
        "us-east",
        "us-east-1a",
        &apis,
        &pki(root, "east.test"),
    )
    .await;
    let mut central = cluster_with(
        root,
        "central",
        "us-east",
        "us-east-1b",
        &apis,
        &pki(root, "central.test"),
    )
    .await;
    let west = cluster_with(
        root,
        "west",
        "us-west",
        "us-west-1a",
        &apis,
        &pki(root, "west.test"),
    )
    .await;

    // Every gateway sees the other two clusters' exports.
    for c in [&east, &central, &west] {
        eventually(
            Duration::from_secs(30),
            "explain sees 3 clusters",
            || async {
                let e = explain(&client, c).await;
                let remotes: usize = e["levels"]
                    .as_array()?
                    .iter()
                    .map(|l| l["clusters"].as_array().map_or(0, |a| a.len()))
                    .sum();
                (remotes == 2 && e["found"] == true).then_some(())
            },
        )
        .await;
    }

    // /explain answers for every service on every gateway.
    for c in [&east, &central, &west] {
        for svc in ["cart.shop", "grpc-echo.shop.svc.cluster.local"] {
            let e: Value = client
                .get(format!("http://{}/explain?authority={svc}", c.admin()))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(e["found"], true, "{} {svc}: {e}", c.name);
            assert_eq!(
                e["levels"][0]["traffic_share"], 1.0,
                "{} {svc}: {e}",
                c.name
            );
        }
    }
    let r = client
        .get(format!(
            "http://{}/explain?authority=nope.shop",
            east.admin()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // Phase 1: healthy local endpoints serve everything locally.
    for _ in 0..40 {
        let (s, server) = call(&client, &east.outbound()).await;
        assert_eq!((s, cluster_of(&server)), (200, "east"), "{server}");
    }
    let e = explain(&client, &east).await;
    assert_eq!(e["levels"][0]["traffic_share"], 1.0, "{e}");
    // Raw TCP by port mapping stays local too.
    let tcp_east = east.gateway.info["tcp"][0].as_str().unwrap().to_string();
    assert_eq!(cluster_of(&tcp_call(&tcp_east).await), "east");
    // gRPC passes through with its trailers (h2c in, h2c to the backend).
    let (s, server, grpc_status) = grpc_call(&east.outbound()).await;
    assert_eq!(
        (s, cluster_of(&server), grpc_status.as_deref()),
        (200, "east", Some("0"))
    );

    // Phase 2: kill both east backends under continuous load → nearest remote (central), 0 failures.
    let log: Log = Default::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = spawn_load(client.clone(), east.outbound(), log.clone(), stop.clone());
    eventually(Duration::from_secs(10), "load running", || async {
        (log.lock().unwrap().len() > 20).then_some(())
    })
    .await;
    let backend_addrs: Vec<String> = east.backends.iter().map(|b| b.addr("addr")).collect();
    for b in east.backends.iter_mut() {
        b.kill().await;
    }
    let killed_at = log.lock().unwrap().len();
    eventually(
        Duration::from_secs(15),
        "served by central after the kill",
        || async {
            let l = log.lock().unwrap();
            (l.len() > killed_at + 50 && l[l.len() - 20..].iter().all(|(_, c)| c == "central"))
                .then_some(())
        },
    )
    .await;
    // /explain after the failover: local has no available endpoint, the same-region level takes all.
    let e = eventually(
        Duration::from_secs(10),
        "explain shows the failover",
        || async {
            let e = explain(&client, &east).await;
            (e["local"]["available"] == 0).then_some(e)
        },
    )
    .await;
    let same_region = e["levels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "same region")
        .cloned()
        .unwrap();
    assert_eq!(same_region["traffic_share"], 1.0, "{e}");
    assert_eq!(same_region["clusters"][0]["cluster"], "central");
    assert!(
        metric(
            &client,
            &east,
            "warden_failovers_total{service=\"shop/cart\"}"
        )
        .await
            >= 1.0
    );

    // Restore the backends on the same addresses → traffic returns to east after the hysteresis.
    for (i, addr) in backend_addrs.iter().enumerate() {
        east.backends[i] = echo(root, &format!("east-{}", i + 1), addr).await;
    }
    let restored_at = log.lock().unwrap().len();
    eventually(Duration::from_secs(20), "traffic back on east", || async {
        let l = log.lock().unwrap();
        (l.len() > restored_at + 50 && l[l.len() - 30..].iter().all(|(_, c)| c == "east"))
            .then_some(())
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    load.await.unwrap();
    let l = log.lock().unwrap().clone();
    let failed: Vec<_> = l.iter().filter(|(s, _)| *s != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during failover/failback: {:?}",
        failed.len(),
        l.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(
        l[killed_at..].iter().all(|(_, c)| c != "west"),
        "failover went to the nearest cluster, never west"
    );

    // Phase 3: an 80/20 cross-cluster split (east 80, west 20) over 2,000 requests.
    let r = client
        .put(fed[0].url(&paths::traffic_policy("cart-split")))
        .json(&json!({"service": "shop/cart", "weights": {"east": 80, "west": 20}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    eventually(
        Duration::from_secs(10),
        "east applies the policy",
        || async { (explain(&client, &east).await["mode"] == "weighted").then_some(()) },
    )
    .await;
    let mut east_n = 0;
    for _ in 0..2000 {
        let (s, server) = call(&client, &east.outbound()).await;
        assert_eq!(s, 200);
        match cluster_of(&server) {
            "east" => east_n += 1,
            "west" => {}
            other => panic!("a weighted request went to {other}"),
        }
    }
    let share = east_n as f64 / 2000.0;
    assert!((0.75..=0.85).contains(&share), "east share {share}");
    let r = client
        .delete(fed[0].url(&paths::traffic_policy("cart-split")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);

    // Phase 4: central's gateway dies → once its lease lapses no gateway sends there.
    central.gateway.kill().await;
    for c in [&east, &west] {
        eventually(
            Duration::from_secs(10),
            "central's lease expires everywhere",
            || async {
                let e = explain(&client, c).await;
                let central_live = e["levels"]
                    .as_array()?
                    .iter()
                    .flat_map(|l| l["clusters"].as_array().cloned().unwrap_or_default())
                    .find(|c| c["cluster"] == "central")
                    .map(|c| c["lease_live"] == true)?;
                (!central_live).then_some(())
            },
        )
        .await;
    }
    // With east's backends down, east's traffic now goes to west only.
    for b in east.backends.iter_mut() {
        b.kill().await;
    }
    eventually(
        Duration::from_secs(10),
        "east fails over to west",
        || async { (explain(&client, &east).await["local"]["available"] == 0).then_some(()) },
    )
    .await;
    for _ in 0..50 {
        let (s, server) = call(&client, &east.outbound()).await;
        assert_eq!((s, cluster_of(&server)), (200, "west"));
    }
    let _ = &mut central;
    // Raw TCP crosses to west through an HTTP/2 CONNECT stream.
    assert_eq!(cluster_of(&tcp_call(&tcp_east).await), "west");
    // gRPC across the east-west hop keeps its trailers too.
    eventually(
        Duration::from_secs(10),
        "grpc fails over to west",
        || async {
            let (s, server, grpc_status) = grpc_call(&east.outbound()).await;
            (s == 200 && cluster_of(&server) == "west" && grpc_status.as_deref() == Some("0"))
                .then_some(())
        },
    )
    .await;

    // Phase 5: injected actor panics → supervised restarts, serving continues.
    for actor in ["listener_outbound", "pool:shop/cart", "catalog_watcher"] {
        let r = client
            .post(format!("http://{}/debug/panic/{actor}", west.admin()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202, "{actor}");
    }
    for (actor, label) in [
        ("listener_outbound", "listener_outbound"),
        ("pool", "upstream_pool"),
        ("catalog", "catalog_watcher"),
    ] {
        let prefix = format!("warden_actor_restarts_total{{actor=\"{label}\"}}");
        eventually(Duration::from_secs(10), actor, || async {
            (metric(&client, &west, &prefix).await >= 1.0).then_some(())
        })
        .await;
    }
    for _ in 0..20 {
        let (s, server) = call(&client, &west.outbound()).await;
        assert_eq!((s, cluster_of(&server)), (200, "west"));
    }
    // And east, whose traffic crosses to west's east-west listener, is still served.
    let (s, _) = call(&client, &east.outbound()).await;
    assert_eq!(s, 200);

    // Phase 6: the whole federation store goes away. Gateways keep routing from their last
    // table: well past the lease TTL, east still reaches west.
    let mut fed = fed;
    for n in fed.iter_mut() {
        n.kill().await;
    }
    eventually(
        Duration::from_secs(10),
        "east notices the store is gone",
        || async { (explain(&client, &east).await["federation_connected"] == false).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(3_000)).await; // 2 × the 1.5 s lease TTL
    for _ in 0..20 {
        let (s, server) = call(&client, &east.outbound()).await;
        if (s, cluster_of(&server)) != (200, "west") {
            let log = std::fs::read_to_string(root.join("gateway-east.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            panic!(
                "{s} {server}: {:#}\n{}",
                explain(&client, &east).await["levels"],
                tail.join("\n")
            );
        }
    }
}
