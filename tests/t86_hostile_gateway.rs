//! The attack suite, gateway side: what a hostile client or peer sends to a gateway's
//! listeners, and that each attempt is refused or bounded while normal clients stay served.
//! Real processes on loopback; every attack is bounded in count and time. The heavy attacks
//! take turns (one at a time in this binary), so file descriptors and ports stay in budget.

mod support;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One heavy attack at a time (each test has its own runtime; this lock serves them all).
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A small seeded generator (xorshift64*): the fuzz cases are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn h2c() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Status and error code of a request to the east-west listener naming `service`.
async fn east_west_get(ew: &str, service: &str) -> (u16, String) {
    match h2c()
        .get(format!("http://{ew}/x"))
        .header("x-warden-service", service)
        .header("x-warden-source-cluster", "west")
        .send()
        .await
    {
        Ok(r) => {
            let s = r.status().as_u16();
            let code = r
                .headers()
                .get("x-warden-error")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            (s, code)
        }
        Err(_) => (0, String::new()),
    }
}

/// Status of an east-west CONNECT for `service` on `port`.
async fn connect_status(ew: &str, service: &str, port: u16) -> u16 {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let tcp = TcpStream::connect(ew).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method("CONNECT")
        .uri(ew)
        .header("x-warden-service", service)
        .header("x-warden-port", port.to_string())
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    send.send_request(req).await.unwrap().status().as_u16()
}

/// A federation node and cluster `east` (with `extra` config), once it serves shop/cart.
async fn serving(root: &std::path::Path, extra: &str) -> (NodeProc, ClusterProcs) {
    let node = one_node(root).await;
    let east = east_of(root, &node, extra).await;
    let (client, out) = (http(), east.outbound());
    eventually(Duration::from_secs(20), "cart served", || async {
        (call(&client, &out).await.0 == 200).then_some(())
    })
    .await;
    (node, east)
}

/// A service that stays in its cluster (`export = false`), for `[[services]]`.
fn hidden_service(addr: &str) -> String {
    format!(
        "[[services]]\nnamespace = \"shop\"\nname = \"hidden\"\nexport = false\nendpoints = [{addr:?}]\nprobe = \"tcp\"\n"
    )
}

/// Without `[tls]` the east-west listener knows no caller: a non-exported service is not
/// there, a CONNECT gets only the port the service serves, `authz.default = "deny"` denies
/// every caller, and a non-loopback east-west address is refused unless said insecure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn east_west_without_tls_fails_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let node = one_node(root).await;
    let hidden = echo(root, "hidden", "127.0.0.1:0").await;
    let extra = hidden_service(&hidden.addr("addr"));
    let mut east = east_of(root, &node, &extra).await;
    let ew = east.gateway.addr("eastwest");
    eventually(Duration::from_secs(20), "cart served east-west", || async {
        (east_west_get(&ew, "shop/cart").await.0 == 200).then_some(())
    })
    .await;
    // The hidden service has healthy endpoints (served on the outbound listener) …
    let out = east.outbound();
    eventually(Duration::from_secs(20), "hidden served locally", || async {
        let r = http()
            .get(format!("http://{out}/x"))
            .header("host", "hidden.shop")
            .send()
            .await
            .ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    // … and is not there for other clusters, by request or by tunnel.
    assert_eq!(
        east_west_get(&ew, "shop/hidden").await,
        (404, "unknown_service".into())
    );
    assert_eq!(connect_status(&ew, "shop/hidden", 80).await, 404);
    // A CONNECT gets the port the service serves, and no other.
    assert_eq!(connect_status(&ew, "shop/cart", 80).await, 200);
    assert_eq!(connect_status(&ew, "shop/cart", 22).await, 404);

    // authz.default = "deny" and no verified peer: denied, by request and by tunnel.
    let cfg = std::fs::read_to_string(&east.config).unwrap();
    std::fs::write(
        &east.config,
        format!("{cfg}\n[authz]\ndefault = \"deny\"\n"),
    )
    .unwrap();
    east.gateway.restart_with(None).await;
    let ew = east.gateway.addr("eastwest");
    eventually(Duration::from_secs(20), "cart denied east-west", || async {
        (east_west_get(&ew, "shop/cart").await == (403, "forbidden".into())).then_some(())
    })
    .await;
    assert_eq!(connect_status(&ew, "shop/cart", 80).await, 403);

    // A plaintext east-west listener on a non-loopback address does not start.
    let open = cfg.replace("eastwest = \"127.0.0.1:0\"", "eastwest = \"0.0.0.0:0\"");
    assert_ne!(open, cfg);
    let path = root.join("open.toml");
    std::fs::write(&path, &open).unwrap();
    let refused = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(["gateway", "--config"])
            .arg(&path)
            .env("WARDEN_ADMIN_TOKEN", TOKEN)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the gateway exits at once")
    .unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("is not a loopback address") && err.contains("insecure_plaintext"),
        "{err}"
    );
}

