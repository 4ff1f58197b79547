//! Recent requests and traces out: each gateway keeps the requests it sampled (by trace id)
//! and every 5xx in a bounded ring (`/recent` on its admin listener), reports them with its
//! lease renewals so any federation node answers `/api/v1/observability/{traces,logs}` for
//! the whole mesh, and exports the same spans over OTLP/HTTP to a collector — here a real
//! HTTP receiver decoding the protobuf export requests.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Value, json};
use support::*;

const TRACE: &str = "5af7183fb1d4cf5f9c3a2e6b4d1e0f21";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn int_attr(span: &Span, key: &str) -> Option<i64> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            any_value::Value::IntValue(v) => Some(*v),
            _ => None,
        }
    })
}

fn text_attr(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(v) => Some(v.clone()),
            _ => None,
        }
    })
}

/// An OTLP/HTTP receiver on 127.0.0.1:0: decodes every `POST /v1/traces` and keeps its spans.
async fn otlp_receiver() -> (String, Arc<Mutex<Vec<Span>>>) {
    let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
    let kept = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                let Ok(req) = ExportTraceServiceRequest::decode(body) else {
                    return axum::http::StatusCode::BAD_REQUEST;
                };
                let mut kept = kept.lock().unwrap();
                for rs in req.resource_spans {
                    for ss in rs.scope_spans {
                        kept.extend(ss.spans);
                    }
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, spans)
}

async fn traced_call(client: &reqwest::Client, out: &str) -> u16 {
    client
        .get(format!("http://{out}/hello"))
        .header("host", "cart.shop")
        .header("traceparent", format!("00-{TRACE}-{CALLER_SPAN}-01"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

async fn get_status(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = client.get(url).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Every request sampled: the collector gets the hop as a server span of the caller's trace,
/// with the caller's span as parent, the HTTP attributes and the clusters; `/recent` on the
/// gateway finds it by trace id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collector_gets_each_hop_in_the_callers_trace() {
    let tmp = tempfile::tempdir().unwrap();
    let (receiver, spans) = otlp_receiver().await;
    let extra = format!(
        "[telemetry]\nsample_per_million = 1000000\n[telemetry.otlp]\nendpoint = \"http://{receiver}\"\nflush_ms = 100\n"
    );
    let (_node, east, client) = east_serving(tmp.path(), &extra).await;
    assert_eq!(traced_call(&client, &east.outbound()).await, 200);
    let span = eventually(
        Duration::from_secs(10),
        "the hop's span exported",
        || async {
            let spans = spans.lock().unwrap();
            spans.iter().find(|s| hex(&s.trace_id) == TRACE).cloned()
        },
    )
    .await;
    assert_eq!(hex(&span.parent_span_id), CALLER_SPAN);
    assert_eq!(span.span_id.len(), 8);
    assert_ne!(hex(&span.span_id), CALLER_SPAN, "a new span per hop");
    assert_eq!(span.kind, 2, "a server span");
    assert_eq!(int_attr(&span, "http.response.status_code"), Some(200));
    assert_eq!(
        text_attr(&span, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(text_attr(&span, "url.path").as_deref(), Some("/hello"));
    assert_eq!(
        text_attr(&span, "warden.service").as_deref(),
        Some("shop/cart")
    );
    assert_eq!(
        text_attr(&span, "warden.dst_cluster").as_deref(),
        Some("east")
    );
    assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
    assert!(span.status.as_ref().is_none_or(|s| s.code != 2), "{span:?}");

    let text = metrics_text(&client, &east.admin()).await;
    assert!(
        metric_sum(&text, "warden_otlp_spans_total", &["outcome=\"exported\""]) >= 1.0,
        "{text}"
    );
    let url = format!("http://{}/recent?trace_id={TRACE}", east.admin());
    let v = get_json(&client, &url).await.unwrap();
    let records = v["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{v}");
    let r = &records[0];
    assert_eq!(
        (
            r["parent_span_id"].clone(),
            r["status"].clone(),
            r["path"].clone()
        ),
        (json!(CALLER_SPAN), json!(200), json!("/hello")),
        "{r}"
    );
    assert_eq!(r["span_id"], json!(hex(&span.span_id)));
}

/// A collector that accepts connections and never answers: the export task waits on its
/// batch, the one-span queue fills, further spans are dropped and counted, and every request
/// is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_collector_costs_spans_not_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let sink = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink_addr = sink.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = sink.accept().await {
            held.push(s);
        }
    });
    let extra = format!(
        "[telemetry]\nsample_per_million = 1000000\n[telemetry.otlp]\nendpoint = \"http://{sink_addr}\"\nqueue = 1\nmax_batch = 1\nflush_ms = 10\ntimeout_ms = 60000\n"
    );
    let (_node, east, client) = east_serving(tmp.path(), &extra).await;
    let out = east.outbound();
    for _ in 0..40 {
        assert_eq!(call(&client, &out).await.0, 200);
    }
    let text = metrics_text(&client, &east.admin()).await;
    let dropped = metric_sum(
        &text,
        "warden_otlp_spans_total",
        &["outcome=\"dropped_queue_full\""],
    );
    assert!(dropped >= 30.0, "dropped {dropped}: {text}");
    assert_eq!(
        metric_sum(&text, "warden_otlp_spans_total", &["outcome=\"exported\""]),
        0.0
    );
    held.abort();
}

/// With sampling off the ring keeps no successful request but still every failed one; the
/// admin endpoint refuses bad parameters naming them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_requests_are_kept_when_nothing_is_sampled() {
    let tmp = tempfile::tempdir().unwrap();
    let (_node, mut east, client) =
        east_serving(tmp.path(), "[telemetry]\nsample_per_million = 0\n").await;
    let out = east.outbound();
    for _ in 0..10 {
        assert_eq!(call(&client, &out).await.0, 200);
    }
    let recent = format!("http://{}/recent", east.admin());
    let v = get_json(&client, &recent).await.unwrap();
    assert!(
        v["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"].as_u64().unwrap() >= 500),
        "no 2xx is kept unsampled: {v}"
    );
    for b in &mut east.backends {
        b.kill().await;
    }
    let url = format!("{recent}?status=5xx&service=shop/cart&limit=5");
    let v = eventually(Duration::from_secs(20), "failed requests kept", || async {
        call(&client, &out).await;
        let v = get_json(&client, &url).await?;
        (v["records"].as_array()?.len() == 5).then_some(v)
    })
    .await;
    for r in v["records"].as_array().unwrap() {
        assert!(r["status"].as_u64().unwrap() >= 500, "{r}");
        assert_eq!(r["service"], "shop/cart");
        assert_eq!(r["trace_id"].as_str().unwrap().len(), 32);
    }
    let newest: Vec<u64> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["at_ms"].as_u64().unwrap())
        .collect();
    assert!(newest.windows(2).all(|w| w[0] >= w[1]), "newest first");
    for (query, field) in [
        ("status=7xx", "status"),
        ("limit=0", "limit"),
        ("bogus=1", "bogus"),
    ] {
        let (s, e) = get_status(&client, &format!("{recent}?{query}")).await;
        assert_eq!((s, e["error"]["field"].clone()), (400, json!(field)), "{e}");
    }
}

