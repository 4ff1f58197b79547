//! Traffic and security policies share one CRUD: created once (409 after), replaced by PUT, read,
//! listed, deleted; bad input answers 400 naming the field and changes nothing.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = client.request(method, url);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_policy_kinds_share_create_put_get_list_delete() {
    let tmp = tempfile::tempdir().unwrap();
    let node = one_node(tmp.path()).await;
    let client = http();
    use reqwest::Method;
    let kinds = [
        (
            paths::TRAFFIC_POLICIES,
            json!({"service": "shop/cart", "weights": {"east": 80, "west": 20}}),
            "traffic policy",
        ),
        (
            paths::SECURITY_POLICIES,
            json!({"service": "shop/cart", "action": "deny", "sources": {"trust_domains": ["evil.test"]}}),
            "security policy",
        ),
    ];
    for (base, body, what) in kinds {
        let with_id = |id: &str| {
            let mut b = body.clone();
            b["id"] = json!(id);
            b
        };
        // POST without an id, with a bad id, with a bad field.
        let (s, e) = send(&client, Method::POST, node.url(base), Some(body.clone())).await;
        assert_eq!(
            (s, e["error"]["field"].as_str()),
            (400, Some("id")),
            "{what}: {e}"
        );
        let (s, e) = send(
            &client,
            Method::POST,
            node.url(base),
            Some(with_id("Not_A_Label")),
        )
        .await;
        assert_eq!(
            (s, e["error"]["field"].as_str()),
            (400, Some("id")),
            "{what}: {e}"
        );
        let mut bad = with_id("p1");
        bad["service"] = json!("no-namespace");
        let (s, e) = send(&client, Method::POST, node.url(base), Some(bad)).await;
        assert_eq!(
            (s, e["error"]["field"].as_str()),
            (400, Some("service")),
            "{what}: {e}"
        );
        // Create once; the second create is a conflict.
        let (s, p) = send(&client, Method::POST, node.url(base), Some(with_id("p1"))).await;
        assert_eq!(s, 201, "{what}: {p}");
        assert_eq!(p["id"], "p1");
        let (s, e) = send(&client, Method::POST, node.url(base), Some(with_id("p1"))).await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (409, Some("already_exists")),
            "{what}"
        );
        assert!(
            e["error"]["message"].as_str().unwrap().contains(what),
            "{e}"
        );
        // PUT with a body id that differs from the path.
        let (s, e) = send(
            &client,
            Method::PUT,
            node.url(&format!("{base}/p1")),
            Some(with_id("p2")),
        )
        .await;
        assert_eq!(
            (s, e["error"]["field"].as_str()),
            (400, Some("id")),
            "{what}: {e}"
        );
        // PUT creates p2 (for another service: a service has at most one traffic policy).
        let mut other = body.clone();
        other["service"] = json!("shop/pay");
        let (s, e) = send(
            &client,
            Method::PUT,
            node.url(&format!("{base}/p2")),
            Some(other),
        )
        .await;
        assert_eq!(s, 200, "{what}: {e}");
        let (s, l) = send(&client, Method::GET, node.url(base), None).await;
        assert_eq!(s, 200);
        let ids: Vec<&str> = l["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["p1", "p2"], "{what}");
        let (s, g) = send(&client, Method::GET, node.url(&format!("{base}/p2")), None).await;
        assert_eq!((s, g["service"].as_str()), (200, Some("shop/pay")));
        let (s, _) = send(
            &client,
            Method::DELETE,
            node.url(&format!("{base}/p2")),
            None,
        )
        .await;
        assert_eq!(s, 204);
        let (s, e) = send(&client, Method::GET, node.url(&format!("{base}/p2")), None).await;
        assert_eq!(s, 404, "{what}: {e}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains(what),
            "{e}"
        );
        let (s, _) = send(
            &client,
            Method::DELETE,
            node.url(&format!("{base}/p2")),
            None,
        )
        .await;
        assert_eq!(s, 404, "{what}: deleting twice");
        if what == "traffic policy" {
            let (s, e) = send(
                &client,
                Method::PUT,
                node.url(&format!("{base}/p3")),
                Some(body.clone()),
            )
            .await;
            assert_eq!(s, 409, "one traffic policy per service: {e}");
        }
        // Without the token a write is refused and changes nothing.
        let r = http_anonymous()
            .delete(node.url(&format!("{base}/p1")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
        let (s, _) = send(&client, Method::GET, node.url(&format!("{base}/p1")), None).await;
        assert_eq!(s, 200, "{what}: p1 survived");
    }
}

/// Routes through the same CRUD: a bad one is refused naming the field, one route per service
/// (409), `?dry_run=true` answers create / replace / unchanged and writes nothing, changes
/// reach the watch, and only an admin may write them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_are_validated_dry_run_and_one_per_service() {
    use reqwest::Method;
    let tmp = tempfile::tempdir().unwrap();
    let node = one_node(tmp.path()).await;
    let client = http();
    let index = |s: Value| s["last_log_index"].as_u64().unwrap();
    let route = |version: &str| {
        json!({"service": "shop/cart", "rules": [
            {"name": "canary", "matches": [{"headers": [{"name": "x-canary", "value": "on"}]}],
             "backends": [{"subset": {"version": version}}]},
            {"backends": [{"subset": {"version": "v1"}, "weight": 90},
                          {"subset": {"version": version}, "weight": 10}]}
        ]})
    };
    let url = node.url(&paths::route("cart"));
    let dry = node.url(&paths::route_dry_run("cart"));

    let mut bad = route("v2");
    bad["rules"][0]["matches"][0]["headers"][0]["type"] = json!("RegularExpression");
    bad["rules"][0]["matches"][0]["headers"][0]["value"] = json!("(on");
    let (s, e) = send(&client, Method::PUT, url.clone(), Some(bad)).await;
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (400, Some("rules[0].matches[0].headers[0].value")),
        "{e}"
    );
    let mut typo = route("v2");
    typo["rules"][1]["backend"] = json!([]);
    let (s, e) = send(&client, Method::PUT, url.clone(), Some(typo)).await;
    assert_eq!(s, 400, "an unknown field is refused: {e}");

    let (s, e) = send(
        &client,
        Method::PUT,
        format!("{url}?dry_run=maybe"),
        Some(route("v2")),
    )
    .await;
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (400, Some("dry_run")),
        "{e}"
    );
    let before = index(mesh_status(&client, &node).await.unwrap());
    let (s, d) = send(&client, Method::PUT, dry.clone(), Some(route("v2"))).await;
    assert_eq!((s, d["change"].as_str()), (200, Some("create")), "{d}");
    assert_eq!(d["current"], Value::Null);
    assert_eq!(index(mesh_status(&client, &node).await.unwrap()), before);

    let (s, r) = send(&client, Method::PUT, url.clone(), Some(route("v2"))).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["rules"][1]["backends"][1]["weight"], 10);
    let (_, d) = send(&client, Method::PUT, dry.clone(), Some(route("v2"))).await;
    assert_eq!(d["change"], "unchanged", "{d}");
    let (_, d) = send(&client, Method::PUT, dry.clone(), Some(route("v3"))).await;
    assert_eq!(d["change"], "replace", "{d}");
    assert_eq!(
        d["current"]["rules"][0]["backends"][0]["subset"]["version"],
        "v2"
    );

    // A second route for the same service: 409, as a write and as a dry run.
    let other = node.url(&paths::route("cart-2"));
    let (s, _) = send(&client, Method::PUT, other.clone(), Some(route("v2"))).await;
    assert_eq!(s, 409);
    let (s, _) = send(
        &client,
        Method::PUT,
        node.url(&paths::route_dry_run("cart-2")),
        Some(route("v2")),
    )
    .await;
    assert_eq!(s, 409);

    // The route is on the watch and in the listing.
    let (s, list) = send(&client, Method::GET, node.url(paths::ROUTES), None).await;
    assert_eq!((s, list["items"].as_array().map(Vec::len)), (200, Some(1)));
    let mut watch = client.get(node.url(&paths::watch(0))).send().await.unwrap();
    let mut text = String::new();
    while !text.contains("\"type\":\"route.put\"") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), watch.chunk())
            .await
            .expect("the watch shows the route within 10 s")
            .unwrap()
            .expect("the stream goes on");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }

    // Without the admin token: 401; the route is the admin's to change.
    let anon = reqwest::Client::new();
    let r = anon.put(&url).json(&route("v9")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);

    let (s, _) = send(&client, Method::DELETE, url.clone(), None).await;
    assert_eq!(s, 204);
    let (s, _) = send(&client, Method::GET, url, None).await;
    assert_eq!(s, 404);
}

