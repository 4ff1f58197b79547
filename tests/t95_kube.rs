//! Kubernetes discovery against a fake API server at the HTTP level: the gateway's real `kube`
//! client lists and watches Services, EndpointSlices and ServiceExports; exports reach the
//! federation store; a missed delete (410 relist) and a delete while the gateway was down are
//! withdrawn; ServiceExport status conditions are written.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::kube_fake::{EXPORTS, FakeKube, HTTP_ROUTES, PODS, SERVICES, SLICES};
use support::*;

const PATIENCE: Duration = Duration::from_secs(20);

fn service(ns: &str, name: &str, annotations: Value) -> Value {
    json!({
        "metadata": {"namespace": ns, "name": name, "annotations": annotations},
        "spec": {"type": "ClusterIP", "ports": [{"name": "http", "port": 80, "protocol": "TCP", "appProtocol": "http"}]}
    })
}

/// One EndpointSlice of `svc` with one endpoint at `addr` (`127.0.0.1:port`).
fn slice(ns: &str, svc: &str, name: &str, addr: &str, ready: bool) -> Value {
    let (ip, port) = addr.rsplit_once(':').unwrap();
    json!({
        "metadata": {"namespace": ns, "name": name, "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port.parse::<u16>().unwrap(), "protocol": "TCP"}],
        "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}}]
    })
}

fn service_export(ns: &str, name: &str) -> Value {
    json!({"metadata": {"namespace": ns, "name": name}})
}

/// This cluster's export of ns/name in the store: its healthy endpoint count.
async fn exported(client: &reqwest::Client, node: &NodeProc, ns: &str, name: &str) -> Option<u64> {
    let v = get_json(client, &node.url(paths::SERVICES)).await?;
    v["items"]
        .as_array()?
        .iter()
        .filter(|i| i["namespace"] == ns && i["service"] == name)
        .flat_map(|i| i["clusters"].as_array().cloned().unwrap_or_default())
        .find(|c| c["cluster"] == "kube-a")
        .and_then(|c| c["healthy_endpoints"].as_u64())
}

fn condition(obj: &Option<Value>, typ: &str) -> Option<(String, String)> {
    support::kube_fake::condition(obj.as_ref()?, typ)
}

/// A one-node federation and a fake API server with a kubeconfig pointing at it.
async fn setup(root: &std::path::Path, crd: bool) -> (NodeProc, FakeKube) {
    let node = one_node(root).await;
    let kube = if crd {
        FakeKube::start().await
    } else {
        FakeKube::start_without_crd().await
    };
    kube.kubeconfig(&root.join("kubeconfig"));
    (node, kube)
}

/// Starts a gateway of cluster kube-a with Kubernetes discovery (fast probes).
async fn kube_gateway(root: &std::path::Path, node: &NodeProc) -> Proc {
    support::kube_gateway(root, node, "kube-a", "probe = \"/healthz\"\n").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_discovery_follows_the_cluster_and_reconciles_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let client = http();
    let (node, kube) = setup(root, true).await;

    let mut b = Vec::new();
    for i in 1..=3 {
        b.push(echo(root, &format!("cart-{i}"), "127.0.0.1:0").await);
    }
    let addr: Vec<String> = b.iter().map(|p| p.addr("addr")).collect();

    // cart: exported by annotation, two ready endpoints and one not ready.
    kube.apply(
        SERVICES,
        service("shop", "cart", json!({"warden.io/export": "true"})),
    );
    kube.apply(SLICES, slice("shop", "cart", "cart-1", &addr[0], true));
    kube.apply(SLICES, slice("shop", "cart", "cart-2", &addr[1], true));
    kube.apply(SLICES, slice("shop", "cart", "cart-3", &addr[2], false));
    // pay: exported by a ServiceExport; ghost: a ServiceExport without a Service;
    // private: neither.
    kube.apply(SERVICES, service("shop", "pay", json!({})));
    kube.apply(SLICES, slice("shop", "pay", "pay-1", &addr[0], true));
    kube.apply(EXPORTS, service_export("shop", "pay"));
    kube.apply(EXPORTS, service_export("shop", "ghost"));
    kube.apply(SERVICES, service("shop", "private", json!({})));

    let mut gw = kube_gateway(root, &node).await;

    // Only ready endpoints count; only exported services reach the store.
    eventually(PATIENCE, "cart exported with 2 ready endpoints", || async {
        (exported(&client, &node, "shop", "cart").await == Some(2)).then_some(())
    })
    .await;
    eventually(PATIENCE, "pay exported by its ServiceExport", || async {
        (exported(&client, &node, "shop", "pay").await == Some(1)).then_some(())
    })
    .await;
    assert_eq!(exported(&client, &node, "shop", "private").await, None);
    assert_eq!(exported(&client, &node, "shop", "ghost").await, None);

    // The gateway serves cart from the ready endpoints only.
    let outbound = gw.addr("outbound");
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let (status, server) = call(&client, &outbound).await;
        assert_eq!(status, 200);
        seen.insert(server);
    }
    assert_eq!(
        seen,
        ["cart-1", "cart-2"].map(String::from).into(),
        "traffic only to ready endpoints"
    );

    // ServiceExport status: pay valid and exported; ghost invalid.
    eventually(PATIENCE, "pay status Valid and Exported", || async {
        let o = kube.object(EXPORTS, "shop", "pay");
        (condition(&o, "Valid") == Some(("True".into(), "Valid".into()))
            && condition(&o, "Exported") == Some(("True".into(), "Exported".into()))
            && condition(&o, "Conflict") == Some(("False".into(), "NoConflict".into())))
        .then_some(())
    })
    .await;
    eventually(PATIENCE, "ghost status Valid=False", || async {
        let o = kube.object(EXPORTS, "shop", "ghost");
        (condition(&o, "Valid") == Some(("False".into(), "ServiceNotFound".into()))).then_some(())
    })
    .await;

    // EndpointSlices pointing pay at a cloud metadata address and at the gateway's own admin
    // port: refused, named in the status, and never sent traffic.
    assert_eq!(
        condition(&kube.object(EXPORTS, "shop", "pay"), "EndpointsAccepted"),
        Some(("True".into(), "Accepted".into()))
    );
    kube.apply(
        SLICES,
        slice("shop", "pay", "pay-meta", "169.254.169.254:80", true),
    );
    kube.apply(
        SLICES,
        slice("shop", "pay", "pay-self", &gw.addr("admin"), true),
    );
    eventually(PATIENCE, "pay status EndpointsAccepted=False", || async {
        let o = kube.object(EXPORTS, "shop", "pay");
        (condition(&o, "EndpointsAccepted") == Some(("False".into(), "AddressRefused".into())))
            .then_some(o)
    })
    .await;
    let o = kube.object(EXPORTS, "shop", "pay").unwrap();
    let msg = o["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "EndpointsAccepted")
        .unwrap()["message"]
        .to_string();
    assert!(
        msg.contains("169.254.169.254:80: a link-local address")
            && msg.contains(&format!(
                "{}: one of this gateway's own listeners",
                gw.addr("admin")
            )),
        "{msg}"
    );
    for _ in 0..10 {
        let r = client
            .get(format!("http://{outbound}/x"))
            .header("host", "pay.shop")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["x-echo-server"],
            "cart-1",
            "only the real endpoint"
        );
    }
    assert_eq!(exported(&client, &node, "shop", "pay").await, Some(1));

    // Another cluster exports pay with a different port: Conflict.
    register(&client, &node, "other").await;
    let r = client
        .put(node.url(&paths::export("other", "shop", "pay")))
        .json(&json!({"ports": [{"name": "http", "port": 8080, "protocol": "http"}], "healthy_endpoints": 1, "weight": 100}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    eventually(PATIENCE, "pay status Conflict=True", || async {
        let o = kube.object(EXPORTS, "shop", "pay");
        (condition(&o, "Conflict") == Some(("True".into(), "PortConflict".into()))).then_some(())
    })
    .await;

    // An endpoint turns not ready.
    kube.apply(SLICES, slice("shop", "cart", "cart-2", &addr[1], false));
    eventually(PATIENCE, "cart down to 1 ready endpoint", || async {
        (exported(&client, &node, "shop", "cart").await == Some(1)).then_some(())
    })
    .await;

    // A dropped watch connection resumes from its last version: no relist needed.
    let (lists_before, watches_before) = kube.requests(SERVICES);
    kube.drop_watches();
    kube.apply(
        SERVICES,
        service("shop", "inventory", json!({"warden.io/export": "true"})),
    );
    kube.apply(
        SLICES,
        slice("shop", "inventory", "inventory-1", &addr[2], true),
    );
    eventually(
        PATIENCE,
        "inventory exported after the watch resumed",
        || async { (exported(&client, &node, "shop", "inventory").await == Some(1)).then_some(()) },
    )
    .await;
    let (lists, watches) = kube.requests(SERVICES);
    assert_eq!(
        lists, lists_before,
        "a dropped watch resumes without a relist"
    );
    assert!(watches > watches_before);

    // A delete the gateway never sees, with the history compacted past it: the watch gets
    // 410 Gone, the watcher relists, and the export is withdrawn.
    kube.delete_unseen(SERVICES, "shop", "cart");
    eventually(PATIENCE, "cart withdrawn after the 410 relist", || async {
        exported(&client, &node, "shop", "cart")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert!(kube.requests(SERVICES).0 > lists, "the 410 forced a relist");
    assert_eq!(exported(&client, &node, "shop", "inventory").await, Some(1));
    let metrics = client
        .get(format!("http://{}/metrics", gw.addr("admin")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"warden_kube_watch_events_total{event="relist",resource="services"}"#),
        "{metrics}"
    );
    let (status, _) = call(&client, &outbound).await;
    assert_eq!(status, 404, "cart is no longer a local service");

    // A delete while the gateway is down: withdrawn on the next start.
    gw.kill().await;
    kube.delete(EXPORTS, "shop", "pay");
    assert_eq!(exported(&client, &node, "shop", "pay").await, Some(1));
    gw.restart_with(None).await;
    eventually(PATIENCE, "pay withdrawn after restart", || async {
        exported(&client, &node, "shop", "pay")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(exported(&client, &node, "shop", "inventory").await, Some(1));
}

/// Without the ServiceExport CRD, annotated Services are still exported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_discovery_without_the_crd_uses_annotations() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let client = http();
    let (node, kube) = setup(root, false).await;
    let b = echo(root, "cart-1", "127.0.0.1:0").await;
    kube.apply(
        SERVICES,
        service("shop", "cart", json!({"warden.io/export": "true"})),
    );
    kube.apply(
        SLICES,
        slice("shop", "cart", "cart-1", &b.addr("addr"), true),
    );
    let _gw = kube_gateway(root, &node).await;
    eventually(PATIENCE, "cart exported without the CRD", || async {
        (exported(&client, &node, "shop", "cart").await == Some(1)).then_some(())
    })
    .await;
}

/// Endpoints carry the labels of their Pods (read metadata-only), so the export publishes
/// healthy endpoints per version, and a relabelled Pod moves its endpoint to another set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_carry_their_pods_labels_into_the_export() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let client = http();
    let (node, kube) = setup(root, true).await;
    let (b1, b2) = (
        echo(root, "cart-v1", "127.0.0.1:0").await,
        echo(root, "cart-v2", "127.0.0.1:0").await,
    );
    let pod = |name: &str, version: &str| {
        json!({"metadata": {"namespace": "shop", "name": name, "labels":
            {"app": "cart", "version": version, "pod-template-hash": "5d8f7c"}},
            "spec": {"containers": [{"name": "cart", "image": "cart"}]}})
    };
    kube.apply(PODS, pod("cart-v1-x", "v1"));
    kube.apply(PODS, pod("cart-v2-y", "v2"));
    kube.apply(
        SERVICES,
        service("shop", "cart", json!({"warden.io/export": "true"})),
    );
    for (name, b, pod) in [("cart-a", &b1, "cart-v1-x"), ("cart-b", &b2, "cart-v2-y")] {
        let mut s = slice("shop", "cart", name, &b.addr("addr"), true);
        s["endpoints"][0]["targetRef"] = json!({"kind": "Pod", "namespace": "shop", "name": pod});
        kube.apply(SLICES, s);
    }
    let _gw = kube_gateway(root, &node).await;
    // The label sets kube-a published for shop/cart: (version, healthy) pairs.
    let sets = || async {
        let v = get_json(&client, &node.url(paths::SERVICES)).await?;
        let c = v["items"]
            .as_array()?
            .iter()
            .filter(|i| i["service"] == "cart")
            .flat_map(|i| i["clusters"].as_array().cloned().unwrap_or_default())
            .find(|c| c["cluster"] == "kube-a")?;
        let mut out: Vec<(String, u64, bool)> = c["subsets"]
            .as_array()?
            .iter()
            .map(|s| {
                let labels = &s["labels"];
                (
                    labels["version"].as_str().unwrap_or("").to_string(),
                    s["healthy_endpoints"].as_u64().unwrap_or(0),
                    labels.get("pod-template-hash").is_some(),
                )
            })
            .collect();
        out.sort();
        Some(out)
    };
    let want = |v: &[(&str, u64)]| -> Vec<(String, u64, bool)> {
        v.iter().map(|(a, n)| (a.to_string(), *n, false)).collect()
    };
    eventually(PATIENCE, "one healthy endpoint per version", || async {
        (sets().await? == want(&[("v1", 1), ("v2", 1)])).then_some(())
    })
    .await;
    // Relabel the v2 Pod: its endpoint moves to the v3 set, without any change to the slices.
    kube.apply(PODS, pod("cart-v2-y", "v3"));
    eventually(PATIENCE, "the relabelled Pod's endpoint in v3", || async {
        (sets().await? == want(&[("v1", 1), ("v3", 1)])).then_some(())
    })
    .await;
    // Pods were only ever asked for as metadata.
    let (lists, watches) = kube.requests(PODS);
    assert!(lists >= 1);
    assert_eq!(kube.metadata_requests(PODS), lists + watches);
}

/// The Accepted and ResolvedRefs conditions Warden wrote on a route object.
fn route_conditions(obj: &Option<Value>) -> Option<[(String, String); 2]> {
    let parent = obj.as_ref()?["status"]["parents"]
        .as_array()?
        .iter()
        .find(|p| p["controllerName"] == "warden.io/gateway")?
        .clone();
    let get = |t: &str| {
        let c = parent["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == t)?;
        Some((
            c["status"].as_str()?.to_string(),
            c["reason"].as_str()?.to_string(),
        ))
    };
    Some([get("Accepted")?, get("ResolvedRefs")?])
}

/// HTTPRoutes whose parent is a Service become Warden routes in the federation store, applied
/// by the gateway (a path prefix to another Service); what cannot be expressed, and a second
/// route of the same Service, are refused in the object's status; a deleted object's route
/// leaves the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn httproutes_become_routes_with_their_status() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let client = http();
    let (node, kube) = setup(root, true).await;
    let (b1, b2) = (
        echo(root, "cart-1", "127.0.0.1:0").await,
        echo(root, "cart-v2-1", "127.0.0.1:0").await,
    );
    for (svc, b) in [("cart", &b1), ("cart-v2", &b2)] {
        kube.apply(
            SERVICES,
            service("shop", svc, json!({"warden.io/export": "true"})),
        );
        kube.apply(SLICES, slice("shop", svc, svc, &b.addr("addr"), true));
    }
    let route = |name: &str, rules: Value| {
        json!({"metadata": {"namespace": "shop", "name": name},
               "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "cart", "port": 80}],
                        "rules": rules}})
    };
    kube.apply(
        HTTP_ROUTES,
        route(
            "cart-split",
            json!([
                {"matches": [{"path": {"type": "PathPrefix", "value": "/v2"}}],
                 "backendRefs": [{"name": "cart-v2", "port": 80}]},
                {"backendRefs": [{"name": "cart", "port": 80}]}
            ]),
        ),
    );
    let gw = kube_gateway(root, &node).await;
    let out = gw.addr("outbound");
    let via = |path: &'static str| {
        let (client, out) = (reqwest::Client::new(), out.clone());
        async move {
            let r = client
                .get(format!("http://{out}{path}"))
                .header("host", "cart.shop")
                .send()
                .await
                .ok()?;
            Some(served_by(&r))
        }
    };
    eventually(PATIENCE, "the HTTPRoute is applied", || async {
        (via("/v2/x").await? == "cart-v2-1" && via("/x").await? == "cart-1").then_some(())
    })
    .await;
    let ours = || async {
        let v = get_json(&client, &node.url(paths::ROUTES)).await?;
        let ids: Vec<String> = v["items"]
            .as_array()?
            .iter()
            .filter_map(|r| r["id"].as_str().map(str::to_string))
            .filter(|id| id.starts_with("k8s-kube-a-"))
            .collect();
        Some(ids)
    };
    assert_eq!(ours().await.unwrap().len(), 1);
    let ok = || {
        [
            ("True".to_string(), "Accepted".to_string()),
            ("True".to_string(), "ResolvedRefs".to_string()),
        ]
    };
    eventually(PATIENCE, "cart-split's status", || async {
        (route_conditions(&kube.object(HTTP_ROUTES, "shop", "cart-split"))? == ok()).then_some(())
    })
    .await;

    // A filter Warden cannot express: refused, naming the field; nothing written.
    kube.apply(
        HTTP_ROUTES,
        json!({"metadata": {"namespace": "shop", "name": "mirror"},
               "spec": {"parentRefs": [{"kind": "Service", "name": "cart-v2"}],
                        "rules": [{"filters": [{"type": "RequestMirror", "requestMirror": {}}]}]}}),
    );
    // A second route of the same Service: one route per service, so it is Conflicted.
    kube.apply(
        HTTP_ROUTES,
        route(
            "cart-other",
            json!([{"backendRefs": [{"name": "nowhere"}]}]),
        ),
    );
    let reason = |name: &'static str| {
        let kube = &kube;
        async move {
            let c = route_conditions(&kube.object(HTTP_ROUTES, "shop", name))?;
            Some(c[0].1.clone())
        }
    };
    eventually(PATIENCE, "the refusals in the status", || async {
        (reason("mirror").await? == "UnsupportedValue"
            && reason("cart-other").await? == "Conflicted")
            .then_some(())
    })
    .await;
    let mirror = kube.object(HTTP_ROUTES, "shop", "mirror").unwrap();
    let message = mirror["status"]["parents"][0]["conditions"][0]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        message.contains("spec.rules[0].filters[0].type"),
        "{message}"
    );
    assert_eq!(
        ours().await.unwrap().len(),
        1,
        "only cart-split is in the store"
    );

    // The object is deleted: its route leaves the store, and the other one may now apply
    // (and reports its unknown backend).
    kube.delete(HTTP_ROUTES, "shop", "cart-split");
    eventually(PATIENCE, "cart-other applied in its place", || async {
        let c = route_conditions(&kube.object(HTTP_ROUTES, "shop", "cart-other"))?;
        (c[0].1 == "Accepted" && c[1] == ("False".to_string(), "BackendNotFound".to_string()))
            .then_some(())
    })
    .await;
    assert_eq!(ours().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warden_policy_objects_reach_the_store_and_report_their_status() {
    use support::kube_fake::{SECURITY_POLICIES, TRAFFIC_POLICIES, condition};
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let client = http();
    let (node, kube) = setup(root, true).await;
    // An operator's policy for shop/orders through the REST API, first.
    put_ok(
        &client,
        &node.url(&paths::traffic_policy("orders-rest")),
        &json!({"service": "shop/orders", "weights": {"kube-a": 100}}),
    )
    .await;
    let policy = |name: &str, spec: Value| json!({"metadata": {"namespace": "shop", "name": name}, "spec": spec});
    kube.apply(
        TRAFFIC_POLICIES,
        policy(
            "cart-split",
            json!({"service": "cart", "weights": {"kube-a": 70, "west": 30}}),
        ),
    );
    kube.apply(
        TRAFFIC_POLICIES,
        policy(
            "orders-split",
            json!({"service": "orders", "weights": {"west": 100}}),
        ),
    );
    kube.apply(
        TRAFFIC_POLICIES,
        policy("typo", json!({"service": "cart", "wieghts": {}})),
    );
    kube.apply(
        SECURITY_POLICIES,
        policy(
            "cart-callers",
            json!({"service": "cart", "action": "allow", "sources": {"clusters": ["west"]}}),
        ),
    );
    let gw = kube_gateway(root, &node).await;

    // cart-split: in the store under this cluster's id, and its status says so.
    let obj = eventually(PATIENCE, "cart-split is programmed", || async {
        let o = kube.object(TRAFFIC_POLICIES, "shop", "cart-split")?;
        (condition(&o, "Programmed")?.0 == "True").then_some(o)
    })
    .await;
    let id = obj["status"]["policyId"].as_str().unwrap().to_string();
    assert!(id.starts_with("k8s-kube-a-"), "{id}");
    assert_eq!(condition(&obj, "Accepted").unwrap().0, "True");
    assert_eq!(obj["status"]["conditions"][0]["observedGeneration"], 1);
    let stored = get_json(&client, &node.url(&paths::traffic_policy(&id)))
        .await
        .unwrap();
    assert_eq!(
        (stored["service"].as_str(), &stored["weights"]["west"]),
        (Some("shop/cart"), &json!(30))
    );
    // The gateway routes by it: its routing table holds the weights.
    let dump = format!("http://{}/config_dump", gw.addr("admin"));
    eventually(PATIENCE, "the gateway applies cart-split", || async {
        let v = get_json(&client, &dump).await?;
        (v["policies"]["shop/cart"]["weights"]["west"] == 30).then_some(())
    })
    .await;
    let sec = eventually(PATIENCE, "cart-callers is programmed", || async {
        let o = kube.object(SECURITY_POLICIES, "shop", "cart-callers")?;
        (condition(&o, "Programmed")?.0 == "True").then_some(o)
    })
    .await;
    let sid = sec["status"]["policyId"].as_str().unwrap().to_string();
    let stored = get_json(&client, &node.url(&paths::security_policy(&sid)))
        .await
        .unwrap();
    assert_eq!(stored["sources"]["clusters"], json!(["west"]));

    // A bad spec: not accepted, the field named; nothing written for it.
    let typo = eventually(PATIENCE, "typo is refused", || async {
        let o = kube.object(TRAFFIC_POLICIES, "shop", "typo")?;
        (condition(&o, "Accepted")?.0 == "False").then_some(o)
    })
    .await;
    assert_eq!(condition(&typo, "Accepted").unwrap().1, "Invalid");
    let msg = typo["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap_or("");
    assert!(msg.contains("wieghts"), "{msg}");

    // The REST API's policy for orders came first: the object is Conflicted, the REST one
    // untouched; once it goes, the object's policy applies.
    let orders = eventually(PATIENCE, "orders-split conflicts", || async {
        let o = kube.object(TRAFFIC_POLICIES, "shop", "orders-split")?;
        (condition(&o, "Conflicted")?.0 == "True").then_some(o)
    })
    .await;
    assert_eq!(condition(&orders, "Programmed").unwrap().0, "False");
    let rest = get_json(&client, &node.url(&paths::traffic_policy("orders-rest")))
        .await
        .unwrap();
    assert_eq!(
        rest["weights"]["kube-a"], 100,
        "the REST policy is untouched"
    );
    let r = client
        .delete(node.url(&paths::traffic_policy("orders-rest")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    eventually(
        PATIENCE,
        "orders-split applies once the REST one is gone",
        || async {
            let o = kube.object(TRAFFIC_POLICIES, "shop", "orders-split")?;
            (condition(&o, "Programmed")?.0 == "True").then_some(())
        },
    )
    .await;

    // The object deleted: its policy goes from the store.
    kube.delete(TRAFFIC_POLICIES, "shop", "cart-split");
    eventually(PATIENCE, "cart-split's policy is deleted", || async {
        let v = get_json(&client, &node.url(paths::TRAFFIC_POLICIES)).await?;
        let ids: Vec<&str> = v["items"]
            .as_array()?
            .iter()
            .filter_map(|p| p["id"].as_str())
            .collect();
        (!ids.contains(&id.as_str())).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_port_of_a_kubernetes_service_is_routed_here_and_from_another_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let client = http();
    let (node, kube) = setup(root, true).await;
    let web = echo(root, "multi-web", "127.0.0.1:0").await;
    let admin = echo(root, "multi-admin", "127.0.0.1:0").await;
    let port = |p: &Proc| {
        p.addr("addr")
            .rsplit_once(':')
            .unwrap()
            .1
            .parse::<u16>()
            .unwrap()
    };
    // Two named ports; the EndpointSlice names the target port of each.
    kube.apply(
        SERVICES,
        json!({"metadata": {"namespace": "shop", "name": "multi", "annotations": {"warden.io/export": "true"}},
            "spec": {"type": "ClusterIP", "ports": [
                {"name": "http", "port": 80, "protocol": "TCP", "appProtocol": "http"},
                {"name": "admin", "port": 9000, "protocol": "TCP", "appProtocol": "http"}]}}),
    );
    kube.apply(
        SLICES,
        json!({"metadata": {"namespace": "shop", "name": "multi-1", "labels": {"kubernetes.io/service-name": "multi"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": port(&web), "protocol": "TCP"},
                      {"name": "admin", "port": port(&admin), "protocol": "TCP"}],
            "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}]}),
    );
    let gw = kube_gateway(root, &node).await;
    let out = gw.addr("outbound");
    let get = |out: String, host: &'static str| {
        let client = client.clone();
        async move {
            match client
                .get(format!("http://{out}/"))
                .header("host", host)
                .send()
                .await
            {
                Ok(r) => (r.status().as_u16(), served_by(&r)),
                Err(_) => (0, String::new()),
            }
        }
    };
    let by = eventually(PATIENCE, "multi's admin port answers", || async {
        let (s, by) = get(out.clone(), "multi.shop:9000").await;
        (s == 200).then_some(by)
    })
    .await;
    assert_eq!(by, "multi-admin");
    assert_eq!(
        get(out.clone(), "multi.shop").await,
        (200, "multi-web".to_string())
    );
    // Cluster east (static) calls the second port across the east-west hop.
    let east = east_of(root, &node, "").await;
    let (s, by) = eventually(PATIENCE, "east reaches multi's admin port", || async {
        let r = get(east.outbound(), "multi.shop:9000").await;
        (r.0 == 200).then_some(r)
    })
    .await;
    assert_eq!((s, by.as_str()), (200, "multi-admin"));
}