/// What a client sends in `x-warden-*` headers, or names in `Connection`, never reaches a
/// backend; a repeated Host, or one that differs from the request target, is refused (400).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_headers_cannot_speak_for_the_gateway() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (_node, east) = serving(root, "").await;
    let client = http();
    let out = east.outbound();
    let seen: Value = client
        .get(format!("http://{out}/x?headers=1"))
        .header("host", "cart.shop")
        .header("x-warden-source-cluster", "forged")
        .header(
            "x-warden-caller",
            "spiffe=spiffe://evil.test/x; cluster=west",
        )
        .header("x-warden-service", "shop/admin")
        .header("connection", "keep-alive, x-internal-token")
        .header("x-internal-token", "secret")
        .header("x-kept", "yes")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let h = seen["headers"].as_object().expect("headers echoed");
    assert_eq!(h["x-kept"], "yes", "the test can tell: {seen}");
    for gone in [
        "x-warden-source-cluster",
        "x-warden-caller",
        "x-warden-service",
        "x-internal-token",
        "connection",
    ] {
        assert!(!h.contains_key(gone), "{gone} reached the backend: {seen}");
    }

    // Raw HTTP/1.1, so the head is exactly what an attacker writes.
    async fn raw(addr: &str, head: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
        String::from_utf8_lossy(&buf).into_owned()
    }
    let ok = raw(
        &out,
        "GET /x HTTP/1.1\r\nHost: cart.shop\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200"), "the test can tell: {ok}");
    let two = raw(
        &out,
        "GET /x HTTP/1.1\r\nHost: cart.shop\r\nHost: admin.shop\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(two.starts_with("HTTP/1.1 400"), "{two}");
    assert!(
        two.contains("\"code\":\"bad_request\"") && two.contains("host"),
        "{two}"
    );
    let differs = raw(
        &out,
        "GET http://cart.shop/x HTTP/1.1\r\nHost: admin.shop\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(differs.starts_with("HTTP/1.1 400"), "{differs}");
}

/// 10,000 connections that trickle a request head one byte a second: a normal client is
/// served meanwhile, every one of them is closed at the header timeout, and the gateway's
/// memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_closed_at_the_header_timeout() {
    let _turn = HEAVY.lock().await;
    const ATTACKERS: usize = 10_000;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    // The header timeout is shortened so the test is short; the cap is above the attack, so
    // the timeout is what is tested.
    let (_node, east) = serving(
        root,
        "[limits]\nheader_read_timeout_ms = 3000\nmax_connections = 10500\n",
    )
    .await;
    let client = http();
    let (out, admin) = (east.outbound(), east.admin());
    let pid = east.gateway.pid();
    let rss_before = rss_kib(pid);
    let started = Instant::now();
    let mut conns = Vec::with_capacity(ATTACKERS);
    while conns.len() < ATTACKERS {
        let batch: Vec<_> = (0..500)
            .map(|_| {
                let out = out.clone();
                tokio::spawn(async move {
                    let mut s = TcpStream::connect(&out).await.ok()?;
                    s.write_all(b"G").await.ok()?;
                    Some(s)
                })
            })
            .collect();
        for t in batch {
            if let Ok(Some(s)) = t.await {
                conns.push(s);
            }
        }
    }
    let opened = started.elapsed();
    // One more byte on each, every second, while the gateway keeps them.
    let head =
        b"ET /slow HTTP/1.1\r\nHost: cart.shop\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut closed = vec![false; conns.len()];
    let mut rss_peak = 0;
    let mut served_meanwhile = 0;
    for round in 0..20 {
        trickle(&mut conns, &mut closed, head, round);
        rss_peak = rss_peak.max(rss_kib(pid));
        if round < 2 && call(&client, &out).await.0 == 200 {
            served_meanwhile += 1;
        }
        if closed.iter().all(|c| *c) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let gone = closed.iter().filter(|c| **c).count();
    println!(
        "slowloris: {ATTACKERS} connections opened in {opened:?}; closed by the gateway: {gone} after {:?}; RSS {} MiB before, {} MiB peak",
        started.elapsed(),
        rss_before / 1024,
        rss_peak / 1024
    );
    assert_eq!(
        served_meanwhile, 2,
        "a normal client is served during the attack"
    );
    assert_eq!(gone, ATTACKERS, "every trickling connection is closed");
    // Well under 64 KiB per held connection.
    assert!(
        rss_peak < rss_before + (ATTACKERS as u64 * 64),
        "RSS {rss_peak} KiB"
    );
    drop(conns);
    eventually(
        Duration::from_secs(10),
        "no connection left open",
        || async {
            let text = metrics_text(&client, &admin).await;
            let open = metric_sum(
                &text,
                "warden_listener_connections",
                &["listener=\"listener_outbound\""],
            );
            (open <= 1.0).then_some(())
        },
    )
    .await;
    assert_eq!(call(&client, &out).await.0, 200);
}

/// An HTTP/2 frame: 9-byte header and payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK literal (without indexing, new name).
fn literal(name: &str, value: &str) -> Vec<u8> {
    let mut b = vec![0x00, name.len() as u8];
    b.extend_from_slice(name.as_bytes());
    b.push(value.len() as u8);
    b.extend_from_slice(value.as_bytes());
    b
}

/// Opens streams and resets each at once, 20,000 times on one connection (CVE-2023-44487);
/// returns (GOAWAY seen, streams written before the gateway closed).
async fn rapid_reset(addr: &str, extra_headers: &[(&str, &str)]) -> (bool, u32) {
    // :method GET, :scheme http, :path / (static table), :authority cart.shop (literal).
    let mut block = vec![0x82, 0x86, 0x84, 0x01, 9];
    block.extend_from_slice(b"cart.shop");
    for (k, v) in extra_headers {
        block.extend(literal(k, v));
    }
    let s = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let reader = tokio::spawn(async move {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            // Frames seen so far: look for a GOAWAY (type 7).
            let mut at = 0;
            while at + 9 <= buf.len() {
                let len = (usize::from(buf[at]) << 16)
                    | (usize::from(buf[at + 1]) << 8)
                    | usize::from(buf[at + 2]);
                if buf[at + 3] == 7 {
                    return true;
                }
                at += 9 + len;
            }
            match tokio::time::timeout_at(deadline, rd.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return false,
            }
        }
    });
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(4, 0, 0, &[]));
    let mut written = 0u32;
    'attack: for batch in 0..40u32 {
        for i in 0..500u32 {
            let id = 2 * (batch * 500 + i) + 1;
            out.extend(frame(1, 0x4, id, &block));
            out.extend(frame(3, 0, id, &8u32.to_be_bytes())); // RST_STREAM CANCEL
        }
        if wr.write_all(&out).await.is_err() {
            break 'attack;
        }
        out.clear();
        written += 500;
    }
    let goaway = reader.await.unwrap_or(false);
    (goaway, written)
}

