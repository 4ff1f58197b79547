//! ServiceImports against the fake Kubernetes API server: cluster east (static services) exports
//! shop/cart and shop/grpc-echo; the gateway of cluster kube-b, with Kubernetes discovery and
//! `imports = true`, keeps in its cluster a ServiceImport per service (ports, `spec.ips` = the
//! derived Service's ClusterIP, `status.clusters`), a derived Service and its EndpointSlice
//! whose endpoint is the gateway pod on the outbound port. A client that reaches that endpoint
//! by the derived Service's name or by `cart.shop.svc.clusterset.local` gets east's cart. A
//! Service that Warden did not make under a derived name, and a ServiceImport it did not make,
//! are never written; two clusters disagreeing on a port is a `Conflict` condition; an export
//! withdrawn everywhere takes its three objects with it; a replace that loses a race (409) is
//! retried on the next round. A raw TCP port of an imported service
//! gets a pod port of its own from `import_tcp_ports`: the derived Service and slice send it
//! there, and the gateway serves it as that service's port; the range used up is a `Ready`
//! condition, and a port given back goes to the next import once its Service is gone.

mod support;

use std::time::Duration;

use serde_json::json;
use support::kube_fake::{FakeKube, IMPORTS, SERVICES, SLICES, condition};
use support::*;
use warden_federation::paths;
use warden_gateway::control::k8s::imports::derived_name;
use warden_gateway::key::ServiceKey;

const PATIENCE: Duration = Duration::from_secs(30);

/// Starts the gateway of cluster kube-b with Kubernetes discovery and imports.
async fn kube_gateway(root: &std::path::Path, node: &NodeProc) -> Proc {
    support::kube_gateway(root, node, "kube-b", "imports = true\n").await
}

/// The gateway's own Service and slice for its outbound listener `out`, as the endpointslice
/// controller would keep them; (its address, its port).
fn gateway_objects(kube: &FakeKube, out: &str) -> (String, u16) {
    let (ip, port) = out.rsplit_once(':').unwrap();
    let port: u16 = port.parse().unwrap();
    kube.apply(
        SERVICES,
        json!({"metadata": {"namespace": "warden-system", "name": "warden-gateway"},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 80, "targetPort": "outbound", "protocol": "TCP"}]}}),
    );
    kube.apply(
        SLICES,
        json!({"metadata": {"namespace": "warden-system", "name": "warden-gateway-abc",
                "labels": {"kubernetes.io/service-name": "warden-gateway"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}]}),
    );
    (ip.to_string(), port)
}