/// Gateways report what they recorded with their renewals (every 5 s at most); any node
/// answers for the whole mesh: here east renews through node 0 and node 1 finds the trace
/// and the failed requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_finds_a_trace_and_the_failed_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = three_nodes(tmp.path()).await;
    let mut east = east_of(
        tmp.path(),
        &nodes[0],
        "[telemetry]\nsample_per_million = 1000000\n",
    )
    .await;
    let client = http();
    let out = east.outbound();
    eventually(Duration::from_secs(30), "cart is served", || async {
        (call(&client, &out).await.0 == 200).then_some(())
    })
    .await;
    assert_eq!(traced_call(&client, &out).await, 200);
    let url = format!(
        "{}?trace_id={TRACE}",
        nodes[1].url(paths::OBSERVABILITY_TRACES)
    );
    let v = eventually(Duration::from_secs(30), "the trace reported", || async {
        let v = get_json(&client, &url).await?;
        (!v["records"].as_array()?.is_empty()).then_some(v)
    })
    .await;
    assert_eq!(
        (v["nodes_asked"].clone(), v["nodes_answered"].clone()),
        (json!(3), json!(3)),
        "{v}"
    );
    let r = &v["records"][0];
    assert_eq!(
        (
            r["reported_by"].clone(),
            r["trace_id"].clone(),
            r["parent_span_id"].clone(),
            r["status"].clone()
        ),
        (json!("east"), json!(TRACE), json!(CALLER_SPAN), json!(200)),
        "{r}"
    );
    // Node 1 holds no report of its own: east renews through node 0.
    let local = get_json(&client, &format!("{url}&scope=local"))
        .await
        .unwrap();
    assert_eq!(local["records"], json!([]), "{local}");
    let (ok, stdout, err) = mesh_cli(&nodes[2], &["traces", TRACE]).await;
    assert!(ok, "{err}");
    assert!(
        stdout.contains(" east outbound GET shop/cart /hello -> 200 ")
            && stdout.contains(&format!("parent={CALLER_SPAN}"))
            && stdout.contains("of 3 node(s) answered"),
        "{stdout}"
    );

    for b in &mut east.backends {
        b.kill().await;
    }
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let logs = format!(
        "{}?status=5xx&service=shop/cart&cluster=east&since={since}",
        nodes[2].url(paths::OBSERVABILITY_LOGS)
    );
    let v = eventually(
        Duration::from_secs(30),
        "failed requests reported",
        || async {
            call(&client, &out).await;
            let v = get_json(&client, &logs).await?;
            (!v["records"].as_array()?.is_empty()).then_some(v)
        },
    )
    .await;
    for r in v["records"].as_array().unwrap() {
        assert!(r["status"].as_u64().unwrap() >= 500, "{r}");
        assert!(r["at_ms"].as_u64().unwrap() as u128 >= since, "{r}");
        assert_eq!(r["reported_by"], "east");
    }
    let (ok, stdout, err) = mesh_cli(
        &nodes[2],
        &[
            "logs",
            "--status",
            "5xx",
            "--since",
            "2m",
            "--cluster",
            "east",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(" shop/cart "))
        .collect();
    assert!(!lines.is_empty(), "{stdout}");
    assert!(lines.iter().all(|l| l.contains(" -> 5")), "{stdout}");
    let (ok, _, err) = mesh_cli(&nodes[2], &["logs", "--status", "fivexx"]).await;
    assert!(!ok && err.contains("--status"), "{err}");
    // Signals are sampled every 10 s: wait for east's report.
    eventually(Duration::from_secs(40), "signals on the CLI", || async {
        let (ok, out, _) = mesh_cli(&nodes[2], &["signals", "--service", "shop/cart"]).await;
        (ok && out.contains("shop/cart") && out.contains("window 60s")).then_some(())
    })
    .await;

    let traces = nodes[1].url(paths::OBSERVABILITY_TRACES);
    let logs = nodes[1].url(paths::OBSERVABILITY_LOGS);
    for (url, field) in [
        (traces.clone(), "trace_id"),
        (format!("{traces}?trace_id=xyz"), "trace_id"),
        (format!("{logs}?status=6xx"), "status"),
        (format!("{logs}?status=99"), "status"),
        (format!("{logs}?since=yesterday"), "since"),
        (format!("{logs}?limit=0"), "limit"),
        (format!("{logs}?limit=1001"), "limit"),
        (format!("{logs}?cluster=Not_A_Name"), "cluster"),
        (format!("{logs}?service=nope"), "service"),
        (format!("{logs}?scope=everywhere"), "scope"),
    ] {
        let (s, e) = get_status(&client, &url).await;
        assert_eq!(
            (s, e["error"]["field"].clone()),
            (400, json!(field)),
            "{url}: {e}"
        );
    }
}