type Headers<'a> = &'a [(&'a str, &'a str)];

async fn echo_count(client: &reqwest::Client, backends: &[Proc]) -> u64 {
    let mut n = 0;
    for b in backends {
        let r = client
            .get(format!("http://{}/_echo/count", b.addr("addr")))
            .send()
            .await
            .unwrap();
        n += r.text().await.unwrap().trim().parse::<u64>().unwrap();
    }
    n
}

/// 20,000 HEADERS+RST_STREAM pairs on one HTTP/2 connection, to the outbound and to the
/// east-west listener: the gateway answers GOAWAY, its backends see far fewer requests, and
/// its memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_gets_goaway() {
    let _turn = HEAVY.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (_node, east) = serving(root, "").await;
    let client = http();
    let out = east.outbound();
    let pid = east.gateway.pid();
    let rss_before = rss_kib(pid);
    let ew = east.gateway.addr("eastwest");
    let targets: [(&str, &str, Headers); 2] = [
        ("outbound", out.as_str(), &[]),
        (
            "eastwest",
            ew.as_str(),
            &[("x-warden-service", "shop/cart")],
        ),
    ];
    for (name, addr, extra) in targets {
        let before = echo_count(&client, &east.backends).await;
        let (goaway, written) = rapid_reset(addr, extra).await;
        let reached = echo_count(&client, &east.backends).await - before;
        println!(
            "rapid reset on {name}: GOAWAY {goaway} after at most {written} of 20000 streams; the backends saw {reached} requests (health probes included); RSS {} MiB",
            rss_kib(pid) / 1024
        );
        assert!(goaway, "{name}: the gateway answers GOAWAY");
        assert!(reached < 1_000, "{name}: backends saw {reached}");
    }
    assert!(rss_kib(pid) < rss_before + 100 * 1024, "RSS bounded");
    assert_eq!(call(&client, &out).await.0, 200, "still serving");
}

