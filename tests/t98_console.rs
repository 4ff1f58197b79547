//! The web console in a real browser: headless Chromium loads `/ui` from a federation node of
//! a running 3-cluster mesh (east and central in us-east, west in us-west) while traffic flows
//! through east's gateway. The page shows the three clusters with live leases and the graph;
//! after east's cart backends are killed the edge east → central appears (the failover) and
//! the timeline records it. Screenshots are written under the test's target directory
//! (`console/`). The page logs no error, stays read-only until logged in, and a dry run from
//! it writes nothing.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use support::browser::Browser;
use support::*;

fn artifacts() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console")
}

const EDGE: &str =
    r#"document.querySelector('#graph g.edge[data-src="east"][data-dst="central"]')"#;
/// East's gateway's row in cart's "where each gateway sends it now" table.
const PLAN: &str =
    r#"document.querySelector('#services [data-service="shop/cart"] tr[data-placement="east"]')"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_the_mesh_and_a_failover_as_it_happens() {
    if support::browser::chromium().is_none() {
        eprintln!("skipped: no chromium");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let nodes = three_nodes(root).await;
    let api = |i: usize| vec![nodes[i].api.clone()];
    // East first, serving itself, before the others exist: no request of the setup can cross
    // to another cluster, so an east -> central edge can only come from the failover.
    let mut east = cluster(root, "east", "us-east", "us-east-1a", &api(0)).await;
    let client = http();
    let out = east.outbound();
    eventually(Duration::from_secs(30), "cart served in east", || async {
        call(&client, &out)
            .await
            .1
            .starts_with("east-")
            .then_some(())
    })
    .await;
    let _central = cluster(root, "central", "us-east", "us-east-1b", &api(1)).await;
    let _west = cluster(root, "west", "us-west", "us-west-1a", &api(2)).await;

    // Traffic through east's gateway until the test ends (bounded by the flag and a count).
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let traffic = {
        let (stop, ok, failed, out) = (stop.clone(), ok.clone(), failed.clone(), out.clone());
        tokio::spawn(async move {
            let client = http();
            for _ in 0..20_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match call(&client, &out).await.0 {
                    200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    // The Raft panel's lag: the leader's status gives each member's matched index.
    let st = get_json(&client, &nodes[0].url(paths::MESH_STATUS))
        .await
        .unwrap();
    let leader_api = st["leader_api"].as_str().expect("a leader").to_string();
    let lead = eventually(Duration::from_secs(10), "matched indexes", || async {
        let v = get_json(
            &client,
            &format!("http://{leader_api}{}", paths::MESH_STATUS),
        )
        .await?;
        v["members"]
            .as_array()?
            .iter()
            .all(|m| m["matched_index"].as_u64().is_some())
            .then_some(v)
    })
    .await;
    assert_eq!(lead["members"].as_array().unwrap().len(), 3, "{lead}");

    let mut page = Browser::start(1400, 1100).await.expect("chromium starts");
    eprintln!("chromium pid {:?}", page.pid());
    page.navigate(&nodes[1].url(paths::CONSOLE)).await;
    page.wait_for(
        Duration::from_secs(30),
        "three clusters with live leases",
        r#"document.querySelectorAll('#clusters .cluster[data-lease="live"]').length === 3"#,
    )
    .await;
    page.wait_for(
        Duration::from_secs(30),
        "the graph's three clusters and east's local traffic",
        "document.querySelectorAll('#graph g.node').length === 3 && \
         !!document.querySelector('#graph g.node[data-cluster=\"east\"] .node-local')",
    )
    .await;
    assert_eq!(
        page.eval("document.getElementById('status').textContent")
            .await,
        json!("live")
    );
    let names = page
        .eval("[...document.querySelectorAll('#clusters .cluster')].map(c => c.dataset.cluster).sort().join(',')")
        .await;
    assert_eq!(names, json!("central,east,west"));
    assert_eq!(
        page.eval(&format!("!!{EDGE}")).await,
        json!(false),
        "no east → central traffic while east serves itself"
    );
    assert_eq!(
        page.eval("document.getElementById('config-section').hidden")
            .await,
        json!(true),
        "read-only until logged in"
    );
    page.wait_for(
        Duration::from_secs(30),
        "east's plan for cart: all local",
        &format!("{PLAN}?.textContent.includes('local 100%')"),
    )
    .await;
    page.screenshot(&artifacts().join("1-steady.png")).await;

    // The failover: east's cart backends die; east's gateway sends cart to central (same
    // region, another zone) and the page shows the new edge.
    for b in &mut east.backends {
        b.kill().await;
    }
    let killed = Instant::now();
    let rps = page
        .wait_for(
            Duration::from_secs(30),
            "the edge east → central",
            &format!("{EDGE}?.dataset.rps"),
        )
        .await;
    eprintln!(
        "edge east -> central shown {:.1} s after the kill ({rps} req/s)",
        killed.elapsed().as_secs_f64()
    );
    let services = page.eval(&format!("{EDGE}.dataset.services")).await;
    assert!(
        services.as_str().unwrap().contains("shop/cart"),
        "{services}"
    );
    page.wait_for(
        Duration::from_secs(30),
        "the failover on the timeline",
        "[...document.querySelectorAll('#timeline li[data-kind=\"failover\"]')].some(l => l.textContent.includes('shop/cart in east'))",
    )
    .await;
    page.wait_for(
        Duration::from_secs(10),
        "where cart goes now, from east",
        "document.querySelector('#services [data-service=\"shop/cart\"] li[data-src=\"east\"]')?.textContent.includes('central')",
    )
    .await;
    page.wait_for(
        Duration::from_secs(30),
        "east's plan for cart: all to central, and why",
        &format!(
            "{PLAN}?.textContent.includes('(central) 100%') && {PLAN}.textContent.includes('local capacity is short')"
        ),
    )
    .await;
    page.screenshot(&artifacts().join("2-failover.png")).await;

    // Logged in, the page may preview a change; the preview is a dry run and writes nothing.
    page.eval(&format!(
        "document.getElementById('token').value = '{TOKEN}'; document.getElementById('login').requestSubmit()"
    ))
    .await;
    page.wait_for(
        Duration::from_secs(10),
        "the configuration editor after logging in",
        "!document.getElementById('config-section').hidden",
    )
    .await;
    page.eval(
        "document.getElementById('config-text').value = '{\"telemetry\": {\"access_log\": false}}'; \
         document.getElementById('config-preview').click()",
    )
    .await;
    let preview = page
        .wait_for(
            Duration::from_secs(10),
            "the dry run's answer",
            "document.getElementById('config-result').textContent",
        )
        .await;
    assert!(
        preview.as_str().unwrap().starts_with("replace"),
        "{preview}"
    );
    let mesh = get_json(&client, &nodes[0].url(paths::MESH_CONFIG))
        .await
        .unwrap();
    assert_eq!(
        mesh["config"],
        json!({}),
        "a preview writes nothing: {mesh}"
    );
    page.screenshot(&artifacts().join("3-logged-in.png")).await;

    stop.store(true, Ordering::Relaxed);
    traffic.await.unwrap();
    assert!(ok.load(Ordering::Relaxed) > 0);
    eprintln!(
        "traffic: {} ok, {} failed; screenshots in {}",
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        artifacts().display()
    );
    assert_eq!(page.errors(), &[] as &[String], "the page logged errors");
}
