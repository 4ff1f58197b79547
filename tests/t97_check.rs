//! `warden check` against a healthy mesh (exit 0, every item ok) and a broken one: a stopped
//! gateway (lease expired, gateway unreachable), a stopped node, then lost quorum — each named
//! with what to do, and a non-zero exit.

mod support;

use std::time::Duration;

use support::*;

/// Runs `warden check --api <node>`; (success, stdout).
async fn check(node: &NodeProc) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["check", "--timeout-ms", "1000", "--api"])
        .arg(format!("http://{}", node.api))
        .env("WARDEN_ADMIN_TOKEN", TOKEN)
        .output()
        .await
        .expect("run warden check");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

async fn lease_live(client: &reqwest::Client, node: &NodeProc, cluster: &str) -> bool {
    get_json(client, &node.url("/api/v1/leases"))
        .await
        .and_then(|v| {
            v["items"].as_array().map(|a| {
                a.iter()
                    .any(|l| l["cluster"] == cluster && l["expired_by_this_node_clock"] == false)
            })
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_on_a_healthy_mesh_and_names_what_broke() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let client = http();
    let mut nodes = three_nodes(root).await;
    let apis: Vec<String> = nodes.iter().map(|n| n.api.clone()).collect();
    let _east = cluster(root, "east", "r1", "z1", &apis).await;
    let mut west = cluster(root, "west", "r2", "z2", &apis).await;
    for c in ["east", "west"] {
        eventually(Duration::from_secs(20), "leases live", || async {
            lease_live(&client, &nodes[0], c).await.then_some(())
        })
        .await;
    }

    let (ok, out) = check(&nodes[1]).await;
    assert!(ok, "healthy mesh:\n{out}");
    assert!(out.contains("[  ok  ] federation: leader node"), "{out}");
    assert!(out.contains("3 of 3 voters answer"), "{out}");
    assert!(out.contains("cluster east: lease renewed"), "{out}");
    assert!(out.contains("cluster west: gateway"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");

    // A gateway stops: its lease expires and its address refuses connections.
    west.gateway.kill().await;
    eventually(Duration::from_secs(20), "west's lease expires", || async {
        (!lease_live(&client, &nodes[0], "west").await).then_some(())
    })
    .await;
    let (ok, out) = check(&nodes[0]).await;
    assert!(!ok, "a stopped gateway fails the check:\n{out}");
    assert!(
        out.contains("[ FAIL ] cluster west: lease expired"),
        "{out}"
    );
    assert!(
        out.contains("[ FAIL ] cluster west: cannot connect to gateway"),
        "{out}"
    );
    assert!(out.contains("-> check that cluster's gateway"), "{out}");
    assert!(
        out.contains("[  ok  ] cluster east: lease renewed"),
        "{out}"
    );

    // A node stops: named, with the remedy; quorum still holds.
    nodes[2].kill().await;
    let (ok, out) = check(&nodes[0]).await;
    assert!(!ok);
    assert!(out.contains("[ FAIL ] node 3"), "{out}");
    assert!(out.contains("does not answer"), "{out}");
    assert!(out.contains("2 of 3 voters answer"), "{out}");

    // Two nodes down: no quorum.
    nodes[1].kill().await;
    let (ok, out) = eventually(Duration::from_secs(20), "no quorum reported", || async {
        let (ok, out) = check(&nodes[0]).await;
        out.contains("no quorum").then_some((ok, out))
    })
    .await;
    assert!(!ok, "{out}");
    assert!(out.contains("1 of 3 voters answer, 2 needed"), "{out}");
}
