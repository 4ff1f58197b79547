//! Joining with a token: single use, expiring, over TLS verified by the CA pin in the token.

mod support;

use std::process::Output;
use std::time::Duration;

use support::*;

fn join(api: &str, token: &str, name: &str, ca_bundle: &std::path::Path) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args([
            "cluster",
            "join",
            "--api",
            &format!("https://{api}"),
            "--token",
            token,
            "--name",
            name,
        ])
        .args([
            "--region",
            "r",
            "--zone",
            "z",
            "--gateway",
            "127.0.0.1:15008",
            "--trust-domain",
            &format!("{name}.test"),
        ])
        .arg("--ca-bundle")
        .arg(ca_bundle)
        .env_remove("WARDEN_ADMIN_TOKEN")
        .output()
        .expect("run warden cluster join")
}

fn token(api: &str, ca: &std::path::Path, ttl: u64) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args([
            "cluster",
            "join-token",
            "--api",
            &format!("https://{api}"),
            "--ttl-seconds",
            &ttl.to_string(),
            "--api-ca-bundle",
        ])
        .arg(ca)
        .env("WARDEN_ADMIN_TOKEN", TOKEN)
        .output()
        .expect("run warden cluster join-token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A join token registers a cluster and its bundle once; reuse, expiry, a wrong secret and a
/// wrong CA pin are refused with clear errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_tokens() {
    use warden_federation::trust::ca::{init_ca, issue_leaf, write_public, write_secret};
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let day = Duration::from_secs(86_400);
    let fed_ca = init_ca("federation.test", day).unwrap();
    let leaf = issue_leaf(
        &fed_ca,
        &"spiffe://federation.test/node/1".parse().unwrap(),
        &[],
        day,
    )
    .unwrap();
    write_public(&root.join("fed-ca.pem"), &fed_ca.cert_pem).unwrap();
    write_public(&root.join("n1.pem"), &leaf.cert_pem).unwrap();
    write_secret(&root.join("n1.key"), &leaf.key_pem).unwrap();
    let tls = format!(
        "bootstrap = true\n[tls]\ncert = {:?}\nkey = {:?}\nca_bundle = {:?}\n",
        root.join("n1.pem").display().to_string(),
        root.join("n1.key").display().to_string(),
        root.join("fed-ca.pem").display().to_string()
    );
    let node = NodeProc::start(1, root, "127.0.0.1:0", "127.0.0.1:0", &tls, &[]).await;
    let client = https_client(&fed_ca.cert_pem);
    eventually(Duration::from_secs(20), "leader", || async {
        mesh_status(&client, &node)
            .await
            .filter(|s| s["state"] == "Leader")
    })
    .await;
    let ca_path = root.join("fed-ca.pem");
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
