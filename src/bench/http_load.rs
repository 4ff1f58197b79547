//! HTTP load for the gateway benchmark, with a pooled hyper client (HTTP/1.1 keep-alive):
//! closed loop at a concurrency (saturation throughput) and open loop at a fixed rate
//! (latency measured from each request's scheduled time, so a stall is not hidden).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::stats::Latencies;

pub type HttpClient = Client<HttpConnector, Empty<Bytes>>;

pub fn client() -> HttpClient {
    let mut c = HttpConnector::new();
    c.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1024)
        .build(c)
}

/// One GET to `addr` with `host`; returns the status (0 on transport error) and the
/// `x-echo-server` header.
pub async fn get(client: &HttpClient, addr: &str, host: &str) -> (u16, String) {
    let req = match http::Request::get(format!("http://{addr}/bench"))
        .header("host", host)
        .body(Empty::new())
    {
        Ok(r) => r,
        Err(_) => return (0, String::new()),
    };
    match tokio::time::timeout(Duration::from_secs(10), client.request(req)).await {
        Ok(Ok(resp)) => {
            let status = resp.status().as_u16();
            let server = resp
                .headers()
                .get("x-echo-server")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let _ = resp.into_body().collect().await;
            (status, server)
        }
        _ => (0, String::new()),
    }
}

/// What a run measured.
pub struct Run {
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latencies: Latencies,
}

impl Run {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

/// `concurrency` loops, one request in flight each, for `seconds`.
pub async fn closed_loop(addr: &str, host: &str, concurrency: usize, seconds: u64) -> Result<Run> {
    let client = client();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, addr, host) = (client.clone(), addr.to_string(), host.to_string());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0u64);
            while Instant::now() < deadline {
                let t = Instant::now();
                match get(&client, &addr, &host).await.0 {
                    200 => lat.push(t.elapsed()),
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    collect(tasks, started).await
}

/// Requests started at a fixed `rate` per second for `seconds`, whatever the responses do.
pub async fn open_loop(addr: &str, host: &str, rate: u64, seconds: u64) -> Result<Run> {
    let client = client();
    let started = Instant::now();
    let total = rate * seconds;
    let gap = Duration::from_secs_f64(1.0 / rate as f64);
    let lat = Arc::new(std::sync::Mutex::new(Vec::with_capacity(total as usize)));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = started + gap * i as u32;
        tokio::time::sleep_until(scheduled.into()).await;
        let (client, addr, host, lat, errors) = (
            client.clone(),
            addr.to_string(),
            host.to_string(),
            lat.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            match get(&client, &addr, &host).await.0 {
                200 => {
                    if let Ok(mut l) = lat.lock() {
                        l.push(scheduled.elapsed());
                    }
                }
                _ => {
                    errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let lat = std::mem::take(&mut *lat.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    Ok(Run {
        ok: lat.len() as u64,
        errors: errors.load(std::sync::atomic::Ordering::Relaxed),
        elapsed: started.elapsed(),
        latencies: Latencies::new(lat),
    })
}

async fn collect(
    tasks: Vec<tokio::task::JoinHandle<(Vec<Duration>, u64)>>,
    started: Instant,
) -> Result<Run> {
    let (mut all, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    Ok(Run {
        ok: all.len() as u64,
        errors,
        elapsed: started.elapsed(),
        latencies: Latencies::new(all),
    })
}
