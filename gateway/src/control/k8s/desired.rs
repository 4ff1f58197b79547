//! The pure half of Kubernetes discovery: from the full state of Services, EndpointSlices and
//! ServiceExports, the set of local services to export (with their ready endpoints), and the
//! problems to report on ServiceExports. No I/O; the reflector stores feed it.
//!
//! Endpoint labels (what a route's subsets select on) are the labels of the **Pod** behind
//! each endpoint (its EndpointSlice `targetRef`), read from a metadata-only Pod watch: an
//! EndpointSlice's own labels are copied from the Service and say nothing about versions.
//! Labels that differ per Pod or per revision (`pod-template-hash`,
//! `controller-revision-hash`, `statefulset.kubernetes.io/pod-name`,
//! `apps.kubernetes.io/pod-index`, `pod-template-generation`) are left out, so that the label
//! sets an export publishes stay few; at most [`MAX_SUBSET_LABELS`] labels are kept per
//! endpoint (the first by key).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use warden_federation::model::{MAX_SUBSET_LABELS, Protocol, ServicePort};

use crate::config::{KubernetesSection, StaticService};
use crate::control::addresses::Refused;

/// `warden.io/export: "true"` exports a Service without a ServiceExport.
pub const EXPORT_ANNOTATION: &str = "warden.io/export";
/// Per-Service weight of this cluster's copy (0–10000).
pub const WEIGHT_ANNOTATION: &str = "warden.io/weight";
/// Per-Service active probe: `tcp` or an HTTP path.
pub const PROBE_ANNOTATION: &str = "warden.io/probe";
/// Only these clusters (comma-separated names) may import the Service.
pub const EXPORT_TO_ANNOTATION: &str = "warden.io/export-to";
/// The label EndpointSlices carry to name their Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Pod labels that name one Pod or one revision: never a subset, and they would multiply the
/// label sets an export publishes.
const PER_POD_LABELS: [&str; 5] = [
    "pod-template-hash",
    "controller-revision-hash",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
    "pod-template-generation",
];

/// The labels of the Pod `namespace/name`, if known.
pub type PodLabels<'a> = &'a dyn Fn(&str, &str) -> Option<BTreeMap<String, String>>;

/// The labels of a Pod that an endpoint carries (see the module docs).
pub fn endpoint_labels(pod: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    pod.iter()
        .filter(|(k, v)| !PER_POD_LABELS.contains(&k.as_str()) && k.len() <= 253 && v.len() <= 63)
        .take(MAX_SUBSET_LABELS)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A Kubernetes Service (and its ServiceExport) by namespace and name: the mesh's service key.
pub type Key = crate::key::ServiceKey;

/// The ServiceExports by the Service they name, with their annotations.
pub type Exports = BTreeMap<Key, BTreeMap<String, String>>;

/// What the state says about one exported Service.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The service to run a pool for and publish; `None` when it cannot be exported.
    pub service: Option<StaticService>,
    /// Why not, for the ServiceExport's `Valid` condition: (reason, message).
    pub invalid: Option<(&'static str, String)>,
    /// Endpoint addresses refused (see [`crate::control::addresses`]), with why.
    pub refused: Vec<(String, Refused)>,
}

fn in_scope(cfg: &KubernetesSection, ns: &str) -> bool {
    cfg.namespaces.is_empty() || cfg.namespaces.iter().any(|n| n == ns)
}

fn key_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<Key> {
    Some(Key::new(meta.namespace.clone()?, meta.name.clone()?))
}

/// The protocol of a Service port: `appProtocol` first, then the port name's prefix (the
/// convention `http-web`, `grpc-api`), else plain TCP.
fn protocol(p: &k8s_openapi::api::core::v1::ServicePort) -> Protocol {
    let hint = p
        .app_protocol
        .as_deref()
        .or(p.name.as_deref())
        .unwrap_or("")
        .to_ascii_lowercase();
    if hint.starts_with("grpc") {
        Protocol::Grpc
    } else if hint.starts_with("http2") || hint.starts_with("h2c") || hint == "kubernetes.io/h2c" {
        Protocol::Http2
    } else if hint.starts_with("http") {
        Protocol::Http
    } else {
        Protocol::Tcp
    }
}

/// Ready endpoint addresses (`ip:port`) of `svc` for the Service port named `port_name`, with
/// the labels of the Pod behind each (none when the endpoint names no Pod or the Pod is not
/// known yet). A missing `ready` condition counts as ready, as the EndpointSlice API specifies.
fn ready_endpoints(
    slices: &[&EndpointSlice],
    port_name: Option<&str>,
    pods: PodLabels<'_>,
) -> (Vec<String>, BTreeMap<String, BTreeMap<String, String>>) {
    let mut out = BTreeSet::new();
    let mut labels = BTreeMap::new();
    for s in slices {
        let port = s
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref().unwrap_or("") == port_name.unwrap_or(""));
        let Some(port) = port.and_then(|p| p.port) else {
            continue;
        };
        let v6 = s.address_type == "IPv6";
        let slice_ns = s.metadata.namespace.as_deref().unwrap_or("");
        for e in &s.endpoints {
            if e.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                continue;
            }
            let pod = e
                .target_ref
                .as_ref()
                .filter(|r| r.kind.as_deref() == Some("Pod"))
                .and_then(|r| {
                    let ns = r.namespace.as_deref().unwrap_or(slice_ns);
                    pods(ns, r.name.as_deref()?)
                })
                .map(|l| endpoint_labels(&l))
                .filter(|l| !l.is_empty());
            for a in &e.addresses {
                let addr = if v6 {
                    format!("[{a}]:{port}")
                } else {
                    format!("{a}:{port}")
                };
                if let Some(l) = &pod {
                    labels.insert(addr.clone(), l.clone());
                }
                out.insert(addr);
            }
        }
    }
    (out.into_iter().collect(), labels)
}

