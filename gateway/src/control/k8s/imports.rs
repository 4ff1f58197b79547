//! The pure half of ServiceImports (the MCS API, KEP-1645): from the federation's catalog, what
//! this cluster keeps so that an unmodified client reaches a service the mesh exports — by
//! `<svc>.<ns>.svc.clusterset.local` (CoreDNS `multicluster` plugin, which answers with the
//! ServiceImport's `spec.ips`) or by its derived Service's name. Per service: a ServiceImport of
//! the same namespace and name (type ClusterSetIP, the merged ports, `status.clusters`), a
//! ClusterIP Service `<svc>-clusterset` without a selector, and its EndpointSlice, whose
//! endpoints are this cluster's ready gateway pods on the outbound listener's port. The gateway
//! routes what arrives there by the name the client used.
//!
//! Ports are merged across the exporting clusters by name; clusters that disagree on a port
//! (same name with another number or protocol, or the same number under another name) conflict,
//! and — as Warden knows no creation time of an export — the definition of the first cluster by
//! name wins, the conflict is reported. HTTP and gRPC ports are sent to the outbound
//! listener, which routes by the name the client used; a raw TCP port is sent to a pod port
//! of its own ([`super::tcp_ports`]), where the gateway serves that service's port. A TCP
//! port left without a pod port (the range is used up) is listed in the ServiceImport but not
//! served, and its `Ready` condition says so.
//!
//! Every object carries [`OWNER_LABELS`]; only objects with them are ever changed or deleted.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort as KubePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};
use warden_federation::model::{Protocol, ServicePort};
use warden_federation::trust::digest::sha256_hex;
use warden_federation::wire::CatalogService;

use super::desired::{Key, SERVICE_NAME_LABEL};
use crate::config::PortRange;

/// Pod port by (imported service, its port number): see `super::tcp_ports`.
pub type TcpPorts = BTreeMap<(Key, u16), u16>;
use crate::table::{DERIVED_PREFIX, DERIVED_SUFFIX};

/// Labels on every object Warden keeps for an import.
pub const OWNER_LABELS: [(&str, &str); 2] = [
    ("app.kubernetes.io/managed-by", "warden"),
    ("warden.io/import", "true"),
];
/// The label that names the imported service (on the derived Service and its slice).
pub const IMPORTED_SERVICE_LABEL: &str = "multicluster.kubernetes.io/service-name";
/// Who manages the derived EndpointSlices (never the endpointslice controller).
pub const SLICE_MANAGER: &str = "warden.io/gateway";

/// One service the mesh exports, as this cluster imports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    pub key: Key,
    /// The derived Service's name.
    pub derived: String,
    /// The merged ports.
    pub ports: Vec<ServicePort>,
    /// The clusters that export it, by name.
    pub clusters: Vec<String>,
    /// Port definitions the clusters disagree on, one message each.
    pub conflicts: Vec<String>,
}

/// The name of the derived Service of `key`: `<svc>-clusterset` (so that stock CoreDNS can
/// rewrite `<svc>.<ns>.svc.clusterset.local` to it), or `derived-<10 hex>` when that would
/// not be a DNS label of at most 63 characters.
pub fn derived_name(key: &Key) -> String {
    let readable = format!("{}{DERIVED_SUFFIX}", key.name);
    if readable.len() <= 63 {
        return readable;
    }
    let h = sha256_hex(format!("{}/{}", key.namespace, key.name).as_bytes());
    format!("{DERIVED_PREFIX}{}", &h[..10])
}

/// Whether the object's labels say Warden made it for an import.
pub fn owned(labels: Option<&BTreeMap<String, String>>) -> bool {
    labels.is_some_and(|l| {
        OWNER_LABELS
            .iter()
            .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
    })
}

