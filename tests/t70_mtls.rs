//! The east-west hop with mTLS on: each cluster has its own CA (made with `warden trust`),
//! bundles are federated through the store, failover crosses over mTLS (HTTP, gRPC, TCP), and
//! the east-west listener refuses plaintext, impostors and unknown CAs — counting each.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use support::*;

async fn metric(client: &reqwest::Client, admin: &str, prefix: &str) -> f64 {
    let text = client
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Failover over mTLS, and the listener's refusals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn east_west_over_mtls() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let fed = one_node(root).await;
    let client = http();
    let apis = vec![fed.api.clone()];
    let (tls_east, tls_west) = (pki(root, "east.test"), pki(root, "west.test"));
    let mut east = cluster_with(root, "east", "r1", "z1", &apis, &tls_east).await;
    let west = cluster_with(root, "west", "r2", "z2", &apis, &tls_west).await;

    // Both bundles were federated through the store.
    eventually(
        Duration::from_secs(20),
        "both bundles in the store",
        || async {
            let v = get_json(&client, &fed.url(paths::BUNDLES)).await?;
            (v["items"].as_array()?.len() == 2).then_some(())
        },
    )
    .await;
    eventually(Duration::from_secs(20), "east sees west", || async {
        let e: Value = client
            .get(format!(
                "http://{}/explain?authority=cart.shop",
                east.admin()
            ))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (e["levels"].as_array()?.len() >= 2).then_some(())
    })
    .await;

    // Local first; then east's backends die and every request crosses to west over mTLS.
    let (s, server) = call(&client, &east.outbound()).await;
    assert_eq!((s, server.starts_with("east")), (200, true));
    for b in east.backends.iter_mut() {
        b.kill().await;
    }
    for _ in 0..30 {
        let (s, server) = call(&client, &east.outbound()).await;
        assert_eq!((s, server.starts_with("west")), (200, true), "{s} {server}");
    }
    // West's backend learns the verified caller from west's gateway only: what a client put in
    // `x-warden-*` headers is gone, and the source-cluster label is the verified one.
    let seen: Value = client
        .get(format!("http://{}/who?headers=1", east.outbound()))
        .header("host", "cart.shop")
        .header(
            "x-warden-caller",
            "spiffe=spiffe://evil.test/x; cluster=evil",
        )
        .header("x-warden-source-cluster", "evil")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let h = &seen["headers"];
    assert_eq!(
        h["x-warden-caller"], "spiffe=spiffe://east.test/ns/warden/sa/gateway; cluster=east",
        "{seen}"
    );
    assert!(h.get("x-warden-source-cluster").is_none(), "{seen}");
    assert!(h.get("x-warden-service").is_none(), "{seen}");
    let text = metrics_text(&client, &west.admin()).await;
    let verified = metric_sum(
        &text,
        "warden_http_requests_total",
        &["src_cluster=\"east\"", "service=\"shop/cart\""],
    );
    assert!(verified > 0.0, "{text}");
    let (s, server, grpc_status) = grpc_call(&east.outbound()).await;
    assert_eq!(
        (s, server.starts_with("west"), grpc_status.as_deref()),
        (200, true, Some("0"))
    );
    let tcp_east = east.gateway.info["tcp"][0].as_str().unwrap().to_string();
    assert!(tcp_call(&tcp_east).await.starts_with("west"));

    // The east-west listener refuses what is not a trusted, well-named peer speaking h2.
    let ew = west.gateway.addr("eastwest");
    let store = warden_federation::trust::verify::TrustStore::new();
    let read = |p: std::path::PathBuf| std::fs::read_to_string(p).unwrap();
    let (east_ca, west_ca) = (
        read(root.join("pki-east.test/ca.pem")),
        read(root.join("pki-west.test/ca.pem")),
    );
    store.set("east.test", &east_ca, 1).unwrap();
    store.set("west.test", &west_ca, 1).unwrap();
    let east_leaf = (
        read(root.join("pki-east.test/gateway.pem")),
        read(root.join("pki-east.test/gateway.key")),
    );
    assert!(
        tls_attempt(&ew, &east_leaf.0, &east_leaf.1, store.clone(), "west.test").await,
        "the real east gateway identity gets in"
    );
    // Impersonation: an east.test identity minted by west's CA.
    let west_ca_pems = warden_federation::trust::ca::Pems {
        cert_pem: west_ca.clone(),
        key_pem: read(root.join("pki-west.test/ca.key")),
    };
    let forged = warden_federation::trust::ca::issue_leaf(
        &west_ca_pems,
        &"spiffe://east.test/ns/warden/sa/gateway".parse().unwrap(),
        &[],
        Duration::from_secs(3600),
    )
    .unwrap();
    assert!(
        !tls_attempt(
            &ew,
            &forged.cert_pem,
            &forged.key_pem,
            store.clone(),
            "west.test"
        )
        .await,
        "an impostor got in"
    );
    // Unknown CA.
    let rogue =
        warden_federation::trust::ca::init_ca("rogue.test", Duration::from_secs(3600)).unwrap();
    let rogue_leaf = warden_federation::trust::ca::issue_leaf(
        &rogue,
        &"spiffe://rogue.test/gw".parse().unwrap(),
        &[],
        Duration::from_secs(3600),
    )
    .unwrap();
    assert!(
        !tls_attempt(
            &ew,
            &rogue_leaf.cert_pem,
            &rogue_leaf.key_pem,
            store.clone(),
            "west.test"
        )
        .await
    );
    // Plaintext h2c and garbage bytes.
    let plain = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    assert!(
        plain
            .get(format!("http://{ew}/"))
            .header("x-warden-service", "shop/cart")
            .send()
            .await
            .is_err()
    );
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(&ew).await.unwrap();
        s.write_all(&[0x42u8; 512]).await.unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    }
    let admin = west.admin();
    eventually(Duration::from_secs(10), "refusals counted", || async {
        let untrusted = metric(
            &client,
            &admin,
            "warden_tls_handshake_errors_total{listener=\"eastwest\",reason=\"untrusted_issuer\"}",
        )
        .await;
        let all = metric(&client, &admin, "warden_tls_handshake_errors_total{").await;
        (untrusted >= 2.0 && all >= 4.0).then_some(())
    })
    .await;
    // And west still serves its real peer.
    let (s, server) = call(&client, &east.outbound()).await;
    assert_eq!((s, server.starts_with("west")), (200, true));

    // Staged rotation of west's CA under continuous east → west load: 0 failed requests.
    let log: Arc<std::sync::Mutex<Vec<(u16, String)>>> = Default::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (client, out, log, stop) = (client.clone(), east.outbound(), log.clone(), stop.clone());
        tokio::spawn(async move {
            for _ in 0..50_000 {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let r = call(&client, &out).await;
                log.lock().unwrap().push(r);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let wait_complete = |version: u64| {
        let (client, url) = (client.clone(), fed.url(paths::TRUST_STATUS));
        async move {
            eventually(
                Duration::from_secs(20),
                "every gateway loaded the bundle",
                || async {
                    let v = get_json(&client, &url).await?;
                    let west = v["items"]
                        .as_array()?
                        .iter()
                        .find(|b| b["trust_domain"] == "west.test")?
                        .clone();
                    (west["version"] == version && west["complete"] == true).then_some(())
                },
            )
            .await
        }
    };
    let bundle_version = |v: Value| v["version"].as_u64().unwrap();
    // 1. Publish old + new CA; wait until every gateway reports it loaded.
    let west2 = root.join("pki-west2");
    warden(&[
        "trust",
        "init",
        "--trust-domain",
        "west.test",
        "--dir",
        &west2.display().to_string(),
    ]);
    let west2_ca = read(west2.join("ca.pem"));
    let put = |pem: String| {
        let (client, url) = (client.clone(), fed.url(&paths::bundle("west.test")));
        async move {
            client
                .put(url)
                .json(&serde_json::json!({"ca_bundle_pem": pem}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let v = bundle_version(put(format!("{west_ca}{west2_ca}")).await);
    wait_complete(v).await;
    // 2. Re-issue west's certificate from the new CA; the gateway reloads it without a restart.
    let out = root.join("pki-west.test/gateway").display().to_string();
    warden(&[
        "trust",
        "issue",
        "--ca-dir",
        &west2.display().to_string(),
        "--spiffe-id",
        "spiffe://west.test/ns/warden/sa/gateway",
        "--out",
        &out,
    ]);
    let only_new = warden_federation::trust::verify::TrustStore::new();
    only_new.set("east.test", &east_ca, 1).unwrap();
    only_new.set("west.test", &west2_ca, 1).unwrap();
    eventually(
        Duration::from_secs(10),
        "west serves its new certificate",
        || async {
            tls_attempt(
                &ew,
                &east_leaf.0,
                &east_leaf.1,
                only_new.clone(),
                "west.test",
            )
            .await
            .then_some(())
        },
    )
    .await;
    // 3. Drop the old CA.
    let v = bundle_version(put(west2_ca.clone()).await);
    wait_complete(v).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    load.await.unwrap();
    let log = log.lock().unwrap().clone();
    let failed: Vec<_> = log.iter().filter(|(s, _)| *s != 200).collect();
    assert!(log.len() > 50, "load ran: {}", log.len());
    assert!(
        failed.is_empty(),
        "{} of {} failed during rotation: {:?}",
        failed.len(),
        log.len(),
        &failed[..failed.len().min(3)]
    );
    eprintln!("rotation under load: {} requests, 0 failed", log.len());
    // After the rotation, a fresh connection verifies west against the new CA only.
    assert!(
        tls_attempt(
            &ew,
            &east_leaf.0,
            &east_leaf.1,
            only_new.clone(),
            "west.test"
        )
        .await
    );

    // Authorization: west denies callers of trust domain east.test for shop/cart → 403, a
    // metric and an audit line; removing the policy lets them in again.
    let r = client
        .put(fed.url(&paths::security_policy("no-east")))
        .json(&serde_json::json!({"service": "shop/cart", "action": "deny", "sources": {"trust_domains": ["east.test"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let bad = client
        .put(fed.url(&paths::security_policy("empty")))
        .json(&serde_json::json!({"service": "shop/cart", "action": "deny", "sources": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        bad.status().as_u16(),
        400,
        "a policy matching no one is refused"
    );
    eventually(
        Duration::from_secs(10),
        "east is denied by west",
        || async {
            let r = client
                .get(format!("http://{}/x", east.outbound()))
                .header("host", "cart.shop")
                .send()
                .await
                .ok()?;
            (r.status().as_u16() == 403
                && r.headers().get("x-warden-error")?.to_str().ok()? == "forbidden")
                .then_some(())
        },
    )
    .await;
    let denied = metric(
        &client,
        &admin,
        "warden_authz_denied_total{policy=\"no-east\",service=\"shop/cart\"}",
    )
    .await;
    assert!(denied >= 1.0, "denials counted: {denied}");
    let west_log = std::fs::read_to_string(root.join("gateway-west.log")).unwrap();
    assert!(
        west_log.contains("request denied")
            && west_log.contains("spiffe://east.test/ns/warden/sa/gateway")
    );
    let r = client
        .delete(fed.url(&paths::security_policy("no-east")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    eventually(Duration::from_secs(10), "east allowed again", || async {
        (call(&client, &east.outbound()).await.0 == 200).then_some(())
    })
    .await;
}

/// A peer whose CA is rotated out of its domain's bundle loses its open connection: east keeps
/// a pooled HTTP/2 connection to west; once the store's east.test bundle holds only a new CA,
/// west closes that connection (GOAWAY) and east, still holding a leaf of the old CA, cannot
/// get a new one — rather than going on over the connection verified before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_rotated_out_is_disconnected() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let fed = one_node(root).await;
    let client = http();
    let apis = vec![fed.api.clone()];
    let (tls_east, tls_west) = (pki(root, "east.test"), pki(root, "west.test"));
    let mut east = cluster_with(root, "east", "r1", "z1", &apis, &tls_east).await;
    let west = cluster_with(root, "west", "r2", "z2", &apis, &tls_west).await;
    for b in east.backends.iter_mut() {
        b.kill().await;
    }
    eventually(Duration::from_secs(20), "east → west over mTLS", || async {
        let (s, server) = call(&client, &east.outbound()).await;
        (s == 200 && server.starts_with("west")).then_some(())
    })
    .await;
    // The pooled connection carries requests.
    for _ in 0..5 {
        assert_eq!(call(&client, &east.outbound()).await.0, 200);
    }
    let new_ca = root.join("pki-east-new");
    warden(&[
        "trust",
        "init",
        "--trust-domain",
        "east.test",
        "--dir",
        &new_ca.display().to_string(),
    ]);
    let r = client
        .put(fed.url(&paths::bundle("east.test")))
        .json(&serde_json::json!({
            "ca_bundle_pem": std::fs::read_to_string(new_ca.join("ca.pem")).unwrap()
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = eventually(
        Duration::from_secs(20),
        "west closed east's connection",
        || async {
            let text = metrics_text(&client, &west.admin()).await;
            let revoked = metric_sum(
                &text,
                "warden_tls_handshake_errors_total",
                &["listener=\"eastwest\"", "reason=\"revoked\""],
            );
            (revoked >= 1.0).then_some(text)
        },
    )
    .await;
    println!("{text}");
    // From now on east cannot reach west: its old-CA leaf is refused at the handshake.
    eventually(
        Duration::from_secs(10),
        "east's calls to west fail",
        || async { (call(&client, &east.outbound()).await.0 != 200).then_some(()) },
    )
    .await;
    for _ in 0..5 {
        assert_ne!(call(&client, &east.outbound()).await.0, 200);
    }
}
