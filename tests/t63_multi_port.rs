//! Every port of a service is routed, real processes on loopback: cluster east serves shop/multi
//! with three ports — `http` 80 (each endpoint's own port), `admin` 9000 and `raw` 7000 (TCP),
//! each served by another backend on the endpoint's address (`port_targets`). A request naming
//! port 9000 reaches the admin backend from east's own callers and from west's (the port crosses
//! the east-west hop); no port reaches the first; an unknown port is refused with
//! `port_not_routed`; and a TCP route to port 7000 reaches the raw backend — from east on the
//! endpoint's target, from west through east's gateway.

mod support;

use std::time::Duration;

use support::*;

const PATIENCE: Duration = Duration::from_secs(30);

/// GET `/` from `out` with `host`: (status, the backend that answered, `x-warden-error`).
async fn get_as(client: &reqwest::Client, out: &str, host: &str) -> (u16, String, String) {
    match client
        .get(format!("http://{out}/"))
        .header("host", host)
        .send()
        .await
    {
        Ok(r) => {
            let err = r
                .headers()
                .get("x-warden-error")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            (r.status().as_u16(), served_by(&r), err)
        }
        Err(_) => (0, String::new(), String::new()),
    }
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':').unwrap().1.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_is_routed_on_every_port_locally_and_across_clusters() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let web = echo(root, "multi-web", "127.0.0.1:0").await;
    let admin = echo(root, "multi-admin", "127.0.0.1:0").await;
    let raw = echo(root, "multi-raw", "127.0.0.1:0").await;
    let multi = format!(
        "[[services]]\nnamespace = \"shop\"\nname = \"multi\"\n\
         ports = [{{ name = \"http\", port = 80, protocol = \"http\" }}, {{ name = \"admin\", port = 9000, protocol = \"http\" }}, {{ name = \"raw\", port = 7000, protocol = \"tcp\" }}]\n\
         endpoints = [{:?}]\nprobe = \"tcp\"\nport_targets = {{ admin = {}, raw = {} }}\n\
         [[listeners.tcp]]\nlisten = \"127.0.0.1:0\"\nservice = \"shop/multi\"\nport = 7000\n",
        web.addr("addr"),
        port_of(&admin.addr("addr")),
        port_of(&raw.addr("addr")),
    );
    let (node, east, client) = east_serving(root, &multi).await;
    let east_out = east.outbound();
    eventually(PATIENCE, "multi is served", || async {
        (get_as(&client, &east_out, "multi.shop").await.0 == 200).then_some(())
    })
    .await;

    // Locally: the named port picks the backend; no port is the first.
    let (s, by, _) = get_as(&client, &east_out, "multi.shop:9000").await;
    assert_eq!((s, by.as_str()), (200, "multi-admin"));
    let (s, by, _) = get_as(&client, &east_out, "multi.shop.svc.clusterset.local:80").await;
    assert_eq!((s, by.as_str()), (200, "multi-web"));
    let (s, by, _) = get_as(&client, &east_out, "multi.shop").await;
    assert_eq!((s, by.as_str()), (200, "multi-web"));
    let (s, _, err) = get_as(&client, &east_out, "multi.shop:8081").await;
    assert_eq!(
        (s, err.as_str()),
        (404, "port_not_routed"),
        "an unknown port"
    );
    // A TCP route to the third port, served by the local endpoints on its target.
    let local_raw = east.gateway.info["tcp"][1].as_str().unwrap().to_string();
    assert_eq!(tcp_call(&local_raw).await, "multi-raw");

    // From west: the port crosses the east-west hop; a TCP route to the third port.
    let west_tcp =
        "[[listeners.tcp]]\nlisten = \"127.0.0.1:0\"\nservice = \"shop/multi\"\nport = 7000\n";
    let west = cluster_with(
        root,
        "west",
        "r1",
        "z2",
        std::slice::from_ref(&node.api),
        west_tcp,
    )
    .await;
    let west_out = west.outbound();
    let (s, by, _) = eventually(PATIENCE, "west reaches multi's admin port", || async {
        let r = get_as(&client, &west_out, "multi.shop:9000").await;
        (r.0 == 200).then_some(r)
    })
    .await;
    assert_eq!((s, by.as_str()), (200, "multi-admin"));
    let (s, by, _) = get_as(&client, &west_out, "multi.shop").await;
    assert_eq!((s, by.as_str()), (200, "multi-web"));
    let raw_route = west.gateway.info["tcp"][1].as_str().unwrap().to_string();
    let by = eventually(PATIENCE, "the raw port answers over TCP", || async {
        let by = tcp_call(&raw_route).await;
        (!by.is_empty()).then_some(by)
    })
    .await;
    assert_eq!(by, "multi-raw");
}