fn owner_labels() -> BTreeMap<String, String> {
    OWNER_LABELS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The imports of cluster `me` for the catalog, in the namespaces of `scope` (empty: all): a
/// copy exported to other clusters only does not count.
pub fn imports(catalog: &[CatalogService], scope: &[String], me: &str) -> Vec<Import> {
    let mut out = Vec::new();
    for s in catalog {
        if !scope.is_empty() && !scope.contains(&s.namespace) {
            continue;
        }
        let mut copies: Vec<_> = s
            .clusters
            .iter()
            .filter(|c| warden_federation::audience::allows(&c.export_to, me))
            .collect();
        if copies.is_empty() {
            continue;
        }
        copies.sort_by(|a, b| a.cluster.cmp(&b.cluster));
        let mut ports: Vec<(ServicePort, String)> = Vec::new();
        let mut conflicts = Vec::new();
        for c in &copies {
            for p in &c.ports {
                let clash = ports
                    .iter()
                    .find(|(q, _)| (q.name == p.name || q.port == p.port) && q != p);
                if let Some((q, owner)) = clash {
                    conflicts.push(format!(
                        "port {:?}: {} exports {}/{}, {owner} exports {}/{} (kept)",
                        p.name,
                        c.cluster,
                        p.port,
                        protocol_name(p.protocol),
                        q.port,
                        protocol_name(q.protocol)
                    ));
                } else if !ports.iter().any(|(q, _)| q == p) {
                    ports.push((p.clone(), c.cluster.clone()));
                }
            }
        }
        let key = Key::new(&s.namespace, &s.service);
        out.push(Import {
            derived: derived_name(&key),
            key,
            ports: ports.into_iter().map(|(p, _)| p).collect(),
            clusters: copies.iter().map(|c| c.cluster.clone()).collect(),
            conflicts,
        });
    }
    out
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Http => "http",
        Protocol::Http2 => "http2",
        Protocol::Grpc => "grpc",
        Protocol::Tcp => "tcp",
    }
}

fn app_protocol(p: Protocol) -> Option<String> {
    match p {
        Protocol::Http => Some("http".into()),
        Protocol::Http2 => Some("kubernetes.io/h2c".into()),
        Protocol::Grpc => Some("grpc".into()),
        Protocol::Tcp => None,
    }
}

/// The ports the derived Service serves, each with its pod port: HTTP and gRPC on
/// `target` (the outbound listener), raw TCP on the pod port `tcp` gives it (none: not served).
pub fn served_ports<'a>(
    imp: &'a Import,
    target: u16,
    tcp: &TcpPorts,
) -> Vec<(&'a ServicePort, u16)> {
    imp.ports
        .iter()
        .filter_map(|p| match p.protocol {
            Protocol::Tcp => tcp.get(&(imp.key.clone(), p.port)).map(|t| (p, *t)),
            _ => Some((p, target)),
        })
        .collect()
}

/// A port name for Kubernetes: the export's, or `port-<n>` when it has none.
fn port_name(p: &ServicePort) -> String {
    match p.name.is_empty() {
        true => format!("port-{}", p.port),
        false => p.name.clone(),
    }
}

fn meta(imp: &Import, name: &str, extra: &[(&str, &str)]) -> ObjectMeta {
    let mut labels = owner_labels();
    labels.insert(IMPORTED_SERVICE_LABEL.into(), imp.key.name.clone());
    for (k, v) in extra {
        labels.insert(k.to_string(), v.to_string());
    }
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(imp.key.namespace.clone()),
        labels: Some(labels),
        ..Default::default()
    }
}