/// Runs `warden route <args>` against `node`; (success, stdout, stderr).
async fn route_cli(node: &NodeProc, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("route")
        .args(args)
        .env("WARDEN_API", format!("http://{}", node.api))
        .env("WARDEN_ADMIN_TOKEN", TOKEN)
        .output()
        .await
        .expect("run warden route");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// `warden route apply -f` takes a YAML file of routes (one document each): `--dry-run` says
/// what would change and writes nothing, a plain apply stores them, `get` and `delete` follow,
/// and a bad route exits non-zero naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warden_route_applies_yaml_files() {
    let tmp = tempfile::tempdir().unwrap();
    let node = one_node(tmp.path()).await;
    let client = http();
    let file = tmp.path().join("routes.yaml");
    std::fs::write(
        &file,
        "id: cart\nservice: shop/cart\nrules:\n  - matches:\n      - headers:\n          - name: x-canary\n            value: \"on\"\n    backends:\n      - subset: {version: v2}\n  - backends:\n      - {subset: {version: v1}, weight: 90}\n      - {subset: {version: v2}, weight: 10}\n---\nid: web\nservice: shop/web\nrules:\n  - backends: [{}]\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let index = |s: Value| s["last_log_index"].as_u64().unwrap();
    let before = index(mesh_status(&client, &node).await.unwrap());
    let (ok, out, err) = route_cli(&node, &["apply", "-f", f, "--dry-run"]).await;
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "route cart: would be created\nroute web: would be created\n"
    );
    assert_eq!(index(mesh_status(&client, &node).await.unwrap()), before);
    let (ok, out, err) = route_cli(&node, &["apply", "-f", f]).await;
    assert!(ok, "{err}");
    assert_eq!(out, "route cart: applied\nroute web: applied\n");
    let (_, out, _) = route_cli(&node, &["apply", "-f", f, "--dry-run"]).await;
    assert_eq!(out, "route cart: unchanged\nroute web: unchanged\n");
    let (ok, out, _) = route_cli(&node, &["get", "cart"]).await;
    let got: Value = serde_json::from_str(&out).unwrap();
    assert!(ok);
    assert_eq!(got["rules"][1]["backends"][0]["weight"], 90);

    let bad = tmp.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "id: bad\nservice: shop/bad\nrules:\n  - matches:\n      - path: {type: RegularExpression, value: \"/v[\"}\n    backends: [{}]\n",
    )
    .unwrap();
    let (ok, _, err) = route_cli(&node, &["apply", "-f", bad.to_str().unwrap()]).await;
    assert!(!ok);
    assert!(err.contains("rules[0].matches[0].path.value"), "{err}");
    // Not routes at all, and a document without an id: refused before anything is sent.
    let at = index(mesh_status(&client, &node).await.unwrap());
    for (name, text) in [
        ("junk.yaml", "{{{ not yaml"),
        ("noid.yaml", "service: shop/x\nrules: []\n"),
    ] {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        let (ok, _, err) = route_cli(&node, &["apply", "-f", p.to_str().unwrap()]).await;
        assert!(!ok, "{name}");
        assert!(err.contains(name), "{name}: {err}");
    }
    assert_eq!(index(mesh_status(&client, &node).await.unwrap()), at);

    let (ok, out, _) = route_cli(&node, &["delete", "web"]).await;
    assert!(ok);
    assert_eq!(out, "route web: deleted\n");
    let (_, out, _) = route_cli(&node, &["get"]).await;
    let all: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(all.as_array().map(Vec::len), Some(1));
}

