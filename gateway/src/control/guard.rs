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
