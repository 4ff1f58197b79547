//! `warden echo --listen A --name N`: a small HTTP backend that answers with its name, for the
//! demo, tests and benchmarks. `/healthz` answers `ok`; every other path answers
//! `{"server": N, "method": ..., "path": ...}` with header `x-echo-server: N`.

use std::convert::Infallible;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
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
}

async fn answer(name: String, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let method = req.method().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    if path == "/healthz" {
        return Response::new(Full::new(Bytes::from_static(b"ok\n")));
    }
    let text =
        serde_json::json!({"server": name, "method": method, "path": path, "request_bytes": body})
            .to_string();
    let mut r = Response::new(Full::new(Bytes::from(text)));
    if let Ok(v) = http::HeaderValue::from_str(&name) {
        r.headers_mut().insert("x-echo-server", v);
    }
    r.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
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
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let name = name.clone();
                async move { Ok::<_, Infallible>(answer(name, req).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
