//! Graceful drain on SIGTERM: the gateway withdraws its lease, refuses new connections, lets
//! the request in flight finish and exits 0; past the drain deadline it closes what is left
//! and still exits 0. A federation node ends its watch streams and exits 0.

mod support;

use std::time::Duration;

use futures::StreamExt;
use support::*;

/// Requests in flight to the gateway's local endpoints, from `/config_dump`.
async fn in_flight(client: &reqwest::Client, admin: &str) -> u64 {
    let Some(dump) = get_json(client, &format!("http://{admin}/config_dump")).await else {
        return 0;
    };
    dump["local"]["shop/cart"]["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["in_flight"].as_u64())
        .sum()
}

/// A slow GET through the outbound listener, on its own connection.
fn slow_call(outbound: &str, delay_ms: u64) -> tokio::task::JoinHandle<Result<u16, String>> {
    let url = format!("http://{outbound}/slow?delay_ms={delay_ms}");
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        client
            .get(url)
            .header("host", "cart.shop")
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| e.to_string())
    })
}

/// Gateway `east` of the one-node federation `node`, draining for up to `drain_ms`.
async fn east(root: &std::path::Path, node: &NodeProc, drain_ms: u64) -> ClusterProcs {
    let extra = format!("[timeouts]\ndrain_ms = {drain_ms}");
    east_of(root, node, &extra).await
}

async fn refused(addr: &str) -> bool {
    matches!(
        tokio::net::TcpStream::connect(addr).await,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

/// A slow request in flight during SIGTERM completes with 200; meanwhile new connections are
/// refused, `/readyz` says draining and the cluster's lease is gone; the exit code is 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_request_in_flight_finish_and_refuses_new_connections() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let node = one_node(root).await;
    let client = http();
    let mut east = east(root, &node, 10_000).await;
    let outbound = east.outbound();
    let admin = east.admin();
    eventually(
        Duration::from_secs(20),
        "east serves and holds a lease",
        || async {
            let leases = get_json(&client, &node.url(paths::LEASES)).await?;
            let leased = leases["items"]
                .as_array()?
                .iter()
                .any(|l| l["cluster"] == "east");
            (call(&client, &outbound).await.0 == 200 && leased).then_some(())
        },
    )
    .await;

    let slow = slow_call(&outbound, 2_500);
    eventually(
        Duration::from_secs(10),
        "the slow request in flight",
        || async { (in_flight(&client, &admin).await == 1).then_some(()) },
    )
    .await;
    let exit = tokio::spawn(async move {
        let status = east.gateway.terminate(Duration::from_secs(20)).await;
        (east, status)
    });

    eventually(
        Duration::from_secs(5),
        "new connections refused",
        || async { refused(&outbound).await.then_some(()) },
    )
    .await;
    let ready = reqwest::get(format!("http://{admin}/readyz")).await;
    if let Ok(r) = ready {
        // The admin listener stays up while draining (it may already be gone at the end).
        assert_eq!(r.status().as_u16(), 503);
        assert!(r.text().await.unwrap().contains("draining"));
    }
    let leases = get_json(&client, &node.url(paths::LEASES)).await.unwrap();
    assert!(
        !leases["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["cluster"] == "east"),
        "the lease is withdrawn at the start of the drain: {leases}"
    );

    assert_eq!(
        slow.await.unwrap(),
        Ok(200),
        "the request in flight finished"
    );
    let (_east, status) = exit.await.unwrap();
    let status = status.expect("the gateway exits after the drain");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

/// Past the drain deadline, what is still open is closed and the gateway exits 0 anyway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_deadline_bounds_the_wait() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let node = one_node(root).await;
    let client = http();
    let mut east = east(root, &node, 300).await;
    let (outbound, admin) = (east.outbound(), east.admin());
    eventually(Duration::from_secs(20), "east serves", || async {
        (call(&client, &outbound).await.0 == 200).then_some(())
    })
    .await;
    let slow = slow_call(&outbound, 20_000);
    eventually(
        Duration::from_secs(10),
        "the slow request in flight",
        || async { (in_flight(&client, &admin).await == 1).then_some(()) },
    )
    .await;
    let started = std::time::Instant::now();
    let status = east
        .gateway
        .terminate(Duration::from_secs(10))
        .await
        .expect("the gateway exits well before the request would end");
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(
        slow.await.unwrap().is_err(),
        "the request still open at the deadline was cut"
    );
    // Bounded by the drain deadline, far below the 20 s the request wanted.
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// A federation node on SIGTERM ends its watch streams and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_drains_its_watch_streams_and_exits_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let mut node = one_node(tmp.path()).await;
    let resp = http_anonymous()
        .get(node.url(&paths::watch(0)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut stream = resp.bytes_stream();
    assert!(stream.next().await.is_some(), "the first heartbeat");
    let status = node
        .terminate(Duration::from_secs(15))
        .await
        .expect("the node exits");
    assert_eq!(status.code(), Some(0), "{status:?}");
    // The stream ends (cleanly or cut), it does not hang.
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
    assert!(rest.is_ok(), "the watch stream ended with the node");
}
