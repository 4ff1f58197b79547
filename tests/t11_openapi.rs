//! A running node serves its OpenAPI document, and its answers match it: every parameterless
//! GET answers with a documented status, and errors have the documented shape.

mod support;

use serde_json::Value;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_serves_its_openapi_document_and_answers_as_documented() {
    let tmp = tempfile::tempdir().unwrap();
    let node = one_node(tmp.path()).await;
    let client = http();
    let doc: Value = client
        .get(node.url(paths::OPENAPI))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(doc, file, "the served document is docs/openapi.json");
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let Some(get) = ops.get("get") else { continue };
        if path.contains('{') || path == paths::WATCH {
            continue;
        }
        let r = client.get(node.url(path)).send().await.unwrap();
        let status = r.status().as_u16().to_string();
        assert!(
            get["responses"].get(&status).is_some(),
            "GET {path} answered {status}, not documented"
        );
    }
    // A documented error: 404 with ErrorBody's shape.
    let r = client
        .get(node.url(&paths::cluster("nope")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "not_found");
    assert!(e["error"]["message"].is_string());
}
