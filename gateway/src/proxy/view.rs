//! Stage "plan", first half: what the routing tables say about one service, read once per
//! request ([`ServiceView`]), and the one balancing draw every kind of request shares
//! ([`ServiceView::choose`]): HTTP, raw TCP and the east-west CONNECT.

use std::sync::Arc;

use super::attempt::{Attempt, Hop};
use super::context::Listener;
use super::error::ProxyError;
use super::rules::{Subset, in_subset};
use crate::balance::{self, Inputs, Locality, Target};
use crate::key::ServiceKey;
use crate::table::{LocalService, RemoteCluster, RoutePolicy, Tables};
use warden_federation::model::healthy_in;

/// What the routing tables say about one service, read once.
#[derive(Debug, Clone)]
pub struct ServiceView {
    pub local: Option<Arc<LocalService>>,
    /// Other clusters' copies (none on the east-west listener: it never forwards again).
    remotes: Option<Arc<[RemoteCluster]>>,
    pub policy: Option<Arc<RoutePolicy>>,
    /// The store revision the remote part reflects.
    pub revision: u64,
    /// Whether the federation watch is connected (routing goes on from the last table if not).
    pub connected: bool,
}

impl ServiceView {
    /// Loads `key` from both tables; on the east-west listener without remote clusters.
    pub fn load(tables: &Tables, key: &ServiceKey, listener: Listener) -> Self {
        let local = tables.local.load().services.get(key).cloned();
        let remote = tables.remote.load();
        let remotes = match listener {
            Listener::EastWest => None,
            Listener::Outbound | Listener::Tcp(_) => remote.services.get(key).cloned(),
        };
        Self {
            local,
            remotes,
            policy: remote.policies.get(key).cloned(),
            revision: remote.revision,
            connected: remote.connected,
        }
    }

    /// Keeps only the endpoints in `subset` (an empty subset keeps every one): the local ones
    /// carrying its labels, and other clusters counted by the healthy endpoints they published
    /// for it — a cluster that published none in the subset is no candidate, so the subset's
    /// traffic fails over to the subset elsewhere, never to another subset. The subset also
    /// travels with the request on the east-west hop and the remote gateway keeps to it.
    pub fn restrict(mut self, subset: &Subset) -> Self {
        if subset.is_empty() {
            return self;
        }
        if let Some(remotes) = &self.remotes {
            let kept: Vec<RemoteCluster> = remotes
                .iter()
                .map(|r| RemoteCluster {
                    healthy_endpoints: healthy_in(&r.subsets, subset),
                    ..r.clone()
                })
                .collect();
            self.remotes = Some(Arc::from(kept));
        }
        if let Some(l) = &self.local {
            let endpoints = l
                .endpoints
                .iter()
                .filter(|e| in_subset(e, subset))
                .cloned()
                .collect();
            self.local = Some(Arc::new(LocalService {
                endpoints,
                ..(**l).clone()
            }));
        }
        self
    }

    /// Other clusters' copies of the service.
    pub fn remotes(&self) -> &[RemoteCluster] {
        self.remotes.as_deref().unwrap_or(&[])
    }

    /// The error when nothing anywhere offers the service `key`.
    pub fn missing(&self, key: &ServiceKey, listener: Listener) -> Option<ProxyError> {
        if self.local.is_some() || !self.remotes().is_empty() {
            return None;
        }
        let name = key.to_string();
        Some(match listener {
            Listener::EastWest => ProxyError::NoLocalEndpoint(name),
            Listener::Outbound | Listener::Tcp(_) => ProxyError::UnknownService(name),
        })
    }

    /// The balancer's inputs for this view.
    pub fn inputs<'a>(
        &'a self,
        me: &'a Locality,
        overprovisioning_percent: u32,
        exclude: &'a [Target],
    ) -> Inputs<'a> {
        Inputs {
            me,
            local: self.local.as_deref(),
            remotes: self.remotes(),
            policy: self.policy.as_deref(),
            overprovisioning_percent,
            exclude,
        }
    }

    /// Plans and draws one target (the one balancing decision HTTP, TCP and east-west CONNECT
    /// share); `draws` are three uniform numbers in [0, 1).
    pub fn choose<'a>(
        &'a self,
        me: &'a Locality,
        overprovisioning_percent: u32,
        exclude: &[Target],
        draws: [f64; 3],
    ) -> Option<Attempt<'a>> {
        let inputs = self.inputs(me, overprovisioning_percent, exclude);
        let plan = balance::plan(&inputs);
        let target = balance::pick(&plan, &inputs, draws[0], draws[1], draws[2])?;
        Some(match target {
            Target::Local(i) => {
                let l = self.local.as_ref()?;
                let ep = l.endpoints.get(i)?;
                Attempt {
                    target,
                    cluster: &me.cluster,
                    addr: &ep.addr,
                    hop: Hop::Local { h2: l.h2 },
                    inflight: &ep.inflight,
                }
            }
            Target::Remote(i) => {
                let r = self.remotes().get(i)?;
                Attempt {
                    target,
                    cluster: &r.cluster,
                    addr: &r.gateway,
                    hop: Hop::Remote {
                        trust_domain: &r.trust_domain,
                    },
                    inflight: &r.inflight,
                }
            }
        })
    }
}

/// Three uniform draws in [0, 1) for [`ServiceView::choose`].
pub fn draws() -> [f64; 3] {
    [fastrand::f64(), fastrand::f64(), fastrand::f64()]
}

