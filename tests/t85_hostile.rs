//! The attack suite: what a hostile peer or a careless operator tries, and that each attempt is
//! refused without changing anything. Real processes on loopback; each attack is bounded in
//! count and time.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;
use warden_federation::trust::ca::{init_ca, issue_leaf};

fn cluster_body(name: &str, trust_domain: &str, ca_pem: &str) -> Value {
    json!({"name": name, "region": "r", "zone": "z", "gateway": "127.0.0.1:15008",
        "trust_domain": trust_domain, "ca_bundle_pem": ca_pem})
}

async fn last_log_index(client: &reqwest::Client, node: &NodeProc) -> u64 {
    mesh_status(client, node).await.unwrap()["last_log_index"]
        .as_u64()
        .unwrap()
}

async fn bundle(client: &reqwest::Client, node: &NodeProc, td: &str) -> Value {
    let all = get_json(client, &node.url(paths::BUNDLES)).await.unwrap();
    all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["trust_domain"] == td)
        .cloned()
        .unwrap_or(Value::Null)
}

/// A second cluster registering an existing cluster's trust domain is refused with 409, the
/// domain's bundle stays the owner's, and nothing reaches the Raft log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_cluster_cannot_claim_a_trust_domain() {
    let tmp = tempfile::tempdir().unwrap();
    let node = one_node(tmp.path()).await;
    let client = http();
    let day = Duration::from_secs(86_400);
    let (east_ca, evil_ca) = (
        init_ca("east.test", day).unwrap(),
        init_ca("east.test", day).unwrap(),
    );
    let r = client
        .post(node.url(paths::CLUSTERS))
        .json(&cluster_body("east", "east.test", &east_ca.cert_pem))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let before = last_log_index(&client, &node).await;
    let r = client
        .post(node.url(paths::CLUSTERS))
        .json(&cluster_body("evil", "east.test", &evil_ca.cert_pem))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("owned by cluster \"east\""),
        "{body}"
    );
    let b = bundle(&client, &node, "east.test").await;
    assert_eq!(b["version"], 1, "{b}");
    assert_eq!(b["ca_bundle_pem"], east_ca.cert_pem.as_str());
    assert_eq!(
        last_log_index(&client, &node).await,
        before,
        "nothing written"
    );
    assert!(
        get_json(&client, &node.url(&paths::cluster("evil")))
            .await
            .is_none()
    );
}

/// With a join token nobody can claim a domain that is held (by a cluster, a bundle, or the
/// federation itself); a refused join leaves the token usable; bogus joins write nothing to the
/// Raft log; and one address is limited to a few join attempts a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_cannot_claim_held_domains_and_bad_ones_write_nothing() {
    use warden_federation::trust::ca::write_public;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let day = Duration::from_secs(86_400);
    let TlsNode {
        node,
        client,
        ca_path,
        ..
    } = tls_node(root).await;
    let east_ca = init_ca("east.test", day).unwrap();
    let r = client
        .post(node.url(paths::CLUSTERS))
        .json(&cluster_body("east", "east.test", &east_ca.cert_pem))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let evil_ca = init_ca("east.test", day).unwrap();
    let evil_pem = root.join("evil-ca.pem");
    write_public(&evil_pem, &evil_ca.cert_pem).unwrap();

    let t = join_token(&node.api, &ca_path, 3600);
    let claim = join_cli(&node.api, &t, "evil", "east.test", &evil_pem);
    assert!(!claim.status.success());
    let err = String::from_utf8_lossy(&claim.stderr);
    assert!(
        err.contains("409") && err.contains("owned by cluster"),
        "{err}"
    );
    let fed = join_cli(&node.api, &t, "fed", "federation.test", &evil_pem);
    let err = String::from_utf8_lossy(&fed.stderr);
    assert!(err.contains("federation's own"), "{err}");
    assert_eq!(
        bundle(&client, &node, "east.test").await["ca_bundle_pem"],
        east_ca.cert_pem.as_str()
    );
    // The admin cannot hand the federation's own domain to a cluster either.
    let r = client
        .post(node.url(paths::CLUSTERS))
        .json(&cluster_body("fed", "federation.test", &evil_ca.cert_pem))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);

    // Bogus joins (a forged secret) are refused before anything is proposed.
    let before = last_log_index(&client, &node).await;
    let id = t.split('.').next().unwrap();
    let forged = format!("{id}.{}.x", "00".repeat(32));
    let mut statuses = Vec::new();
    for i in 0..12 {
        let r = client
            .post(node.url(paths::JOIN))
            .json(
                &json!({"token": forged, "name": format!("bogus-{i}"), "region": "r",
                "zone": "z", "gateway": "127.0.0.1:1", "trust_domain": format!("bogus-{i}.test"),
                "ca_bundle_pem": evil_ca.cert_pem}),
            )
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert!(
        statuses.iter().all(|s| *s == 403 || *s == 429),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&429),
        "one address is limited: {statuses:?}"
    );
    assert_eq!(
        last_log_index(&client, &node).await,
        before,
        "nothing written"
    );
}

