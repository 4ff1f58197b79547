//! L7 routes on the request path, real processes on loopback: a 90/10 canary between two
//! labelled subsets, a header that sends only to v2, a redirect, a per-rule timeout that
//! answers 504 at the rule's limit, and 404 `no_route` for a request no rule matches.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

/// A client that shows redirects instead of following them.
fn plain() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// GET `path` on `web.shop` through the outbound listener: (status, serving backend).
async fn web(client: &reqwest::Client, out: &str, path: &str, canary: bool) -> (u16, String) {
    let mut r = client
        .get(format!("http://{out}{path}"))
        .header("host", "web.shop");
    if canary {
        r = r.header("x-canary", "on");
    }
    let resp = r.send().await.unwrap();
    (resp.status().as_u16(), served_by(&resp))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_split_match_redirect_and_time_out_per_rule() {
    const N: usize = 2_000;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let node = one_node(root).await;
    let (v1, v2) = (
        echo(root, "web-v1", "127.0.0.1:0").await,
        echo(root, "web-v2", "127.0.0.1:0").await,
    );
    let web_service = format!(
        "[[services]]\nnamespace = \"shop\"\nname = \"web\"\nprobe = \"/healthz\"\n\
         [[services.subsets]]\nlabels = {{ version = \"v1\" }}\nendpoints = [{:?}]\n\
         [[services.subsets]]\nlabels = {{ version = \"v2\" }}\nendpoints = [{:?}]\n",
        v1.addr("addr"),
        v2.addr("addr")
    );
    let east = east_of(root, &node, &web_service).await;
    let admin = http();
    let route = json!({"service": "shop/web", "rules": [
        {"name": "opted-in", "matches": [{"headers": [{"name": "x-canary", "value": "on"}]}],
         "backends": [{"subset": {"version": "v2"}}]},
        {"name": "moved", "matches": [{"path": {"type": "Exact", "value": "/old"}}],
         "filters": [{"request_redirect": {"path": "/new", "status_code": 301}}]},
        {"name": "slow", "matches": [{"path": {"type": "PathPrefix", "value": "/slow"}}],
         "backends": [{"subset": {"version": "v1"}}],
         "timeouts": {"request_ms": 300}},
        {"name": "split", "matches": [{"method": "GET"}],
         "backends": [{"subset": {"version": "v1"}, "weight": 90},
                      {"subset": {"version": "v2"}, "weight": 10}]}
    ]});
    put_route(&admin, &node, "web", &route).await;
    let client = plain();
    let out = east.outbound();
    // Once the gateway has the route and both subsets are up, canary requests reach v2.
    eventually(Duration::from_secs(30), "the route is applied", || async {
        let ok = web(&client, &out, "/x", true).await == (200, "web-v2".to_string())
            && web(&client, &out, "/old", false).await.0 == 301;
        ok.then_some(())
    })
    .await;

    let mut v2_share = 0;
    for _ in 0..N {
        let (status, server) = web(&client, &out, "/x", false).await;
        assert_eq!(status, 200);
        if server == "web-v2" {
            v2_share += 1;
        }
    }
    let share = v2_share as f64 / N as f64;
    println!(
        "canary: {v2_share} of {N} requests to v2 ({:.1} %)",
        share * 100.0
    );
    assert!((0.07..=0.13).contains(&share), "v2 share {share}");

    for _ in 0..50 {
        assert_eq!(
            web(&client, &out, "/x", true).await,
            (200, "web-v2".to_string())
        );
    }
    let moved = client
        .get(format!("http://{out}/old?a=1"))
        .header("host", "web.shop")
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status().as_u16(), 301);
    assert_eq!(moved.headers()["location"], "http://web.shop/new?a=1");

    // The rule's 300 ms, not the gateway's 30 s: 504.
    let (status, code) = web(&client, &out, "/slow?delay_ms=5000", false).await;
    assert_eq!((status, code.as_str()), (504, "upstream_timeout"));

    // A request no rule matches: 404 no_route.
    let r = client
        .delete(format!("http://{out}/x"))
        .header("host", "web.shop")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(r.headers()["x-warden-error"], "no_route");
    let v: Value = get_json(
        &admin,
        &format!(
            "http://{}/explain?authority=web.shop&method=DELETE",
            east.admin()
        ),
    )
    .await
    .unwrap();
    assert_eq!(v["route"]["matched"], false);

    // Shifted to 50/50 under continuous load: every request answered, the new split taken up.
    let (load_client, load_out) = (client.clone(), out.clone());
    let load = tokio::spawn(async move {
        let mut seen = Vec::with_capacity(3_000);
        while seen.len() < 3_000 {
            seen.push(web(&load_client, &load_out, "/x", false).await);
        }
        seen
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut half = route.clone();
    half["rules"][3]["backends"][0]["weight"] = json!(50);
    half["rules"][3]["backends"][1]["weight"] = json!(50);
    put_route(&admin, &node, "web", &half).await;
    let seen = load.await.unwrap();
    let failed = seen.iter().filter(|(s, _)| *s != 200).count();
    let tail = &seen[seen.len() - 1_000..];
    let v2_tail = tail.iter().filter(|(_, b)| b == "web-v2").count();
    println!(
        "shift: {} requests during the change, {failed} failed; v2 in the last 1,000: {v2_tail}",
        seen.len()
    );
    assert_eq!(failed, 0, "no request failed while the route changed");
    assert!(
        (400..=600).contains(&v2_tail),
        "v2 in the last 1,000: {v2_tail}"
    );
}

/// A rule retries what its `retry.on` names, on another endpoint: with one endpoint that
/// answers 500, `5xx` turns every answer into a 200 (retried), `gateway-error` does not
/// retry a 500, so some requests see it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_retries_what_it_names() {
    const N: usize = 40;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let node = one_node(root).await;
    let good = echo(root, "good", "127.0.0.1:0").await;
    let bad = echo_failing(root, "bad", 500).await;
    // No ejection and a generous budget: what is measured is the rule.
    let extra = format!(
        "[outlier]\nconsecutive_failures = 1000000\n[retries]\nbudget_percent = 100\nmin_retries_per_second = 1000\n\
         [[services]]\nnamespace = \"shop\"\nname = \"flaky\"\nprobe = \"/healthz\"\nendpoints = [{:?}, {:?}]\n",
        good.addr("addr"),
        bad.addr("addr")
    );
    let east = east_of(root, &node, &extra).await;
    let route = json!({"service": "shop/flaky", "rules": [
        {"name": "any", "matches": [{"path": {"type": "PathPrefix", "value": "/any"}}],
         "backends": [{}], "retry": {"attempts": 1, "on": ["5xx"], "backoff_base_ms": 1, "backoff_max_ms": 5}},
        {"name": "gw", "matches": [{"path": {"type": "PathPrefix", "value": "/gw"}}],
         "backends": [{}], "retry": {"attempts": 1, "on": ["gateway-error"]}}
    ]});
    let admin = http();
    put_route(&admin, &node, "flaky", &route).await;
    let client = plain();
    let out = east.outbound();
    let get = |path: &'static str| {
        let (client, out) = (client.clone(), out.clone());
        async move {
            client
                .get(format!("http://{out}{path}"))
                .header("host", "flaky.shop")
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    eventually(Duration::from_secs(30), "the route is applied", || async {
        let v = get_json(
            &admin,
            &format!(
                "http://{}/explain?authority=flaky.shop&path=/any",
                east.admin()
            ),
        )
        .await?;
        (v["route"]["rule"] == "any" && v["local"]["available"] == 2).then_some(())
    })
    .await;
    let mut any = Vec::new();
    let mut gw = Vec::new();
    for _ in 0..N {
        any.push(get("/any").await);
        gw.push(get("/gw").await);
    }
    println!(
        "retry.on 5xx: {} of {N} answered 200; retry.on gateway-error: {} of {N} answered 500",
        any.iter().filter(|s| **s == 200).count(),
        gw.iter().filter(|s| **s == 500).count()
    );
    assert!(any.iter().all(|s| *s == 200), "5xx is retried: {any:?}");
    assert!(gw.contains(&500), "a 500 is not a gateway error: {gw:?}");
    assert!(gw.contains(&200), "{gw:?}");
}
