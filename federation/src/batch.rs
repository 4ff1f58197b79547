//! Group commit above openraft: API writes that arrive while earlier ones are being
//! committed are proposed together, as one [`Command::Batch`] log entry.
//!
//! openraft 0.9 appends each proposal to the log and waits for its fsync before it takes
//! the next one, so one entry per write caps a leader at one write per fsync however many
//! callers wait. The [`WriteBatcher`] keeps up to [`IN_FLIGHT`] proposals in flight (so the
//! next is appended while the last replicates) and, when all are, lets writes queue; the next
//! proposal takes every queued write, up to [`MAX_WRITES`] and a quarter of the Raft RPC
//! bound in encoded bytes. Each caller gets its own command's result and the entry's log
//! index, exactly as if its write had been an entry of its own: the state machine applies a
//! batch's commands in order, one revision each.
//!
//! A node from before batching cannot decode a batch entry, so a batch is proposed only once
//! every other voter has said, on its Raft RPC answers, that it decodes one
//! ([`crate::network::FEATURES_HEADER`]); until then (during a rolling upgrade) every write
//! is its own entry.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};
use warden_raft_store::codec;

use crate::command::{Command, CommandResult};
use crate::network::{Feature, RpcClient};
use crate::rpc::ForwardResponse;
use crate::types::{NodeId, Raft};

/// Proposals in flight at once.
pub const IN_FLIGHT: usize = 4;
/// Writes one batch holds at most.
pub const MAX_WRITES: usize = 256;
/// Writes waiting for a proposal at most; past it, callers wait to queue.
const QUEUE: usize = 4096;

struct Pending {
    command: Command,
    bytes: usize,
    reply: oneshot::Sender<ForwardResponse>,
}

/// The handle writes go through (cheap to clone).
#[derive(Clone)]
pub struct WriteBatcher {
    tx: mpsc::Sender<Pending>,
    /// Set while this leader hands leadership over ([`crate::handover`]): writes are
    /// answered "not the leader" (the sender retries and reaches the next leader) so this
    /// node's log stays where its successor's is.
    held: Arc<AtomicBool>,
    /// One permit per proposal in flight ([`IN_FLIGHT`]).
    slots: Arc<Semaphore>,
}

/// What the proposing task needs.
pub struct Proposer {
    pub raft: Raft,
    pub rpc: RpcClient,
    pub id: NodeId,
    /// `warden_raft_write_proposals_total` and `warden_raft_proposed_writes_total`.
    pub proposals: prometheus::IntCounter,
    pub proposed_writes: prometheus::IntCounter,
    /// Encoded bytes one batch holds at most.
    pub max_bytes: usize,
}

impl WriteBatcher {
    /// Starts the proposing task; it ends when every handle is gone.
    pub fn start(p: Proposer) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let held = Arc::new(AtomicBool::new(false));
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        tokio::spawn(run(p, rx, held.clone(), slots.clone()));
        Self { tx, held, slots }
    }

    /// Stops proposing: from now on every write, queued or new, is answered "not the
    /// leader". For a leader about to hand over and stop; there is no way back. Returns once
    /// the proposals already in flight have been answered (committed, or refused), so the
    /// log grows no further; or when `within` has passed.
    pub async fn hold(&self, within: Duration) {
        self.held.store(true, Ordering::SeqCst);
        // Every permit free means no proposal is in flight, and none starts after: the
        // proposing task checks `held` after taking its permit. The permits go back at once.
        let all = u32::try_from(IN_FLIGHT).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(within, self.slots.acquire_many(all)).await;
    }

    /// Proposes `command` (with others queued at the same time) and answers once it is
    /// committed and applied on this node, or why not.
    pub async fn write(&self, command: Command) -> ForwardResponse {
        // The size only bounds a batch; a command that does not encode is refused when its
        // entry is encoded, as before.
        if self.held.load(Ordering::SeqCst) {
            return ForwardResponse::not_leader(None, None);
        }
        let bytes = codec::encode(&command).map(|b| b.len()).unwrap_or(0);
        let (reply, answer) = oneshot::channel();
        let stopped = || ForwardResponse::fatal("the write proposer has stopped");
        if self
            .tx
            .send(Pending {
                command,
                bytes,
                reply,
            })
            .await
            .is_err()
        {
            return stopped();
        }
        answer.await.unwrap_or_else(|_| stopped())
    }
}

