//! The audit log: who changed what, when, and the revision the change got. The API's auth
//! layer runs each write inside [`scope`] with the caller ([`Actor`]); the node's write
//! wraps the command in [`crate::command::Command::Audited`], so the record is replicated
//! and applied with the change itself (a record exists exactly when the change does). The
//! last [`AUDIT_LEN`] records are kept in the state. Gateways' own heartbeats — lease
//! renewals and withdrawals, and the exports a gateway publishes with its cluster's
//! credential — are not recorded: they are the mesh reporting on itself, at up to thousands
//! a second, and would push every operator's change out of the log.

use std::future::Future;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::command::Command;

/// Records kept.
pub const AUDIT_LEN: usize = 10_000;

/// Who made a request and what it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// `admin-token`, an admin SPIFFE ID, `cluster:<name>` (its credential) or `join-token`.
    pub who: String,
    /// `METHOD /path` of the request.
    pub what: String,
}

impl Actor {
    fn is_cluster(&self) -> bool {
        self.who.starts_with("cluster:")
    }
}

/// One change, as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditRecord {
    /// The store revision the change got (the last one, when a write made several).
    pub revision: u64,
    /// When it was written (ms since the epoch, the proposing node's clock).
    pub at: u64,
    pub who: String,
    pub what: String,
}

tokio::task_local! {
    static ACTOR: Actor;
}

/// Runs `f` (a request's handling) on behalf of `actor`.
pub async fn scope<F: Future>(actor: Actor, f: F) -> F::Output {
    ACTOR.scope(actor, f).await
}

/// `cmd` wrapped with the current request's actor, when it is one the log records.
pub fn wrap(cmd: Command, at: u64) -> Command {
    let Ok(actor) = ACTOR.try_with(Clone::clone) else {
        return cmd;
    };
    let heartbeat = matches!(
        cmd,
        Command::RenewLease { .. }
            | Command::RenewLeaseWithLoad { .. }
            | Command::WithdrawLease { .. }
    ) || (actor.is_cluster()
        && matches!(
            cmd,
            Command::ExportService { .. }
                | Command::ExportServiceWithSubsets { .. }
                | Command::ExportServiceTo { .. }
                | Command::UnexportService { .. }
        ));
    if heartbeat {
        return cmd;
    }
    Command::Audited {
        who: actor.who,
        what: actor.what,
        at,
        command: Box::new(cmd),
    }
}