/// The derived Service: ClusterIP, no selector, each served port sent to its pod port on the
/// gateway pods (see [`served_ports`]).
pub fn derived_service(imp: &Import, target: u16, tcp: &TcpPorts) -> Service {
    let ports = served_ports(imp, target, tcp)
        .into_iter()
        .map(|(p, t)| KubePort {
            name: Some(port_name(p)),
            port: i32::from(p.port),
            protocol: Some("TCP".into()),
            app_protocol: app_protocol(p.protocol),
            target_port: Some(IntOrString::Int(i32::from(t))),
            ..Default::default()
        })
        .collect();
    Service {
        metadata: meta(imp, &imp.derived, &[]),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            ports: Some(ports),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The derived Service's EndpointSlice: the gateway pods' ready `addresses`, on the same pod
/// ports as the Service.
pub fn derived_slice(
    imp: &Import,
    addresses: &[String],
    target: u16,
    tcp: &TcpPorts,
) -> EndpointSlice {
    let ports = served_ports(imp, target, tcp)
        .into_iter()
        .map(|(p, t)| EndpointPort {
            name: Some(port_name(p)),
            port: Some(i32::from(t)),
            protocol: Some("TCP".into()),
            app_protocol: app_protocol(p.protocol),
        })
        .collect();
    let endpoints = addresses
        .iter()
        .map(|a| Endpoint {
            addresses: vec![a.clone()],
            conditions: Some(EndpointConditions {
                ready: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    let family = match addresses.iter().any(|a| a.contains(':')) {
        true => "IPv6",
        false => "IPv4",
    };
    EndpointSlice {
        metadata: meta(
            imp,
            &imp.derived,
            &[
                (SERVICE_NAME_LABEL, imp.derived.as_str()),
                ("endpointslice.kubernetes.io/managed-by", SLICE_MANAGER),
            ],
        ),
        address_type: family.into(),
        endpoints,
        ports: Some(ports),
    }
}

/// A ServiceImport's spec (`multicluster.x-k8s.io/v1alpha1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportSpec {
    #[serde(rename = "type")]
    pub type_: String,
    pub ports: Vec<ImportPort>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportPort {
    pub name: String,
    pub port: u16,
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
}

/// The ServiceImport's spec, with the derived Service's ClusterIP once it has one.
pub fn import_spec(imp: &Import, cluster_ip: Option<&str>) -> ImportSpec {
    ImportSpec {
        type_: "ClusterSetIP".into(),
        ports: imp
            .ports
            .iter()
            .map(|p| ImportPort {
                name: port_name(p),
                port: p.port,
                protocol: "TCP".into(),
                app_protocol: app_protocol(p.protocol),
            })
            .collect(),
        ips: cluster_ip.into_iter().map(str::to_string).collect(),
    }
}

/// The labels of a ServiceImport.
pub fn import_labels() -> BTreeMap<String, String> {
    owner_labels()
}

/// One condition of a ServiceImport's status: (type, holds, reason, message).
pub type Condition = (&'static str, bool, &'static str, String);

/// The ServiceImport's conditions: `Conflict` (ports the clusters disagree on) and `Ready`
/// (the derived Service serves every port, or which it does not: raw TCP ports `tcp` has no
/// pod port for, out of `range`).
pub fn import_conditions(
    imp: &Import,
    derived_taken: bool,
    tcp: &TcpPorts,
    range: PortRange,
) -> Vec<Condition> {
    let conflict = match imp.conflicts.is_empty() {
        true => ("Conflict", false, "NoConflict", String::new()),
        false => ("Conflict", true, "PortConflict", imp.conflicts.join("; ")),
    };
    let unserved: Vec<String> = imp
        .ports
        .iter()
        .filter(|p| p.protocol == Protocol::Tcp && !tcp.contains_key(&(imp.key.clone(), p.port)))
        .map(|p| format!("{}/{}", port_name(p), p.port))
        .collect();
    let exhausted = || {
        format!(
            "raw TCP ports {} are not served: no pod port is left in discovery.kubernetes.import_tcp_ports ({range})",
            unserved.join(", ")
        )
    };
    let ready = if derived_taken {
        (
            "Ready",
            false,
            "DerivedServiceTaken",
            format!(
                "a Service {:?} that Warden did not make exists: nothing is served",
                imp.derived
            ),
        )
    } else if unserved.len() == imp.ports.len() {
        ("Ready", false, "NoServedPorts", exhausted())
    } else if !unserved.is_empty() {
        ("Ready", true, "SomePortsNotServed", exhausted())
    } else {
        ("Ready", true, "Served", String::new())
    };
    vec![conflict, ready]
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_federation::wire::CatalogEntry;

    fn copy(cluster: &str, ports: &[(&str, u16, Protocol)]) -> CatalogEntry {
        CatalogEntry {
            cluster: cluster.into(),
            ports: ports
                .iter()
                .map(|(n, p, pr)| ServicePort {
                    name: n.to_string(),
                    port: *p,
                    protocol: *pr,
                })
                .collect(),
            healthy_endpoints: 1,
            weight: 100,
            updated_at: 1,
            subsets: vec![],
            export_to: vec![],
        }
    }

    fn cart(clusters: Vec<CatalogEntry>) -> CatalogService {
        CatalogService {
            namespace: "shop".into(),
            service: "cart".into(),
            clusters,
        }
    }

    #[test]
    fn ports_merge_by_name_and_a_disagreement_is_a_conflict_the_first_cluster_wins() {
        let c = cart(vec![
            copy(
                "west",
                &[("http", 8080, Protocol::Http), ("db", 5432, Protocol::Tcp)],
            ),
            copy(
                "east",
                &[("http", 80, Protocol::Http), ("grpc", 9090, Protocol::Grpc)],
            ),
        ]);
        let imps = imports(&[c], &[], "kube-b");
        let imp = &imps[0];
        assert_eq!(imp.clusters, ["east", "west"]);
        let ports: Vec<(&str, u16)> = imp
            .ports
            .iter()
            .map(|p| (p.name.as_str(), p.port))
            .collect();
        assert_eq!(ports, [("http", 80), ("grpc", 9090), ("db", 5432)]);
        assert_eq!(imp.conflicts.len(), 1, "{:?}", imp.conflicts);
        assert!(imp.conflicts[0].contains("west exports 8080/http, east exports 80/http"));
        let range = PortRange {
            first: 15100,
            last: 15100,
        };
        let none = TcpPorts::new();
        let conds = import_conditions(imp, false, &none, range);
        assert!(conds[0].1);
        assert_eq!((conds[1].1, conds[1].2), (true, "SomePortsNotServed"));
        assert!(conds[1].3.contains("db/5432") && conds[1].3.contains("15100-15100"));

        let svc = derived_service(imp, 15001, &none);
        let sp = svc.spec.unwrap().ports.unwrap();
        assert_eq!(
            sp.len(),
            2,
            "a raw TCP port without a pod port is not served"
        );
        assert!(
            sp.iter()
                .all(|p| p.target_port == Some(IntOrString::Int(15001)))
        );
        let tcp: TcpPorts = [((imp.key.clone(), 5432), 15100)].into_iter().collect();
        assert_eq!(import_conditions(imp, false, &tcp, range)[1].2, "Served");
        let sp = derived_service(imp, 15001, &tcp)
            .spec
            .unwrap()
            .ports
            .unwrap();
        let db = sp.iter().find(|p| p.port == 5432).expect("db is served");
        assert_eq!(db.target_port, Some(IntOrString::Int(15100)));
        assert_eq!(db.app_protocol, None);
        let slice = derived_slice(imp, &["10.0.0.7".into()], 15001, &tcp);
        let db = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some("db"));
        assert_eq!(
            db.and_then(|p| p.port),
            Some(15100),
            "the slice has the same pod port"
        );
        let svc = derived_service(imp, 15001, &none);
        assert_eq!(svc.metadata.name.unwrap(), "cart-clusterset");
        let slice = derived_slice(imp, &["10.0.0.7".into()], 15001, &none);
        let labels = slice.metadata.labels.clone().unwrap();
        assert_eq!(labels[SERVICE_NAME_LABEL], imp.derived);
        assert!(owned(Some(&labels)));
        assert_eq!(slice.endpoints[0].addresses, ["10.0.0.7"]);
        let spec = import_spec(imp, Some("10.96.0.9"));
        assert_eq!(spec.ips, ["10.96.0.9"]);
        assert_eq!(spec.ports.len(), 3);
    }

    #[test]
    fn only_labelled_objects_are_warden_s_and_scope_limits_namespaces() {
        assert!(!owned(None));
        let mut l = owner_labels();
        assert!(owned(Some(&l)));
        l.remove("warden.io/import");
        assert!(!owned(Some(&l)), "managed-by alone is not enough");
        let c = cart(vec![copy("east", &[("http", 80, Protocol::Http)])]);
        assert!(imports(std::slice::from_ref(&c), &["other".into()], "b").is_empty());
        assert_eq!(
            imports(std::slice::from_ref(&c), &["shop".into()], "b").len(),
            1
        );
        let mut only_west = c;
        only_west.clusters[0].export_to = vec!["west".into()];
        assert!(imports(std::slice::from_ref(&only_west), &[], "b").is_empty());
        assert_eq!(imports(&[only_west], &[], "west").len(), 1);
        assert_eq!(
            derived_name(&Key::new("shop", "cart")),
            derived_name(&Key::new("shop", "cart"))
        );
        let long = "a".repeat(60);
        let d = derived_name(&Key::new("shop", &long));
        assert!(d.starts_with("derived-") && d.len() == 18, "{d}");
        assert_ne!(d, derived_name(&Key::new("shop", "b".repeat(60))));
    }
}
