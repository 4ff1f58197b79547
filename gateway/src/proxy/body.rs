//! Bodies the proxy sends and answers, and the request body kept for replay: a small body of
//! known length is buffered so the request can be sent again to another target; a large or
//! unknown-length one (streaming gRPC) is streamed through once.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};

use super::error::ProxyError;

/// Body type of everything the proxy sends and answers.
pub type BoxBody = http_body_util::combinators::BoxBody<Bytes, BoxError>;
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Largest request body buffered so the request can be retried on another target.
pub const MAX_REPLAY_BYTES: u64 = 1024 * 1024;

pub fn full(b: Bytes) -> BoxBody {
    Full::new(b).map_err(|e: Infallible| match e {}).boxed()
}

pub fn empty() -> BoxBody {
    Empty::new().map_err(|e: Infallible| match e {}).boxed()
}

/// Boxes any body the proxy receives (a client's request, an upstream's response).
pub fn boxed<B>(b: B) -> BoxBody
where
    B: hyper::body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    b.map_err(Into::into).boxed()
}

/// A request body, ready for one or more attempts.
pub enum RequestBody {
    /// Read in full: every attempt gets a copy.
    Buffered(Bytes),
    /// Streamed: the first attempt takes it; there is none for a second.
    Once(Option<BoxBody>),
}

impl RequestBody {
    /// Buffers `body` when its exact length is known and at most [`MAX_REPLAY_BYTES`], within
    /// `deadline`. A failure while reading it is the client's (its connection broke, it sent
    /// garbage, or it was too slow).
    pub async fn read<B>(body: B, deadline: std::time::Duration) -> Result<Self, ProxyError>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        match hyper::body::Body::size_hint(&body).exact() {
            Some(0) => Ok(Self::Buffered(Bytes::new())),
            // Includes unary gRPC with a known length; streaming calls have no known length.
            Some(n) if n <= MAX_REPLAY_BYTES => {
                let collected = tokio::time::timeout(deadline, body.collect())
                    .await
                    .map_err(|_| ProxyError::BodyTimeout {
                        ms: deadline.as_millis() as u64,
                    })?
                    .map_err(|e| ProxyError::ClientBody {
                        message: e.into().to_string(),
                    })?;
                Ok(Self::Buffered(collected.to_bytes()))
            }
            _ => Ok(Self::Once(Some(boxed(body)))),
        }
    }

    /// Whether the request may be sent more than once.
    pub fn replayable(&self) -> bool {
        matches!(self, Self::Buffered(_))
    }

    /// The body for the next attempt; `None` once a streamed body was sent.
    pub fn take(&mut self) -> Option<BoxBody> {
        match self {
            Self::Buffered(b) => Some(full(b.clone())),
            Self::Once(b) => b.take(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn small_bodies_replay_and_streams_go_once() {
        let t = std::time::Duration::from_secs(5);
        let mut small = RequestBody::read(Full::new(Bytes::from_static(b"abc")), t)
            .await
            .unwrap();
        assert!(small.replayable());
        for _ in 0..3 {
            let b = small.take().unwrap().collect().await.unwrap().to_bytes();
            assert_eq!(&b[..], b"abc");
        }
        // A streaming body (no exact length) is sent once.
        let chunks = futures::stream::iter(vec![Ok::<_, Infallible>(hyper::body::Frame::data(
            Bytes::from_static(b"x"),
        ))]);
        let mut once = RequestBody::read(http_body_util::StreamBody::new(chunks), t)
            .await
            .unwrap();
        assert!(!once.replayable());
        assert!(once.take().is_some());
        assert!(once.take().is_none());
        // Too large to buffer.
        let big = Full::new(Bytes::from(vec![0u8; MAX_REPLAY_BYTES as usize + 1]));
        assert!(!RequestBody::read(big, t).await.unwrap().replayable());
    }
}
