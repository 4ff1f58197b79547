//! The 408 a plaintext HTTP/1.1 client gets when its request head does not arrive within the
//! header read timeout. hyper enforces the timeout but only closes the connection; this
//! wrapper around the accepted socket remembers whether bytes arrived since the last response
//! was written (a head was under way) and, once the server saw the timeout, answers
//! `408 Request Timeout` as the socket is closed. An idle keep-alive connection that simply
//! sent nothing more is closed without a word, as HAProxy and nginx do: a 408 there could
//! cross a request the client is sending at that moment.
//!
//! TLS listeners get no 408 (the bytes would have to go through the TLS session, which hyper
//! owns); their connections are closed at the timeout all the same.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// What is written before the socket closes.
const RESPONSE_408: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

/// The connection's side of the bookkeeping, kept by whoever serves it.
#[derive(Debug, Default)]
pub struct HeadState {
    /// Bytes were read since the last write: a request head was under way.
    read_since_write: AtomicBool,
    /// The server gave up waiting for that head: answer 408 on close.
    answer: AtomicBool,
}

impl HeadState {
    /// Looks at how the connection ended; `true` (and a 408 on close) when it was hyper's
    /// header read timeout with a head under way.
    pub fn ended_with(&self, err: &(dyn std::error::Error + 'static)) -> bool {
        let timed_out = err
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_timeout);
        let answer = timed_out && self.read_since_write.load(Ordering::Relaxed);
        self.answer.store(answer, Ordering::Relaxed);
        answer
    }
}

/// An accepted plaintext socket that can answer 408 as it closes.
#[derive(Debug)]
pub struct HeadWatch {
    inner: TcpStream,
    state: Arc<HeadState>,
}

impl HeadWatch {
    pub fn new(inner: TcpStream) -> (Self, Arc<HeadState>) {
        let state = Arc::new(HeadState::default());
        (
            Self {
                inner,
                state: state.clone(),
            },
            state,
        )
    }
}

impl Drop for HeadWatch {
    fn drop(&mut self) {
        if self.state.answer.load(Ordering::Relaxed) {
            // Best effort: a full send buffer means a client that does not read anyway.
            let _ = self.inner.try_write(RESPONSE_408);
        }
    }
}

impl AsyncRead for HeadWatch {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.read_since_write.store(true, Ordering::Relaxed);
        }
        r
    }
}

impl HeadWatch {
    fn wrote(&self, r: &Poll<io::Result<usize>>) {
        if matches!(r, Poll::Ready(Ok(n)) if *n > 0) {
            self.state.read_since_write.store(false, Ordering::Relaxed);
        }
    }
}

impl AsyncWrite for HeadWatch {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(&r);
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;

    /// Serves one connection with a 200 ms header timeout; returns what the client read.
    async fn exchange(send: &'static [u8]) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let (io, state) = HeadWatch::new(tcp);
            let limits = crate::limits::ServerLimits {
                header_read_timeout: Duration::from_millis(200),
                ..Default::default()
            };
            let svc = hyper::service::service_fn(|_req| async {
                Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
            });
            let builder = limits.builder();
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(io), svc);
            tokio::pin!(conn);
            if let Err(e) = conn.as_mut().await {
                state.ended_with(&*e);
            }
        });
        let mut c = TcpStream::connect(addr).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut c, send)
            .await
            .unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut out))
            .await
            .expect("the server closed the connection")
            .unwrap();
        server.await.unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn a_partial_head_gets_408_and_an_idle_keep_alive_closes_quietly() {
        let got = exchange(b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: aaa").await;
        assert!(got.starts_with("HTTP/1.1 408 "), "{got:?}");
        // A whole request is answered; then the idle connection closes without a 408.
        let got = exchange(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
        assert!(got.starts_with("HTTP/1.1 200 "), "{got:?}");
        assert!(!got.contains("408"), "{got:?}");
    }
}