/// A route put through the API reaches a gateway through the watch, compiled: its `/explain`
/// names the rule a described request matches and the backends' shares, and a change shows
/// without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_explains_the_rule_a_request_matches() {
    use reqwest::Method;
    let tmp = tempfile::tempdir().unwrap();
    let node = one_node(tmp.path()).await;
    let east = east_of(tmp.path(), &node, "").await;
    let client = http();
    let route = |v2: u32| {
        json!({"service": "shop/cart", "rules": [
            {"name": "opted-in", "matches": [{"headers": [{"name": "x-canary", "value": "on"}]}],
             "backends": [{"subset": {"version": "v2"}}]},
            {"name": "split", "backends": [{"subset": {"version": "v1"}, "weight": 100 - v2},
                                           {"subset": {"version": "v2"}, "weight": v2}]}
        ]})
    };
    let (s, _) = send(
        &client,
        Method::PUT,
        node.url(&paths::route("cart")),
        Some(route(10)),
    )
    .await;
    assert_eq!(s, 200);
    let explain = |q: &'static str| {
        let (client, admin) = (client.clone(), east.admin());
        async move {
            get_json(
                &client,
                &format!("http://{admin}/explain?authority=cart.shop&{q}"),
            )
            .await
        }
    };
    let v = eventually(
        Duration::from_secs(20),
        "the route reaches the gateway",
        || async {
            explain("header=x-canary:on")
                .await
                .filter(|v| v["route"]["matched"] == true)
        },
    )
    .await;
    assert_eq!(v["route"]["rule"], "opted-in");
    let v = explain("path=/x").await.unwrap();
    assert_eq!(v["route"]["rule"], "split");
    assert_eq!(v["route"]["backends"][1]["share"], 0.1);
    // Shifted to 50/50 live.
    send(
        &client,
        Method::PUT,
        node.url(&paths::route("cart")),
        Some(route(50)),
    )
    .await;
    eventually(
        Duration::from_secs(20),
        "the change reaches the gateway",
        || async {
            explain("path=/x")
                .await
                .filter(|v| v["route"]["backends"][1]["share"] == 0.5)
        },
    )
    .await;
    let r = client
        .get(format!(
            "http://{}/explain?authority=cart.shop&header=nocolon",
            east.admin()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}
