//! Stage "account", bytes: the request and response bodies are counted as they stream, into
//! `warden_http_bytes_total{service,src_cluster,dst_cluster,direction}`. A request's labels are
//! known only once it is answered, and its body may still be streaming then (or done long
//! before), so the request body counts into a [`Tally`] that holds the bytes until
//! [`Tally::settle`] names the counter; after that, bytes go straight to it, and whatever came
//! in between is added when the last holder lets go. The response body counts straight into
//! its counter. Upgraded connections (WebSocket) and raw TCP are not HTTP bodies and are not
//! counted here.

use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use hyper::body::{Body, Frame, SizeHint};
use prometheus::IntCounter;

use super::body::BoxBody;
use super::context::{ProxyCtx, RequestCtx};

/// Names the request body's counter and wraps the response body in its own, with the labels
/// the request was counted under (`dst_cluster="none"` when it `failed` with a gateway error).
pub fn count_bytes(
    ctx: &ProxyCtx,
    rc: &RequestCtx,
    service: &str,
    failed: bool,
    tally: &Tally,
    resp: Response<BoxBody>,
) -> Response<BoxBody> {
    let dst = match &rc.dst {
        Some(d) if !failed => d.as_str(),
        _ => "none",
    };
    let labels = |direction| [service, rc.src_label(), dst, direction];
    tally.settle(ctx.metrics.bytes.with_label_values(&labels("request")));
    let counter = ctx.metrics.bytes.with_label_values(&labels("response"));
    resp.map(|b| http_body_util::BodyExt::boxed(Counted::new(b, counter)))
}

/// Where a counted body's bytes go.
pub trait Sink {
    fn add(&self, n: u64);
}

impl Sink for IntCounter {
    fn add(&self, n: u64) {
        self.inc_by(n);
    }
}

/// Bytes of a body whose counter is not known yet.
#[derive(Default)]
pub struct Tally {
    pending: AtomicU64,
    counter: OnceLock<IntCounter>,
}

impl Tally {
    /// From now on the bytes go to `counter` (those so far go when the tally is dropped).
    pub fn settle(&self, counter: IntCounter) {
        let _ = self.counter.set(counter);
    }
}

impl Sink for std::sync::Arc<Tally> {
    fn add(&self, n: u64) {
        match self.counter.get() {
            Some(c) => c.inc_by(n),
            None => {
                self.pending.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        // A request that was never answered (its caller left first) is not counted.
        if let Some(c) = self.counter.get() {
            c.inc_by(*self.pending.get_mut());
        }
    }
}

/// `B`, with the length of each data frame added to `S`.
pub struct Counted<B, S> {
    inner: B,
    sink: S,
}

impl<B, S> Counted<B, S> {
    pub fn new(inner: B, sink: S) -> Self {
        Self { inner, sink }
    }
}

impl<B, S> Body for Counted<B, S>
where
    B: Body<Data = Bytes> + Unpin,
    S: Sink + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.sink.add(data.len() as u64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http_body_util::{BodyExt, StreamBody};

    use super::*;

    fn chunks(
        parts: &[&'static [u8]],
    ) -> impl Body<Data = Bytes, Error = std::convert::Infallible> + Unpin {
        let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = parts
            .iter()
            .map(|p| Ok(Frame::data(Bytes::from_static(p))))
            .collect();
        StreamBody::new(futures::stream::iter(frames))
    }

    #[tokio::test]
    async fn bytes_before_and_after_the_counter_is_named_all_count() {
        let counter = IntCounter::new("t", "t").unwrap();
        let tally = Arc::new(Tally::default());
        let mut body = Counted::new(chunks(&[b"abc", b"de", b"fghij"]), tally.clone());
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.data_ref().unwrap().len(), 3);
        tally.settle(counter.clone());
        assert_eq!(counter.get(), 0, "the first bytes wait for the tally's end");
        while body.frame().await.is_some() {}
        assert_eq!(counter.get(), 7, "later bytes go straight to the counter");
        drop(body);
        drop(tally);
        assert_eq!(counter.get(), 10);
    }

    #[tokio::test]
    async fn a_body_read_before_it_is_settled_counts_once_settled() {
        let counter = IntCounter::new("t", "t").unwrap();
        let tally = Arc::new(Tally::default());
        let body = Counted::new(chunks(&[b"hello", b"world"]), tally.clone());
        assert_eq!(body.collect().await.unwrap().to_bytes().len(), 10);
        tally.settle(counter.clone());
        drop(tally);
        assert_eq!(counter.get(), 10);
        // Never settled: not counted anywhere, and nothing panics.
        let lost = Arc::new(Tally::default());
        let _ = Counted::new(chunks(&[b"x"]), lost.clone()).collect().await;
        drop(lost);
    }

    #[tokio::test]
    async fn a_response_counts_straight_into_its_counter() {
        let counter = IntCounter::new("t", "t").unwrap();
        let body = Counted::new(chunks(&[b"0123456789", b"ab"]), counter.clone());
        let _ = body.collect().await.unwrap();
        assert_eq!(counter.get(), 12);
    }
}
