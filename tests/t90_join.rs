//! Joining with a token: single use, expiring, over TLS verified by the CA pin in the token.

mod support;

use std::process::Output;
use std::time::Duration;

use support::*;

fn join(api: &str, token: &str, name: &str, ca_bundle: &std::path::Path) -> Output {
    join_cli(api, token, name, &format!("{name}.test"), ca_bundle)
}

fn token(api: &str, ca: &std::path::Path, ttl: u64) -> String {
    join_token(api, ca, ttl)
}

/// A join token registers a cluster and its bundle once; reuse, expiry, a wrong secret and a
/// wrong CA pin are refused with clear errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_tokens() {
    use warden_federation::trust::ca::{init_ca, write_public};
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let day = Duration::from_secs(86_400);
    let TlsNode {
        node,
        client,
        ca_path,
        ..
    } = tls_node(root).await;
    // The joining cluster's own CA.
    let east_ca = init_ca("east.test", day).unwrap();
    write_public(&root.join("east-ca.pem"), &east_ca.cert_pem).unwrap();
    let east_bundle = root.join("east-ca.pem");

    let t = token(&node.api, &ca_path, 3600);
    assert_eq!(t.split('.').count(), 3, "{t}");
    let ok = join(&node.api, &t, "east", &east_bundle);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let c = get_json(&client, &node.url(&paths::cluster("east")))
        .await
        .unwrap();
    assert_eq!(c["trust_domain"], "east.test");
    let bundles = get_json(&client, &node.url(paths::BUNDLES)).await.unwrap();
    assert!(
        bundles["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["trust_domain"] == "east.test")
    );

    // Reused.
    let again = join(&node.api, &t, "west", &east_bundle);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already used"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    // Wrong secret.
    let parts: Vec<&str> = t.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], "00".repeat(32), parts[2]);
    let bad = join(&node.api, &forged, "west", &east_bundle);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("wrong join token secret"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    // Wrong CA pin: the CLI refuses the server before sending anything.
    let t2 = token(&node.api, &ca_path, 3600);
    let p: Vec<&str> = t2.split('.').collect();
    let wrong_pin = format!("{}.{}.{}", p[0], p[1], "ab".repeat(32));
    let pinned = join(&node.api, &wrong_pin, "west", &east_bundle);
    assert!(!pinned.status.success());
    assert!(
        get_json(&client, &node.url(&paths::cluster("west")))
            .await
            .is_none(),
        "nothing registered"
    );
    // The untouched token still works once.
    assert!(join(&node.api, &t2, "west", &east_bundle).status.success());
    // Expired.
    let t3 = token(&node.api, &ca_path, 1);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let late = join(&node.api, &t3, "central", &east_bundle);
    assert!(
        String::from_utf8_lossy(&late.stderr).contains("expired"),
        "{}",
        String::from_utf8_lossy(&late.stderr)
    );
}

/// Without TLS on the API there are no join tokens (nothing to pin).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_tokens_need_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let node = one_node(tmp.path()).await;
    let client = http();
    let r = client
        .post(node.url(paths::JOIN_TOKENS))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}
