//! Golden signals per edge on a gateway's admin listener: `/signals?window=1m|5m` answers
//! requests, errors, rate and latency percentiles per (service, source cluster, destination
//! cluster), from the counters the data path keeps anyway; gateways report them with their
//! lease renewals and any federation node answers for the whole mesh.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_count_each_edge_over_a_window() {
    let tmp = tempfile::tempdir().unwrap();
    let (_node, east, client) = east_serving(tmp.path(), "").await;
    let out = east.outbound();
    for _ in 0..30 {
        assert_eq!(call(&client, &out).await.0, 200);
    }
    // Bodies are counted both ways: 10 of known length (buffered for replay) and 5 streamed
    // in chunks (no length: counted as they pass), 1,000 bytes each.
    let post = |body: reqwest::Body| {
        client
            .post(format!("http://{out}/upload"))
            .header("host", "cart.shop")
            .body(body)
            .send()
    };
    for _ in 0..10 {
        assert_eq!(post(vec![b'x'; 1000].into()).await.unwrap().status(), 200);
    }
    for _ in 0..5 {
        let chunks = (0..4).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 250]));
        let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
        assert_eq!(post(body).await.unwrap().status(), 200);
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
    // At least the 45 calls (the setup's own calls may fall inside the window too).
    let requests = cart["requests"].as_u64().unwrap();
    assert!(requests >= 45, "{cart}");
    assert_eq!(
        cart["request_bytes"], 15_000,
        "only the POSTs had bodies: {cart}"
    );
    let text = metrics_text(&client, &east.admin()).await;
    let bytes = |direction: &str| {
        metric_sum(
            &text,
            "warden_http_bytes_total",
            &[
                "service=\"shop/cart\"",
                "dst_cluster=\"east\"",
                &format!("direction=\"{direction}\""),
            ],
        )
    };
    assert_eq!(bytes("request"), 15_000.0, "{text}");
    // Every answer had a body (the echo names its backend); the window holds part of them.
    let response = bytes("response");
    assert!(response >= requests as f64, "{text}");
    let in_window = cart["response_bytes"].as_u64().unwrap() as f64;
    assert!(in_window > 0.0 && in_window <= response, "{cart}");
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

/// Gateways report their windows with their lease renewals; any federation node answers for
/// the whole mesh by asking its peers: here the gateway renews through node 1 and node 2
/// answers with its edge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_answers_the_mesh_wide_signals() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = three_nodes(tmp.path()).await;
    let east = east_of(tmp.path(), &nodes[0], "").await;
    let client = http();
    let out = east.outbound();
    eventually(Duration::from_secs(30), "cart is served", || async {
        (call(&client, &out).await.0 == 200).then_some(())
    })
    .await;
    for _ in 0..30 {
        assert_eq!(call(&client, &out).await.0, 200);
    }
    // The gateway reports every 2 s (its sampler's period): wait for a report with the calls.
    let url = format!(
        "{}?window=1m&service=shop/cart",
        nodes[1].url(paths::OBSERVABILITY_METRICS)
    );
    let v = eventually(Duration::from_secs(40), "the edge reported", || async {
        let v = get_json(&client, &url).await?;
        let found = v["edges"].as_array()?.iter().any(|e| {
            e["reported_by"] == "east"
                && e["dst_cluster"] == "east"
                && e["requests"].as_u64().unwrap_or(0) >= 30
        });
        found.then_some(v)
    })
    .await;
    assert_eq!(
        (v["nodes_asked"].clone(), v["nodes_answered"].clone()),
        (json!(3), json!(3)),
        "{v}"
    );
    assert_eq!(v["window_s"], 60);
    let e = &v["edges"][0];
    assert_eq!(
        (e["service"].clone(), e["errors"].clone()),
        (json!("shop/cart"), json!(0))
    );
    assert!(e["p99_ms"].as_f64().is_some(), "{e}");
    // Only this node's own reports: the gateway renews through node 1, so node 2 has none.
    let local = get_json(&client, &format!("{url}&scope=local"))
        .await
        .unwrap();
    assert_eq!(local["edges"], json!([]), "{local}");
    let (s, body) = {
        let r = client.get(format!("{url}&window=2h")).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(
        (s, body["error"]["field"].clone()),
        (400, json!("window")),
        "{body}"
    );
}

/// A report beyond its bounds is refused naming the field, and the renewal with it writes
/// nothing; a cluster reports only under its own name (its credential renews its own lease).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_or_foreign_reports_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let node = one_node(tmp.path()).await;
    let client = http();
    for c in ["east", "west"] {
        assert_eq!(register(&client, &node, c).await, Some(201));
    }
    let east = new_credential(&client, &node, "east").await;
    let window = json!({"window_s": 60, "covered_s": 60.0, "edges": []});
    let body = json!({"ttl_ms": 5000, "signals": {"windows": [window, window, window]}});
    let (s, e) = renew_as(&node, "east", &east, &body).await;
    assert_eq!(
        (s, e["error"]["field"].clone()),
        (400, json!("signals.windows")),
        "{e}"
    );
    // East's credential cannot renew (and so report for) west.
    let body = json!({"ttl_ms": 5000, "signals": {"windows": [window]}});
    assert_eq!(renew_as(&node, "west", &east, &body).await.0, 403);
    let leases = get_json(&client, &node.url(paths::LEASES)).await.unwrap();
    assert_eq!(leases["items"], json!([]), "no lease was written: {leases}");
}

/// `[telemetry] signals = false`: no sampler, so no window has edges however much traffic
/// passes (and nothing is reported).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_off_means_no_edges() {
    let tmp = tempfile::tempdir().unwrap();
    let (_node, east, client) = east_serving(tmp.path(), "[telemetry]\nsignals = false\n").await;
    let out = east.outbound();
    for _ in 0..10 {
        assert_eq!(call(&client, &out).await.0, 200);
    }
    let v = get_json(&client, &format!("http://{}/signals", east.admin()))
        .await
        .unwrap();
    assert_eq!(
        (v["edges"].clone(), v["covered_s"].clone()),
        (json!([]), json!(0.0)),
        "{v}"
    );
}
