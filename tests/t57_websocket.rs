//! WebSocket through Warden, real processes and a real WebSocket client and server
//! (tokio-tungstenite on both ends): locally, and across an mTLS east-west hop where the
//! upgrade travels as an HTTP/2 extended CONNECT; an idle socket is closed after
//! `limits.tunnel_idle_ms`; a path-prefix rule sends `/api` of one service to another service
//! that only the other cluster runs (requests and a socket); the receiving gateway authorizes
//! the upgrade like any request (a denied caller gets 403 and the backend sees nothing); an
//! `h2c` upgrade is served as plain HTTP/1.1.

mod support;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use support::*;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket to `web.shop` through the outbound listener `out`.
async fn open(out: &str, canary: bool) -> Result<Ws, String> {
    let mut req = format!("ws://{out}/chat").into_client_request().unwrap();
    let h = req.headers_mut();
    h.insert("host", "web.shop".parse().unwrap());
    if canary {
        h.insert("x-canary", "on".parse().unwrap());
    }
    let connect = tokio_tungstenite::connect_async(req);
    match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("handshake timed out".into()),
    }
}

/// Sends `text` and reads the answer.
async fn say(ws: &mut Ws, text: &str) -> String {
    say_raw(ws, text).await
}

/// A WebSocket over an HTTP/2 extended CONNECT (h2c prior knowledge) to `web.shop` on `out`.
async fn h2_websocket(
    out: &str,
) -> tokio_tungstenite::WebSocketStream<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let tcp = tokio::net::TcpStream::connect(out).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri("http://web.shop/chat")
        .header("sec-websocket-version", "13")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    req.extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200, "{:?}", resp.headers());
    assert_eq!(resp.headers()["x-warden-cluster"], "east");
    let io = TokioIo::new(hyper::upgrade::on(resp).await.unwrap());
    tokio_tungstenite::WebSocketStream::from_raw_socket(
        io,
        tokio_tungstenite::tungstenite::protocol::Role::Client,
        None,
    )
    .await
}

/// [`say`] on any WebSocket stream.
async fn say_raw<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>, text: &str) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.send(Message::text(text)).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) => t.as_str().to_string(),
        other => panic!("no answer to {text:?}: {other:?}"),
    }
}

