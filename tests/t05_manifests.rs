//! Offline checks of `deploy/multicluster/`: every manifest parses into its `k8s-openapi` type
//! and survives a round trip unchanged (so a misspelt field cannot hide), every kustomization
//! names files that exist, the overlays' TOML files are valid gateway and node configs, and —
//! where `kubectl` is installed — every overlay renders and its output passes the same checks.
//! The Helm chart (`deploy/helm/warden/`), where `helm` is installed, lints and renders for each
//! kind cluster, its output passes the same checks, and — object by object — equals the
//! overlay's render (labels and the chart's config checksums aside), so the two cannot drift.

use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/multicluster")
}

fn yaml_docs(text: &str, what: &str) -> Vec<Value> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).unwrap_or_else(|e| panic!("{what}: not YAML: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// The first path under which `orig` has something `back` lost or changed (fields the typed
/// side adds, such as defaulted `apiVersion`s of nested templates, are fine).
fn lost(back: &Value, orig: &Value, path: &str) -> Option<String> {
    match (back, orig) {
        (_, Value::Null) => None,
        (Value::Object(b), Value::Object(o)) => o.iter().find_map(|(k, v)| {
            let p = format!("{path}.{k}");
            match b.get(k) {
                Some(bv) => lost(bv, v, &p),
                None if v.is_null() => None,
                None => Some(p),
            }
        }),
        (Value::Array(b), Value::Array(o)) if b.len() == o.len() => b
            .iter()
            .zip(o)
            .enumerate()
            .find_map(|(i, (bv, ov))| lost(bv, ov, &format!("{path}[{i}]"))),
        (b, o) if b == o => None,
        _ => Some(path.to_string()),
    }
}

fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value, what: &str) {
    let typed: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{what}: does not parse as its Kubernetes type: {e}"));
    let back = serde_json::to_value(&typed).unwrap();
    if let Some(p) = lost(&back, doc, "") {
        panic!("{what}: {p} is lost in the round trip through k8s-openapi (a misspelt field?)");
    }
}

/// Parses one object into the type its `kind` names; returns the kind.
fn check_object(doc: &Value, what: &str) -> String {
    let kind = doc["kind"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no kind"));
    match kind {
        "Namespace" => round_trip::<Namespace>(doc, what),
        "ServiceAccount" => round_trip::<ServiceAccount>(doc, what),
        "ClusterRole" => round_trip::<ClusterRole>(doc, what),
        "ClusterRoleBinding" => round_trip::<ClusterRoleBinding>(doc, what),
        "Deployment" => round_trip::<Deployment>(doc, what),
        "StatefulSet" => round_trip::<StatefulSet>(doc, what),
        "Service" => round_trip::<Service>(doc, what),
        "PodDisruptionBudget" => round_trip::<PodDisruptionBudget>(doc, what),
        "ConfigMap" => round_trip::<ConfigMap>(doc, what),
        "CustomResourceDefinition" => round_trip::<CustomResourceDefinition>(doc, what),
        "NetworkPolicy" => round_trip::<NetworkPolicy>(doc, what),
        other => panic!("{what}: unexpected kind {other}"),
    }
    kind.to_string()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn base_manifests_parse_into_kubernetes_types() {
    let base = deploy().join("base");
    let kust = yaml_docs(
        &std::fs::read_to_string(base.join("kustomization.yaml")).unwrap(),
        "base/kustomization.yaml",
    );
    let listed: Vec<String> = kust[0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    let mut kinds = Vec::new();
    for f in files(&base) {
        let name = f.file_name().unwrap().to_str().unwrap().to_string();
        if name == "kustomization.yaml" {
            continue;
        }
        assert!(
            listed.contains(&name),
            "base/{name} is not listed in the kustomization"
        );
        for doc in yaml_docs(&std::fs::read_to_string(&f).unwrap(), &name) {
            kinds.push(check_object(&doc, &name));
        }
    }
    assert_eq!(listed.len(), kinds.len(), "every listed resource exists");
    for k in [
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "StatefulSet",
        "PodDisruptionBudget",
        "Service",
    ] {
        assert!(kinds.iter().any(|x| x == k), "the base has a {k}");
    }
    // Least privilege: read-only discovery plus status writes (ServiceExports, ServiceImports,
    // HTTPRoutes, GRPCRoutes) and the objects of imports (ServiceImports, derived Services,
    // their EndpointSlices: create, update, delete — never patch, never anything else).
    let role: ClusterRole = serde_json::from_value(
        yaml_docs(
            &std::fs::read_to_string(base.join("gateway-clusterrole.yaml")).unwrap(),
            "role",
        )[0]
        .clone(),
    )
    .unwrap();
    for rule in role.rules.unwrap() {
        let resources = rule.resources.unwrap_or_default();
        for verb in &rule.verbs {
            let write = !["get", "list", "watch"].contains(&verb.as_str());
            let statuses = [
                "serviceexports/status",
                "serviceimports/status",
                "wardentrafficpolicies/status",
                "wardensecuritypolicies/status",
                "httproutes/status",
                "grpcroutes/status",
            ];
            let imports = ["serviceimports", "services", "endpointslices"];
            let allowed = resources.iter().all(|r| statuses.contains(&r.as_str()))
                || (["create", "update", "delete"].contains(&verb.as_str())
                    && resources.iter().all(|r| imports.contains(&r.as_str())));
            assert!(!write || allowed, "write verb {verb} on {resources:?}");
        }
    }
}

/// Placeholders the kind scripts fill in, replaced by addresses for the config checks.
fn fill(text: &str) -> String {
    text.replace("@CLUSTER_A_IP@", "172.18.0.2")
        .replace("@CLUSTER_B_IP@", "172.18.0.3")
        .replace("@CLUSTER_C_IP@", "172.18.0.4")
}

#[test]
fn overlays_are_complete_and_their_configs_valid() {
    let overlays = deploy().join("overlays");
    let mut node_ids = Vec::new();
    for name in ["cluster-a", "cluster-b", "cluster-c"] {
        let dir = overlays.join(name);
        let kust = yaml_docs(
            &std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap(),
            name,
        );
        let k = &kust[0];
        for p in k["patches"].as_array().unwrap() {
            let path = dir.join(p["path"].as_str().unwrap());
            for doc in yaml_docs(&std::fs::read_to_string(&path).unwrap(), name) {
                check_object(&doc, &path.display().to_string());
            }
        }
        for g in k["configMapGenerator"].as_array().unwrap() {
            for f in g["files"].as_array().unwrap() {
                assert!(
                    dir.join(f.as_str().unwrap()).exists(),
                    "{name}: {f} missing"
                );
            }
        }
        let tmp = tempfile::tempdir().unwrap();
        let gw = tmp.path().join("gateway.toml");
        std::fs::write(
            &gw,
            fill(&std::fs::read_to_string(dir.join("gateway.toml")).unwrap()),
        )
        .unwrap();
        let g = warden_gateway::config::GatewayConfig::load(&gw)
            .unwrap_or_else(|e| panic!("{name}/gateway.toml: {e}"));
        assert_eq!(g.cluster.name, name);
        assert_eq!(
            g.discovery.source,
            warden_gateway::config::DiscoverySource::Kubernetes
        );
        assert!(g.tls.is_some(), "{name}: mTLS on the east-west hop");
        let node = tmp.path().join("node.toml");
        std::fs::write(
            &node,
            fill(&std::fs::read_to_string(dir.join("node.toml")).unwrap()),
        )
        .unwrap();
        let n = warden_federation::config::NodeConfig::load(&node)
            .unwrap_or_else(|e| panic!("{name}/node.toml: {e}"));
        assert!(n.tls.is_some(), "{name}: mTLS between federation nodes");
        node_ids.push(n.node_id);
    }
    node_ids.sort();
    assert_eq!(
        node_ids,
        [1, 2, 3],
        "one federation node per cluster, distinct ids"
    );
}

fn kubectl() -> Option<String> {
    let k = std::env::var("WARDEN_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let ok = std::process::Command::new(&k)
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(k)
}

#[test]
fn overlays_render_with_kubectl_kustomize() {
    let Some(kubectl) = kubectl() else {
        eprintln!("skipped: kubectl not found (set WARDEN_KUBECTL or put kubectl on PATH)");
        return;
    };
    for name in ["cluster-a", "cluster-b", "cluster-c"] {
        let out = std::process::Command::new(&kubectl)
            .arg("kustomize")
            .arg(deploy().join("overlays").join(name))
            .output()
            .expect("run kubectl kustomize");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let docs = yaml_docs(&String::from_utf8(out.stdout).unwrap(), name);
        let mut config_maps = Vec::new();
        for d in &docs {
            let kind = check_object(d, name);
            if kind != "Namespace"
                && kind != "CustomResourceDefinition"
                && !kind.starts_with("Cluster")
            {
                assert_eq!(
                    d["metadata"]["namespace"], "warden-system",
                    "{name}: {kind}"
                );
            }
            if kind == "ConfigMap" {
                config_maps.push(d["metadata"]["name"].as_str().unwrap().to_string());
            }
        }
        let deployment: Deployment = serde_json::from_value(
            docs.iter()
                .find(|d| d["kind"] == "Deployment")
                .unwrap()
                .clone(),
        )
        .unwrap();
        let pod = deployment.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.containers[0].image.as_deref(), Some("warden:dev"));
        let cm = pod
            .volumes
            .unwrap()
            .into_iter()
            .find_map(|v| v.config_map)
            .unwrap();
        assert!(
            config_maps.contains(&cm.name),
            "{name}: the Deployment mounts the generated ConfigMap {}",
            cm.name
        );
        let eastwest = docs
            .iter()
            .find(|d| d["kind"] == "Service" && d["metadata"]["name"] == "warden-gateway-eastwest")
            .unwrap();
        assert_eq!(eastwest["spec"]["type"], "NodePort");
        assert_eq!(eastwest["spec"]["ports"][0]["nodePort"], 30008);
    }
}

fn helm() -> Option<String> {
    let h = std::env::var("WARDEN_HELM").unwrap_or_else(|_| "helm".into());
    let ok = std::process::Command::new(&h)
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(h)
}

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/helm/warden")
}

/// `helm <verb>` of the chart for kind cluster `name`, with `extra` arguments; its stdout.
fn helm_run(helm: &str, verb: &[&str], name: &str, extra: &[&str]) -> String {
    let overlay = deploy().join("overlays").join(name);
    let out = std::process::Command::new(helm)
        .args(verb)
        .arg(chart())
        .arg("-f")
        .arg(chart().join(format!("values-{name}.yaml")))
        .arg("--set-file")
        .arg(format!(
            "gateway.config={}",
            overlay.join("gateway.toml").display()
        ))
        .arg("--set-file")
        .arg(format!(
            "federation.config={}",
            overlay.join("node.toml").display()
        ))
        .args(extra)
        .output()
        .expect("run helm");
    assert!(
        out.status.success(),
        "helm {verb:?} {name}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// An object as both tools must agree on it: labels, annotations and the chart's config
/// checksums left out, kustomize's ConfigMap name hashes taken off.
fn normalized(doc: &Value) -> Value {
    fn unhash(v: &mut Value) {
        match v {
            Value::String(s) => {
                for base in ["warden-gateway-config", "warden-federation-config"] {
                    if s.starts_with(&format!("{base}-")) && s.len() == base.len() + 11 {
                        *s = base.to_string();
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(unhash),
            Value::Object(o) => o.values_mut().for_each(unhash),
            _ => {}
        }
    }
    let mut d = doc.clone();
    if let Some(m) = d["metadata"].as_object_mut() {
        m.remove("labels");
        m.remove("annotations");
    }
    if let Some(meta) = d
        .pointer_mut("/spec/template/metadata")
        .and_then(Value::as_object_mut)
    {
        if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            a.retain(|k, _| !k.starts_with("checksum/"));
        }
        if meta
            .get("annotations")
            .and_then(Value::as_object)
            .is_some_and(|a| a.is_empty())
        {
            meta.remove("annotations");
        }
    }
    unhash(&mut d);
    d
}

#[test]
fn the_chart_renders_and_matches_the_kustomize_overlays() {
    let Some(helm) = helm() else {
        eprintln!("skipped: helm not found (set WARDEN_HELM or put helm on PATH)");
        return;
    };
    // The chart's CRDs are the base's.
    for crd in [
        "serviceexport-crd.yaml",
        "serviceimport-crd.yaml",
        "wardentrafficpolicy-crd.yaml",
        "wardensecuritypolicy-crd.yaml",
    ] {
        assert_eq!(
            std::fs::read_to_string(chart().join("crds").join(crd)).unwrap(),
            std::fs::read_to_string(deploy().join("base").join(crd)).unwrap(),
            "deploy/helm/warden/crds/{crd} differs from the base's"
        );
    }
    let kubectl = kubectl();
    for name in ["cluster-a", "cluster-b", "cluster-c"] {
        helm_run(&helm, &["lint"], name, &["--strict"]);
        let all = [
            "--namespace",
            "warden-system",
            "--include-crds",
            "--set",
            "networkPolicy.enabled=true",
            "--set",
            "serviceMonitor.enabled=true",
        ];
        let full = yaml_docs(&helm_run(&helm, &["template", "warden"], name, &all), name);
        for d in &full {
            if d["kind"] == "ServiceMonitor" {
                assert_eq!(d["apiVersion"], "monitoring.coreos.com/v1");
                assert_eq!(d["spec"]["endpoints"][0]["port"], "admin");
                continue;
            }
            let kind = check_object(d, name);
            if kind != "CustomResourceDefinition" && !kind.starts_with("Cluster") {
                assert_eq!(
                    d["metadata"]["namespace"], "warden-system",
                    "{name}: {kind}"
                );
            }
        }
        assert_eq!(
            full.iter().filter(|d| d["kind"] == "NetworkPolicy").count(),
            2,
            "{name}: a NetworkPolicy for the gateway and one for the node"
        );
        let Some(kubectl) = &kubectl else {
            eprintln!("skipped: the comparison with the overlays needs kubectl");
            continue;
        };
        let chart_docs = yaml_docs(
            &helm_run(
                &helm,
                &["template", "warden"],
                name,
                &["--namespace", "warden-system", "--include-crds"],
            ),
            name,
        );
        let out = std::process::Command::new(kubectl)
            .arg("kustomize")
            .arg(deploy().join("overlays").join(name))
            .output()
            .expect("run kubectl kustomize");
        assert!(out.status.success());
        let kust = yaml_docs(&String::from_utf8(out.stdout).unwrap(), name);
        for k in kust.iter().filter(|d| d["kind"] != "Namespace") {
            let k = normalized(k);
            let (kind, obj) = (&k["kind"], &k["metadata"]["name"]);
            let c = chart_docs
                .iter()
                .map(normalized)
                .find(|c| c["kind"] == *kind && c["metadata"]["name"] == *obj)
                .unwrap_or_else(|| panic!("{name}: the chart has no {kind} {obj}"));
            assert_eq!(
                c, k,
                "{name}: the chart's {kind} {obj} differs from the overlay's"
            );
        }
        assert_eq!(
            chart_docs.len(),
            kust.len() - 1,
            "{name}: the chart renders the overlay's objects (the Namespace aside), no more"
        );
    }
}
