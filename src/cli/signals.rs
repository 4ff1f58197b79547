//! Waiting for the signal to stop: SIGTERM (what Kubernetes and systemd send) or SIGINT
//! (Ctrl-C). The roles drain after it.

use anyhow::{Context, Result};

/// Returns when SIGTERM or SIGINT arrives.
pub async fn terminated() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}
