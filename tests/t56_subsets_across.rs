//! Route subsets across clusters, real processes on loopback. Three clusters export `shop/web`:
//! `east` (the caller's) with v1 and v2, `near` (same zone) with v1 only, `far` (another
//! region) with v2 only. A route sends `x-canary: on` to v2 and the rest to v1. When east's v2
//! is killed under load, v2 traffic moves to far's v2 — not to near, though near is closer and
//! has healthy endpoints, because near published none in v2 — with 0 failed requests, and v1
//! traffic stays on east's v1. Then a 90/10 canary whose v2 lives only in far holds its split.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

/// `[[services]]` for `shop/web` with one subset per `(version, backend)`.
fn web_service(subsets: &[(&str, &Proc)]) -> String {
    let mut s =
        "[[services]]\nnamespace = \"shop\"\nname = \"web\"\nprobe = \"/healthz\"\n".to_string();
    for (version, backend) in subsets {
        s.push_str(&format!(
            "[[services.subsets]]\nlabels = {{ version = {version:?} }}\nendpoints = [{:?}]\n",
            backend.addr("addr")
        ));
    }
    s
}

/// GET `/` on `web.shop` through `out`: (status, serving backend or error code).
async fn web(client: &reqwest::Client, out: &str, canary: bool) -> (u16, String) {
    let mut r = client
        .get(format!("http://{out}/"))
        .header("host", "web.shop");
    if canary {
        r = r.header("x-canary", "on");
    }
    match r.send().await {
        Ok(resp) => (resp.status().as_u16(), served_by(&resp)),
        Err(e) => (0, e.to_string()),
    }
}

