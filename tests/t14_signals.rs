//! Golden signals per edge on a gateway's admin listener: `/signals?window=1m|5m` answers
//! requests, errors, rate and latency percentiles per (service, source cluster, destination
//! cluster), from the counters the data path keeps anyway.

mod support;

use serde_json::Value;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_count_each_edge_over_a_window() {
    let tmp = tempfile::tempdir().unwrap();
    let (_node, east, client) = east_serving(tmp.path(), "").await;
    let out = east.outbound();
    for _ in 0..30 {
        assert_eq!(call(&client, &out).await.0, 200);
    }
    let url = format!("http://{}/signals?window=1m", east.admin());
    let v: Value = get_json(&client, &url).await.unwrap();
    assert_eq!(v["window_s"], 60);
    let edges = v["edges"].as_array().unwrap();
    let cart = edges
        .iter()
        .find(|e| e["service"] == "shop/cart" && e["dst_cluster"] == "east")
        .unwrap_or_else(|| panic!("no shop/cart edge in {v}"));
    assert_eq!(cart["src_cluster"], "east");
    // At least the 30 calls (the setup's own calls may fall inside the window too).
    let requests = cart["requests"].as_u64().unwrap();
    assert!(requests >= 30, "{cart}");
    assert_eq!(cart["errors"], 0);
    assert_eq!(cart["error_rate"], 0.0);
    let (p50, p99) = (
        cart["p50_ms"].as_f64().unwrap(),
        cart["p99_ms"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p50 <= p99, "{cart}");

    let five = get_json(
        &client,
        &format!("http://{}/signals?window=5m", east.admin()),
    )
    .await
    .unwrap();
    assert_eq!(five["window_s"], 300);
    let r = client
        .get(format!("http://{}/signals?window=2h", east.admin()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["field"], "window");
}
