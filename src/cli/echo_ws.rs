//! The WebSocket side of `warden echo`: a `GET` with `Upgrade: websocket` is answered 101 and
//! every text message comes back as `"<name>: <message>"` (binary ones unchanged), so a test
//! sees which backend served the socket. Built on tokio-tungstenite, a real WebSocket
//! implementation, not a byte echo.

use std::convert::Infallible;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Message, Role};

/// The `Sec-WebSocket-Key` of a WebSocket upgrade request, if it is one.
pub fn key_of(req: &Request<hyper::body::Incoming>) -> Option<String> {
    let h = req.headers();
    let upgrade = h
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let key = h.get("sec-websocket-key")?.to_str().ok()?;
    upgrade.then(|| key.to_string())
}

/// Answers the upgrade (101) and echoes on the socket in the background.
pub fn accept(
    name: String,
    key: &str,
    req: Request<hyper::body::Incoming>,
) -> Response<BoxBody<Bytes, Infallible>> {
    let accept = derive_accept_key(key.as_bytes());
    let server = http::HeaderValue::from_str(&name).ok();
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else {
            return;
        };
        let mut ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        while let Some(Ok(msg)) = ws.next().await {
            let reply = match msg {
                Message::Text(t) => Message::text(format!("{name}: {}", t.as_str())),
                Message::Binary(b) => Message::Binary(b),
                Message::Ping(p) => Message::Pong(p),
                Message::Close(_) => break,
                Message::Pong(_) | Message::Frame(_) => continue,
            };
            if ws.send(reply).await.is_err() {
                break;
            }
        }
        let _ = ws.close(None).await;
    });
    let mut r = Response::new(Empty::new().boxed());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("upgrade"),
    );
    h.insert(
        http::header::UPGRADE,
        http::HeaderValue::from_static("websocket"),
    );
    if let Ok(v) = http::HeaderValue::from_str(&accept) {
        h.insert("sec-websocket-accept", v);
    }
    if let Some(v) = server {
        h.insert("x-echo-server", v);
    }
    r
}