/// The healthy endpoints `cluster` published for `shop/web` in `version`, from the catalog.
async fn published(admin: &reqwest::Client, node: &NodeProc, cluster: &str, version: &str) -> u64 {
    let Some(list) = get_json(admin, &node.url(paths::SERVICES)).await else {
        return 0;
    };
    let items = list["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .filter(|s| s["service"] == "web")
        .flat_map(|s| s["clusters"].as_array().cloned().unwrap_or_default())
        .filter(|c| c["cluster"] == cluster)
        .flat_map(|c| c["subsets"].as_array().cloned().unwrap_or_default())
        .filter(|s| s["labels"]["version"] == version)
        .map(|s| s["healthy_endpoints"].as_u64().unwrap_or(0))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subset_fails_over_to_the_same_subset_in_another_cluster() {
    const N: usize = 2_000;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let node = one_node(root).await;
    let east_v1 = echo(root, "east-v1", "127.0.0.1:0").await;
    let mut east_v2 = echo(root, "east-v2", "127.0.0.1:0").await;
    let near_v1 = echo(root, "near-v1", "127.0.0.1:0").await;
    let far_v2 = echo(root, "far-v2", "127.0.0.1:0").await;
    let fed = std::slice::from_ref(&node.api);
    let east = east_of(
        root,
        &node,
        &web_service(&[("v1", &east_v1), ("v2", &east_v2)]),
    )
    .await;
    let _near = cluster_with(
        root,
        "near",
        "r1",
        "z1",
        fed,
        &web_service(&[("v1", &near_v1)]),
    )
    .await;
    let _far = cluster_with(
        root,
        "far",
        "r2",
        "z9",
        fed,
        &web_service(&[("v2", &far_v2)]),
    )
    .await;
    let admin = http();
    put_route(&admin, &node, "web", &canary_route()).await;
    // Each cluster publishes what it has per subset: near nothing in v2, far nothing in v1.
    eventually(Duration::from_secs(30), "subsets published", || async {
        let ok = published(&admin, &node, "near", "v1").await == 1
            && published(&admin, &node, "far", "v2").await == 1
            && published(&admin, &node, "east", "v2").await == 1;
        ok.then_some(())
    })
    .await;
    assert_eq!(published(&admin, &node, "near", "v2").await, 0);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let out = east.outbound();
    eventually(Duration::from_secs(30), "the route is applied", || async {
        let ok = web(&client, &out, true).await == (200, "east-v2".to_string())
            && web(&client, &out, false).await == (200, "east-v1".to_string());
        ok.then_some(())
    })
    .await;

    // Continuous load, canary and stable requests interleaved, while east's v2 is killed.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (client, out, stop) = (client.clone(), out.clone(), stop.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(90);
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) && i < 50_000 && Instant::now() < deadline {
                let canary = i.is_multiple_of(2);
                let (status, who) = web(&client, &out, canary).await;
                seen.push((Instant::now(), canary, status, who));
                i += 1;
            }
            seen
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed_at = Instant::now();
    east_v2.kill().await;
    // Load goes on until far's v2 has served a while.
    let far_served = eventually(Duration::from_secs(30), "v2 served by far", || async {
        (web(&client, &out, true).await == (200, "far-v2".to_string())).then_some(Instant::now())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let seen = load.await.unwrap();
    let failed: Vec<_> = seen.iter().filter(|s| s.2 != 200).collect();
    let canary_after: Vec<&str> = seen
        .iter()
        .filter(|s| s.1 && s.0 > far_served)
        .map(|s| s.3.as_str())
        .collect();
    let stable: Vec<&str> = seen.iter().filter(|s| !s.1).map(|s| s.3.as_str()).collect();
    println!(
        "subset failover: {} requests, {} failed; v2 on far {:.0} ms after the kill; {} canary requests after it",
        seen.len(),
        failed.len(),
        (far_served - killed_at).as_secs_f64() * 1000.0,
        canary_after.len()
    );
    assert!(
        failed.is_empty(),
        "failed requests: {:?}",
        &failed[..failed.len().min(5)]
    );
    assert!(
        seen.iter()
            .filter(|s| s.1)
            .all(|s| s.3 == "east-v2" || s.3 == "far-v2"),
        "canary traffic only ever reached v2"
    );
    assert!(canary_after.len() >= 20, "load went on after the failover");
    assert!(canary_after.iter().all(|w| *w == "far-v2"));
    assert!(
        stable.iter().all(|w| *w == "east-v1"),
        "v1 traffic stayed on east's v1"
    );

    // `/explain` says where the canary rule's v2 would go now: far has it, near does not.
    let explained = get_json(
        &client,
        &format!(
            "http://{}/explain?authority=web.shop&path=/&header=x-canary:on",
            east.admin()
        ),
    )
    .await
    .unwrap();
    assert_eq!(explained["route"]["rule"], "canary");
    let placement = &explained["route"]["backends"][0]["placement"];
    let in_v2: Vec<(String, u64)> = placement["levels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["clusters"].as_array().cloned().unwrap_or_default())
        .map(|c| {
            let name = c["cluster"].as_str().unwrap_or("").to_string();
            (name, c["healthy_endpoints"].as_u64().unwrap_or(99))
        })
        .collect();
    assert!(in_v2.contains(&("far".to_string(), 1)), "{placement}");
    assert!(in_v2.contains(&("near".to_string(), 0)), "{placement}");
    assert_eq!(placement["local"]["available"], 0, "{placement}");

    // A canary whose v2 lives only in another cluster: 90/10 holds across the hop.
    put_route(
        &admin,
        &node,
        "web",
        &json!({"service": "shop/web", "rules": [
            {"name": "split", "backends": [{"subset": {"version": "v1"}, "weight": 90},
                                           {"subset": {"version": "v2"}, "weight": 10}]}
        ]}),
    )
    .await;
    eventually(Duration::from_secs(30), "the split is applied", || async {
        // Without the canary rule, a canary header no longer forces v2.
        let mut hits = 0;
        for _ in 0..40 {
            if web(&client, &out, true).await.1 == "east-v1" {
                hits += 1;
            }
        }
        (hits > 20).then_some(())
    })
    .await;
    let mut far = 0usize;
    for _ in 0..N {
        let (status, who) = web(&client, &out, false).await;
        assert_eq!(status, 200, "{who}");
        match who.as_str() {
            "far-v2" => far += 1,
            "east-v1" => {}
            other => panic!("served by {other}"),
        }
    }
    let share = far as f64 / N as f64;
    println!(
        "canary across clusters: {far} of {N} to v2 in far ({:.1} %)",
        share * 100.0
    );
    assert!((0.07..=0.13).contains(&share), "v2 share {share}");
}
