//! Pod ports for the raw TCP ports of imported services (pure). An HTTP or gRPC client names
//! the service it calls (Host, `:authority`); a TCP connection does not, so each imported TCP
//! port gets a pod port of its own from `discovery.kubernetes.import_tcp_ports`, and the
//! gateway serves what arrives on it as that service's port. The derived Service records the
//! choice (its port's `targetPort`): a choice sticks across gateway restarts and every
//! replica of the gateway reads the same one. A pod port another derived Service still holds
//! — one whose import is going away — is not handed out until that Service is gone, so a
//! client with stale kube-proxy rules never reaches another service.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use warden_federation::model::Protocol;

use super::desired::Key;
pub use super::imports::TcpPorts;
use super::imports::{IMPORTED_SERVICE_LABEL, Import, owned};
use crate::config::PortRange;

/// The pod ports Warden's derived Services hold now: every port's integer `targetPort`.
pub fn held<'a>(services: impl IntoIterator<Item = &'a Service>) -> TcpPorts {
    let mut out = TcpPorts::new();
    for s in services {
        let labels = s.metadata.labels.as_ref();
        if !owned(labels) {
            continue;
        }
        let (Some(ns), Some(name)) = (
            s.metadata.namespace.as_ref(),
            labels.and_then(|l| l.get(IMPORTED_SERVICE_LABEL)),
        ) else {
            continue;
        };
        let ports = s.spec.as_ref().and_then(|p| p.ports.as_ref());
        for p in ports.into_iter().flatten() {
            let (Ok(port), Some(IntOrString::Int(t))) = (u16::try_from(p.port), &p.target_port)
            else {
                continue;
            };
            if let Ok(t) = u16::try_from(*t) {
                out.insert((Key::new(ns, name), port), t);
            }
        }
    }
    out
}

/// A pod port for each raw TCP port of `imports` while the range lasts: the one its derived
/// Service holds when that is in the range and not held twice, else the lowest port nobody
/// holds. Ports left without one are not served (the ServiceImport says so).
pub fn allocate(imports: &[Import], held: &TcpPorts, range: PortRange) -> TcpPorts {
    let wanted: Vec<(Key, u16)> = imports
        .iter()
        .flat_map(|i| {
            i.ports
                .iter()
                .filter(|p| p.protocol == Protocol::Tcp)
                .map(|p| (i.key.clone(), p.port))
        })
        .collect();
    let mut out = TcpPorts::new();
    let mut kept = BTreeSet::new();
    for w in &wanted {
        if let Some(&p) = held.get(w)
            && range.contains(p)
            && kept.insert(p)
        {
            out.insert(w.clone(), p);
        }
    }
    // Held by a Service of an import that is going away: reserved until it is deleted.
    let reserved: BTreeSet<u16> = held.values().copied().chain(kept).collect();
    let mut free = range.iter().filter(|p| !reserved.contains(p));
    for w in wanted {
        if out.contains_key(&w) {
            continue;
        }
        match free.next() {
            Some(p) => {
                out.insert(w, p);
            }
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_federation::model::ServicePort;

    fn import(name: &str, tcp: &[u16]) -> Import {
        let key = Key::new("shop", name);
        Import {
            derived: super::super::imports::derived_name(&key),
            key,
            ports: tcp
                .iter()
                .map(|p| ServicePort {
                    name: format!("p{p}"),
                    port: *p,
                    protocol: Protocol::Tcp,
                })
                .chain(std::iter::once(ServicePort {
                    name: "http".into(),
                    port: 80,
                    protocol: Protocol::Http,
                }))
                .collect(),
            clusters: vec!["east".into()],
            conflicts: vec![],
        }
    }

    fn range(first: u16, last: u16) -> PortRange {
        PortRange { first, last }
    }

    #[test]
    fn only_tcp_ports_get_pod_ports_the_lowest_free_first_until_the_range_ends() {
        let imps = [import("db", &[5432, 5433]), import("cache", &[6379])];
        let got = allocate(&imps, &TcpPorts::new(), range(100, 101));
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[&(Key::new("shop", "db"), 5432)], 100);
        assert_eq!(got[&(Key::new("shop", "db"), 5433)], 101);
        assert!(!got.contains_key(&(Key::new("shop", "cache"), 6379)));
        assert!(!got.keys().any(|(_, p)| *p == 80), "http needs no pod port");
    }

    #[test]
    fn a_held_port_sticks_and_one_still_held_by_a_leaving_import_is_not_reused() {
        let imps = [import("db", &[5432]), import("cache", &[6379])];
        let mut h = TcpPorts::new();
        h.insert((Key::new("shop", "cache"), 6379), 101);
        h.insert((Key::new("shop", "gone"), 7000), 100);
        let got = allocate(&imps, &h, range(100, 102));
        assert_eq!(got[&(Key::new("shop", "cache"), 6379)], 101, "kept");
        assert_eq!(
            got[&(Key::new("shop", "db"), 5432)],
            102,
            "100 is still held"
        );
        // Once the leaving import's Service is gone, its port is free again.
        h.remove(&(Key::new("shop", "gone"), 7000));
        let got = allocate(&imps, &h, range(100, 102));
        assert_eq!(got[&(Key::new("shop", "db"), 5432)], 100);
    }

    #[test]
    fn a_held_port_out_of_the_range_or_held_twice_is_given_anew() {
        let imps = [import("db", &[5432]), import("cache", &[6379])];
        let mut h = TcpPorts::new();
        h.insert((Key::new("shop", "cache"), 6379), 100);
        h.insert((Key::new("shop", "db"), 5432), 100);
        let got = allocate(&imps, &h, range(100, 101));
        let mut ports: Vec<u16> = got.values().copied().collect();
        ports.sort();
        assert_eq!(ports, [100, 101], "{got:?}");
        let got = allocate(&imps, &h, range(200, 200));
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got.values().all(|p| *p == 200));
    }
}
