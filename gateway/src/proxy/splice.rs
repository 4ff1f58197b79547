//! Moving bytes both ways between two streams — a raw TCP route or an east-west CONNECT
//! tunnel — until either side closes, or nothing moved in either direction for `idle`
//! (a side that stops reading counts as idle too: a write may wait at most `idle`).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Why a splice ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// One side closed (or failed).
    Closed,
    /// No byte in either direction for the idle time.
    Idle,
}

/// Copies `a` ⇄ `b`; returns why it stopped.
pub async fn splice<A, B>(a: &mut A, b: &mut B, idle: Duration) -> Ended
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let mut up = vec![0u8; 16 * 1024];
    let mut down = vec![0u8; 16 * 1024];
    let quiet = tokio::time::sleep(idle);
    tokio::pin!(quiet);
    // Half-close: once one direction has ended, the other may still finish.
    let (mut a_open, mut b_open) = (true, true);
    while a_open || b_open {
        tokio::select! {
            _ = &mut quiet => return Ended::Idle,
            r = ar.read(&mut up), if a_open => match r {
                Ok(0) | Err(_) => {
                    a_open = false;
                    let _ = bw.shutdown().await;
                }
                Ok(n) => {
                    // A peer that stops reading holds the write: bounded by the idle time too.
                    match tokio::time::timeout(idle, bw.write_all(&up[..n])).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return Ended::Closed,
                        Err(_) => return Ended::Idle,
                    }
                    quiet.as_mut().reset(Instant::now() + idle);
                }
            },
            r = br.read(&mut down), if b_open => match r {
                Ok(0) | Err(_) => {
                    b_open = false;
                    let _ = aw.shutdown().await;
                }
                Ok(n) => {
                    // A peer that stops reading holds the write: bounded by the idle time too.
                    match tokio::time::timeout(idle, aw.write_all(&down[..n])).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return Ended::Closed,
                        Err(_) => return Ended::Idle,
                    }
                    quiet.as_mut().reset(Instant::now() + idle);
                }
            },
        }
    }
    Ended::Closed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn copies_both_ways_and_ends_when_idle_or_closed() {
        let (mut a_outer, mut a_inner) = tokio::io::duplex(64);
        let (mut b_inner, mut b_outer) = tokio::io::duplex(64);
        let task = tokio::spawn(async move {
            splice(&mut a_inner, &mut b_inner, Duration::from_secs(5)).await
        });
        a_outer.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        b_outer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        b_outer.write_all(b"pong").await.unwrap();
        a_outer.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
        // Quiet for the idle time: the splice ends although both sides are open.
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(task.await.unwrap(), Ended::Idle);

        let (mut c_outer, mut c_inner) = tokio::io::duplex(64);
        let (mut d_inner, d_outer) = tokio::io::duplex(64);
        let task = tokio::spawn(async move {
            splice(&mut c_inner, &mut d_inner, Duration::from_secs(5)).await
        });
        drop(d_outer);
        c_outer.shutdown().await.unwrap();
        drop(c_outer);
        assert_eq!(task.await.unwrap(), Ended::Closed);
    }
}
