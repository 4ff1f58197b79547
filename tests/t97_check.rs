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
    get_json(client, &node.url(paths::LEASES))
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
    // These gateways self-register with the admin token: said, with what to do.
    assert!(
        out.contains("[ warn ] cluster east: its gateway writes with the admin token"),
        "{out}"
    );
    assert!(
        out.contains("warden cluster credential --name east"),
        "{out}"
    );

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

/// With mTLS, each gateway must present a certificate its registered bundle verifies: a bundle
/// replaced by another CA (a rotation gone wrong) fails the check, naming the cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_verifies_each_gateway_against_its_registered_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let client = http();
    let node = one_node(root).await;
    let apis = vec![node.api.clone()];
    let (tls_east, tls_west) = (pki(root, "east.test"), pki(root, "west.test"));
    let _east = cluster_with(root, "east", "r1", "z1", &apis, &tls_east).await;
    let _west = cluster_with(root, "west", "r2", "z2", &apis, &tls_west).await;
    for c in ["east", "west"] {
        eventually(Duration::from_secs(20), "leases live", || async {
            lease_live(&client, &node, c).await.then_some(())
        })
        .await;
    }
    let (ok, out) = eventually(Duration::from_secs(20), "a passing check", || async {
        let (ok, out) = check(&node).await;
        ok.then_some((ok, out))
    })
    .await;
    assert!(ok);
    assert!(
        out.contains("cluster west: gateway")
            && out.contains(
                "presents a spiffe://west.test certificate its registered bundle verifies"
            ),
        "{out}"
    );

    // The store's bundle for west.test now holds only another CA.
    let other = root.join("other-ca");
    warden(&[
        "trust",
        "init",
        "--trust-domain",
        "west.test",
        "--dir",
        &other.display().to_string(),
    ]);
    let pem = std::fs::read_to_string(other.join("ca.pem")).unwrap();
    let r = client
        .put(node.url(&paths::bundle("west.test")))
        .json(&serde_json::json!({ "ca_bundle_pem": pem }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let (ok, out) = check(&node).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("[ FAIL ] cluster west: gateway")
            && out.contains(
                "does not present a certificate the registered west.test bundle verifies"
            ),
        "{out}"
    );
    assert!(out.contains("-> other gateways will refuse it"), "{out}");
    eprintln!("{out}");
    assert!(
        out.contains("presents a spiffe://east.test certificate"),
        "{out}"
    );
}

/// A registration that points at another address than the gateway advertises is named by the
/// gateway's log and `/readyz` and by `warden check` with both addresses; a gateway that manages
/// its registration (`cluster.register`, the default) and names its address
/// (`cluster.advertise`) corrects it, and the check passes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_pointing_elsewhere_is_reported_and_corrected() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let client = http();
    let node = one_node(root).await;
    let wrong = "127.0.0.1:9";
    let r = client
        .post(node.url(paths::CLUSTERS))
        .json(
            &serde_json::json!({"name": "east", "region": "r1", "zone": "z1",
            "gateway": wrong, "trust_domain": "east.test"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let apis = [node.api.clone()];
    let mut east = cluster_opts(root, "east", "r1", "z1", &apis, "register = false", "").await;
    let advertised = east.gateway.addr("eastwest");
    eventually(Duration::from_secs(20), "east's lease", || async {
        lease_live(&client, &node, "east").await.then_some(())
    })
    .await;
    let ready = reqwest::get(format!("http://{}/readyz", east.admin()))
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let text = ready.text().await.unwrap();
    assert!(
        text.contains(&format!(
            "at {wrong}, but this gateway advertises {advertised}"
        )),
        "{text}"
    );
    let (ok, out) = check(&node).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "[ FAIL ] cluster east: registered with gateway {wrong}, but its gateway advertises {advertised}"
        )),
        "{out}"
    );
    assert!(out.contains("-> correct the registration"), "{out}");
    eventually(
        Duration::from_secs(10),
        "the gateway says so in its log",
        || async {
            let log = std::fs::read_to_string(root.join("gateway-east.log")).ok()?;
            log.contains("which is not the address this gateway advertises")
                .then_some(())
        },
    )
    .await;

    // The same gateway, managing its registration and naming its address, corrects it.
    let args: Vec<String> = vec![
        "gateway".into(),
        "--config".into(),
        east.config.display().to_string(),
    ];
    let cfg = std::fs::read_to_string(&east.config).unwrap();
    let eastwest = format!("eastwest = {advertised:?}");
    let advertise = format!("advertise = {advertised:?}");
    std::fs::write(
        &east.config,
        cfg.replace("register = false", &advertise)
            .replace("eastwest = \"127.0.0.1:0\"", &eastwest),
    )
    .unwrap();
    east.gateway.restart_with(Some(args)).await;
    eventually(
        Duration::from_secs(20),
        "the registration corrected",
        || async {
            let c = get_json(&client, &node.url(&paths::cluster("east"))).await?;
            (c["gateway"] == advertised.as_str()).then_some(())
        },
    )
    .await;
    let (ok, out) = check(&node).await;
    assert!(ok, "{out}");
}
