//! Mesh configuration in the store: `/api/v1/mesh/config` and `/api/v1/clusters/{name}/config`
//! refuse bad input naming the field, dry runs write nothing, only the admin may write, the
//! CLI gets, diffs and sets; and a running gateway applies the documents live (a timeout set
//! mesh-wide cuts a slow request, the cluster's override beats it), shows each value's source
//! in `/config_dump`, and fails no request while settings change under load.

mod support;

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::*;

async fn send(client: &reqwest::Client, method: Method, url: &str, body: &Value) -> (u16, Value) {
    let r = client.request(method, url).json(body).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn last_log_index(client: &reqwest::Client, node: &NodeProc) -> u64 {
    mesh_status(client, node).await.unwrap()["last_log_index"]
        .as_u64()
        .unwrap()
}

/// Runs `warden mesh <args>` against `node`; (success, stdout, stderr).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_and_cluster_config_api() {
    let tmp = tempfile::tempdir().unwrap();
    let node = one_node(tmp.path()).await;
    let client = http();
    let mesh = node.url(paths::MESH_CONFIG);

    let v = get_json(&client, &mesh).await.unwrap();
    assert_eq!(v["config"], json!({}), "nothing set yet: {v}");

    // Bad input: 400 naming the field, and nothing written.
    let before = last_log_index(&client, &node).await;
    for (body, field) in [
        (
            json!({"timeouts": {"per_try_ms": 0}}),
            "timeouts.per_try_ms",
        ),
        (
            json!({"retries": {"max_retries": 11}}),
            "retries.max_retries",
        ),
        (json!({"authz": {"default": "maybe"}}), "authz.default"),
        (json!({"timeouts": {"per_try": 5}}), "timeouts"),
    ] {
        let (s, e) = send(&client, Method::PUT, &mesh, &body).await;
        assert_eq!(s, 400, "{body}: {e}");
        let named = e["error"]["field"].as_str().unwrap_or_default();
        assert!(named.starts_with(field), "{body}: field {named:?} in {e}");
    }

    // A dry run says what would change and writes nothing.
    let want = json!({"timeouts": {"overall_ms": 900}, "telemetry": {"access_log": false}});
    let (s, d) = send(&client, Method::PUT, &paths::dry_run(&mesh), &want).await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["change"], "replace");
    assert_eq!(d["proposed"], want);
    assert_eq!(
        last_log_index(&client, &node).await,
        before,
        "a dry run writes nothing"
    );
    assert_eq!(get_json(&client, &mesh).await.unwrap()["config"], json!({}));

    // The write itself, then the same again: no new change.
    let (s, w) = send(&client, Method::PUT, &mesh, &want).await;
    assert_eq!(s, 200, "{w}");
    let revision = w["revision"].as_u64().unwrap();
    assert!(revision > 0);
    let (_, again) = send(&client, Method::PUT, &mesh, &want).await;
    assert_eq!(again["revision"], revision, "unchanged writes no change");
    assert_eq!(get_json(&client, &mesh).await.unwrap()["config"], want);

    // Per cluster: 404 for an unknown cluster; a registered one takes overrides.
    let east = node.url(&paths::cluster_config("east"));
    let (s, _) = send(&client, Method::PUT, &east, &json!({})).await;
    assert_eq!(s, 404);
    assert_eq!(register(&client, &node, "east").await, Some(201));
    let over = json!({"timeouts": {"overall_ms": 5000}});
    let (s, d) = send(&client, Method::PUT, &paths::dry_run(&east), &over).await;
    assert_eq!((s, d["change"].clone()), (200, json!("create")), "{d}");
    let (s, _) = send(&client, Method::PUT, &east, &over).await;
    assert_eq!(s, 200);
    assert_eq!(get_json(&client, &east).await.unwrap()["config"], over);

    // Only the admin writes: no credential, or a cluster's own, is refused.
    let (s, _) = send(&http_anonymous(), Method::PUT, &mesh, &json!({})).await;
    assert_eq!(s, 401);
    let credential = new_credential(&client, &node, "east").await;
    for url in [&mesh, &east] {
        let r = http_anonymous()
            .put(url.as_str())
            .bearer_auth(&credential)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{url} with a cluster credential");
    }

    // `{}` removes the overrides.
    let (s, _) = send(&client, Method::PUT, &east, &json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(get_json(&client, &east).await.unwrap()["config"], json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warden_mesh_config_gets_diffs_and_sets() {
    let tmp = tempfile::tempdir().unwrap();
    let node = one_node(tmp.path()).await;
    let client = http();
    let file = tmp.path().join("mesh.yaml");
    std::fs::write(
        &file,
        "timeouts:\n  per_try_ms: 2000\nretries:\n  max_retries: 1\nauthz:\n  default: deny\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();

    let before = last_log_index(&client, &node).await;
    let (ok, out, err) = mesh_cli(&node, &["config", "diff", "-f", f]).await;
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "timeouts.per_try_ms: - -> 2000\nretries.max_retries: - -> 1\nauthz.default: - -> deny\n"
    );
    let (ok, out, err) = mesh_cli(&node, &["config", "set", "-f", f, "--dry-run"]).await;
    assert!(ok, "{err}");
    assert_eq!(out, "mesh config: would change 3 field(s)\n");
    assert_eq!(
        last_log_index(&client, &node).await,
        before,
        "diff and dry run write nothing"
    );

    let (ok, out, err) = mesh_cli(&node, &["config", "set", "-f", f]).await;
    assert!(ok, "{err}");
    assert!(
        out.starts_with("mesh config: applied at revision "),
        "{out}"
    );
    let (ok, out, _) = mesh_cli(&node, &["config", "diff", "-f", f]).await;
    assert!(ok);
    assert_eq!(out, "mesh config: unchanged\n");
    let (ok, out, _) = mesh_cli(&node, &["config", "get"]).await;
    assert!(ok);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["config"]["authz"]["default"], "deny");

    // A bad file exits non-zero naming the field; an unknown cluster is an error too.
    std::fs::write(&file, "retries:\n  max_retries: 99\n").unwrap();
    let (ok, _, err) = mesh_cli(&node, &["config", "set", "-f", f]).await;
    assert!(!ok && err.contains("retries.max_retries"), "{err}");
    std::fs::write(&file, "{}\n").unwrap();
    let (ok, _, err) = mesh_cli(&node, &["config", "set", "-f", f, "--cluster", "nowhere"]).await;
    assert!(!ok && err.contains("nowhere"), "{err}");
}

/// A GET through the gateway whose backend answers `delay_ms` late; the status.
async fn slow_call(client: &reqwest::Client, outbound: &str, delay_ms: u64) -> u16 {
    client
        .get(format!("http://{outbound}/hello?delay_ms={delay_ms}"))
        .header("host", "cart.shop")
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

async fn setting(client: &reqwest::Client, admin: &str, name: &str) -> Value {
    let v = get_json(client, &format!("http://{admin}/config_dump"))
        .await
        .unwrap();
    v["settings"][name].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_applies_the_stored_config_live() {
    let tmp = tempfile::tempdir().unwrap();
    let (node, east, client) = east_serving(tmp.path(), "").await;
    let admin = http();
    let out = east.outbound();
    let dump = east.admin();

    assert_eq!(
        setting(&client, &dump, "timeouts.overall_ms").await,
        json!({"value": 30000, "source": "default"})
    );
    // The test gateways' files set the health thresholds.
    assert_eq!(
        setting(&client, &dump, "health.unhealthy_threshold").await["source"],
        "file"
    );
    assert_eq!(slow_call(&client, &out, 1500).await, 200);

    // Mesh-wide: a 300 ms budget cuts the 1.5 s request.
    put_ok(
        &admin,
        &node.url(paths::MESH_CONFIG),
        &json!({"timeouts": {"overall_ms": 300}}),
    )
    .await;
    eventually(
        Duration::from_secs(20),
        "the mesh value applied",
        || async {
            (setting(&client, &dump, "timeouts.overall_ms").await
                == json!({"value": 300, "source": "mesh"}))
            .then_some(())
        },
    )
    .await;
    assert_eq!(slow_call(&client, &out, 1500).await, 504);

    // The cluster's override beats the mesh's.
    put_ok(
        &admin,
        &node.url(&paths::cluster_config("east")),
        &json!({"timeouts": {"overall_ms": 5000}}),
    )
    .await;
    eventually(
        Duration::from_secs(20),
        "the cluster value applied",
        || async {
            (setting(&client, &dump, "timeouts.overall_ms").await
                == json!({"value": 5000, "source": "cluster"}))
            .then_some(())
        },
    )
    .await;
    assert_eq!(slow_call(&client, &out, 1500).await, 200);

    // Settings changing under load fail no request: 10 changes while 4 callers run.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (client, out, stop) = (client.clone(), out.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0u32, Vec::new());
                // Bounded: until told, or 5,000 calls each.
                for _ in 0..5_000 {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    match call(&client, &out).await.0 {
                        200 => ok += 1,
                        s => failed.push(s),
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    for i in 0..10u64 {
        let body = json!({
            "timeouts": {"per_try_ms": 2000 + i, "overall_ms": 4000 + i},
            "retries": {"max_retries": i % 3, "budget_percent": 10 + i as u32},
            "routing": {"failback_ramp_ms": 1000 + i},
            "health": {"interval_ms": 200 + i, "timeout_ms": 150},
            "telemetry": {"access_log": i % 2 == 0},
        });
        put_ok(&admin, &node.url(paths::MESH_CONFIG), &body).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eventually(
        Duration::from_secs(20),
        "the last change applied",
        || async {
            (setting(&client, &dump, "timeouts.per_try_ms").await["value"] == 2009).then_some(())
        },
    )
    .await;
    assert_eq!(
        setting(&client, &dump, "health.interval_ms").await,
        json!({"value": 209, "source": "mesh"})
    );
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (mut ok, mut failed) = (0, Vec::new());
    for c in callers {
        let (o, f) = c.await.unwrap();
        ok += o;
        failed.extend(f);
    }
    assert!(
        failed.is_empty(),
        "{} failed of {}: {failed:?}",
        failed.len(),
        ok as usize + failed.len()
    );
    assert!(ok >= 40, "only {ok} calls");
    eprintln!("{ok} requests while settings changed 10 times, 0 failed");
}

/// The (field, code) pairs of a report's list.
fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["field"].as_str().unwrap().to_string(),
                f["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `POST /api/v1/mesh/validate` answers every error by field path and each listed warning
/// (unknown service and cluster, no healthy fallback, weight onto a cluster without the
/// service, a deny-everything rule, a shadowed route rule), and writes nothing; `warden mesh
/// validate` prints them and fails only on errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_finds_each_error_and_warning_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let node = one_node(tmp.path()).await;
    let client = http();
    for c in ["east", "west", "gamma"] {
        assert_eq!(register(&client, &node, c).await, Some(201));
    }
    for (c, healthy) in [("east", 2), ("west", 0)] {
        let body = json!({"ports": [{"name": "http", "port": 80, "protocol": "http"}],
            "healthy_endpoints": healthy});
        put_ok(&client, &node.url(&paths::export(c, "shop", "cart")), &body).await;
    }
    let bundle = json!({
        "mesh_config": {"retries": {"max_retries": 50}},
        "cluster_configs": {"nowhere": {}},
        "traffic_policies": [
            {"id": "t1", "service": "shop/cart", "failover_order": ["east", "west"],
             "weights": {"east": 50, "north": 10, "gamma": 10}},
            {"id": "t2", "service": "shop/ghost"},
            {"service": "shop/cart"},
        ],
        "security_policies": [
            {"id": "s1", "service": "shop/cart", "action": "allow",
             "sources": {"clusters": ["nowhere"]}},
        ],
        "routes": [
            {"id": "r1", "service": "shop/cart", "rules": [
                {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}], "backends": [{"weight": 1}]},
                {"matches": [{"path": {"type": "Exact", "value": "/api/v1"}}], "backends": [{"weight": 1}]},
            ]},
            {"id": "r2", "service": "shop/cart", "rules": [{"backends": [{"weight": 1}]}]},
        ],
        "authorization_policies": [
            {"id": "a1", "service": "shop/cart", "action": "deny", "rules": [{}]},
        ],
    });
    let before = last_log_index(&client, &node).await;
    let (s, v) = send(
        &client,
        Method::POST,
        &node.url(paths::MESH_VALIDATE),
        &bundle,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["valid"], false);
    let errors = pairs(&v["errors"]);
    let warnings = pairs(&v["warnings"]);
    for want in [
        ("mesh_config.retries.max_retries", "invalid_field"),
        ("cluster_configs.nowhere", "not_found"),
        ("traffic_policies[2].id", "invalid_field"),
        ("routes[1].service", "already_exists"),
    ] {
        assert!(
            errors.contains(&(want.0.into(), want.1.into())),
            "{want:?} not in {errors:?}"
        );
    }
    for want in [
        ("traffic_policies[0].weights.north", "unknown_cluster"),
        ("traffic_policies[0].weights.gamma", "weight_without_export"),
        ("traffic_policies[0].failover_order", "no_healthy_fallback"),
        ("traffic_policies[1].service", "unknown_service"),
        (
            "security_policies[0].sources.clusters[0]",
            "unknown_cluster",
        ),
        ("routes[0].rules[1]", "shadowed_rule"),
        ("authorization_policies[0].rules[0]", "denies_everything"),
    ] {
        assert!(
            warnings.contains(&(want.0.into(), want.1.into())),
            "{want:?} not in {warnings:?}"
        );
    }
    assert!(
        !warnings
            .iter()
            .any(|(f, _)| f.starts_with("traffic_policies[0].weights.east")),
        "east exports the service: {warnings:?}"
    );
    assert_eq!(
        last_log_index(&client, &node).await,
        before,
        "validation writes nothing"
    );
    assert!(
        get_json(&client, &node.url(&paths::route("r1")))
            .await
            .is_none()
    );

    // Bad JSON is still a 400 naming the field.
    let (s, e) = send(
        &client,
        Method::POST,
        &node.url(paths::MESH_VALIDATE),
        &json!({"routes": [{"id": "r", "service": "shop/cart", "rules": "no"}]}),
    )
    .await;
    assert_eq!(s, 400, "{e}");
    assert!(
        e["error"]["field"]
            .as_str()
            .unwrap_or_default()
            .starts_with("routes"),
        "{e}"
    );

    // The CLI: warnings only → exit 0; errors → non-zero with each printed.
    let file = tmp.path().join("bundle.yaml");
    std::fs::write(
        &file,
        "traffic_policies:\n  - id: t2\n    service: shop/ghost\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let (ok, stdout, _) = mesh_cli(&node, &["validate", "-f", f]).await;
    assert!(ok, "{stdout}");
    assert_eq!(
        stdout,
        "warning traffic_policies[0].service: no cluster exports shop/ghost (unknown_service)\nvalid: 1 warning(s)\n"
    );
    std::fs::write(&file, serde_json::to_string(&bundle).unwrap()).unwrap();
    let (ok, stdout, _) = mesh_cli(&node, &["validate", "-f", f]).await;
    assert!(!ok);
    assert!(stdout.contains("error routes[1].service:"), "{stdout}");
    assert!(stdout.contains("warning routes[0].rules[1]:"), "{stdout}");
}

/// `?dry_run=true` on every write endpoint answers as the write would — the status, the body,
/// a rejection — marked `x-warden-dry-run: true`, and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_endpoint_dry_runs_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let node = one_node(tmp.path()).await;
    let client = http();
    assert_eq!(register(&client, &node, "west").await, Some(201));
    let before = last_log_index(&client, &node).await;
    let dry = |path: &str| paths::dry_run(&node.url(path));
    let export = json!({"ports": [{"name": "http", "port": 80, "protocol": "http"}],
        "healthy_endpoints": 1});
    let cases: Vec<(Method, String, Value, u16)> = vec![
        (
            Method::POST,
            dry(paths::CLUSTERS),
            cluster_body("east"),
            201,
        ),
        (
            Method::POST,
            dry(paths::CLUSTERS),
            cluster_body("west"),
            409,
        ),
        (
            Method::DELETE,
            dry(&paths::cluster("west")),
            Value::Null,
            204,
        ),
        (
            Method::DELETE,
            dry(&paths::cluster("nowhere")),
            Value::Null,
            404,
        ),
        (
            Method::PUT,
            dry(&paths::cluster_gateway("west")),
            json!({"gateway": "127.0.0.1:17000"}),
            200,
        ),
        (
            Method::PUT,
            dry(&paths::export("west", "shop", "cart")),
            export.clone(),
            200,
        ),
        (
            Method::PUT,
            dry(&paths::export("nowhere", "shop", "cart")),
            export,
            404,
        ),
        (
            Method::PUT,
            dry(&paths::lease("west")),
            json!({"ttl_ms": 5000}),
            200,
        ),
        (
            Method::POST,
            dry(&paths::cluster_credential("west")),
            Value::Null,
            201,
        ),
        (
            Method::POST,
            dry(paths::MEMBERS),
            json!({"id": 9, "raft_addr": "127.0.0.1:1", "api_addr": "127.0.0.1:2", "voter": false}),
            200,
        ),
        (
            Method::DELETE,
            dry(&paths::route("nothing")),
            Value::Null,
            404,
        ),
    ];
    for (method, url, body, want) in cases {
        let mut req = client.request(method.clone(), &url);
        if !body.is_null() {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let marked = r
            .headers()
            .get("x-warden-dry-run")
            .map(|v| v.as_bytes().to_vec());
        let text = r.text().await.unwrap_or_default();
        assert_eq!(status, want, "{method} {url}: {text}");
        assert_eq!(
            marked.as_deref(),
            Some(&b"true"[..]),
            "{method} {url} is marked"
        );
        if url.contains("/gateway") {
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                v["gateway"], "127.0.0.1:17000",
                "the answer shows the write's effect"
            );
        }
    }
    assert_eq!(
        last_log_index(&client, &node).await,
        before,
        "nothing was written"
    );
    // A cluster's own credential may not make the node copy its state at will.
    let credential = new_credential(&client, &node, "west").await;
    let before = last_log_index(&client, &node).await;
    let r = http_anonymous()
        .put(dry(&paths::lease("west")))
        .bearer_auth(&credential)
        .json(&json!({"ttl_ms": 5000}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "a cluster credential's dry run");
    assert_eq!(last_log_index(&client, &node).await, before);
    let west = get_json(&client, &node.url(&paths::cluster("west")))
        .await
        .unwrap();
    assert_eq!(west["gateway"], "127.0.0.1:15008");
    assert!(
        get_json(&client, &node.url(&paths::cluster("east")))
            .await
            .is_none()
    );
    let members = mesh_status(&client, &node).await.unwrap()["members"].clone();
    assert_eq!(members.as_array().unwrap().len(), 1, "{members}");
}

/// The audit log records who made each change through the API, what and its revision —
/// the admin token, a cluster's credential — but not unchanged writes, dry runs or a
/// gateway's lease renewals and own exports; `since` and `limit` page it, and it survives a
/// restart (it is replicated state).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_records_who_changed_what() {
    let tmp = tempfile::tempdir().unwrap();
    let mut node = one_node(tmp.path()).await;
    let client = http();
    let r = client
        .post(node.url(paths::CLUSTERS))
        .bearer_auth(TOKEN)
        .json(&cluster_body("east"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let credential = r.json::<Value>().await.unwrap()["credential"]
        .as_str()
        .unwrap()
        .to_string();
    let mesh = node.url(paths::MESH_CONFIG);
    let cfg = json!({"timeouts": {"overall_ms": 900}});
    put_ok(&client, &mesh, &cfg).await;
    put_ok(&client, &mesh, &cfg).await; // unchanged: no record
    let (s, _) = send(&client, Method::PUT, &paths::dry_run(&mesh), &json!({})).await;
    assert_eq!(s, 200); // dry run: no record
    let as_cluster = http_anonymous();
    let export = json!({"ports": [{"name": "http", "port": 80, "protocol": "http"}],
        "healthy_endpoints": 1});
    for (url, body) in [
        (node.url(&paths::lease("east")), json!({"ttl_ms": 5000})),
        (
            node.url(&paths::export("east", "shop", "cart")),
            export.clone(),
        ),
    ] {
        let r = as_cluster
            .put(&url)
            .bearer_auth(&credential)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{url}: {}", r.status());
    }
    let r = as_cluster
        .put(node.url(&paths::cluster_gateway("east")))
        .bearer_auth(&credential)
        .json(&json!({"gateway": "127.0.0.1:16000"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    put_ok(
        &client,
        &node.url(&paths::export("east", "shop", "pay")),
        &export,
    )
    .await;

    let log = get_json(&client, &node.url(&paths::audit(0, 100)))
        .await
        .unwrap();
    let items = log["items"].as_array().unwrap();
    let rows: Vec<(String, String)> = items
        .iter()
        .map(|r| {
            (
                r["who"].as_str().unwrap().to_string(),
                r["what"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                "admin-token".to_string(),
                "POST /api/v1/clusters".to_string()
            ),
            ("admin-token".into(), "PUT /api/v1/mesh/config".into()),
            (
                "cluster:east".into(),
                "PUT /api/v1/clusters/east/gateway".into()
            ),
            (
                "admin-token".into(),
                "PUT /api/v1/clusters/east/services/shop/pay".into()
            ),
        ]
    );
    let revisions: Vec<u64> = items
        .iter()
        .map(|r| r["revision"].as_u64().unwrap())
        .collect();
    assert!(revisions.windows(2).all(|w| w[0] < w[1]), "{revisions:?}");
    assert!(items.iter().all(|r| r["at"].as_u64().unwrap() > 0));

    // Paging: after the second record, one at a time.
    let page = get_json(&client, &node.url(&paths::audit(revisions[1], 1)))
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["revision"], revisions[2]);
    let (s, e) = send(
        &client,
        Method::GET,
        &node.url(&paths::audit(0, 0)),
        &Value::Null,
    )
    .await;
    assert_eq!(
        (s, e["error"]["field"].clone()),
        (400, json!("limit")),
        "{e}"
    );

    // The CLI prints the same rows; a restart keeps them.
    let (ok, out, err) = mesh_cli(&node, &["audit", "--since", &revisions[2].to_string()]).await;
    assert!(ok, "{err}");
    assert!(
        out.ends_with(" admin-token PUT /api/v1/clusters/east/services/shop/pay\n"),
        "{out}"
    );
    node.restart().await;
    let again = eventually(Duration::from_secs(30), "the node answers", || async {
        get_json(&client, &node.url(&paths::audit(0, 100))).await
    })
    .await;
    assert_eq!(again["items"], log["items"]);
}
