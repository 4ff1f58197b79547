//! Observability across a gateway hop: a W3C `traceparent` is continued by each gateway (new
//! span per hop, the previous hop as parent) up to the backend, and each gateway writes one
//! access log line per request with the trace ids, clusters, endpoint, status and retries.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!("{name}="))? + name.len() + 1;
    let rest = &line[start..];
    let end = rest.find([' ', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim_matches('"'))
}

async fn access_line(log: &std::path::Path, needle: &[&str]) -> String {
    eventually(Duration::from_secs(10), "access log line", || async {
        let text = std::fs::read_to_string(log).ok()?;
        text.lines()
            .find(|l| l.contains("warden::access") && needle.iter().all(|n| l.contains(n)))
            .map(str::to_string)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traceparent_crosses_gateways_and_every_hop_logs_the_request() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let client = http();
    let node = one_node(root).await;
    let fed = vec![node.api.clone()];
    let mut east = cluster(root, "east", "r1", "z1", &fed).await;
    let _west = cluster(root, "west", "r2", "z2", &fed).await;
    // East's own backends go away: cart is served by west, across the east-west hop.
    for b in &mut east.backends {
        b.kill().await;
    }
    let out = east.outbound();
    let body: Value = eventually(Duration::from_secs(20), "cart served by west", || {
        let (client, out) = (client.clone(), out.clone());
        async move {
            let r = client
                .get(format!("http://{out}/traced"))
                .header("host", "cart.shop")
                .header("traceparent", format!("00-{TRACE}-{CALLER_SPAN}-01"))
                .send()
                .await
                .ok()?;
            let v: Value = r.json().await.ok()?;
            v["server"].as_str()?.starts_with("west").then_some(v)
        }
    })
    .await;

    // The backend sees the same trace, with west's hop as its parent.
    let seen = body["traceparent"]
        .as_str()
        .expect("backend saw a traceparent");
    let parts: Vec<&str> = seen.split('-').collect();
    assert_eq!(
        (parts[0], parts[1], parts[3]),
        ("00", TRACE, "01"),
        "{seen}"
    );
    let west_span = parts[2];
    assert_ne!(west_span, CALLER_SPAN);

    // East logged the request under the caller's trace, with the caller's span as parent.
    let e = access_line(
        &root.join("gateway-east.log"),
        &[
            &format!("trace_id={TRACE}"),
            "path=/traced",
            "dst_cluster=west",
        ],
    )
    .await;
    assert_eq!(field(&e, "parent_id"), Some(CALLER_SPAN), "{e}");
    assert_eq!(field(&e, "src_cluster"), Some("east"), "{e}");
    assert_eq!(field(&e, "listener"), Some("outbound"), "{e}");
    assert_eq!(field(&e, "status"), Some("200"), "{e}");
    assert!(
        field(&e, "retries").is_some() && field(&e, "duration_ms").is_some(),
        "{e}"
    );
    let east_span = field(&e, "span_id").expect("east span").to_string();

    // West logged the east-west hop as a child of east's span, and is the backend's parent.
    let w = access_line(
        &root.join("gateway-west.log"),
        &[&format!("trace_id={TRACE}"), "path=/traced"],
    )
    .await;
    assert_eq!(field(&w, "parent_id"), Some(east_span.as_str()), "{w}");
    let dump = |name: &str| {
        std::fs::read_to_string(root.join(name))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("warden::access"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        field(&w, "span_id"),
        Some(west_span),
        "backend saw {seen}\nwest:\n{}\neast:\n{}",
        dump("gateway-west.log"),
        dump("gateway-east.log")
    );
    assert_eq!(field(&w, "listener"), Some("eastwest"), "{w}");
    // A plaintext hop: the claimed source cluster is not verified, so it is not a label.
    assert_eq!(field(&w, "src_cluster"), Some("unknown"), "{w}");
    assert_eq!(field(&w, "dst_cluster"), Some("west"), "{w}");
    assert!(
        field(&w, "endpoint").is_some_and(|ep| ep.starts_with("127.0.0.1:")),
        "{w}"
    );

    // Without a traceparent, a gateway starts a trace.
    let r: Value = client
        .get(format!("http://{out}/untraced"))
        .header("host", "cart.shop")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tp = r["traceparent"].as_str().unwrap();
    assert!(
        tp.starts_with("00-") && tp.len() == 55 && !tp.contains(TRACE),
        "{tp}"
    );
}