fn record(i: usize) -> Value {
    json!({
        "trace_id": format!("{:032x}", i + 1),
        "span_id": format!("{:016x}", i + 1),
        "at_ms": 1_700_000_000_000u64,
        "duration_ms": 1.5,
        "listener": "outbound",
        "method": "GET",
        "path": "/",
        "service": "shop/cart",
        "src_cluster": "east",
        "dst_cluster": "east",
        "status": 503,
        "retries": 0
    })
}

/// A report beyond its bounds is refused naming the field, and the renewal with it writes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_or_malformed_reports_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let node = one_node(tmp.path()).await;
    let client = http();
    assert_eq!(register(&client, &node, "east").await, Some(201));
    let east = new_credential(&client, &node, "east").await;
    let mut bad_id = record(0);
    bad_id["trace_id"] = json!("not-hex");
    let mut long_path = record(1);
    long_path["path"] = json!("/".repeat(4096));
    let cases = [
        (
            json!({"records": (0..65).map(record).collect::<Vec<_>>()}),
            "recent.records",
        ),
        (
            json!({"records": [record(0), bad_id]}),
            "recent.records[1].trace_id",
        ),
        (json!({"records": [long_path]}), "recent.records[0].path"),
    ];
    for (recent, field) in cases {
        let body = json!({"ttl_ms": 5000, "recent": recent});
        let (s, e) = renew_as(&node, "east", &east, &body).await;
        assert_eq!((s, e["error"]["field"].clone()), (400, json!(field)), "{e}");
    }
    let leases = get_json(&client, &node.url(paths::LEASES)).await.unwrap();
    assert_eq!(leases["items"], json!([]), "no lease was written: {leases}");
    let (s, v) = get_status(
        &client,
        &format!("{}?cluster=east", node.url(paths::OBSERVABILITY_LOGS)),
    )
    .await;
    assert_eq!((s, v["records"].clone()), (200, json!([])), "{v}");
    // A well-formed report is kept and answered.
    let body = json!({"ttl_ms": 5000, "recent": {"records": [record(7)]}});
    assert_eq!(renew_as(&node, "east", &east, &body).await.0, 200);
    let (s, v) = get_status(
        &client,
        &format!("{}?cluster=east", node.url(paths::OBSERVABILITY_LOGS)),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["records"][0]["trace_id"], json!(format!("{:032x}", 8)));
    // A removed cluster's records go with it.
    let r = client
        .delete(node.url(&paths::cluster("east")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let v = get_json(&client, &node.url(paths::OBSERVABILITY_LOGS))
        .await
        .unwrap();
    assert_eq!(v["records"], json!([]), "{v}");
}