/// Computes every exported Service's outcome. `exports` are the ServiceExports present;
/// a Service with the export annotation is exported as well.
pub fn desired<'a>(
    cfg: &KubernetesSection,
    services: impl IntoIterator<Item = &'a Service>,
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    exports: &Exports,
    pods: PodLabels<'_>,
) -> BTreeMap<Key, Outcome> {
    let mut by_service: BTreeMap<Key, Vec<&EndpointSlice>> = BTreeMap::new();
    for s in slices {
        let (Some(ns), Some(name)) = (
            s.metadata.namespace.clone(),
            s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
                .cloned(),
        ) else {
            continue;
        };
        by_service.entry(Key::new(ns, name)).or_default().push(s);
    }
    let mut out = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for svc in services {
        let Some(key) = key_of(&svc.metadata) else {
            continue;
        };
        if !in_scope(cfg, &key.namespace) {
            continue;
        }
        seen.insert(key.clone());
        let mut annotations = svc.metadata.annotations.clone().unwrap_or_default();
        let annotated = annotations.get(EXPORT_ANNOTATION).map(String::as_str) == Some("true");
        if !annotated && !exports.contains_key(&key) {
            continue;
        }
        // A `warden.io/` annotation on the ServiceExport overrides the Service's.
        if let Some(ex) = exports.get(&key) {
            for (k, v) in ex.iter().filter(|(k, _)| k.starts_with("warden.io/")) {
                annotations.insert(k.clone(), v.clone());
            }
        }
        out.insert(
            key.clone(),
            outcome(cfg, svc, &annotations, by_service.get(&key), pods),
        );
    }
    for key in exports.keys() {
        if in_scope(cfg, &key.namespace) && !seen.contains(key) {
            out.insert(
                key.clone(),
                Outcome {
                    service: None,
                    invalid: Some((
                        "ServiceNotFound",
                        format!("no Service {key} in this cluster"),
                    )),
                    refused: Vec::new(),
                },
            );
        }
    }
    out
}