async fn run(
    p: Proposer,
    mut rx: mpsc::Receiver<Pending>,
    held: Arc<AtomicBool>,
    slots: Arc<Semaphore>,
) {
    let p = Arc::new(p);
    let mut carried: Option<Pending> = None;
    loop {
        // The first write, then a permit: a permit is only held while a proposal is being
        // made ([`WriteBatcher::hold`] waits for them all to be free). Writes arriving while
        // all permits are taken join the next batch.
        let first = match carried.take() {
            Some(w) => w,
            None => match rx.recv().await {
                Some(w) => w,
                None => return,
            },
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut bytes = first.bytes;
        let mut batch = vec![first];
        while batch.len() < MAX_WRITES {
            match rx.try_recv() {
                Ok(w) if bytes + w.bytes <= p.max_bytes => {
                    bytes += w.bytes;
                    batch.push(w);
                }
                Ok(w) => {
                    carried = Some(w);
                    break;
                }
                Err(_) => break,
            }
        }
        if held.load(Ordering::SeqCst) {
            for w in batch {
                let _ = w.reply.send(ForwardResponse::not_leader(None, None));
            }
            continue;
        }
        let p = p.clone();
        tokio::spawn(async move {
            propose(&p, batch).await;
            drop(slot);
        });
    }
}

/// Whether every other voter has said it decodes entries of kind `f`.
fn voters_decode(p: &Proposer, f: Feature) -> bool {
    let metrics = p.raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership();
    let voters: Vec<_> = membership.voter_ids().filter(|v| *v != p.id).collect();
    voters.iter().all(|v| {
        membership
            .get_node(v)
            .is_some_and(|n| p.rpc.decodes(&n.raft_addr, f))
    })
}

/// Whether this node leads now (a follower's proposal is refused and forwarded to the
/// leader, which decides with what it knows of the voters).
fn leads(p: &Proposer) -> bool {
    p.raft.metrics().borrow().current_leader == Some(p.id)
}

/// A record of a membership change, which a voter of an older build could not decode.
fn records_member_change(c: &Command) -> bool {
    match c {
        Command::RecordMemberChange { .. } => true,
        Command::Audited { command, .. } => records_member_change(command),
        _ => false,
    }
}

async fn propose(p: &Proposer, mut batch: Vec<Pending>) {
    // During a rolling upgrade a record of a membership change is not proposed (an older
    // voter could not apply it, and the log would stall behind it): it is answered as
    // applied with nothing changed, and the API says the change was not recorded.
    if batch.iter().any(|w| records_member_change(&w.command))
        && leads(p)
        && !voters_decode(p, Feature::MemberChange)
    {
        let (skipped, kept): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .partition(|w| records_member_change(&w.command));
        for w in skipped {
            let _ = w
                .reply
                .send(ForwardResponse::Written(CommandResult::Empty, 0));
        }
        batch = kept;
        if batch.is_empty() {
            return;
        }
    }
    if batch.len() > 1 && !voters_decode(p, Feature::Batch) {
        // One entry each, proposed concurrently as before batching.
        let each = batch.drain(..).map(|w| async move {
            let answer = propose_one(p, w.command).await;
            let _ = w.reply.send(answer);
        });
        futures::future::join_all(each).await;
        return;
    }
    p.proposals.inc();
    p.proposed_writes.inc_by(batch.len() as u64);
    if batch.len() == 1 {
        let w = batch.remove(0);
        let _ = w.reply.send(write_entry(p, w.command).await);
        return;
    }
    let (commands, replies): (Vec<_>, Vec<_>) =
        batch.into_iter().map(|w| (w.command, w.reply)).unzip();
    let n = commands.len();
    match write_entry(p, Command::Batch(commands)).await {
        ForwardResponse::Written(CommandResult::Batch(results), index) if results.len() == n => {
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(ForwardResponse::Written(result, index));
            }
        }
        ForwardResponse::Written(other, _) => {
            // A batch is always answered with one result per command; anything else is a bug.
            tracing::error!(?other, "a batch entry was answered without its results");
            for reply in replies {
                let _ = reply.send(ForwardResponse::fatal("a batch was answered wrongly"));
            }
        }
        answer => {
            for reply in replies {
                let _ = reply.send(answer.clone());
            }
        }
    }
}

async fn propose_one(p: &Proposer, command: Command) -> ForwardResponse {
    p.proposals.inc();
    p.proposed_writes.inc();
    write_entry(p, command).await
}

/// Proposes one entry and waits until it is committed and applied here.
async fn write_entry(p: &Proposer, command: Command) -> ForwardResponse {
    match p.raft.client_write(command).await {
        Ok(resp) => ForwardResponse::Written(resp.data, resp.log_id.index),
        Err(e) => ForwardResponse::write_refused(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member_change::MemberChange;
    use crate::stored::Stored;

    #[test]
    fn a_membership_record_is_known_however_it_is_wrapped() {
        let record = Command::RecordMemberChange {
            change: Stored(MemberChange::Removed { id: 3 }),
            at: 1,
        };
        assert!(records_member_change(&record));
        let audited = Command::Audited {
            who: "admin-token".into(),
            what: "DELETE /api/v1/federation/members/3".into(),
            at: 1,
            command: Box::new(record),
        };
        assert!(records_member_change(&audited));
        let lease = Command::RenewLease {
            lease: crate::model::Lease {
                cluster: "east".into(),
                renewed_at: 1,
                ttl_ms: 5000,
                trust_versions: Default::default(),
            },
        };
        assert!(!records_member_change(&lease));
    }
}
