//! A mesh-wide rate limit, real processes on loopback: clusters east and west both call
//! shop/cart through their own outbound listeners, east's callers at 150 requests/s and west's
//! at 50/s, under one limit of 100/s (burst 20) with `scope: mesh`. Each gateway reports its
//! demand with its lease renewals and takes its share, so the mesh as a whole admits about
//! 100/s — where two local limits would admit 150/s (east 100, west all of its 50).

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;
use warden_federation::paths;

/// Sends GET cart.shop to `out` at `per_second` for `warm + measure`; the statuses of the
/// requests sent during `measure` (after `warm`).
async fn drive(out: String, per_second: u32, warm: Duration, measure: Duration) -> Vec<u16> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / per_second);
    let start = Instant::now();
    let mut calls = Vec::new();
    while start.elapsed() < warm + measure {
        tick.tick().await;
        let counted = start.elapsed() >= warm;
        let (client, out) = (client.clone(), out.clone());
        calls.push(tokio::spawn(async move {
            let r = client
                .get(format!("http://{out}/"))
                .header("host", "cart.shop")
                .send()
                .await;
            (counted, r.map(|r| r.status().as_u16()).unwrap_or(0))
        }));
    }
    let mut statuses = Vec::new();
    for c in calls {
        let (counted, status) = c.await.unwrap();
        if counted {
            statuses.push(status);
        }
    }
    statuses
}

/// The mesh-wide limit as `/explain` on a gateway shows it.
async fn limit_at(client: &reqwest::Client, admin: &str) -> Option<Value> {
    let v = get_json(
        client,
        &format!("http://{admin}/explain?authority=cart.shop"),
    )
    .await?;
    let l = v["resilience"]["rate_limits"].get(0)?.clone();
    (l["scope"] == "mesh").then_some(l)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mesh_wide_limit_is_shared_by_the_gateways_that_see_the_traffic() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (node, east, client) = east_serving(root, "").await;
    let west = cluster_with(
        root,
        "west",
        "r1",
        "z2",
        std::slice::from_ref(&node.api),
        "",
    )
    .await;
    let west_out = west.outbound();
    eventually(Duration::from_secs(30), "west serves cart", || async {
        (call(&client, &west_out).await.0 == 200).then_some(())
    })
    .await;
    put_ok(
        &http(),
        &node.url(&paths::resilience_policy("cart-mesh")),
        &json!({"service": "shop/cart", "rate_limits": [
            {"name": "all", "requests": 100, "burst": 20, "scope": "mesh"}]}),
    )
    .await;
    for gw in [&east, &west] {
        eventually(Duration::from_secs(30), "the limit is applied", || async {
            limit_at(&client, &gw.admin()).await
        })
        .await;
    }

    let (warm, measure) = (Duration::from_secs(4), Duration::from_secs(8));
    let (east_seen, west_seen) = tokio::join!(
        drive(east.outbound(), 150, warm, measure),
        drive(west_out.clone(), 50, warm, measure),
    );
    let ok = |v: &[u16]| v.iter().filter(|s| **s == 200).count();
    let limited = |v: &[u16]| v.iter().filter(|s| **s == 429).count();
    let (e_ok, w_ok) = (ok(&east_seen), ok(&west_seen));
    let secs = measure.as_secs_f64();
    let rate = (e_ok + w_ok) as f64 / secs;
    let (e_share, w_share) = (
        limit_at(&client, &east.admin()).await.unwrap()["share"].clone(),
        limit_at(&client, &west.admin()).await.unwrap()["share"].clone(),
    );
    println!(
        "mesh-wide 100/s over {secs} s: east admitted {e_ok} of {} ({} refused, share {e_share}), west {w_ok} of {} ({} refused, share {w_share}); together {rate:.1}/s ({:+.1} % of the limit)",
        east_seen.len(),
        limited(&east_seen),
        west_seen.len(),
        limited(&west_seen),
        (rate / 100.0 - 1.0) * 100.0
    );
    let others = east_seen
        .iter()
        .chain(&west_seen)
        .filter(|s| **s != 200 && **s != 429)
        .count();
    assert_eq!(others, 0, "only admitted or rate-limited answers");
    assert!(
        (85.0..=115.0).contains(&rate),
        "the mesh admitted {rate:.1}/s under a mesh-wide 100/s"
    );
    assert!(
        w_ok > 0 && e_ok > w_ok,
        "shares follow demand: east {e_ok}, west {w_ok}"
    );
}