fn outcome(
    cfg: &KubernetesSection,
    svc: &Service,
    annotations: &BTreeMap<String, String>,
    slices: Option<&Vec<&EndpointSlice>>,
    pods: PodLabels<'_>,
) -> Outcome {
    let invalid = |reason, message: String| Outcome {
        service: None,
        invalid: Some((reason, message)),
        refused: Vec::new(),
    };
    let (ns, name) = key_of(&svc.metadata)
        .map(|k| (k.namespace, k.name))
        .unwrap_or_default();
    let spec = svc.spec.clone().unwrap_or_default();
    if spec.type_.as_deref() == Some("ExternalName") {
        return invalid(
            "ServiceTypeUnsupported",
            "ExternalName Services have no endpoints to export".into(),
        );
    }
    let kports = spec.ports.unwrap_or_default();
    if kports.is_empty() {
        return invalid("NoPorts", "the Service has no ports".into());
    }
    let ports: Vec<ServicePort> = kports
        .iter()
        .map(|p| ServicePort {
            name: p
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("port-{}", p.port)),
            port: u16::try_from(p.port).unwrap_or(0),
            protocol: protocol(p),
        })
        .collect();
    let weight = match annotations.get(WEIGHT_ANNOTATION) {
        None => cfg.weight,
        Some(w) => match w.parse::<u32>() {
            Ok(w) if w <= 10_000 => w,
            _ => {
                return invalid(
                    "InvalidAnnotation",
                    format!("{WEIGHT_ANNOTATION} must be an integer 0-10000, not {w:?}"),
                );
            }
        },
    };
    let probe = match annotations.get(PROBE_ANNOTATION) {
        None => cfg.probe.clone(),
        Some(p) if p == "tcp" || p.starts_with('/') => p.clone(),
        Some(p) => {
            return invalid(
                "InvalidAnnotation",
                format!("{PROBE_ANNOTATION} must be \"tcp\" or an HTTP path, not {p:?}"),
            );
        }
    };
    let export_to: Vec<String> = annotations
        .get(EXPORT_TO_ANNOTATION)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let audience = warden_federation::audience::ExportAudience {
        export_to: export_to.clone(),
    };
    if let Err(e) = audience.validate(EXPORT_TO_ANNOTATION) {
        return invalid("InvalidAnnotation", e.to_string());
    }
    let empty = Vec::new();
    let slices = slices.unwrap_or(&empty);
    // The endpoints are the ready addresses on the EndpointSlice port matching the Service's
    // first port; every other port is served on the slice port of its name (the first slice
    // that has it: the Pods of one Service name their ports alike).
    let (endpoints, labels) = ready_endpoints(slices, kports[0].name.as_deref(), pods);
    let port_targets = kports
        .iter()
        .zip(&ports)
        .skip(1)
        .filter_map(|(k, p)| {
            let target = slices.iter().find_map(|s| {
                s.ports
                    .iter()
                    .flatten()
                    .find(|sp| sp.name.as_deref().unwrap_or("") == k.name.as_deref().unwrap_or(""))
                    .and_then(|sp| sp.port)
            })?;
            Some((p.port, u16::try_from(target).ok()?))
        })
        .collect();
    let export = warden_federation::model::ServiceExport {
        cluster: "local".into(),
        namespace: ns.clone(),
        service: name.clone(),
        ports: ports.clone(),
        healthy_endpoints: 0,
        weight,
        updated_at: 0,
    };
    if let Err(e) = export.validate() {
        return invalid("InvalidService", e.to_string());
    }
    Outcome {
        service: Some(StaticService {
            namespace: ns,
            name,
            ports,
            endpoints,
            labels,
            weight,
            export: true,
            probe,
            port_targets,
            export_to,
        }),
        invalid: None,
        refused: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn no_pods(_: &str, _: &str) -> Option<BTreeMap<String, String>> {
        None
    }

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }
    fn slice(v: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(v).unwrap()
    }

    fn cart(annotations: serde_json::Value) -> Service {
        svc(json!({
            "metadata": {"namespace": "shop", "name": "cart", "annotations": annotations},
            "spec": {"ports": [
                {"name": "http", "port": 80, "targetPort": 8080},
                {"name": "grpc-api", "port": 9090}
            ]}
        }))
    }

    fn cart_slice() -> EndpointSlice {
        slice(json!({
            "metadata": {"namespace": "shop", "name": "cart-abc",
                         "labels": {"kubernetes.io/service-name": "cart"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080}, {"name": "grpc-api", "port": 9090}],
            "endpoints": [
                {"addresses": ["10.0.0.1"], "conditions": {"ready": true}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": false}},
                {"addresses": ["10.0.0.3"]}
            ]
        }))
    }

    #[test]
    fn endpoints_carry_the_labels_of_their_pods_without_the_per_pod_ones() {
        let cfg = KubernetesSection::default();
        let s = cart(json!({"warden.io/export": "true"}));
        let sl = slice(json!({
            "metadata": {"namespace": "shop", "name": "cart-abc",
                         "labels": {"kubernetes.io/service-name": "cart"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080}],
            "endpoints": [
                {"addresses": ["10.0.0.1"], "targetRef": {"kind": "Pod", "name": "cart-v1-x"}},
                {"addresses": ["10.0.0.2"], "targetRef": {"kind": "Pod", "namespace": "shop", "name": "cart-v2-y"}},
                {"addresses": ["10.0.0.3"], "targetRef": {"kind": "Pod", "name": "unknown"}},
                {"addresses": ["10.0.0.4"]}
            ]
        }));
        let pods = |ns: &str, name: &str| -> Option<BTreeMap<String, String>> {
            let version = match (ns, name) {
                ("shop", "cart-v1-x") => "v1",
                ("shop", "cart-v2-y") => "v2",
                _ => return None,
            };
            Some(
                [
                    ("app", "cart"),
                    ("version", version),
                    ("pod-template-hash", "5d8f7"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            )
        };
        let out = desired(&cfg, [&s], [&sl], &Exports::new(), &pods);
        let svc = out[&Key::new("shop", "cart")].service.clone().unwrap();
        assert_eq!(
            svc.endpoints.len(),
            4,
            "every ready endpoint, labelled or not"
        );
        let v = |addr: &str| svc.labels.get(addr).map(|l| l["version"].as_str());
        assert_eq!(v("10.0.0.1:8080"), Some("v1"));
        assert_eq!(v("10.0.0.2:8080"), Some("v2"));
        assert_eq!(v("10.0.0.3:8080"), None, "a Pod not seen yet: no labels");
        assert_eq!(v("10.0.0.4:8080"), None);
        assert!(!svc.labels["10.0.0.1:8080"].contains_key("pod-template-hash"));
        // Many labels: the first 16 by key are kept.
        let many: BTreeMap<String, String> = (0..40)
            .map(|i| (format!("k{i:02}"), "x".to_string()))
            .collect();
        let kept = endpoint_labels(&many);
        assert_eq!(kept.len(), MAX_SUBSET_LABELS);
        assert!(kept.contains_key("k00") && !kept.contains_key("k39"));
    }

    #[test]
    fn annotation_exports_with_ready_endpoints_on_the_target_port() {
        let cfg = KubernetesSection::default();
        let s = cart(json!({"warden.io/export": "true"}));
        let sl = cart_slice();
        let out = desired(&cfg, [&s], [&sl], &Exports::new(), &no_pods);
        let o = &out[&Key::new("shop", "cart")];
        let svc = o.service.as_ref().unwrap();
        assert_eq!(svc.endpoints, vec!["10.0.0.1:8080", "10.0.0.3:8080"]);
        assert_eq!(svc.ports[0].protocol, Protocol::Http);
        assert_eq!(svc.ports[1].protocol, Protocol::Grpc);
        assert_eq!(svc.weight, 100);
    }

    #[test]
    fn service_export_exports_and_missing_service_is_invalid() {
        let cfg = KubernetesSection::default();
        let s = cart(json!({}));
        let exports: Exports = [
            (
                Key::new("shop", "cart"),
                [("warden.io/export-to".to_string(), "west".to_string())].into(),
            ),
            (Key::new("shop", "ghost"), BTreeMap::new()),
        ]
        .into();
        let out = desired(&cfg, [&s], [], &exports, &no_pods);
        let cart = out[&Key::new("shop", "cart")].service.as_ref().unwrap();
        assert_eq!(
            cart.export_to,
            ["west"],
            "the ServiceExport's annotation counts"
        );
        let ghost = &out[&Key::new("shop", "ghost")];
        assert!(ghost.service.is_none());
        assert_eq!(ghost.invalid.as_ref().unwrap().0, "ServiceNotFound");
    }

    #[test]
    fn unexported_and_out_of_scope_services_are_ignored() {
        let s = cart(json!({}));
        assert!(
            desired(
                &KubernetesSection::default(),
                [&s],
                [],
                &Exports::new(),
                &no_pods
            )
            .is_empty()
        );
        let cfg = KubernetesSection {
            namespaces: vec!["other".into()],
            ..Default::default()
        };
        let s = cart(json!({"warden.io/export": "true"}));
        assert!(desired(&cfg, [&s], [], &Exports::new(), &no_pods).is_empty());
    }

    #[test]
    fn bad_annotations_are_reported_not_guessed() {
        let cfg = KubernetesSection::default();
        let s = cart(json!({"warden.io/export": "true", "warden.io/weight": "lots"}));
        let out = desired(&cfg, [&s], [], &Exports::new(), &no_pods);
        let o = &out[&Key::new("shop", "cart")];
        assert_eq!(o.invalid.as_ref().unwrap().0, "InvalidAnnotation");
        let s = cart(json!({"warden.io/export": "true", "warden.io/probe": "healthz"}));
        let out = desired(&cfg, [&s], [], &Exports::new(), &no_pods);
        assert!(out[&Key::new("shop", "cart")].service.is_none());
    }

    #[test]
    fn ipv6_slices_and_unnamed_ports() {
        let cfg = KubernetesSection::default();
        let s = svc(json!({
            "metadata": {"namespace": "a", "name": "db", "annotations": {"warden.io/export": "true"}},
            "spec": {"ports": [{"port": 5432}]}
        }));
        let sl = slice(json!({
            "metadata": {"namespace": "a", "name": "db-1", "labels": {"kubernetes.io/service-name": "db"}},
            "addressType": "IPv6",
            "ports": [{"port": 5432}],
            "endpoints": [{"addresses": ["fd00::1"]}]
        }));
        let out = desired(&cfg, [&s], [&sl], &Exports::new(), &no_pods);
        let svc = out[&Key::new("a", "db")].service.clone().unwrap();
        assert_eq!(svc.endpoints, vec!["[fd00::1]:5432"]);
        assert_eq!(svc.ports[0].name, "port-5432");
        assert_eq!(svc.ports[0].protocol, Protocol::Tcp);
    }
}