/// 50,000 requests with made-up Hosts (and made-up services and clusters east-west) leave the
/// request metrics with a bounded number of series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_names_do_not_grow_the_metrics() {
    let _turn = HEAVY.lock().await;
    const REQUESTS: usize = 50_000;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (_node, east) = serving(root, "").await;
    let client = http();
    let (out, admin, ew) = (east.outbound(), east.admin(), east.gateway.addr("eastwest"));
    let started = Instant::now();
    let workers: Vec<_> = (0..16u64)
        .map(|w| {
            let (out, ew) = (out.clone(), ew.clone());
            tokio::spawn(async move {
                let (c1, c2) = (http(), h2c());
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (w + 1));
                let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
                for i in 0..REQUESTS / 16 {
                    let (a, b) = (rng.next(), rng.next());
                    let r = if i % 10 == 0 {
                        c2.get(format!("http://{ew}/"))
                            .header("x-warden-service", format!("n{a:x}/s{b:x}"))
                            .header("x-warden-source-cluster", format!("c{b:x}"))
                            .send()
                            .await
                    } else {
                        c1.get(format!("http://{out}/"))
                            .header("host", format!("s{a:x}.n{b:x}"))
                            .send()
                            .await
                    };
                    let s = r.map(|r| r.status().as_u16()).unwrap_or(0);
                    *statuses.entry(s).or_default() += 1;
                }
                statuses
            })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for w in workers {
        for (s, n) in w.await.unwrap() {
            *statuses.entry(s).or_default() += n;
        }
    }
    let text = metrics_text(&client, &admin).await;
    let series = series_count(&text, "warden_http_requests_total");
    println!(
        "{REQUESTS} made-up names in {:?}: statuses {statuses:?}; {series} request series, {} bytes of metrics",
        started.elapsed(),
        text.len()
    );
    assert_eq!(
        statuses.get(&404).copied().unwrap_or(0),
        REQUESTS,
        "{statuses:?}"
    );
    assert!(series <= 10, "{series} series:\n{text}");
    assert!(
        metric_sum(
            &text,
            "warden_http_requests_total",
            &["service=\"unknown\""]
        ) >= REQUESTS as f64
    );
    assert!(text.len() < 64 * 1024, "{} bytes", text.len());
}

