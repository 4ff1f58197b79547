//! Traffic and security policies share one CRUD: created once (409 after), replaced by PUT, read,
//! listed, deleted; bad input answers 400 naming the field and changes nothing.

mod support;

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