/// GET `/` from `addr` with `host`: (status, x-echo-server).
async fn get_as(addr: &str, host: &str) -> (u16, String) {
    let r = http()
        .get(format!("http://{addr}/"))
        .header("host", host)
        .send()
        .await;
    match r {
        Ok(r) => (r.status().as_u16(), served_by(&r)),
        Err(_) => (0, String::new()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mesh_s_services_are_imported_and_callable_by_their_clusterset_names() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let node = one_node(root).await;
    // shop/secret is exported to cluster west only.
    let secret = echo(root, "secret", "127.0.0.1:0").await;
    let east = east_of(
        root,
        &node,
        &format!(
            "[[services]]\nnamespace = \"shop\"\nname = \"secret\"\nendpoints = [{:?}]\nprobe = \"tcp\"\nexport_to = [\"west\"]\n",
            secret.addr("addr")
        ),
    )
    .await;
    let kube = FakeKube::start().await;
    kube.kubeconfig(&root.join("kubeconfig"));
    let admin = http();
    let grpc_derived = derived_name(&ServiceKey::new("shop", "grpc-echo"));
    // Objects Warden did not make: a Service under grpc-echo's derived name, and a
    // ServiceImport of a service nobody exports.
    kube.apply(
        SERVICES,
        json!({"metadata": {"namespace": "shop", "name": grpc_derived},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.9.9", "ports": [{"name": "x", "port": 1, "protocol": "TCP"}]}}),
    );
    kube.apply(
        IMPORTS,
        json!({"metadata": {"namespace": "shop", "name": "legacy"},
            "spec": {"type": "ClusterSetIP", "ports": [{"port": 80, "protocol": "TCP"}]}}),
    );
    let gw = kube_gateway(root, &node).await;
    let out = gw.addr("outbound");
    let (ip, port) = gateway_objects(&kube, &out);
    let ip = ip.as_str();

    // cart: a ServiceImport with the derived Service's ClusterIP, and the derived objects.
    let cart_derived = derived_name(&ServiceKey::new("shop", "cart"));
    let imp = eventually(PATIENCE, "cart is imported", || async {
        let o = kube.object(IMPORTS, "shop", "cart")?;
        (o["spec"]["ips"].as_array()?.len() == 1 && o["status"]["clusters"].is_array()).then_some(o)
    })
    .await;
    let svc = kube
        .object(SERVICES, "shop", &cart_derived)
        .expect("derived Service");
    assert_eq!(imp["spec"]["type"], "ClusterSetIP");
    assert_eq!(imp["spec"]["ips"][0], svc["spec"]["clusterIP"]);
    assert_eq!(imp["status"]["clusters"], json!([{"cluster": "east"}]));
    assert_eq!(
        imp["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "warden"
    );
    assert_eq!(condition(&imp, "Conflict").unwrap().0, "False");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], json!(port));
    let slice = kube
        .object(SLICES, "shop", &cart_derived)
        .expect("derived slice");
    assert_eq!(
        slice["metadata"]["labels"]["kubernetes.io/service-name"],
        json!(cart_derived)
    );
    assert_eq!(slice["endpoints"][0]["addresses"], json!([ip]));
    assert_eq!(slice["ports"][0]["port"], json!(port));

    // An unmodified client: DNS and kube-proxy take it to the slice's endpoint; the name it
    // used says the rest.
    let endpoint = format!("{ip}:{}", slice["ports"][0]["port"]);
    for host in [
        format!("{cart_derived}.shop.svc.cluster.local"),
        "cart.shop.svc.clusterset.local".to_string(),
    ] {
        let (status, by) = eventually(PATIENCE, "cart answers", || async {
            let r = get_as(&endpoint, &host).await;
            (r.0 == 200).then_some(r)
        })
        .await;
        assert!(
            by.starts_with("east-"),
            "{host}: served by {by:?} ({status})"
        );
    }

    // Someone edits Warden's slice: the next round puts it back (a replace with the stored
    // resourceVersion).
    let mut edited = slice.clone();
    edited["endpoints"] = json!([{"addresses": ["10.9.9.9"], "conditions": {"ready": true}}]);
    kube.apply(SLICES, edited.clone());
    eventually(PATIENCE, "the slice is restored", || async {
        let s = kube.object(SLICES, "shop", &cart_derived)?;
        (s["endpoints"][0]["addresses"] == json!([ip])).then_some(())
    })
    .await;
    assert!(
        kube.writes(SLICES)
            .iter()
            .any(|(m, _, n)| m == "replace" && *n == cart_derived),
        "restored by a replace"
    );
    // Edited again, and the gateway's replace loses a race to another writer (409 Conflict
    // on its stale resourceVersion): a later round reads the new version and wins.
    kube.race_next_replace(SLICES, "shop", &cart_derived);
    kube.apply(SLICES, edited.clone());
    eventually(
        PATIENCE,
        "the slice is restored after the conflict",
        || async {
            let s = kube.object(SLICES, "shop", &cart_derived)?;
            (s["endpoints"][0]["addresses"] == json!([ip])).then_some(())
        },
    )
    .await;
    let writes = kube.writes(SLICES);
    let lost = writes
        .iter()
        .position(|(m, _, n)| m == "conflict" && *n == cart_derived)
        .expect("the replace lost a race");
    assert!(
        writes[lost + 1..]
            .iter()
            .any(|(m, _, n)| m == "replace" && *n == cart_derived),
        "retried after the 409: {writes:?}"
    );

    // grpc-echo's derived name is taken by a Service Warden did not make: left alone, said.
    let grpc = eventually(PATIENCE, "grpc-echo is imported", || async {
        let o = kube.object(IMPORTS, "shop", "grpc-echo")?;
        condition(&o, "Ready").map(|_| o)
    })
    .await;
    assert_eq!(
        condition(&grpc, "Ready").unwrap(),
        ("False".to_string(), "DerivedServiceTaken".to_string())
    );
    let foreign = kube.object(SERVICES, "shop", &grpc_derived).unwrap();
    assert_eq!(foreign["spec"]["clusterIP"], "10.96.9.9");
    assert!(
        kube.writes(SERVICES)
            .iter()
            .all(|(_, _, n)| *n != grpc_derived),
        "a Service Warden did not make was written: {:?}",
        kube.writes(SERVICES)
    );

    // Cluster south exports cart with http on 8080 (east: 80) and a service of its own: cart's ports
    // conflict; south's only service is imported.
    assert_eq!(register(&admin, &node, "south").await, Some(201));
    let ports = |p: u16| json!({"ports": [{"name": "http", "port": p, "protocol": "http"}], "healthy_endpoints": 1});
    put_ok(
        &admin,
        &node.url(&paths::export("south", "shop", "cart")),
        &ports(8080),
    )
    .await;
    put_ok(
        &admin,
        &node.url(&paths::export("south", "shop", "lone")),
        &ports(80),
    )
    .await;
    let cart = eventually(PATIENCE, "the conflict is reported", || async {
        let o = kube.object(IMPORTS, "shop", "cart")?;
        (condition(&o, "Conflict")?.0 == "True").then_some(o)
    })
    .await;
    assert_eq!(
        cart["status"]["clusters"],
        json!([{"cluster": "east"}, {"cluster": "south"}])
    );
    assert_eq!(condition(&cart, "Conflict").unwrap().1, "PortConflict");
    let lone_derived = derived_name(&ServiceKey::new("shop", "lone"));
    eventually(PATIENCE, "lone is imported", || async {
        kube.object(SLICES, "shop", &lone_derived).map(|_| ())
    })
    .await;

    // shop/secret is for west only: no ServiceImport here, no route from here, and east's
    // gateway refuses a caller of another cluster.
    assert!(
        kube.object(IMPORTS, "shop", "secret").is_none(),
        "an export for west only was imported"
    );
    let (s, _) = get_as(&out, "secret.shop.svc.clusterset.local").await;
    assert_ne!(s, 200, "kube-b reached an export for west only");
    let eastwest = east.gateway.addr("eastwest");
    let direct = |source: &'static str| {
        let url = format!("http://{eastwest}/");
        async move {
            http()
                .get(url)
                .header("x-warden-service", "shop/secret")
                .header("x-warden-source-cluster", source)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    assert_eq!(direct("kube-b").await, 403, "another cluster is refused");
    assert_eq!(direct("west").await, 200, "the named cluster is served");

    // lone withdrawn everywhere: its three objects go; the foreign ones stay.
    let r = admin
        .delete(node.url(&paths::export("south", "shop", "lone")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    eventually(PATIENCE, "lone's objects are deleted", || async {
        let gone = kube.object(IMPORTS, "shop", "lone").is_none()
            && kube.object(SERVICES, "shop", &lone_derived).is_none()
            && kube.object(SLICES, "shop", &lone_derived).is_none();
        gone.then_some(())
    })
    .await;
    assert!(
        kube.object(IMPORTS, "shop", "legacy").is_some(),
        "a foreign ServiceImport was deleted"
    );
    assert!(
        kube.writes(IMPORTS).iter().all(|(_, _, n)| n != "legacy"),
        "a ServiceImport Warden did not make was written"
    );
    assert!(kube.object(IMPORTS, "shop", "cart").is_some());
    drop(gw);
}

/// Two consecutive free loopback ports (P, P+1): the import listeners' range. Nothing holds
/// them after this returns; a port taken meanwhile shows as a bind error in the gateway's log.
fn free_pair() -> u16 {
    for _ in 0..50 {
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = a.local_addr().unwrap().port();
        if p < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no two consecutive free ports");
}

/// The `targetPort` of `port` on a derived Service.
fn target_of(svc: &serde_json::Value, port: u16) -> Option<u16> {
    svc["spec"]["ports"]
        .as_array()?
        .iter()
        .find(|p| p["port"] == json!(port))?["targetPort"]
        .as_u64()
        .map(|p| p as u16)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_tcp_port_gets_a_pod_port_of_its_own_and_is_served_there() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let node = one_node(root).await;
    let db = echo(root, "db", "127.0.0.1:0").await;
    let _east = east_of(
        root,
        &node,
        &format!(
            "[[services]]\nnamespace = \"shop\"\nname = \"db\"\nports = [{{ name = \"sql\", port = 5432, protocol = \"tcp\" }}]\nendpoints = [{:?}]\nprobe = \"tcp\"\n",
            db.addr("addr")
        ),
    )
    .await;
    let kube = FakeKube::start().await;
    kube.kubeconfig(&root.join("kubeconfig"));
    let first = free_pair();
    let gw = support::kube_gateway(
        root,
        &node,
        "kube-b",
        &format!(
            "imports = true\nimport_tcp_ports = \"{first}-{}\"\n",
            first + 1
        ),
    )
    .await;
    let (ip, _) = gateway_objects(&kube, &gw.addr("outbound"));
    let admin = http();

    // shop/db's sql port: a pod port from the range, in the Service and the slice alike.
    let db_derived = derived_name(&ServiceKey::new("shop", "db"));
    let svc = eventually(PATIENCE, "db's derived Service", || async {
        let s = kube.object(SERVICES, "shop", &db_derived)?;
        target_of(&s, 5432).map(|_| s)
    })
    .await;
    let pod_port = target_of(&svc, 5432).unwrap();
    assert!((first..=first + 1).contains(&pod_port), "{pod_port}");
    assert!(svc["spec"]["ports"][0]["appProtocol"].is_null(), "raw TCP");
    let slice = eventually(PATIENCE, "db's slice", || async {
        kube.object(SLICES, "shop", &db_derived)
    })
    .await;
    assert_eq!(slice["ports"][0]["name"], "sql");
    assert_eq!(slice["ports"][0]["port"], json!(pod_port));
    let imp = eventually(PATIENCE, "db's ServiceImport is ready", || async {
        let o = kube.object(IMPORTS, "shop", "db")?;
        (condition(&o, "Ready")?.1 == "Served").then_some(o)
    })
    .await;
    assert_eq!(imp["spec"]["ports"][0]["port"], 5432);

    // An unmodified TCP client, sent by kube-proxy to the slice's endpoint: east's db answers.
    let endpoint = format!("{ip}:{pod_port}");
    let by = eventually(PATIENCE, "db answers over raw TCP", || async {
        let by = tcp_call(&endpoint).await;
        (!by.is_empty()).then_some(by)
    })
    .await;
    assert_eq!(by, "db");

    // Cluster south exports two more TCP services: the range holds one of them.
    assert_eq!(register(&admin, &node, "south").await, Some(201));
    let tcp = |p: u16| json!({"ports": [{"name": "raw", "port": p, "protocol": "tcp"}], "healthy_endpoints": 1});
    put_ok(
        &admin,
        &node.url(&paths::export("south", "shop", "cache")),
        &tcp(6379),
    )
    .await;
    let cache_derived = derived_name(&ServiceKey::new("shop", "cache"));
    let cache_port = eventually(PATIENCE, "cache gets the other pod port", || async {
        target_of(&kube.object(SERVICES, "shop", &cache_derived)?, 6379)
    })
    .await;
    assert_eq!(
        cache_port,
        if pod_port == first { first + 1 } else { first }
    );
    put_ok(
        &admin,
        &node.url(&paths::export("south", "shop", "queue")),
        &tcp(5672),
    )
    .await;
    let queue = eventually(PATIENCE, "queue is told the range is used up", || async {
        let o = kube.object(IMPORTS, "shop", "queue")?;
        (condition(&o, "Ready")?.1 == "NoServedPorts").then_some(o)
    })
    .await;
    assert_eq!(condition(&queue, "Ready").unwrap().0, "False");
    let queue_derived = derived_name(&ServiceKey::new("shop", "queue"));
    assert!(
        kube.object(SERVICES, "shop", &queue_derived).is_none(),
        "a derived Service without a port"
    );

    // cache withdrawn: its objects go, its listener closes, and queue gets its pod port.
    let r = admin
        .delete(node.url(&paths::export("south", "shop", "cache")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let queue_port = eventually(PATIENCE, "queue gets cache's pod port", || async {
        target_of(&kube.object(SERVICES, "shop", &queue_derived)?, 5672)
    })
    .await;
    assert_eq!(queue_port, cache_port);
    assert!(kube.object(SERVICES, "shop", &cache_derived).is_none());
    eventually(PATIENCE, "queue's import is ready", || async {
        let o = kube.object(IMPORTS, "shop", "queue")?;
        (condition(&o, "Ready")?.1 == "Served").then_some(())
    })
    .await;
    // db kept its pod port through all of it.
    let svc = kube.object(SERVICES, "shop", &db_derived).unwrap();
    assert_eq!(target_of(&svc, 5432), Some(pod_port));
    assert_eq!(tcp_call(&endpoint).await, "db");
    drop(gw);
}