/// Valid requests, each one mutated a little or a lot, and plain garbage, on every listener —
/// the gateway's four and the federation node's API and Raft ports: 10,000 cases from a fixed
/// seed. Neither process crashes, both still serve, and nothing reaches the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_every_listener_crashes_nothing() {
    let _turn = HEAVY.lock().await;
    const CASES: usize = 10_000;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (node, mut east) = serving(root, "").await;
    let client = http();
    let out = east.outbound();
    let listeners = [
        out.clone(),
        east.gateway.addr("eastwest"),
        east.admin(),
        east.gateway.info["tcp"][0].as_str().unwrap().to_string(),
        node.api.clone(),
        node.raft.clone(),
    ];
    let index = |s: Value| s["last_log_index"].as_u64().unwrap_or(0);
    let clusters_before = cluster_names(&client, &node).await.unwrap().1;
    let mut h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    h2.extend(frame(4, 0, 0, &[]));
    let mut block = vec![0x82, 0x86, 0x84, 0x01, 9];
    block.extend_from_slice(b"cart.shop");
    block.extend(literal("x-warden-service", "shop/cart"));
    h2.extend(frame(1, 0x5, 1, &block));
    let valid: Vec<Vec<u8>> = vec![
        b"GET /x HTTP/1.1\r\nHost: cart.shop\r\n\r\n".to_vec(),
        b"POST /x HTTP/1.1\r\nHost: cart.shop\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
        b"POST /x HTTP/1.1\r\nHost: cart.shop\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(),
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\n\r\n".to_vec(),
        // The federation's: a registration and a route without the token, a Raft RPC body.
        b"POST /api/v1/clusters HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 80\r\n\r\n{\"name\":\"evil\",\"region\":\"r\",\"zone\":\"z\",\"gateway\":\"1.2.3.4:1\",\"trust_domain\":\"e\"}".to_vec(),
        b"PUT /api/v1/routes/r HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\nContent-Type: application/json\r\nContent-Length: 51\r\n\r\n{\"service\":\"shop/cart\",\"rules\":[{\"backends\":[{}]}]}".to_vec(),
        b"POST /raft/vote HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\n\r\n0123456789abcdef".to_vec(),
        h2,
    ];
    let mut rng = Rng(0x5EED_0000_0000_0011);
    let cases: Vec<(usize, Vec<u8>)> = (0..CASES)
        .map(|i| {
            let target = i % listeners.len();
            let bytes = if rng.below(4) == 0 {
                (0..1 + rng.below(1024)).map(|_| rng.next() as u8).collect()
            } else {
                let mut b = valid[rng.below(valid.len())].clone();
                for _ in 0..1 + rng.below(8) {
                    let at = rng.below(b.len().max(1));
                    match rng.below(5) {
                        0 => b[at] = rng.next() as u8,
                        1 => b.insert(at, rng.next() as u8),
                        2 => b.truncate(at),
                        3 => {
                            let end = (at + rng.below(16)).min(b.len());
                            let dup = b[at..end].to_vec();
                            b.splice(at..at, dup);
                        }
                        _ => {
                            let end = (at + rng.below(16)).min(b.len());
                            b.drain(at..end);
                        }
                    }
                    if b.is_empty() {
                        b.push(b'G');
                    }
                }
                b
            };
            (target, bytes)
        })
        .collect();
    let started = Instant::now();
    let listeners = std::sync::Arc::new(listeners);
    let queue = std::sync::Arc::new(Mutex::new(cases));
    let workers: Vec<_> = (0..32)
        .map(|_| {
            let (listeners, queue) = (listeners.clone(), queue.clone());
            tokio::spawn(async move {
                let mut answered = 0usize;
                loop {
                    let Some((target, bytes)) = queue.lock().unwrap().pop() else {
                        return answered;
                    };
                    let Ok(mut s) = TcpStream::connect(&listeners[target]).await else {
                        continue;
                    };
                    let _ = s.write_all(&bytes).await;
                    let _ = s.shutdown().await;
                    let mut buf = vec![0u8; 64 * 1024];
                    if let Ok(Ok(n)) =
                        tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await
                        && n > 0
                    {
                        answered += 1;
                    }
                }
            })
        })
        .collect();
    let mut answered = 0;
    for w in workers {
        answered += w.await.unwrap();
    }
    println!(
        "fuzz: {CASES} cases over 6 listeners in {:?}; {answered} got bytes back",
        started.elapsed()
    );
    assert!(east.gateway.running(), "the gateway is still running");
    assert!(node.alive(), "the federation node is still running");
    let log = std::fs::read_to_string(root.join("gateway-east.log")).unwrap();
    assert!(!log.contains("panicked"), "a task panicked");
    let node_log = std::fs::read_to_string(root.join("node-1/node.log")).unwrap();
    assert!(!node_log.contains("panicked"), "a node task panicked");
    // The node still answers, and nothing unauthenticated was registered.
    let status = mesh_status(&client, &node)
        .await
        .expect("the node still answers");
    assert!(index(status) > 0);
    assert_eq!(
        cluster_names(&client, &node).await.unwrap().1,
        clusters_before
    );
    let routes = get_json(&client, &node.url(paths::ROUTES)).await.unwrap();
    assert_eq!(
        routes["items"].as_array().map(Vec::len),
        Some(0),
        "{routes}"
    );
    assert!(answered > 0, "the test can tell: some cases were answered");
    assert_eq!(call(&client, &out).await.0, 200, "still serving");
}