/// A gateway takes its own domain's CA from its own files only: an admin (or anyone who can
/// write the store) publishing another CA for that domain does not make the gateway accept
/// identities that CA signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_never_trusts_its_own_domain_from_the_store() {
    use warden_federation::trust::verify::TrustStore;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let node = one_node(root).await;
    let client = http();
    let tls = pki(root, "east.test");
    let east = east_of(root, &node, &tls).await;
    let real_ca = std::fs::read_to_string(root.join("pki-east.test/ca.pem")).unwrap();
    let real_cert = std::fs::read_to_string(root.join("pki-east.test/gateway.pem")).unwrap();
    let real_key = std::fs::read_to_string(root.join("pki-east.test/gateway.key")).unwrap();
    eventually(Duration::from_secs(20), "east registered", || async {
        get_json(&client, &node.url(&paths::cluster("east"))).await
    })
    .await;
    // The attacker's CA for east.test, and an east.test identity it signed.
    let day = Duration::from_secs(86_400);
    let evil_ca = init_ca("east.test", day).unwrap();
    let id = "spiffe://east.test/ns/warden/sa/gateway".parse().unwrap();
    let evil_leaf = issue_leaf(&evil_ca, &id, &[], day).unwrap();
    let r = client
        .put(node.url(&paths::bundle("east.test")))
        .json(&json!({ "ca_bundle_pem": evil_ca.cert_pem }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let put_revision: u64 = r.headers()["x-warden-revision"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let admin = east.admin();
    eventually(
        Duration::from_secs(10),
        "east saw the new bundle",
        || async {
            let dump = get_json(&client, &format!("http://{admin}/config_dump")).await?;
            (dump["federation"]["revision"].as_u64()? >= put_revision).then_some(())
        },
    )
    .await;
    // Verify east's server certificate against the real CA; present each client identity.
    let store = TrustStore::new();
    store.set("east.test", &real_ca, 0).unwrap();
    let ew = east.gateway.addr("eastwest");
    assert!(
        tls_attempt(&ew, &real_cert, &real_key, store.clone(), "east.test").await,
        "an identity from east's own CA is accepted (the test can tell)"
    );
    assert!(
        !tls_attempt(
            &ew,
            &evil_leaf.cert_pem,
            &evil_leaf.key_pem,
            store,
            "east.test"
        )
        .await,
        "an identity signed by a CA from the store for east's own domain is refused"
    );
}

/// A node without `[tls]` refuses to listen on a non-loopback address unless told
/// `insecure_plaintext = true` (and then warns).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_node_refuses_a_non_loopback_address() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |extra: &str| {
        let cfg = tmp.path().join("n.toml");
        std::fs::write(
            &cfg,
            format!(
                "node_id = 1\ndata_dir = {:?}\napi_listen = \"127.0.0.1:0\"\nraft_listen = \"0.0.0.0:0\"\nbootstrap = true\n{extra}\n",
                tmp.path().join("data").display().to_string()
            ),
        )
        .unwrap();
        tokio::process::Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(["federation", "--config"])
            .arg(&cfg)
            .env("WARDEN_ADMIN_TOKEN", TOKEN)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let refused = tokio::time::timeout(Duration::from_secs(20), run("").wait_with_output())
        .await
        .expect("the node exits at once")
        .unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("raft_listen 0.0.0.0:0 is not a loopback address")
            && err.contains("insecure_plaintext"),
        "{err}"
    );
    // Said explicitly, it starts (and prints where it listens).
    let mut started = run("insecure_plaintext = true");
    let stdout = started.stdout.take().unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the node starts")
        .unwrap()
        .unwrap_or_default();
    assert!(line.contains("listening"), "{line}");
    // `warden check` names the plaintext port.
    let info: Value = serde_json::from_str(&line).unwrap();
    let api = info["api"].as_str().unwrap().to_string();
    let out = eventually(Duration::from_secs(20), "check sees the leader", || async {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(["check", "--timeout-ms", "1000", "--api"])
            .arg(format!("http://{api}"))
            .env("WARDEN_ADMIN_TOKEN", TOKEN)
            .output()
            .await
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.contains("leader").then_some(text)
    })
    .await;
    assert!(
        out.contains("[ warn ] node 1: its Raft port")
            && out.contains("is plaintext on a non-loopback address"),
        "{out}"
    );
    let _ = started.start_kill();
    let _ = started.wait().await;
}

