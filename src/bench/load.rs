//! Closed-loop HTTP write load: N writers, one request at a time each, for a fixed time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::stats::Latencies;

/// What one load run measured.
pub struct Load {
    pub writes: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latencies: Latencies,
}

impl Load {
    /// Successful writes per second.
    pub fn rate(&self) -> f64 {
        self.writes as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `concurrency` writers for `seconds`; `make(client, writer, i)` builds each request.
/// A request counts when it answers 2xx; anything else is an error.
pub async fn load<F>(concurrency: usize, seconds: u64, make: F) -> Result<Load>
where
    F: Fn(&reqwest::Client, usize, u64) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let make = Arc::new(make);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (http, make) = (http.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut i = 0u64;
            while Instant::now() < deadline {
                let req = make(&http, w, i);
                i += 1;
                let t = Instant::now();
                match req.send().await {
                    Ok(r) if r.status().is_success() => {
                        // Read the body so the connection is reusable and the write is complete.
                        let _ = r.bytes().await;
                        lat.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await?;
        all.extend(lat);
        errors += e;
    }
    Ok(Load {
        writes: all.len() as u64,
        errors,
        elapsed: started.elapsed(),
        latencies: Latencies::new(all),
    })
}

pub fn print_header() {
    println!(
        "| {:<36} | {:>9} | {:>8} | {:>8} | {:>8} | {:>7} | {:>6} |",
        "row", "writes/s", "p50 ms", "p99 ms", "p999 ms", "writes", "errors"
    );
    println!(
        "|{:-<38}|{:->11}|{:->10}|{:->10}|{:->10}|{:->9}|{:->8}|",
        "", "", "", "", "", "", ""
    );
}

pub fn print_row(label: &str, l: &Load) {
    println!(
        "| {label:<36} | {:>9.0} | {:>8.2} | {:>8.2} | {:>8.2} | {:>7} | {:>6} |",
        l.rate(),
        l.latencies.ms(0.50),
        l.latencies.ms(0.99),
        l.latencies.ms(0.999),
        l.latencies.len(),
        l.errors
    );
}
