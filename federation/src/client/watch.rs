//! The watch stream as typed lines: NDJSON bytes from `GET /api/v1/watch` become
//! [`WatchLine`]s; an `error` line ends the stream with the matching [`ClientError`].

use std::pin::Pin;

use futures::{Stream, StreamExt};

use super::error::ClientError;
use crate::wire::{REVISION_COMPACTED, WatchEvent, WatchLine};

/// Changes after a revision, heartbeats included, until the stream ends or breaks.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchLine, ClientError>> + Send>>;

/// Largest watch line accepted (a change carries at most a CA bundle and a few names).
const MAX_LINE: usize = 4 * 1024 * 1024;

/// Splits a byte stream into lines and decodes each; `url` is for messages.
pub(crate) fn lines<S>(url: String, bytes: S) -> WatchStream
where
    S: Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Send + 'static,
{
    struct St<S> {
        url: String,
        bytes: Pin<Box<S>>,
        buf: Vec<u8>,
        done: bool,
    }
    let st = St {
        url,
        bytes: Box::pin(bytes),
        buf: Vec::new(),
        done: false,
    };
    Box::pin(futures::stream::unfold(st, |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            if let Some(pos) = st.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = st.buf.drain(..=pos).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let item = decode(&st.url, &line);
                st.done = item.is_err();
                return Some((item, st));
            }
            if st.buf.len() > MAX_LINE {
                st.done = true;
                let e = ClientError::WatchEnded {
                    url: st.url.clone(),
                    message: format!("a line longer than {MAX_LINE} bytes"),
                };
                return Some((Err(e), st));
            }
            match st.bytes.next().await {
                Some(Ok(chunk)) => st.buf.extend_from_slice(&chunk),
                Some(Err(source)) => {
                    st.done = true;
                    let e = ClientError::Transport {
                        url: st.url.clone(),
                        source,
                    };
                    return Some((Err(e), st));
                }
                None => {
                    st.done = true;
                    let e = ClientError::WatchEnded {
                        url: st.url.clone(),
                        message: "the server closed the stream".into(),
                    };
                    return Some((Err(e), st));
                }
            }
        }
    }))
}

fn decode(url: &str, line: &[u8]) -> Result<WatchLine, ClientError> {
    let parsed: WatchLine = serde_json::from_slice(line).map_err(|source| ClientError::Decode {
        url: url.to_string(),
        source,
    })?;
    match parsed.event {
        WatchEvent::Error { code, message } if code == REVISION_COMPACTED => {
            Err(ClientError::RevisionCompacted { message })
        }
        WatchEvent::Error { code, message } => Err(ClientError::WatchEnded {
            url: url.to_string(),
            message: format!("{code}: {message}"),
        }),
        _ => Ok(parsed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&str]) -> impl Stream<Item = Result<bytes::Bytes, reqwest::Error>> {
        let v: Vec<Result<bytes::Bytes, reqwest::Error>> = parts
            .iter()
            .map(|p| Ok(bytes::Bytes::from(p.to_string())))
            .collect();
        futures::stream::iter(v)
    }

    #[tokio::test]
    async fn lines_split_across_chunks_decode_and_errors_end_the_stream() {
        let mut s = lines(
            "u".into(),
            chunks(&[
                "{\"type\":\"heartbeat\",\"revision\":3}\n{\"revision\":4,\"at\":1,",
                "\"type\":\"cluster.deleted\",\"name\":\"b\"}\n\n",
                "{\"type\":\"error\",\"code\":\"revision_compacted\",\"revision\":9,\"message\":\"m\"}\n",
                "{\"type\":\"heartbeat\",\"revision\":10}\n",
            ]),
        );
        assert_eq!(
            s.next().await.unwrap().unwrap().event,
            WatchEvent::Heartbeat
        );
        let l = s.next().await.unwrap().unwrap();
        assert_eq!(
            (l.revision, l.event),
            (4, WatchEvent::ClusterDeleted { name: "b".into() })
        );
        assert!(matches!(
            s.next().await,
            Some(Err(ClientError::RevisionCompacted { .. }))
        ));
        assert!(s.next().await.is_none(), "nothing after an error");
        let mut garbage = lines("u".into(), chunks(&["not json\n"]));
        assert!(matches!(
            garbage.next().await,
            Some(Err(ClientError::Decode { .. }))
        ));
        let mut ended = lines(
            "u".into(),
            chunks(&["{\"type\":\"heartbeat\",\"revision\":1}"]),
        );
        assert!(matches!(
            ended.next().await,
            Some(Err(ClientError::WatchEnded { .. }))
        ));
    }
}