/// A listener holds at most `limits.max_connections`: one more is closed at once and
/// counted. Raw TCP streams hold one of `limits.max_tunnels` each (one more is closed at once)
/// and are closed after `limits.tunnel_idle_ms` without a byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_and_tunnels_are_capped() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (_node, east) = serving(
        root,
        "[limits]\nmax_connections = 40\nmax_tunnels = 2\ntunnel_idle_ms = 1000\n",
    )
    .await;
    let client = http();
    let (out, admin) = (east.outbound(), east.admin());
    // Let the client pool's idle connection go, so the count below is exact.
    drop(client);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();

    eventually(
        Duration::from_secs(10),
        "no client connection open",
        || async {
            let text = metrics_text(&client, &admin).await;
            let open = metric_sum(
                &text,
                "warden_listener_connections",
                &["listener=\"listener_outbound\""],
            );
            (open == 0.0).then_some(())
        },
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..50 {
        held.push(TcpStream::connect(&out).await.unwrap());
    }
    let text = eventually(Duration::from_secs(10), "10 refused", || async {
        let text = metrics_text(&client, &admin).await;
        let refused = metric_sum(
            &text,
            "warden_listener_connections_refused_total",
            &[
                "listener=\"listener_outbound\"",
                "reason=\"connection_limit\"",
            ],
        );
        (refused == 10.0).then_some(text)
    })
    .await;
    let open = metric_sum(
        &text,
        "warden_listener_connections",
        &["listener=\"listener_outbound\""],
    );
    assert_eq!(open, 40.0);
    // Looked at all at once: the held ones stay open until the header timeout (10 s).
    let closed_at_once = futures::future::join_all(held.iter_mut().map(|s| async move {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_millis(500), s.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }))
    .await
    .into_iter()
    .filter(|c| *c)
    .count();
    assert_eq!(
        closed_at_once, 10,
        "the connections over the cap were closed"
    );
    drop(held);
    eventually(Duration::from_secs(10), "served again", || async {
        (call(&client, &out).await.0 == 200).then_some(())
    })
    .await;

    // Tunnels: two held open, the third closed at once; then both closed when idle.
    let tcp = east.gateway.info["tcp"][0].as_str().unwrap().to_string();
    let mut a = TcpStream::connect(&tcp).await.unwrap();
    let mut b = TcpStream::connect(&tcp).await.unwrap();
    // Bytes through each, so both hold a tunnel to a backend.
    for s in [&mut a, &mut b] {
        s.write_all(b"GET /tcp HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    }
    let mut c = TcpStream::connect(&tcp).await.unwrap();
    let mut buf = [0u8; 64];
    let third = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf)).await;
    assert!(matches!(third, Ok(Ok(0)) | Ok(Err(_))), "{third:?}");
    let text = metrics_text(&client, &admin).await;
    assert_eq!(
        metric_sum(
            &text,
            "warden_proxy_errors_total",
            &["cause=\"tunnel_limit\""]
        ),
        1.0
    );
    for s in [&mut a, &mut b] {
        let r = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await;
        assert!(
            matches!(r, Ok(Ok(0)) | Ok(Err(_))),
            "closed when idle: {r:?}"
        );
    }
    assert!(
        tcp_call(&tcp).await.starts_with("east"),
        "permits given back"
    );
}

