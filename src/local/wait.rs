//! Waiting for local processes to reach a state, and reading their admin endpoints.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::Value;

/// GET `http://<admin><path>` as JSON; `None` on any failure.
pub async fn admin_json(client: &reqwest::Client, admin: &str, path: &str) -> Option<Value> {
    client
        .get(format!("http://{admin}{path}"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// Polls `f` every 20 ms until it returns true, or fails after `patience`.
pub async fn wait_for<F, Fut>(what: &str, patience: Duration, mut f: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        if f().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("timed out waiting for {what}")
}
