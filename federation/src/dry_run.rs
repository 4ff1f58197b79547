//! `?dry_run=true` for every write: while a request runs inside [`scope`], the node's
//! [`crate::node::FederationNode::write`] applies its command to a copy of the state and
//! answers what the write would have answered (the revision it would have got, or the
//! rejection: 404, 409), proposing nothing. The API sets the scope for any non-GET request
//! with `dry_run=true` (`api/dry.rs`); the few writes that do not go through `write`
//! (membership changes) ask [`active`] themselves.

use std::future::Future;

tokio::task_local! {
    static DRY_RUN: bool;
}

/// Whether the current request is a dry run.
pub fn active() -> bool {
    DRY_RUN.try_with(|d| *d).unwrap_or(false)
}

/// Runs `f` as a dry run.
pub async fn scope<F: Future>(f: F) -> F::Output {
    DRY_RUN.scope(true, f).await
}