/// A client for a node's Raft port presenting `id` (a certificate from the federation CA).
fn raft_client(ca: &warden_federation::trust::ca::Pems, id: &str) -> reqwest::Client {
    use warden_federation::trust::tls::{Identity, client_config};
    use warden_federation::trust::verify::TrustStore;
    let day = Duration::from_secs(86_400);
    let leaf = issue_leaf(ca, &id.parse().unwrap(), &[], day).unwrap();
    let (identity, _) = Identity::from_pem(&leaf.cert_pem, &leaf.key_pem).unwrap();
    let store = TrustStore::new();
    store.set("federation.test", &ca.cert_pem, 0).unwrap();
    let cfg = client_config(identity, store, "federation.test", &[b"h2"]).unwrap();
    reqwest::Client::builder()
        .use_preconfigured_tls((*cfg).clone())
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// With mTLS only members may call Raft RPCs: an admin identity of the federation's own
/// domain, or a node id that is not a member, gets 403 on `/raft/forward` (which would run
/// any command without the admin token) and on `/raft/vote`; the member itself gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_rpcs_are_for_members_only() {
    use warden_federation::command::Command;
    use warden_federation::model::Cluster;
    use warden_federation::rpc::ForwardRequest;
    use warden_raft_store::codec;
    let tmp = tempfile::tempdir().unwrap();
    let TlsNode {
        node, ca, client, ..
    } = tls_node(tmp.path()).await;
    let cluster = Cluster {
        name: "evil".into(),
        region: "r".into(),
        zone: "z".into(),
        network: "default".into(),
        gateway: "127.0.0.1:1".into(),
        trust_domain: "evil.test".into(),
        labels: Default::default(),
        registered_at: 1,
    };
    let write = codec::encode(&ForwardRequest::Write(Box::new(Command::RegisterCluster {
        cluster,
        ca_bundle_pem: None,
    })))
    .unwrap();
    let vote = codec::encode(&openraft::raft::VoteRequest::new(
        openraft::Vote::new(99, 7),
        None,
    ))
    .unwrap();
    let call = |c: reqwest::Client, path: &'static str, body: Vec<u8>| {
        let url = format!("https://{}{path}", node.raft);
        async move {
            c.post(url)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for id in [
        "spiffe://federation.test/admin/ops",
        "spiffe://federation.test/node/9",
    ] {
        let c = raft_client(&ca, id);
        assert_eq!(
            call(c.clone(), "/raft/forward", write.clone()).await,
            403,
            "{id}"
        );
        assert_eq!(call(c, "/raft/vote", vote.clone()).await, 403, "{id}");
    }
    assert!(
        get_json(&client, &node.url(&paths::cluster("evil")))
            .await
            .is_none(),
        "no command ran"
    );
    let member = raft_client(&ca, "spiffe://federation.test/node/1");
    assert_eq!(
        call(
            member,
            "/raft/forward",
            codec::encode(&ForwardRequest::ReadIndex).unwrap()
        )
        .await,
        200,
        "a member gets through (the test can tell)"
    );
}

/// An InstallSnapshot chunk at a huge offset is refused before the node allocates anything for
/// it; the node stays up and small.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_snapshot_offset_is_refused() {
    use openraft::{SnapshotMeta, StoredMembership, Vote};
    use warden_federation::types::TypeConfig;
    use warden_raft_store::codec;
    let tmp = tempfile::tempdir().unwrap();
    let node = one_node(tmp.path()).await;
    let pid = node.pid().unwrap();
    let req: openraft::raft::InstallSnapshotRequest<TypeConfig> =
        openraft::raft::InstallSnapshotRequest {
            vote: Vote::new_committed(99, 2),
            meta: SnapshotMeta {
                last_log_id: None,
                last_membership: StoredMembership::default(),
                snapshot_id: "attack".into(),
            },
            offset: 1 << 40,
            data: vec![0; 16],
            done: false,
        };
    let r = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap()
        .post(format!("http://{}/raft/snapshot", node.raft))
        .body(codec::encode(&req).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert!(
        node.alive() && rss_kib(pid) < 200 * 1024,
        "rss {} KiB",
        rss_kib(pid)
    );
    assert!(
        mesh_status(&http(), &node).await.is_some(),
        "still answering"
    );
}

/// A follower that limits Raft RPC bodies (here 64 KiB) and fell behind by more than that
/// catches up: its 413 makes the leader send fewer entries at a time instead of the same batch
/// forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_follower_catches_up_through_oversized_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let client = http();
    let mut nodes = three_nodes_extra(
        root,
        &["127.0.0.1:0"; 3],
        &[vec![], vec![], vec![]],
        "raft.max_rpc_bytes = 65536",
    )
    .await;
    nodes[2].kill().await;
    // About 20 KiB per entry: a bundle of 30 copies of one CA certificate.
    let ca = init_ca("bulk.test", Duration::from_secs(86_400)).unwrap();
    let pem = ca.cert_pem.repeat(30);
    for i in 0..24 {
        let r = client
            .put(nodes[0].url(&paths::bundle(&format!("bulk-{i}.test"))))
            .json(&json!({ "ca_bundle_pem": pem }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    let leader_applied = mesh_status(&client, &nodes[0]).await.unwrap()["last_applied"]
        .as_u64()
        .unwrap();
    nodes[2].restart().await;
    eventually(Duration::from_secs(30), "node 3 caught up", || async {
        let s = mesh_status(&client, &nodes[2]).await?;
        (s["last_applied"].as_u64()? >= leader_applied).then_some(())
    })
    .await;
}

/// A bearer-authenticated client for a node's API.
fn bearer(token: &str) -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(h)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Each cluster gets its own credential at registration; it writes that cluster's lease,
/// exports, gateway address, bundle and Kubernetes routes (`k8s-east-…`) — and nothing of
/// another cluster's, nor anything an admin does. A gateway holding only its cluster's
/// credential runs normally. A reissued credential replaces the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_credential_touches_only_its_own_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let node = one_node(root).await;
    let admin = http();
    let day = Duration::from_secs(86_400);
    let mut creds = std::collections::BTreeMap::new();
    for (name, td) in [("east", "east.test"), ("west", "west.test")] {
        let ca = init_ca(td, day).unwrap();
        let r = admin
            .post(node.url(paths::CLUSTERS))
            .json(&cluster_body(name, td, &ca.cert_pem))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["name"], name);
        let cred = v["credential"].as_str().unwrap().to_string();
        assert!(cred.starts_with(&format!("{name}.")), "{cred}");
        creds.insert(name, cred);
    }
    // The store keeps only hashes: no credential appears in any read.
    let dump = admin
        .get(node.url(paths::CLUSTERS))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!dump.contains(creds["east"].split_once('.').unwrap().1));

    let east = bearer(&creds["east"]);
    let url = |p: &str| node.url(p);
    let lease = json!({"ttl_ms": 5000});
    let export = json!({"ports": [{"name": "http", "port": 80, "protocol": "http"}], "healthy_endpoints": 1, "weight": 100});
    let route = json!({"service": "shop/cart", "rules": [{"backends": [{"weight": 1}]}]});
    // A fault that would abort every call to shop/cart, were east allowed to write it.
    let resilience = json!({"id": "cart-guard", "service": "shop/cart",
        "fault": {"abort": {"percent": 100, "http_status": 503}}});
    let new_ca = init_ca("east.test", day).unwrap();
    let own: Vec<(reqwest::Method, String, Value)> = vec![
        (reqwest::Method::PUT, paths::lease("east"), lease.clone()),
        (
            reqwest::Method::PUT,
            paths::export("east", "shop", "cart"),
            export.clone(),
        ),
        (
            reqwest::Method::PUT,
            paths::cluster_gateway("east"),
            json!({"gateway": "127.0.0.1:15009"}),
        ),
        (
            reqwest::Method::PUT,
            paths::bundle("east.test"),
            json!({"ca_bundle_pem": new_ca.cert_pem}),
        ),
        (
            reqwest::Method::DELETE,
            paths::export("east", "shop", "cart"),
            Value::Null,
        ),
        // The routes its gateway makes from east's Kubernetes objects.
        (
            reqwest::Method::PUT,
            paths::route("k8s-east-0123456789ab"),
            route.clone(),
        ),
        (
            reqwest::Method::DELETE,
            paths::route("k8s-east-0123456789ab"),
            Value::Null,
        ),
        // And the policies its gateway makes from east's WardenTrafficPolicy and
        // WardenSecurityPolicy objects.
        (
            reqwest::Method::PUT,
            paths::traffic_policy("k8s-east-0123456789ab"),
            json!({"service": "shop/cart", "weights": {"east": 100}}),
        ),
        (
            reqwest::Method::DELETE,
            paths::traffic_policy("k8s-east-0123456789ab"),
            Value::Null,
        ),
        (
            reqwest::Method::PUT,
            paths::security_policy("k8s-east-0123456789ab"),
            json!({"service": "shop/cart", "action": "allow", "sources": {"clusters": ["east"]}}),
        ),
        (
            reqwest::Method::DELETE,
            paths::security_policy("k8s-east-0123456789ab"),
            Value::Null,
        ),
    ];
    for (m, p, body) in own {
        let mut req = east.request(m.clone(), url(&p));
        if !body.is_null() {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        assert!(r.status().is_success(), "{m} {p}: {}", r.status());
    }
    // An operator's policy east must not delete.
    let r = admin
        .put(url(&paths::resilience_policy("cart-guard")))
        .json(&json!({"service": "shop/cart", "rate_limits": [{"requests": 1000}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let before = last_log_index(&admin, &node).await;
    let theirs: Vec<(reqwest::Method, String, Value)> = vec![
        (reqwest::Method::PUT, paths::lease("west"), lease.clone()),
        (reqwest::Method::DELETE, paths::lease("west"), Value::Null),
        (
            reqwest::Method::PUT,
            paths::export("west", "shop", "cart"),
            export.clone(),
        ),
        (
            reqwest::Method::PUT,
            paths::cluster_gateway("west"),
            json!({"gateway": "10.9.9.9:15008"}),
        ),
        (
            reqwest::Method::PUT,
            paths::bundle("west.test"),
            json!({"ca_bundle_pem": new_ca.cert_pem}),
        ),
        (
            reqwest::Method::PUT,
            paths::bundle("unclaimed.test"),
            json!({"ca_bundle_pem": new_ca.cert_pem}),
        ),
        (
            reqwest::Method::POST,
            paths::cluster_credential("west"),
            Value::Null,
        ),
        (
            reqwest::Method::POST,
            paths::CLUSTERS.to_string(),
            cluster_body("evil", "evil.test", &new_ca.cert_pem),
        ),
        (reqwest::Method::DELETE, paths::cluster("west"), Value::Null),
        (
            reqwest::Method::POST,
            paths::SECURITY_POLICIES.to_string(),
            json!({"service": "shop/cart", "action": "allow", "sources": {"clusters": ["east"]}}),
        ),
        (
            reqwest::Method::POST,
            paths::JOIN_TOKENS.to_string(),
            json!({"ttl_s": 60}),
        ),
        // Routes: not west's Kubernetes ones, not a cluster whose name starts with east's,
        // not one made through the API.
        (
            reqwest::Method::PUT,
            paths::route("k8s-west-0123456789ab"),
            route.clone(),
        ),
        (
            reqwest::Method::PUT,
            paths::route("k8s-east-2-0123456789ab"),
            route.clone(),
        ),
        (
            reqwest::Method::PUT,
            paths::route("cart-canary"),
            route.clone(),
        ),
        (
            reqwest::Method::POST,
            paths::ROUTES.to_string(),
            route.clone(),
        ),
        // Policies: not west's Kubernetes ones, not one made through the API.
        (
            reqwest::Method::PUT,
            paths::traffic_policy("k8s-west-0123456789ab"),
            json!({"service": "shop/cart", "weights": {"east": 100}}),
        ),
        (
            reqwest::Method::PUT,
            paths::security_policy("cart-callers"),
            json!({"service": "shop/cart", "action": "deny", "sources": {"clusters": ["west"]}}),
        ),
        (
            reqwest::Method::POST,
            paths::MEMBERS.to_string(),
            json!({"id": 9, "raft_addr": "127.0.0.1:1", "api_addr": "127.0.0.1:2"}),
        ),
        // Resilience policies are the operators': not even a Kubernetes-shaped id.
        (
            reqwest::Method::POST,
            paths::RESILIENCE_POLICIES.to_string(),
            resilience.clone(),
        ),
        (
            reqwest::Method::PUT,
            paths::resilience_policy("k8s-east-0123456789ab"),
            resilience.clone(),
        ),
        (
            reqwest::Method::DELETE,
            paths::resilience_policy("cart-guard"),
            Value::Null,
        ),
    ];
    for (m, p, body) in theirs {
        let mut req = east.request(m.clone(), url(&p));
        if !body.is_null() {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 403, "{m} {p}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "forbidden", "{e}");
    }
    assert_eq!(
        last_log_index(&admin, &node).await,
        before,
        "nothing refused was written"
    );
    // A forged credential for east, and east's secret under west's name: 401.
    for forged in [
        format!("east.{}", "0".repeat(64)),
        format!("west.{}", creds["east"].split_once('.').unwrap().1),
    ] {
        let r = bearer(&forged)
            .put(url(&paths::lease("east")))
            .json(&lease)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "{forged}");
    }
    // East reissues its own credential: the new one works, the old one no longer.
    let r = east
        .post(url(&paths::cluster_credential("east")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let fresh = r.json::<Value>().await.unwrap()["credential"]
        .as_str()
        .unwrap()
        .to_string();
    let old = east
        .put(url(&paths::lease("east")))
        .json(&lease)
        .send()
        .await
        .unwrap();
    assert_eq!(old.status().as_u16(), 401);
    let new = bearer(&fresh)
        .put(url(&paths::lease("east")))
        .json(&lease)
        .send()
        .await
        .unwrap();
    assert_eq!(new.status().as_u16(), 200);

    // A gateway with only west's credential (no admin token) registers nothing, and publishes
    // west's exports and lease.
    let west_cred = creds["west"].clone();
    let gw = cluster_env(
        root,
        "west",
        "r2",
        "z2",
        std::slice::from_ref(&node.api),
        "register = false",
        "",
        &[
            ("WARDEN_ADMIN_TOKEN", ""),
            ("WARDEN_CLUSTER_TOKEN", &west_cred),
        ],
    )
    .await;
    eventually(
        Duration::from_secs(20),
        "west's exports published",
        || async {
            let v = get_json(&admin, &node.url(paths::SERVICES)).await?;
            v["items"]
                .as_array()?
                .iter()
                .any(|i| {
                    i["service"] == "cart"
                        && i["clusters"]
                            .as_array()
                            .is_some_and(|c| c.iter().any(|c| c["cluster"] == "west"))
                })
                .then_some(())
        },
    )
    .await;
    let leases = eventually(
        Duration::from_secs(20),
        "west renewed with its credential",
        || async {
            let v = get_json(&admin, &node.url(paths::LEASES)).await?;
            let w = v["items"]
                .as_array()?
                .iter()
                .find(|l| l["cluster"] == "west")?
                .clone();
            (w["renewed_with"] == "cluster").then_some(w)
        },
    )
    .await;
    assert_eq!(leases["has_credential"], true);
    let log = std::fs::read_to_string(root.join("gateway-west.log")).unwrap();
    assert!(
        !log.contains("admin token"),
        "no admin-token warning: {log}"
    );
    drop(gw);
}

/// The federation API's listener bounds, each with its status: a head over
/// `limits.max_header_bytes` gets 431, a head not finished in time 408, a JSON body not
/// finished in time 408 `body_timeout` (nothing written); 300 clients trickling one header
/// byte a second are all closed at the header timeout while a normal client is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_bounds_heads_bodies_and_trickling_clients() {
    const TRICKLERS: usize = 300;
    let tmp = tempfile::tempdir().unwrap();
    let node = one_node_with(
        tmp.path(),
        "limits.max_header_bytes = 8192\nlimits.header_read_timeout_ms = 1500\nlimits.body_read_timeout_ms = 1000",
    )
    .await;
    let client = http();
    let api = node.api.clone();
    let within = Duration::from_secs(20);
    let before = last_log_index(&client, &node).await;

    let big = format!(
        "GET /api/v1/clusters HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(12 * 1024)
    );
    let got = raw_http(&api, big.as_bytes(), within).await;
    assert!(got.starts_with("HTTP/1.1 431 "), "oversized head: {got:?}");
    let got = raw_http(&api, b"GET /api/v1/clusters HTTP/1.1\r\nHo", within).await;
    assert!(got.starts_with("HTTP/1.1 408 "), "late head: {got:?}");
    let post = format!(
        "POST /api/v1/clusters HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"name\": \"slow"
    );
    let got = raw_http(&api, post.as_bytes(), within).await;
    assert!(got.starts_with("HTTP/1.1 408 "), "late body: {got:?}");
    assert!(got.contains("body_timeout"), "{got:?}");

    // Trickling clients: one byte a second each, until the node closes them.
    use tokio::io::AsyncWriteExt;
    let mut conns = Vec::with_capacity(TRICKLERS);
    for _ in 0..TRICKLERS {
        let mut s = tokio::net::TcpStream::connect(&api).await.unwrap();
        s.write_all(b"G").await.unwrap();
        conns.push(s);
    }
    let head = b"ET /api/v1/clusters HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaa";
    let mut closed = vec![false; TRICKLERS];
    let mut served_meanwhile = 0;
    for round in 0..15 {
        trickle(&mut conns, &mut closed, head, round);
        if round < 2 && cluster_names(&client, &node).await.is_some() {
            served_meanwhile += 1;
        }
        if closed.iter().all(|c| *c) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let gone = closed.iter().filter(|c| **c).count();
    println!("api: {gone} of {TRICKLERS} trickling connections closed by the node");
    assert_eq!(served_meanwhile, 2, "a normal client is served meanwhile");
    assert_eq!(gone, TRICKLERS, "every trickling connection is closed");
    assert_eq!(
        last_log_index(&client, &node).await,
        before,
        "nothing was written"
    );
}

/// A lease renewal's load report and an export's audience are checked field by field: bad
/// values are a 400 naming the field, and nothing reaches the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_load_reports_and_export_audiences_are_refused_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let node = one_node(root).await;
    let admin = http();
    let ca = init_ca("east.test", Duration::from_secs(86_400)).unwrap();
    let r = admin
        .post(node.url(paths::CLUSTERS))
        .json(&cluster_body("east", "east.test", &ca.cert_pem))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let before = last_log_index(&admin, &node).await;
    let many: serde_json::Map<String, Value> =
        (0..300).map(|i| (format!("p/l{i}"), json!(1.0))).collect();
    let port = json!([{"name": "http", "port": 80, "protocol": "http"}]);
    let names: Vec<String> = (0..65).map(|i| format!("c{i}")).collect();
    let cases = [
        (
            paths::lease("east"),
            json!({"ttl_ms": 5000, "load": {"demand": {"cart/all": -1.0}}}),
            Some("load.demand[\"cart/all\"]"),
        ),
        (
            paths::lease("east"),
            json!({"ttl_ms": 5000, "load": {"demand": {"cart/all": 2e9}}}),
            Some("load.demand[\"cart/all\"]"),
        ),
        (
            paths::lease("east"),
            json!({"ttl_ms": 5000, "load": {"demand": many}}),
            Some("load.demand"),
        ),
        (
            paths::lease("east"),
            json!({"ttl_ms": 5000, "load": {"demand": {}, "share": 1}}),
            None,
        ),
        (
            paths::export("east", "shop", "cart"),
            json!({"ports": port, "export_to": ["west", "Not A Label"]}),
            Some("export_to[1]"),
        ),
        (
            paths::export("east", "shop", "cart"),
            json!({"ports": port, "export_to": names}),
            Some("export_to"),
        ),
    ];
    for (path, body, field) in cases {
        let r = admin.put(node.url(&path)).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        let e: Value = r.json().await.unwrap_or_default();
        assert_eq!(status, 400, "{path} {body}: {e}");
        if let Some(f) = field {
            assert_eq!(e["error"]["field"], f, "{path}: {e}");
        }
    }
    assert_eq!(
        last_log_index(&admin, &node).await,
        before,
        "a refused body writes nothing"
    );
}
