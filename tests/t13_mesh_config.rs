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

/// Runs `warden mesh config <args>` against `node`; (success, stdout, stderr).
async fn mesh_cli(node: &NodeProc, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["mesh", "config"])
        .args(args)
        .env("WARDEN_API", format!("http://{}", node.api))
        .env("WARDEN_ADMIN_TOKEN", TOKEN)
        .output()
        .await
        .expect("run warden mesh config");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

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
    let r = client
        .post(node.url(&paths::cluster_credential("east")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let credential = r.json::<Value>().await.unwrap()["credential"]
        .as_str()
        .unwrap()
        .to_string();
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
    let (ok, out, err) = mesh_cli(&node, &["diff", "-f", f]).await;
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "timeouts.per_try_ms: - -> 2000\nretries.max_retries: - -> 1\nauthz.default: - -> deny\n"
    );
    let (ok, out, err) = mesh_cli(&node, &["set", "-f", f, "--dry-run"]).await;
    assert!(ok, "{err}");
    assert_eq!(out, "mesh config: would change 3 field(s)\n");
    assert_eq!(
        last_log_index(&client, &node).await,
        before,
        "diff and dry run write nothing"
    );

    let (ok, out, err) = mesh_cli(&node, &["set", "-f", f]).await;
    assert!(ok, "{err}");
    assert!(
        out.starts_with("mesh config: applied at revision "),
        "{out}"
    );
    let (ok, out, _) = mesh_cli(&node, &["diff", "-f", f]).await;
    assert!(ok);
    assert_eq!(out, "mesh config: unchanged\n");
    let (ok, out, _) = mesh_cli(&node, &["get"]).await;
    assert!(ok);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["config"]["authz"]["default"], "deny");

    // A bad file exits non-zero naming the field; an unknown cluster is an error too.
    std::fs::write(&file, "retries:\n  max_retries: 99\n").unwrap();
    let (ok, _, err) = mesh_cli(&node, &["set", "-f", f]).await;
    assert!(!ok && err.contains("retries.max_retries"), "{err}");
    std::fs::write(&file, "{}\n").unwrap();
    let (ok, _, err) = mesh_cli(&node, &["set", "-f", f, "--cluster", "nowhere"]).await;
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
