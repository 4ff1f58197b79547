//! Three real federation processes: replication through any node, and every bad input the
//! REST API must answer with a clear JSON error.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

async fn error_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (status, body["error"].clone())
}

/// A cluster registered through a follower is visible on all three nodes, and a
/// linearizable read on another follower sees it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_through_follower_is_visible_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = three_nodes(tmp.path()).await;
    let client = http();
    let leader_id = eventually(Duration::from_secs(20), "a leader", || {
        leader(&client, &nodes)
    })
    .await;
    let followers: Vec<&NodeProc> = nodes.iter().filter(|n| n.id != leader_id).collect();

    assert_eq!(register(&client, followers[0], "east").await, Some(201));
    // Read-your-writes on the node that took the write.
    let (_, names) = cluster_names(&client, followers[0]).await.unwrap();
    assert!(names.contains(&"east".to_string()));
    // A consistent read on the other follower waits for the leader's commit index.
    let v = get_json(
        &client,
        &followers[1].url(&format!("{}?consistent=true", paths::CLUSTERS)),
    )
    .await
    .unwrap();
    assert_eq!(v["items"][0]["name"], "east");
    converged(&client, &nodes, Duration::from_secs(20)).await;
    for n in &nodes {
        let c = get_json(&client, &n.url(&paths::cluster("east")))
            .await
            .unwrap();
        assert_eq!(c["trust_domain"], "east.test");
    }
    // Export and catalog through yet another node.
    let r = client
        .put(followers[1].url(&paths::export("east", "shop", "cart")))
        .bearer_auth(TOKEN)
        .json(&json!({"ports": [{"name": "http", "port": 8080, "protocol": "http"}], "healthy_endpoints": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let cat = get_json(
        &client,
        &nodes[0].url(&format!("{}?consistent=true", paths::SERVICES)),
    )
    .await
    .unwrap();
    assert_eq!(cat["items"][0]["service"], "cart");
    assert_eq!(cat["items"][0]["clusters"][0]["healthy_endpoints"], 2);
    let st = get_json(
        &client,
        &nodes[2].url(&format!(
            "{}?consistent=true",
            paths::cluster_status("east")
        )),
    )
    .await
    .unwrap();
    assert_eq!(st["exported_services"][0]["service"], "cart");
    assert_eq!(
        st["gateway_reachable"], false,
        "nothing listens on the registered gateway"
    );
}

/// Bad input gets 400 naming the field, 409, 404 or 401 — and changes nothing.
/// One counter from a node's `/metrics`.
async fn counter(client: &reqwest::Client, node: &NodeProc, name: &str) -> u64 {
    metric_sum(&metrics_text(client, &node.api).await, name, &[]) as u64
}

/// Writes sent at the same time share log entries (group commit), and each is still answered
/// with its own revision and found on every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_are_batched_and_each_is_acknowledged_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = three_nodes(tmp.path()).await;
    let client = http();
    let leader_id = eventually(Duration::from_secs(20), "a leader", || {
        leader(&client, &nodes)
    })
    .await;
    let leader = nodes.iter().find(|n| n.id == leader_id).unwrap();
    let follower = nodes.iter().find(|n| n.id != leader_id).unwrap();
    assert_eq!(register(&client, leader, "east").await, Some(201));
    let proposals = counter(&client, leader, "warden_raft_write_proposals_total").await;
    let writes = counter(&client, leader, "warden_raft_proposed_writes_total").await;
    // 96 at once: two thirds to the leader, a third forwarded by a follower.
    let puts = (0..96).map(|i| {
        let node = if i % 3 == 0 { follower } else { leader };
        let req = client
            .put(node.url(&paths::export("east", "shop", &format!("svc-{i}"))))
            .bearer_auth(TOKEN)
            .json(&json!({"ports": [{"name": "http", "port": 8080, "protocol": "http"}], "healthy_endpoints": 1}));
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200, "{:?}", r.text().await);
            r.headers()["x-warden-revision"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        }
    });
    let mut revisions = futures::future::join_all(puts).await;
    revisions.sort_unstable();
    revisions.dedup();
    assert_eq!(revisions.len(), 96, "each write has a revision of its own");
    let proposals = counter(&client, leader, "warden_raft_write_proposals_total").await - proposals;
    let writes = counter(&client, leader, "warden_raft_proposed_writes_total").await - writes;
    assert_eq!(writes, 96, "the leader proposed every write once");
    assert!(
        proposals < writes,
        "{writes} concurrent writes in {proposals} log entries: some shared one"
    );
    converged(&client, &nodes, Duration::from_secs(20)).await;
    for n in &nodes {
        let cat = get_json(&client, &n.url(paths::SERVICES)).await.unwrap();
        let names = cat["items"].as_array().unwrap().len();
        assert_eq!(names, 96, "node {} holds every acknowledged write", n.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let node = one_node(tmp.path()).await;
    let client = http();
    let post = |body: String| {
        client
            .post(node.url(paths::CLUSTERS))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let with = |k: &str, v: Value| {
        let mut b = cluster_body("west");
        b[k] = v;
        b.to_string()
    };
    let cases: Vec<(String, &str)> = vec![
        (with("name", json!("West_1")), "name"),
        (with("name", json!("-west")), "name"),
        (with("gateway", json!("not-an-address")), "gateway"),
        (with("gateway", json!("127.0.0.1:0")), "gateway"),
        (with("trust_domain", json!("Not A Domain")), "trust_domain"),
        (
            with(
                "ca_bundle_pem",
                json!("-----BEGIN CERTIFICATE-----\nZm9v\n-----END CERTIFICATE-----\n"),
            ),
            "ca_bundle_pem",
        ),
        (with("ca_bundle_pem", json!("hello")), "ca_bundle_pem"),
        (with("region", json!(5)), "region"),
        (with("surprise", json!(1)), "surprise"),
        (json!({"name": "west"}).to_string(), "region"),
    ];
    for (body, field) in cases {
        let (status, err) = error_of(post(body.clone()).await.unwrap()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(err["field"], field, "{body} -> {err}");
        assert!(err["message"].as_str().unwrap().len() > 5);
    }
    let (status, err) = error_of(post("{not json".into()).await.unwrap()).await;
    assert_eq!((status, err["code"].as_str()), (400, Some("invalid_body")));

    // Auth: missing and wrong tokens.
    let anonymous = http_anonymous();
    let r = anonymous
        .post(node.url(paths::CLUSTERS))
        .json(&cluster_body("west"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, 401);
    let r = anonymous
        .post(node.url(paths::CLUSTERS))
        .bearer_auth("wrong-token-wrong-token")
        .json(&cluster_body("west"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, 401);

    // Duplicate name.
    assert_eq!(register(&client, &node, "west").await, Some(201));
    let r = post(cluster_body("west").to_string()).await.unwrap();
    let (status, err) = error_of(r).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (409, Some("already_exists"))
    );

    // Unknown things (reads are open on loopback without a token).
    let r = anonymous
        .get(node.url(&paths::cluster("nope")))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, 404);
    let r = client
        .delete(node.url(&paths::cluster("nope")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, 404);
    let r = client
        .put(node.url(&paths::export("nope", "shop", "cart")))
        .bearer_auth(TOKEN)
        .json(&json!({"ports": [{"name": "http", "port": 80, "protocol": "http"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, 404);
    let r = client
        .get(node.url(&format!("{}/no/such/path", paths::PREFIX)))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, 404);
    // Bad export body and path.
    let r = client
        .put(node.url(&paths::export("west", "shop", "cart")))
        .bearer_auth(TOKEN)
        .json(&json!({"ports": [{"name": "http", "port": 80, "protocol": "smtp"}]}))
        .send()
        .await
        .unwrap();
    let (status, err) = error_of(r).await;
    assert_eq!(
        (status, err["field"].as_str()),
        (400, Some("ports[0].protocol"))
    );
    // Label sets that count more than the export, too many of them, or a bad label.
    let port = json!([{"name": "http", "port": 80, "protocol": "http"}]);
    let set = |v: &str, n: u32| json!({"labels": {"version": v}, "healthy_endpoints": n});
    let many: Vec<Value> = (0..33).map(|i| set(&format!("v{i}"), 0)).collect();
    for (subsets, field) in [
        (json!([set("v1", 2), set("v2", 1)]), "subsets"),
        (json!(many), "subsets"),
        (
            json!([{"labels": {"bad key!": "x"}, "healthy_endpoints": 0}]),
            "subsets[0].labels.bad key!",
        ),
        (json!([{"labels": {}, "healthy": 1}]), "subsets[0].healthy"),
    ] {
        let r = client
            .put(node.url(&paths::export("west", "shop", "cart")))
            .bearer_auth(TOKEN)
            .json(&json!({"ports": port, "healthy_endpoints": 2, "subsets": subsets}))
            .send()
            .await
            .unwrap();
        let (status, err) = error_of(r).await;
        assert_eq!((status, err["field"].as_str()), (400, Some(field)), "{err}");
    }
    let r = client
        .put(node.url(&paths::export("west", "Shop", "cart")))
        .bearer_auth(TOKEN)
        .json(&json!({"ports": [{"name": "http", "port": 80, "protocol": "http"}]}))
        .send()
        .await
        .unwrap();
    let (status, err) = error_of(r).await;
    assert_eq!((status, err["field"].as_str()), (400, Some("namespace")));
    let r = client
        .put(node.url(&paths::bundle("west.test")))
        .bearer_auth(TOKEN)
        .json(&json!({"ca_bundle_pem": "garbage"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, 400);
    let r = client
        .get(node.url(&format!("{}?from_revision=abc", paths::WATCH)))
        .send()
        .await
        .unwrap();
    let (status, err) = error_of(r).await;
    assert_eq!(
        (status, err["field"].as_str()),
        (400, Some("from_revision"))
    );

    // Garbage on the Raft RPC port is refused before it reaches Raft.
    let r = client
        .post(format!("http://{}/raft/append", node.raft))
        .body(vec![0xffu8; 64])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // Non-HTTP bytes on both ports: the connection is dropped, the node carries on.
    for addr in [&node.api, &node.raft] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr.as_str()).await.unwrap();
        s.write_all(b"\x16\x03\x01garbage\r\n\r\n").await.unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    }
    let ready = client.get(node.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);

    // None of it changed the state: exactly the one registration.
    let (rev, names) = cluster_names(&client, &node).await.unwrap();
    assert_eq!((rev, names), (1, vec!["west".to_string()]));
}

/// With two of three nodes gone, a write answers 503 `no_quorum` (bounded, no hang), and
/// once a peer is back the write path recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_quorum_answers_503_then_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = three_nodes(tmp.path()).await;
    let client = http();
    assert_eq!(register(&client, &nodes[0], "before").await, Some(201));
    converged(&client, &nodes, Duration::from_secs(20)).await;
    nodes[1].kill().await;
    nodes[2].kill().await;
    for _ in 0..2 {
        let r = client
            .post(nodes[0].url(paths::CLUSTERS))
            .bearer_auth(TOKEN)
            .json(&cluster_body("during"))
            .send()
            .await
            .expect("the node answers instead of hanging past the client timeout");
        let (status, err) = error_of(r).await;
        assert_eq!(status, 503);
        assert!(
            matches!(
                err["code"].as_str(),
                Some("no_quorum") | Some("unavailable")
            ),
            "{err}"
        );
        let r = client
            .get(nodes[0].url(&format!("{}?consistent=true", paths::CLUSTERS)))
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(r).await.0, 503);
    }
    // Local reads still work without quorum.
    let (_, names) = cluster_names(&client, &nodes[0]).await.unwrap();
    assert!(names.contains(&"before".to_string()));
    nodes[1].restart().await;
    eventually(Duration::from_secs(30), "writes succeed again", || async {
        match register(&client, &nodes[1], "after").await {
            Some(201) | Some(409) => Some(()),
            _ => None,
        }
    })
    .await;
}
