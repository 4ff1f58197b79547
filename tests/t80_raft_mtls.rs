//! Raft RPC between federation nodes over mTLS, and the REST API over TLS: the group works, the
//! Raft port refuses clients without a certificate of the federation's trust domain, and API
//! clients verify the API against the federation's CA.

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

/// Three members with certificates of one federation CA replicate as usual; a plaintext client,
/// a client without a certificate and one from another CA are refused by the Raft port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_over_mtls() {
    use warden_federation::trust::ca::{init_ca, issue_leaf, write_public, write_secret};
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let day = Duration::from_secs(86_400);
    let ca = init_ca("federation.test", day).unwrap();
    write_public(&root.join("fed-ca.pem"), &ca.cert_pem).unwrap();
    let tls_for = |id: u64| {
        let leaf = issue_leaf(
            &ca,
            &format!("spiffe://federation.test/node/{id}")
                .parse()
                .unwrap(),
            &[],
            day,
        )
        .unwrap();
        let (cert, key) = (
            root.join(format!("node-{id}.pem")),
            root.join(format!("node-{id}.key")),
        );
        write_public(&cert, &leaf.cert_pem).unwrap();
        write_secret(&key, &leaf.key_pem).unwrap();
        format!(
            "[tls]\ncert = {:?}\nkey = {:?}\nca_bundle = {:?}\n",
            cert.display().to_string(),
            key.display().to_string(),
            root.join("fed-ca.pem").display().to_string()
        )
    };
    let client = https_client(&ca.cert_pem);
    let n1 = NodeProc::start(
        1,
        root,
        "127.0.0.1:0",
        "127.0.0.1:0",
        &format!(
            "bootstrap = true\nadmin_spiffe_ids = [\"spiffe://federation.test/admin/ops\"]\n{}",
            tls_for(1)
        ),
        &[],
    )
    .await;
    eventually(Duration::from_secs(20), "node 1 leads", || async {
        mesh_status(&client, &n1)
            .await
            .filter(|s| s["state"] == "Leader")
    })
    .await;
    let mut nodes = vec![n1];
    for id in 2..=3u64 {
        let n = NodeProc::start(id, root, "127.0.0.1:0", "127.0.0.1:0", &tls_for(id), &[]).await;
        let r = client
            .post(nodes[0].url(paths::MEMBERS))
            .json(&json!({ "id": id, "raft_addr": n.raft, "api_addr": n.api }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "add member {id} over mTLS");
        nodes.push(n);
    }
    assert_eq!(register(&client, &nodes[2], "over-mtls").await, Some(201));
    converged(&client, &nodes, Duration::from_secs(20)).await;
    for n in &nodes {
        let (_, names) = cluster_names(&client, n).await.unwrap();
        assert!(names.contains(&"over-mtls".to_string()), "node {}", n.id);
    }

    // The Raft port: plaintext h2c gets nowhere; a member certificate gets in; others do not.
    let raft = nodes[0].raft.clone();
    let plain = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    assert!(
        plain
            .post(format!("http://{raft}/raft/vote"))
            .body(vec![0u8; 8])
            .send()
            .await
            .is_err()
    );
    let store = warden_federation::trust::verify::TrustStore::new();
    store.set("federation.test", &ca.cert_pem, 1).unwrap();
    let member = issue_leaf(
        &ca,
        &"spiffe://federation.test/node/9".parse().unwrap(),
        &[],
        day,
    )
    .unwrap();
    assert!(
        tls_attempt(
            &raft,
            &member.cert_pem,
            &member.key_pem,
            store.clone(),
            "federation.test"
        )
        .await
    );
    let rogue_ca = init_ca("federation.test", day).unwrap();
    let rogue = issue_leaf(
        &rogue_ca,
        &"spiffe://federation.test/node/1".parse().unwrap(),
        &[],
        day,
    )
    .unwrap();
    assert!(
        !tls_attempt(
            &raft,
            &rogue.cert_pem,
            &rogue.key_pem,
            store.clone(),
            "federation.test"
        )
        .await,
        "a look-alike CA got in"
    );
    // The group still commits.
    assert_eq!(
        register(&client, &nodes[1], "after-probes").await,
        Some(201)
    );

    // The API is HTTPS: plaintext gets nowhere; the CLI verifies it against the federation CA
    // and refuses a server its CA bundle does not vouch for.
    assert!(
        http()
            .get(format!("http://{}{}", nodes[0].api, paths::MESH_STATUS))
            .send()
            .await
            .is_err()
    );
    let cli = |ca: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
            .args([
                "status",
                "--api",
                &format!("https://{}", nodes[0].api),
                "--api-ca-bundle",
            ])
            .arg(ca)
            .output()
            .expect("run the CLI")
    };
    let ok = cli(&root.join("fed-ca.pem"));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("\"leader\""));
    write_public(&root.join("other-ca.pem"), &rogue_ca.cert_pem).unwrap();
    let refused = cli(&root.join("other-ca.pem"));
    assert!(
        !refused.status.success(),
        "a server outside the CA bundle was trusted"
    );

    // An admin identity writes with its client certificate instead of the bearer token; any
    // other identity without the token is refused.
    let with_cert = |spiffe: &str| {
        let leaf = issue_leaf(&ca, &spiffe.parse().unwrap(), &[], day).unwrap();
        let (id, _) =
            warden_federation::trust::tls::Identity::from_pem(&leaf.cert_pem, &leaf.key_pem)
                .unwrap();
        let tls = warden_federation::trust::tls::client_config(
            id,
            store.clone(),
            "federation.test",
            &[b"h2", b"http/1.1"],
        )
        .unwrap();
        reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .build()
            .unwrap()
    };
    let post = |c: reqwest::Client, name: &'static str| {
        let url = nodes[0].url(paths::CLUSTERS);
        async move {
            c.post(url)
                .json(&cluster_body(name))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        post(
            with_cert("spiffe://federation.test/admin/ops"),
            "by-admin-cert"
        )
        .await,
        201
    );
    assert_eq!(
        post(
            with_cert("spiffe://federation.test/node/9"),
            "by-other-cert"
        )
        .await,
        401
    );

    // Rotating node 1's certificate files is picked up without a restart.
    let renewed = issue_leaf(
        &ca,
        &"spiffe://federation.test/node/1".parse().unwrap(),
        &[],
        day,
    )
    .unwrap();
    write_secret(&root.join("node-1.key"), &renewed.key_pem).unwrap();
    write_public(&root.join("node-1.pem"), &renewed.cert_pem).unwrap();
    let log = root.join("node-1").join("node.log");
    eventually(
        Duration::from_secs(10),
        "node 1 reloads its certificate",
        || async {
            std::fs::read_to_string(&log)
                .ok()?
                .contains("node certificate reloaded")
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        register(&client, &nodes[0], "after-reload").await,
        Some(201)
    );

    // The refused handshakes on the Raft port were counted.
    let text = client
        .get(nodes[0].url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let refused: f64 = text
        .lines()
        .filter(|l| l.starts_with("warden_tls_handshake_errors_total{listener=\"raft\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(refused >= 2.0, "{text}");
    assert!(text.contains("warden_raft_term"));
}