/// Static endpoints on loopback are refused unless `discovery.allow_loopback_endpoints` says
/// otherwise: with it off, the same backends get no traffic and the log says why. (The
/// Kubernetes path, link-local and the gateway's own listeners: `tests/t95_kube.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_endpoints_need_saying() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (_node, mut east) = serving(root, "").await;
    let cfg = std::fs::read_to_string(&east.config).unwrap();
    let strict = cfg.replace(
        "allow_loopback_endpoints = true",
        "allow_loopback_endpoints = false",
    );
    assert_ne!(strict, cfg);
    std::fs::write(&east.config, strict).unwrap();
    east.gateway.restart_with(None).await;
    let client = http();
    let r = client
        .get(format!("http://{}/x", east.outbound()))
        .header("host", "cart.shop")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("x-echo-server").is_none());
    let log = std::fs::read_to_string(root.join("gateway-east.log")).unwrap();
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("endpoints refused"))
        .unwrap_or_default();
    assert!(line.contains("a loopback address"), "{log}");
}

/// The outbound listener's head and body bounds, each answered with its status: a head over
/// `max_header_bytes` gets 431, a head not finished in time 408, a buffered body not
/// finished in time 408 `body_timeout` (the backend never sees it); a normal client is
/// served throughout. The admin listener answers a late head 408 too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_and_bodies_get_their_status() {
    let tmp = tempfile::tempdir().unwrap();
    let (_node, east) = serving(
        tmp.path(),
        "[limits]\nmax_header_bytes = 8192\nheader_read_timeout_ms = 1500\nbody_read_timeout_ms = 1000\n",
    )
    .await;
    let (client, out, admin) = (http(), east.outbound(), east.admin());
    let within = Duration::from_secs(20);

    let big = format!(
        "GET /hello HTTP/1.1\r\nHost: cart.shop\r\nX-Big: {}\r\n\r\n",
        "a".repeat(12 * 1024)
    );
    let got = raw_http(&out, big.as_bytes(), within).await;
    assert!(got.starts_with("HTTP/1.1 431 "), "oversized head: {got:?}");
    // Just under the limit is served.
    let fits = format!(
        "GET /hello HTTP/1.1\r\nHost: cart.shop\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
        "a".repeat(6 * 1024)
    );
    let got = raw_http(&out, fits.as_bytes(), within).await;
    assert!(
        got.starts_with("HTTP/1.1 200 "),
        "head under the limit: {got:?}"
    );

    let got = raw_http(&out, b"GET /hello HTTP/1.1\r\nHost: cart.sh", within).await;
    assert!(got.starts_with("HTTP/1.1 408 "), "late head: {got:?}");
    let got = raw_http(&admin, b"GET /metrics HTTP/1.1\r\nHo", within).await;
    assert!(
        got.starts_with("HTTP/1.1 408 "),
        "late head on admin: {got:?}"
    );

    let got = raw_http(
        &out,
        b"POST /hello HTTP/1.1\r\nHost: cart.shop\r\nContent-Length: 100\r\n\r\nonly ten b",
        within,
    )
    .await;
    assert!(got.starts_with("HTTP/1.1 408 "), "late body: {got:?}");
    assert!(
        got.to_ascii_lowercase()
            .contains("x-warden-error: body_timeout"),
        "{got:?}"
    );
    assert_eq!(call(&client, &out).await.0, 200);
}

/// A connection that sends nothing costs the gateway no serving state until its first byte
/// (`proxy/server.rs`), and is closed without a word at the header read timeout; one whose
/// first byte comes late, but within the timeout, is served as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_quietly_and_a_late_first_byte_is_served() {
    let _turn = HEAVY.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let (_node, east) = serving(tmp.path(), "[limits]\nheader_read_timeout_ms = 1500\n").await;
    let out = east.outbound();
    let mut silent = Vec::new();
    for _ in 0..50 {
        silent.push(TcpStream::connect(&out).await.expect("connect"));
    }
    let mut late = TcpStream::connect(&out).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(700)).await;
    late.write_all(b"GET / HTTP/1.1\r\nHost: cart.shop\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), late.read_to_end(&mut answer))
        .await
        .expect("the late request is answered")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    for mut s in silent {
        let mut buf = Vec::new();
        let r = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
            .await
            .expect("closed by the gateway at the header timeout");
        assert!(
            r.is_err() || buf.is_empty(),
            "a silent connection got bytes: {:?}",
            String::from_utf8_lossy(&buf)
        );
    }
}
