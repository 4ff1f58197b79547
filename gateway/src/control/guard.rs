//! Supervision helpers shared by the actors.
//!
//! actix 0.13 does not catch panics: a panicking handler would close the mailbox without the
//! supervisor noticing. So handler bodies run inside [`guarded`], which catches the panic at
//! the handler edge and stops the actor; the `Supervisor` then calls `restarting` and starts
//! it again. Long-running work runs in spawned tasks whose end (error or panic) likewise stops
//! the actor. Restarts back off exponentially and are counted per actor.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use actix::{Actor, ActorContext, Context, Message};

/// Test-only: makes the receiving actor panic inside a handler.
#[derive(Message)]
#[rtype(result = "()")]
pub struct InjectPanic;

/// Runs `f`; if it panics, logs it and stops the actor so the supervisor restarts it.
pub fn guarded<A, R>(actor: &str, ctx: &mut Context<A>, f: impl FnOnce() -> R) -> Option<R>
where
    A: Actor<Context = Context<A>>,
{
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(actor, panic = %msg, "actor handler panicked; restarting");
            ctx.stop();
            None
        }
    }
}

/// Runs an actor's long-lived loop as a spawned task, after the restart backoff; when the task
/// ends (error or panic, not an abort) the actor stops, so the supervisor restarts it. Returns
/// the handle `restarting` uses to abort the previous incarnation's loop.
pub fn spawn_supervised<A, F>(
    actor: &'static str,
    restarts: u32,
    ctx: &mut Context<A>,
    work: F,
) -> tokio::task::AbortHandle
where
    A: Actor<Context = Context<A>>,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    use actix::{ActorFutureExt, AsyncContext};
    let delay = backoff(restarts);
    let task = tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        work.await;
    });
    let abort = task.abort_handle();
    ctx.spawn(
        actix::fut::wrap_future::<_, A>(task).map(move |res, _, ctx: &mut Context<A>| {
            if let Err(e) = res
                && !e.is_cancelled()
            {
                tracing::error!(actor, error = %e, "actor loop died; restarting");
            }
            ctx.stop();
        }),
    );
    abort
}

/// Bookkeeping shared by every `Supervised::restarting`: abort the old loop, count, log.
pub fn on_restart(
    actor: &'static str,
    restarts: &mut u32,
    task: &mut Option<tokio::task::AbortHandle>,
    metrics: &crate::metrics::Metrics,
) {
    if let Some(t) = task.take() {
        t.abort();
    }
    *restarts += 1;
    metrics.actor_restarts.with_label_values(&[actor]).inc();
    tracing::warn!(actor, restarts = *restarts, "actor restarting");
}

/// Delay before the n-th restart: 100 ms doubling, at most 5 s.
pub fn backoff(restarts: u32) -> Duration {
    if restarts == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis((100u64 << (restarts - 1).min(6)).min(5_000))
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_doubles_and_caps() {
        use super::backoff;
        assert_eq!(backoff(0).as_millis(), 0);
        assert_eq!(backoff(1).as_millis(), 100);
        assert_eq!(backoff(3).as_millis(), 400);
        assert_eq!(backoff(30).as_millis(), 5_000);
    }
}
