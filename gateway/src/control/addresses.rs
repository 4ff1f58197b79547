//! Which endpoint addresses a gateway will send traffic to. A service's endpoints come from
//! the config or from EndpointSlices — which anyone allowed to create them in a namespace can
//! point anywhere. Through an exported service, other clusters would then reach whatever the
//! endpoint names, from the gateway's own network position: its admin port, a cloud metadata
//! address, a process on the node's loopback. [`EndpointGuard`] refuses, with a reason:
//! loopback (127/8, ::1) and link-local (169.254/16, fe80::/10) addresses unless
//! `discovery.allow_loopback_endpoints` / `allow_link_local_endpoints` say otherwise, the
//! unspecified address, and — always — the gateway's own listener addresses.

use std::net::{IpAddr, SocketAddr};

use crate::config::{DiscoverySection, StaticService};

/// Why an endpoint address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not `ip:port`.
    Unparsable,
    /// 0.0.0.0 or ::.
    Unspecified,
    Loopback,
    LinkLocal,
    /// One of this gateway's own listeners.
    OwnListener,
}

impl Refused {
    /// A short, stable reason (logs and status).
    pub fn reason(self) -> &'static str {
        match self {
            Refused::Unparsable => "not ip:port",
            Refused::Unspecified => "the unspecified address",
            Refused::Loopback => {
                "a loopback address (discovery.allow_loopback_endpoints = true allows it)"
            }
            Refused::LinkLocal => {
                "a link-local address (discovery.allow_link_local_endpoints = true allows it)"
            }
            Refused::OwnListener => "one of this gateway's own listeners",
        }
    }
}

/// The endpoint policy of one gateway.
#[derive(Debug, Clone, Default)]
pub struct EndpointGuard {
    allow_loopback: bool,
    allow_link_local: bool,
    /// The addresses this gateway's listeners are bound to.
    own: Vec<SocketAddr>,
    /// Ports the gateway may open import listeners on, at this address.
    import_ports: Option<(std::net::IpAddr, crate::config::PortRange)>,
}

impl EndpointGuard {
    pub fn new(discovery: &DiscoverySection, own: Vec<SocketAddr>) -> Self {
        Self {
            allow_loopback: discovery.allow_loopback_endpoints,
            allow_link_local: discovery.allow_link_local_endpoints,
            own,
            import_ports: None,
        }
    }

    /// Also refuses the ports of `range` at `ip`: import listeners open there.
    pub fn with_import_ports(
        mut self,
        ip: std::net::IpAddr,
        range: crate::config::PortRange,
    ) -> Self {
        self.import_ports = Some((ip, range));
        self
    }

    /// Whether traffic may go to `endpoint` (`ip:port`).
    pub fn check(&self, endpoint: &str) -> Result<(), Refused> {
        let addr: SocketAddr = endpoint.parse().map_err(|_| Refused::Unparsable)?;
        let ip = canonical(addr.ip());
        // A listener on a wildcard address is also reached on loopback and on the unspecified
        // address (both name this host).
        let same_host = |o: std::net::IpAddr| {
            canonical(o) == ip || (o.is_unspecified() && (ip.is_loopback() || ip.is_unspecified()))
        };
        let own = self
            .own
            .iter()
            .any(|o| o.port() == addr.port() && same_host(o.ip()))
            || self
                .import_ports
                .is_some_and(|(o, r)| r.contains(addr.port()) && same_host(o));
        if own {
            return Err(Refused::OwnListener);
        }
        if ip.is_unspecified() {
            return Err(Refused::Unspecified);
        }
        if ip.is_loopback() && !self.allow_loopback {
            return Err(Refused::Loopback);
        }
        if is_link_local(ip) && !self.allow_link_local {
            return Err(Refused::LinkLocal);
        }
        Ok(())
    }

    /// `svc` with only the endpoints traffic may go to, and the refused ones with why.
    pub fn filter(&self, mut svc: StaticService) -> (StaticService, Vec<(String, Refused)>) {
        let mut refused = Vec::new();
        // Every port an endpoint is reached on is checked: another port of the service lands
        // on the same address.
        let targets: Vec<u16> = svc.port_targets.values().copied().collect();
        svc.endpoints.retain(|e| {
            let others = targets.iter().map(|t| with_port(e, *t));
            let checked = std::iter::once(e.clone()).chain(others.flatten());
            for a in checked {
                if let Err(why) = self.check(&a) {
                    refused.push((a, why));
                    return false;
                }
            }
            true
        });
        let kept = &svc.endpoints;
        svc.labels.retain(|addr, _| kept.contains(addr));
        (svc, refused)
    }
}