/// Routing tables built by hand, for the plan's tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use crate::table::{LocalEndpoint, LocalTable, RemoteTable};
    use warden_federation::model::SubsetHealth;

    pub fn me() -> Locality {
        Locality {
            cluster: "east".into(),
            region: "r1".into(),
            zone: "z1".into(),
        }
    }

    pub fn remote(cluster: &str, zone: &str, healthy: u32) -> RemoteCluster {
        RemoteCluster {
            cluster: cluster.into(),
            region: "r1".into(),
            zone: zone.into(),
            gateway: format!("{cluster}.gw:15008").into(),
            trust_domain: format!("{cluster}.test").into(),
            healthy_endpoints: healthy,
            subsets: Arc::from([SubsetHealth {
                labels: Default::default(),
                healthy_endpoints: healthy,
            }]),
            weight: 100,
            live: true,
            inflight: Default::default(),
        }
    }

    pub fn tables(local_up: &[bool], remotes: Vec<RemoteCluster>) -> (Tables, ServiceKey) {
        let key = ServiceKey::new("shop", "cart");
        let t = Tables::default();
        let eps = local_up
            .iter()
            .enumerate()
            .map(|(i, up)| LocalEndpoint {
                addr: format!("10.0.0.{i}:8080"),
                labels: None,
                available: *up,
                ramp: 1.0,
                inflight: Default::default(),
            })
            .collect();
        let mut lt = LocalTable::default();
        lt.services.insert(
            key.clone(),
            Arc::new(LocalService {
                endpoints: eps,
                weight: 100,
                h2: false,
                port: 80,
                ports: Arc::from([]),
                exported: true,
                export_to: Arc::from([]),
            }),
        );
        t.local.store(Arc::new(lt));
        let mut rt = RemoteTable::default();
        rt.services.insert(key.clone(), Arc::from(remotes));
        t.remote.store(Arc::new(rt));
        (t, key)
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{me, remote, tables};
    use super::*;
    use warden_federation::model::SubsetHealth;

    #[test]
    fn local_first_then_the_nearest_cluster_and_never_forwarding_twice() {
        let (t, key) = tables(
            &[true, true],
            vec![remote("west", "z9", 2), remote("central", "z1", 2)],
        );
        let view = ServiceView::load(&t, &key, Listener::Outbound);
        let me = me();
        let a = view.choose(&me, 140, &[], [0.5, 0.1, 0.9]).unwrap();
        assert_eq!(a.cluster, "east");
        assert_eq!(a.hop, Hop::Local { h2: false });
        // Both local endpoints failed in this request: the same-zone cluster is next.
        let tried = [Target::Local(0), Target::Local(1)];
        let a = view.choose(&me, 140, &tried, [0.5, 0.1, 0.9]).unwrap();
        assert_eq!(a.cluster, "central");
        assert_eq!(a.addr, "central.gw:15008");
        assert_eq!(
            a.hop,
            Hop::Remote {
                trust_domain: "central.test"
            }
        );
        // The east-west listener sees local endpoints only.
        let ew = ServiceView::load(&t, &key, Listener::EastWest);
        assert!(ew.remotes().is_empty());
        assert!(ew.choose(&me, 140, &tried, [0.5, 0.1, 0.9]).is_none());
        let nope = ServiceKey::new("shop", "nope");
        let unknown = ServiceView::load(&t, &nope, Listener::EastWest);
        assert!(matches!(
            unknown.missing(&nope, Listener::EastWest),
            Some(ProxyError::NoLocalEndpoint(_))
        ));
        assert!(matches!(
            unknown.missing(&nope, Listener::Outbound),
            Some(ProxyError::UnknownService(_))
        ));
    }

    #[test]
    fn a_subset_goes_only_to_clusters_that_published_healthy_endpoints_in_it() {
        let label = |v: &str, n: u32| SubsetHealth {
            labels: [("version".to_string(), v.to_string())].into(),
            healthy_endpoints: n,
        };
        // west has v1 and v2, central only v1; both have three healthy endpoints in all.
        let mut west = remote("west", "z9", 3);
        west.subsets = Arc::from([label("v1", 2), label("v2", 1)]);
        let mut central = remote("central", "z1", 3);
        central.subsets = Arc::from([label("v1", 3)]);
        // The local endpoints are all down (v2 was killed here).
        let (t, key) = tables(&[false, false], vec![west, central]);
        let me = me();
        let v2: Subset = [("version".to_string(), "v2".to_string())].into();
        let view = ServiceView::load(&t, &key, Listener::Outbound).restrict(&v2);
        let healthy: Vec<(&str, u32)> = view
            .remotes()
            .iter()
            .map(|r| (&*r.cluster, r.healthy_endpoints))
            .collect();
        assert_eq!(healthy, [("west", 1), ("central", 0)]);
        // Every draw lands on west, though central is nearer: v2 never silently becomes v1.
        for d in [0.0, 0.3, 0.6, 0.99] {
            let a = view.choose(&me, 140, &[], [d, d, d]).unwrap();
            assert_eq!(a.cluster, "west");
        }
        // A subset nobody serves leaves no candidate (the request fails, it is not rerouted).
        let v3: Subset = [("version".to_string(), "v3".to_string())].into();
        let none = ServiceView::load(&t, &key, Listener::Outbound).restrict(&v3);
        assert!(none.choose(&me, 140, &[], [0.5, 0.5, 0.5]).is_none());
        // Without a subset, every cluster keeps its whole count.
        let all = ServiceView::load(&t, &key, Listener::Outbound).restrict(&Subset::new());
        assert!(all.remotes().iter().all(|r| r.healthy_endpoints == 3));
    }
}
