//! Where each gateway sends each service's traffic now, and why: gateways report the compact
//! form of their `/explain` with their lease renewals (when it changed, and every 30 s), and any
//! federation node answers `GET /api/v1/observability/placements` for the whole mesh.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

/// East's plan for shop/cart as the mesh shows it: all local while its endpoints are up; once
/// they are gone, all of it to central, with the reason — the same sentence and shares as
/// east's own `/explain`. Any node answers (east and central renew through node 0), the CLI
/// prints it, and a removed cluster's report is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_shows_where_each_gateway_sends_a_service() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = three_nodes(tmp.path()).await;
    let fed = std::slice::from_ref(&nodes[0].api);
    let mut east = cluster(tmp.path(), "east", "r1", "z1", fed).await;
    let central = cluster(tmp.path(), "central", "r1", "z2", fed).await;
    let client = http();
    let out = east.outbound();
    eventually(Duration::from_secs(30), "cart is served", || async {
        (call(&client, &out).await.0 == 200).then_some(())
    })
    .await;
    let url = format!(
        "{}?service=shop/cart",
        nodes[1].url(paths::OBSERVABILITY_PLACEMENTS)
    );
    let of = |v: &Value, cluster: &str| -> Option<Value> {
        let g = v["gateways"]
            .as_array()?
            .iter()
            .find(|g| g["cluster"] == cluster)?;
        g["services"]
            .as_array()?
            .iter()
            .find(|p| p["service"] == "shop/cart")
            .cloned()
    };
    let traffic = |p: &Value, level: usize| p["levels"][level]["traffic_share"].as_f64();
    let v = eventually(
        Duration::from_secs(30),
        "both gateways' plans, east's with central",
        || async {
            let v = get_json(&client, &url).await?;
            let (e, c) = (of(&v, "east")?, of(&v, "central")?);
            let both_local = p_local(&e) == Some(2) && p_local(&c) == Some(2);
            let knows_central = e["levels"]
                .as_array()?
                .iter()
                .any(|l| l["clusters"] == json!(["central"]));
            (both_local && knows_central).then_some(v)
        },
    )
    .await;
    assert_eq!(
        (v["nodes_asked"].clone(), v["nodes_answered"].clone()),
        (json!(3), json!(3)),
        "{v}"
    );
    let e = of(&v, "east").unwrap();
    assert_eq!(e["mode"], "priority", "{e}");
    assert_eq!(e["levels"][0]["name"], "local", "{e}");
    assert_eq!(traffic(&e, 0), Some(1.0), "{e}");
    assert_eq!(
        e["reason"], "local endpoints are healthy: all traffic stays in this cluster",
        "{e}"
    );
    let zone = e["levels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["clusters"] == json!(["central"]))
        .unwrap_or_else(|| panic!("central is in one of east's levels: {e}"));
    assert_eq!(zone["traffic_share"], 0.0, "{e}");

    // East's endpoints die: its health checks take them out and its plan sends everything
    // to central; the report follows within a renewal.
    for b in &mut east.backends {
        b.kill().await;
    }
    let failed = eventually(
        Duration::from_secs(30),
        "east's plan moves to central",
        || async {
            let v = get_json(&client, &url).await?;
            let e = of(&v, "east")?;
            let to_central = e["levels"].as_array()?.iter().any(|l| {
                l["clusters"] == json!(["central"]) && l["traffic_share"].as_f64() == Some(1.0)
            });
            (p_local(&e) == Some(0) && to_central).then_some(e)
        },
    )
    .await;
    assert_eq!(failed["local_total"], 2, "{failed}");
    assert_eq!(traffic(&failed, 0), Some(0.0), "{failed}");
    let explain = get_json(
        &client,
        &format!("http://{}/explain?authority=cart.shop", east.admin()),
    )
    .await
    .unwrap();
    assert_eq!(failed["reason"], explain["reason"], "{explain}");
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .starts_with("local capacity is short"),
        "{failed}"
    );
    let shares = |levels: &Value, key: &str| -> Vec<f64> {
        levels
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l[key].as_f64().unwrap())
            .collect()
    };
    assert_eq!(
        shares(&failed["levels"], "traffic_share"),
        shares(&explain["levels"], "traffic_share"),
        "{explain}"
    );
    // Central's own plan did not move.
    let v = get_json(&client, &url).await.unwrap();
    assert_eq!(traffic(&of(&v, "central").unwrap(), 0), Some(1.0), "{v}");

    let (ok, stdout, err) = mesh_cli(&nodes[2], &["placements", "--cluster", "east"]).await;
    assert!(ok, "{err}");
    let line = stdout
        .lines()
        .find(|l| l.contains("shop/cart"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.starts_with("east ")
            && line.contains("local 0/2 up -> ")
            && line.contains("(central) 100%")
            && line.contains("local capacity is short"),
        "{stdout}"
    );
    assert!(stdout.contains("of 3 node(s) answered"), "{stdout}");

    let base = nodes[1].url(paths::OBSERVABILITY_PLACEMENTS);
    for (q, field) in [
        ("service=nope", "service"),
        ("cluster=Not_A_Name", "cluster"),
        ("scope=everywhere", "scope"),
    ] {
        let r = client.get(format!("{base}?{q}")).send().await.unwrap();
        let s = r.status().as_u16();
        let e: Value = r.json().await.unwrap();
        assert_eq!(
            (s, e["error"]["field"].clone()),
            (400, json!(field)),
            "{q}: {e}"
        );
    }

    // A removed cluster's plan goes with it, on every node.
    drop(central);
    let r = client
        .delete(nodes[0].url(&paths::cluster("central")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let all = nodes[1].url(paths::OBSERVABILITY_PLACEMENTS);
    eventually(Duration::from_secs(10), "central's plan gone", || async {
        let v = get_json(&client, &all).await?;
        let gone = v["gateways"]
            .as_array()?
            .iter()
            .all(|g| g["cluster"] != "central");
        gone.then_some(())
    })
    .await;
}

fn p_local(p: &Value) -> Option<u64> {
    p["local_available"].as_u64()
}

/// A renewal whose report is out of bounds is refused naming the field, and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_reports_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let node = one_node(tmp.path()).await;
    let client = http();
    for c in ["east", "west"] {
        assert_eq!(register(&client, &node, c).await, Some(201));
    }
    let east = new_credential(&client, &node, "east").await;
    let placement = |mode: &str, share: f64| {
        json!({"service": "shop/cart", "mode": mode, "reason": "r", "local_available": 0,
            "local_total": 0, "levels": [{"name": "local", "healthy_share": 0.0,
            "traffic_share": share, "clusters": []}]})
    };
    // A gateway's text reaches operators' terminals: no control characters.
    let mut escaped = placement("priority", 1.0);
    escaped["reason"] = json!("all good\u{1b}[2J");
    let mut crowded = placement("priority", 1.0);
    crowded["levels"][0]["clusters"] = json!((0..17).map(|i| format!("c{i}")).collect::<Vec<_>>());
    for (p, field) in [
        (placement("random", 1.0), "placements.services[0].mode"),
        (
            placement("priority", 2.0),
            "placements.services[0].levels[0].traffic_share",
        ),
        (crowded, "placements.services[0].levels[0].clusters"),
        (escaped, "placements.services[0].reason"),
    ] {
        let body = json!({"ttl_ms": 5000, "placements": {"services": [p]}});
        let (s, e) = renew_as(&node, "east", &east, &body).await;
        assert_eq!((s, e["error"]["field"].clone()), (400, json!(field)), "{e}");
    }
    let leases = get_json(&client, &node.url(paths::LEASES)).await.unwrap();
    assert_eq!(leases["items"], json!([]), "no lease was written: {leases}");
    // East's credential cannot report a plan as west's gateway.
    let body = json!({"ttl_ms": 5000, "placements": {"services": [placement("priority", 1.0)]}});
    assert_eq!(renew_as(&node, "west", &east, &body).await.0, 403);
    assert_eq!(renew_as(&node, "east", &east, &body).await.0, 200);
    let v = get_json(&client, &node.url(paths::OBSERVABILITY_PLACEMENTS))
        .await
        .unwrap();
    assert_eq!(
        v["gateways"].as_array().unwrap().len(),
        1,
        "only east's: {v}"
    );
    assert_eq!(v["gateways"][0]["cluster"], "east", "{v}");
    assert_eq!(v["truncated"], false, "{v}");
    // Kept as sent; a field an older gateway leaves out takes its default.
    let mut kept = placement("priority", 1.0);
    kept["levels"][0]["clusters_omitted"] = json!(0);
    kept["levels_omitted"] = json!(0);
    assert_eq!(v["gateways"][0]["services"][0], kept, "{v}");
}