fn web_service(version: &str, backend: &Proc) -> String {
    format!(
        "[[services]]\nnamespace = \"shop\"\nname = \"web\"\nprobe = \"/healthz\"\n\
         [[services.subsets]]\nlabels = {{ version = {version:?} }}\nendpoints = [{:?}]\n",
        backend.addr("addr")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_locally_and_across_an_mtls_hop() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let node = one_node(root).await;
    let apis = vec![node.api.clone()];
    let (tls_east, tls_west) = (pki(root, "east.test"), pki(root, "west.test"));
    let east_ws = echo(root, "east-ws", "127.0.0.1:0").await;
    let west_ws = echo(root, "west-ws", "127.0.0.1:0").await;
    let west_api = echo(root, "west-api", "127.0.0.1:0").await;
    let api_service = format!(
        "[[services]]\nnamespace = \"shop\"\nname = \"api\"\nprobe = \"/healthz\"\nendpoints = [{:?}]\n",
        west_api.addr("addr")
    );
    let limits = "[limits]\ntunnel_idle_ms = 1000\n";
    let east = cluster_with(
        root,
        "east",
        "r1",
        "z1",
        &apis,
        &format!("{tls_east}{limits}{}", web_service("v1", &east_ws)),
    )
    .await;
    let _west = cluster_with(
        root,
        "west",
        "r2",
        "z2",
        &apis,
        &format!(
            "{tls_west}{limits}{}{api_service}",
            web_service("v2", &west_ws)
        ),
    )
    .await;
    // `x-canary: on` → v2, which only west has: that socket must cross the mTLS hop.
    // And `/api/...` of web goes to another service, `shop/api`, which only west runs.
    let mut route = canary_route();
    route["rules"].as_array_mut().unwrap().insert(
        0,
        serde_json::json!({"name": "api",
            "matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
            "filters": [{"url_rewrite": {"path_prefix": "/"}}],
            "backends": [{"service": "shop/api"}]}),
    );
    put_route(&http(), &node, "web", &route).await;
    let out = east.outbound();
    let mut across = eventually(Duration::from_secs(40), "a socket to west's v2", || async {
        let mut ws = open(&out, true).await.ok()?;
        (say(&mut ws, "ping").await == "west-ws: ping").then_some(ws)
    })
    .await;

    // Locally: the upgrade goes to east's own backend.
    let mut local = open(&out, false).await.unwrap();
    assert_eq!(say(&mut local, "hello").await, "east-ws: hello");

    // Across: many messages both ways on one socket, and a large binary one.
    for i in 0..100 {
        let m = format!("m{i}");
        assert_eq!(say(&mut across, &m).await, format!("west-ws: {m}"));
    }
    let blob: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
    across.send(Message::binary(blob.clone())).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(10), across.next()).await {
        Ok(Some(Ok(Message::Binary(b)))) => assert_eq!(&b[..], &blob[..]),
        other => panic!("no binary echo: {other:?}"),
    }
    local.close(None).await.unwrap();

    // An HTTP/2 WebSocket client (RFC 8441 extended CONNECT, no key) reaches the HTTP/1.1
    // backend too: the gateway makes the handshake the backend needs.
    let mut h2 = h2_websocket(&out).await;
    assert_eq!(say_raw(&mut h2, "over h2").await, "east-ws: over h2");

    // A socket nobody uses is closed by the gateway after the idle time (1 s here).
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match across.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "an idle socket stays open");

    // A path-prefix rule to another service across the wire: plain requests and a socket.
    let r = reqwest::Client::new()
        .get(format!("http://{out}/api/items"))
        .header("host", "web.shop")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-echo-server"], "west-api");
    assert_eq!(r.headers()["x-warden-cluster"], "west");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["path"], "/items", "the prefix was rewritten");
    let mut req = format!("ws://{out}/api/chat")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("host", "web.shop".parse().unwrap());
    let (mut api_ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(say(&mut api_ws, "hi").await, "west-api: hi");

    // The upgrade crosses as a request like any other: west's authorization sees it. With
    // callers of east.test denied, the handshake gets 403 and west's backend sees no socket;
    // east's own v1 socket is unaffected.
    let r = http()
        .put(node.url(&paths::security_policy("no-east")))
        .json(&serde_json::json!({"service": "shop/web", "action": "deny", "sources": {"trust_domains": ["east.test"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let refused = eventually(
        Duration::from_secs(20),
        "west denies east's socket",
        || async {
            match open(&out, true).await {
                Err(e) if e.contains("403") => Some(e),
                _ => None,
            }
        },
    )
    .await;
    println!("denied across: {refused}");
    let seen = || async {
        reqwest::get(format!("http://{}/_echo/count", west_ws.addr("addr")))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let before = seen().await;
    assert!(open(&out, true).await.unwrap_err().contains("403"));
    assert_eq!(
        seen().await,
        before,
        "a denied upgrade never reached west's backend"
    );
    let mut local = open(&out, false).await.unwrap();
    assert_eq!(say(&mut local, "still").await, "east-ws: still");

    // An h2c upgrade is not followed: the request is answered as plain HTTP/1.1.
    let raw = raw_http(
        &out,
        b"GET /plain HTTP/1.1\r\nHost: web.shop\r\nConnection: Upgrade, HTTP2-Settings\r\n\
          Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(raw.contains("east-ws"), "{raw}");
}

/// Open upgrades are bounded by `limits.max_tunnels`: with 2 allowed, a third socket is
/// refused at once with 503 `tunnel_limit` (nothing queued), and once one is closed a new one
/// opens. (A socket is held until both sides have closed, or `tunnel_idle_ms` passes.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_sockets_are_bounded_by_the_tunnel_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let node = one_node(root).await;
    let backend = echo(root, "east-ws", "127.0.0.1:0").await;
    let east = east_of(
        root,
        &node,
        &format!("[limits]\nmax_tunnels = 2\n{}", web_service("v1", &backend)),
    )
    .await;
    let out = east.outbound();
    let mut first = eventually(Duration::from_secs(30), "a first socket", || async {
        open(&out, false).await.ok()
    })
    .await;
    let mut second = open(&out, false).await.unwrap();
    assert_eq!(say(&mut first, "1").await, "east-ws: 1");
    assert_eq!(say(&mut second, "2").await, "east-ws: 2");
    let refused = open(&out, false).await.unwrap_err();
    assert!(refused.contains("503"), "{refused}");
    // The close handshake, then the client's side of the connection goes: the permit is free.
    first.close(None).await.unwrap();
    drop(first);
    let mut third = eventually(
        Duration::from_secs(10),
        "a socket after one closed",
        || async { open(&out, false).await.ok() },
    )
    .await;
    assert_eq!(say(&mut third, "3").await, "east-ws: 3");
    assert_eq!(say(&mut second, "still").await, "east-ws: still");
}
