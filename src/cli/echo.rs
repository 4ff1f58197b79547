//! `warden echo --listen A --name N`: a small HTTP backend that answers with its name, for the
//! demo, tests and benchmarks. `/healthz` answers `ok`; every other path answers
//! `{"server": N, "method": ..., "path": ...}` with header `x-echo-server: N`. A request with
//! `content-type: application/grpc` gets the answer as one data frame followed by gRPC-style
//! trailers (`grpc-status: 0`), so proxies can be checked for trailer pass-through. A query
//! `delay_ms=N` (at most 60 000) makes it answer N ms late: a slow request, for drain tests.
//! A query `headers=1` adds the request's headers (`"headers": {name: value}`), so tests can
//! see what a proxy forwarded. `GET /_echo/count` answers how many other requests reached it,
//! probes (`/healthz`) not counted (attack tests count what got past a proxy). With `--fail-status S` every answer but
//! `/healthz`'s has status S: an endpoint that passes its probes and fails its requests, for
//! retry tests. A WebSocket upgrade gets a WebSocket echo ([`super::echo_ws`]).

use std::convert::Infallible;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};

#[derive(clap::Args)]
pub struct EchoArgs {
    /// Listen address; port 0 picks a free port (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Name to answer with (e.g. the cluster).
    #[arg(long)]
    name: String,
    /// Answer every request but `/healthz` with this status.
    #[arg(long)]
    fail_status: Option<u16>,
}

fn full(b: Bytes) -> BoxBody<Bytes, Infallible> {
    Full::new(b).boxed()
}

/// Requests answered so far, `/_echo/count` and `/healthz` not included.
static SEEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

async fn answer(
    name: String,
    req: Request<hyper::body::Incoming>,
) -> Response<BoxBody<Bytes, Infallible>> {
    let path = req.uri().path().to_string();
    if path == "/_echo/count" {
        let n = SEEN.load(std::sync::atomic::Ordering::Relaxed);
        return Response::new(full(Bytes::from(n.to_string())));
    }
    if path != "/healthz" {
        SEEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    if let Some(key) = super::echo_ws::key_of(&req) {
        return super::echo_ws::accept(name, &key, req);
    }
    let method = req.method().to_string();
    let delay_ms = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("delay_ms="))
        .and_then(|v| v.parse::<u64>().ok())
        .map(|d| d.min(60_000));
    // Echoed so a caller can see the trace context the last hop sent.
    let traceparent = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let headers = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .any(|kv| kv == "headers=1")
        .then(|| {
            req.headers()
                .iter()
                .map(|(k, v)| {
                    let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                    (k.as_str().to_string(), serde_json::Value::String(v))
                })
                .collect::<serde_json::Map<_, _>>()
        });
    let grpc = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    let len = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    if path == "/healthz" {
        return Response::new(full(Bytes::from_static(b"ok\n")));
    }
    if let Some(d) = delay_ms {
        tokio::time::sleep(std::time::Duration::from_millis(d)).await;
    }
    let mut answer = serde_json::json!({"server": name, "method": method, "path": path, "request_bytes": len, "traceparent": traceparent});
    if let Some(h) = headers {
        answer["headers"] = serde_json::Value::Object(h);
    }
    let text = answer.to_string();
    let body = if grpc {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        trailers.insert("grpc-message", http::HeaderValue::from_static("ok"));
        let frames = vec![
            Ok::<_, Infallible>(Frame::data(Bytes::from(text))),
            Ok(Frame::trailers(trailers)),
        ];
        StreamBody::new(futures::stream::iter(frames)).boxed()
    } else {
        full(Bytes::from(text))
    };
    let mut r = Response::new(body);
    if let Ok(v) = http::HeaderValue::from_str(&name) {
        r.headers_mut().insert("x-echo-server", v);
    }
    let ct = if grpc {
        "application/grpc"
    } else {
        "application/json"
    };
    r.headers_mut()
        .insert("content-type", http::HeaderValue::from_static(ct));
    r
}

pub async fn run(args: EchoArgs) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    println!(
        "{}",
        serde_json::json!({"event": "listening", "addr": listener.local_addr()?.to_string()})
    );
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let name = args.name.clone();
        let fail = args
            .fail_status
            .and_then(|s| http::StatusCode::from_u16(s).ok());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let name = name.clone();
                async move {
                    let healthz = req.uri().path() == "/healthz";
                    let mut resp = answer(name, req).await;
                    if let (Some(s), false) = (fail, healthz) {
                        *resp.status_mut() = s;
                    }
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                .await;
        });
    }
}