pub use crate::table::with_port;

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        // fe80::/10
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// One line per refused endpoint of a service, for logs and statuses.
pub fn describe(refused: &[(String, Refused)]) -> String {
    refused
        .iter()
        .map(|(e, why)| format!("{e}: {}", why.reason()))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(loopback: bool, link_local: bool, own: &[&str]) -> EndpointGuard {
        let discovery = DiscoverySection {
            allow_loopback_endpoints: loopback,
            allow_link_local_endpoints: link_local,
            ..Default::default()
        };
        EndpointGuard::new(&discovery, own.iter().map(|a| a.parse().unwrap()).collect())
    }

    #[test]
    fn loopback_link_local_unspecified_and_own_listeners_are_refused() {
        let g = guard(false, false, &["0.0.0.0:15000", "10.0.0.9:15008"]);
        assert_eq!(g.check("10.1.2.3:8080"), Ok(()));
        assert_eq!(g.check("[fd00::1]:8080"), Ok(()));
        assert_eq!(g.check("127.0.0.1:8080"), Err(Refused::Loopback));
        assert_eq!(g.check("127.8.9.10:8080"), Err(Refused::Loopback));
        assert_eq!(g.check("[::1]:8080"), Err(Refused::Loopback));
        assert_eq!(g.check("[::ffff:127.0.0.1]:8080"), Err(Refused::Loopback));
        assert_eq!(g.check("169.254.169.254:80"), Err(Refused::LinkLocal));
        assert_eq!(g.check("[fe80::1]:80"), Err(Refused::LinkLocal));
        assert_eq!(g.check("[febf::1]:80"), Err(Refused::LinkLocal));
        assert_eq!(g.check("[fec0::1]:80"), Ok(()));
        assert_eq!(g.check("0.0.0.0:8080"), Err(Refused::Unspecified));
        assert_eq!(g.check("cart:80"), Err(Refused::Unparsable));
        assert_eq!(g.check("10.0.0.9:15008"), Err(Refused::OwnListener));
        assert_eq!(g.check("10.0.0.9:15009"), Ok(()));
    }

    #[test]
    fn allowing_loopback_still_refuses_the_gateway_itself() {
        let g = guard(true, true, &["0.0.0.0:15000", "127.0.0.1:15001"]);
        assert_eq!(g.check("127.0.0.1:8080"), Ok(()));
        assert_eq!(g.check("169.254.169.254:80"), Ok(()));
        assert_eq!(g.check("127.0.0.1:15000"), Err(Refused::OwnListener));
        assert_eq!(
            g.check("[::ffff:127.0.0.1]:15001"),
            Err(Refused::OwnListener)
        );
        assert_eq!(g.check("127.0.0.2:15001"), Ok(()));
        let g = g.with_import_ports(
            "127.0.0.1".parse().unwrap(),
            crate::config::PortRange {
                first: 15100,
                last: 15101,
            },
        );
        assert_eq!(g.check("127.0.0.1:15101"), Err(Refused::OwnListener));
        assert_eq!(g.check("127.0.0.1:15102"), Ok(()));
    }

    #[test]
    fn filter_keeps_what_may_be_reached_and_says_why_for_the_rest() {
        let g = guard(false, false, &[]);
        let svc = StaticService {
            namespace: "shop".into(),
            name: "cart".into(),
            ports: Vec::new(),
            endpoints: vec!["10.0.0.1:80".into(), "169.254.169.254:80".into()],
            labels: Default::default(),
            weight: 1,
            export: true,
            probe: "tcp".into(),
            port_targets: Default::default(),
            export_to: Vec::new(),
        };
        let (kept, refused) = g.filter(svc.clone());
        assert_eq!(kept.endpoints, ["10.0.0.1:80"]);
        assert_eq!(refused, [("169.254.169.254:80".into(), Refused::LinkLocal)]);
        assert!(describe(&refused).starts_with("169.254.169.254:80: a link-local address"));
        // A second port is checked on every endpoint too: here it would land on a listener.
        let g = guard(false, false, &["10.0.0.1:15000"]);
        let mut two = svc;
        two.port_targets.insert(9000, 15000);
        let (kept, refused) = g.filter(two);
        assert!(kept.endpoints.is_empty(), "{:?}", kept.endpoints);
        assert_eq!(refused[0].0, "10.0.0.1:15000");
    }
}
