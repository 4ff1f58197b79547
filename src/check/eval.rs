//! The pure half of `warden check`: what the gathered answers mean, as items with an
//! actionable message. No I/O, so each rule is unit-tested.

use warden_federation::model::Cluster;
use warden_federation::wire::{BundleStatus, LeaseList, Listing, MeshStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

/// One checked fact.
#[derive(Debug, Clone)]
pub struct Item {
    pub level: Level,
    pub what: String,
    /// What to do about it (for warnings and failures).
    pub fix: Option<String>,
}

fn item(level: Level, what: String, fix: Option<&str>) -> Item {
    Item {
        level,
        what,
        fix: fix.map(str::to_string),
    }
}

/// A member's answer to `/api/v1/mesh/status`, with the clock offset measured around it.
pub struct MemberView {
    pub id: u64,
    pub api: String,
    /// The status, or why it could not be read.
    pub status: Result<MeshStatus, String>,
    /// Node clock minus this machine's clock at the midpoint of the request (ms), and half the
    /// round trip (the measurement's uncertainty).
    pub skew_ms: Option<(f64, f64)>,
}

/// Quorum, leader, per-node reachability, replication lag and clock skew.
pub fn federation(members: &[MemberView], voters: &[u64], max_skew_ms: f64) -> Vec<Item> {
    let mut out = Vec::new();
    let up: Vec<&MemberView> = members.iter().filter(|m| m.status.is_ok()).collect();
    let voters_up = up.iter().filter(|m| voters.contains(&m.id)).count();
    let majority = voters.len() / 2 + 1;
    let leaders: Vec<Option<u64>> = up
        .iter()
        .map(|m| m.status.as_ref().ok().and_then(|s| s.leader))
        .collect();
    let leader = leaders.iter().flatten().next().copied();
    let agree = leaders.iter().filter(|l| **l == leader).count();
    match leader {
        Some(l) if voters_up >= majority && agree == up.len() => out.push(item(
            Level::Ok,
            format!(
                "federation: leader node {l}; {voters_up} of {} voters answer (quorum {majority})",
                voters.len()
            ),
            None,
        )),
        Some(l) if voters_up >= majority => out.push(item(
            Level::Warn,
            format!("federation: leader node {l}, but {} of {} answering nodes see another leader", up.len() - agree, up.len()),
            Some("an election is under way or a node is partitioned; run the check again in a few seconds"),
        )),
        _ => out.push(item(
            Level::Fail,
            format!(
                "federation: no quorum — {voters_up} of {} voters answer, {majority} needed; writes fail with 503",
                voters.len()
            ),
            Some("start the stopped federation nodes (their data directories keep their state)"),
        )),
    }
    let applied = |m: &MemberView| m.status.as_ref().ok().and_then(|s| s.last_applied);
    let leader_applied = members
        .iter()
        .find(|m| Some(m.id) == leader)
        .and_then(applied);
    for m in members {
        match &m.status {
            Err(e) => out.push(item(
                Level::Fail,
                format!("node {} ({}) does not answer: {e}", m.id, m.api),
                Some(if voters.contains(&m.id) {
                    "start it; if it is gone for good, `warden member remove <id>` restores the margin"
                } else {
                    "start it, or remove the learner with `warden member remove <id>`"
                }),
            )),
            Ok(s) => {
                let lag = leader_applied
                    .zip(applied(m))
                    .map(|(l, a)| l.saturating_sub(a))
                    .unwrap_or(0);
                let state = s.state.as_str();
                if lag > 1_000 {
                    out.push(item(
                        Level::Warn,
                        format!("node {} ({}): {state}, {lag} entries behind the leader", m.id, m.api),
                        Some("it is catching up; if the lag keeps growing, check its disk and network"),
                    ));
                } else {
                    out.push(item(
                        Level::Ok,
                        format!("node {} ({}): {state}, {lag} entries behind", m.id, m.api),
                        None,
                    ));
                }
            }
        }
        if let Some((skew, err)) = m.skew_ms {
            if skew.abs() - err > max_skew_ms {
                out.push(item(
                    Level::Fail,
                    format!(
                        "node {}: clock {skew:+.0} ms off this machine's (±{err:.0} ms)",
                        m.id
                    ),
                    Some("synchronize clocks (NTP): lease expiry is judged by the nodes' clocks"),
                ));
            } else {
                out.push(item(
                    Level::Ok,
                    format!(
                        "node {}: clock within {:.0} ms of this machine's",
                        m.id,
                        skew.abs() + err
                    ),
                    None,
                ));
            }
        }
    }
    out
}

/// Lease freshness of every registered cluster, and whether its gateway advertises the
/// address the registration names (other clusters send its traffic there).
pub fn leases(clusters: &Listing<Cluster>, leases: &LeaseList) -> Vec<Item> {
    let now = leases.now;
    let mut out = Vec::new();
    for c in &clusters.items {
        let name = c.name.as_str();
        let lease = leases.items.iter().find(|l| l.cluster == name);
        let fix = "check that cluster's gateway: is it running, do its [federation].endpoints answer, is its admin token right? (its log says)";
        match lease {
            None => out.push(item(
                Level::Fail,
                format!("cluster {name}: no lease — its gateway has never reported in; other clusters do not send it traffic"),
                Some(fix),
            )),
            Some(l) => {
                let age = now.saturating_sub(l.renewed_at);
                if age > l.ttl_ms {
                    out.push(item(
                        Level::Fail,
                        format!(
                            "cluster {name}: lease expired {:.1} s ago (TTL {:.1} s) — other clusters no longer send it traffic",
                            (age - l.ttl_ms) as f64 / 1e3,
                            l.ttl_ms as f64 / 1e3
                        ),
                        Some(fix),
                    ));
                } else {
                    out.push(item(
                        Level::Ok,
                        format!(
                            "cluster {name}: lease renewed {age} ms ago (TTL {} ms)",
                            l.ttl_ms
                        ),
                        None,
                    ));
                }
                if let Some(adv) = l.gateway.as_deref().filter(|a| *a != c.gateway) {
                    out.push(item(
                        Level::Fail,
                        format!(
                            "cluster {name}: registered with gateway {}, but its gateway advertises {adv} — other clusters send its traffic to {}",
                            c.gateway, c.gateway
                        ),
                        Some("correct the registration (`warden cluster remove` and register again with --gateway set to the advertised address, or start the gateway with cluster.register = true and a token: it corrects its own registration), or set the gateway's cluster.advertise to the registered address if that is the one other clusters reach"),
                    ));
                }
            }
        }
    }
    if out.is_empty() {
        out.push(item(
            Level::Warn,
            "no clusters registered".into(),
            Some("start a gateway (it registers its cluster) or `warden cluster register`"),
        ));
    }
    out
}

/// Takes into `into` the advertised gateway addresses `seen` (another node's answer) heard
/// more recently.
pub fn merge_adverts(into: &mut LeaseList, seen: &LeaseList) {
    for l in &mut into.items {
        let Some(other) = seen.items.iter().find(|o| o.cluster == l.cluster) else {
            continue;
        };
        if other.gateway_seen_at > l.gateway_seen_at {
            l.gateway = other.gateway.clone();
            l.gateway_seen_at = other.gateway_seen_at;
        }
        if other.renewed_with_at > l.renewed_with_at {
            l.renewed_with = other.renewed_with.clone();
            l.renewed_with_at = other.renewed_with_at;
        }
    }
}

/// Which credential each cluster's gateway writes with: its own, or — a warning — the admin
/// token, which could rewrite every other cluster's records too.
pub fn credentials(leases: &LeaseList) -> Vec<Item> {
    let fix = |name: &str| {
        format!(
            "issue it its own: `warden cluster credential --name {name}`, give that to its gateway (WARDEN_CLUSTER_TOKEN or federation.cluster_token) and take the admin token away from it"
        )
    };
    let mut out = Vec::new();
    for l in &leases.items {
        let name = l.cluster.as_str();
        let (level, what) = match (l.renewed_with.as_deref(), l.has_credential) {
            (Some("admin"), _) => (
                Level::Warn,
                format!(
                    "cluster {name}: its gateway writes with the admin token (it could rewrite any cluster's records)"
                ),
            ),
            (_, false) => (
                Level::Warn,
                format!(
                    "cluster {name}: has no credential of its own (registered before cluster credentials), so its gateway holds the admin token"
                ),
            ),
            (Some("cluster"), true) => (
                Level::Ok,
                format!("cluster {name}: its gateway writes with its own credential"),
            ),
            _ => continue,
        };
        let fix = (level != Level::Ok).then(|| fix(name));
        out.push(Item { level, what, fix });
    }
    out
}

/// Listeners that speak plaintext on an address other machines reach: a federation node
/// without `[tls]` on a non-loopback API or Raft address (it runs only with
/// `insecure_plaintext = true`), and a cluster whose registered east-west gateway is not on
/// loopback but has no trust bundle (no mTLS).
pub fn plaintext(
    members: &[MemberView],
    clusters: &Listing<Cluster>,
    bundled: &[String],
) -> Vec<Item> {
    let exposed = |addr: &str| !warden_federation::config::is_loopback(addr);
    let mut out = Vec::new();
    for m in members {
        let Ok(s) = &m.status else { continue };
        if s.tls {
            continue;
        }
        let Some(me) = s.members.iter().find(|x| x.id == s.node_id) else {
            continue;
        };
        for (what, addr) in [("API", &me.api_addr), ("Raft port", &me.raft_addr)] {
            if exposed(addr) {
                out.push(item(
                    Level::Warn,
                    format!("node {}: its {what} {addr} is plaintext on a non-loopback address", m.id),
                    Some("give the node a [tls] table (docs/trust.md); until then anyone who reaches that address can read, and over Raft write, the store"),
                ));
            }
        }
    }
    for c in &clusters.items {
        if exposed(&c.gateway) && !bundled.contains(&c.trust_domain) {
            out.push(item(
                Level::Warn,
                format!("cluster {}: its east-west gateway {} has no trust bundle: plaintext on a non-loopback address", c.name, c.gateway),
                Some("give that gateway a [tls] table (its own CA, docs/trust.md): without mTLS no caller is verified"),
            ));
        }
    }
    out
}

/// Whether every cluster with a live lease loaded the current bundle of each trust domain.
pub fn trust(status: &Listing<BundleStatus>) -> Vec<Item> {
    let mut out = Vec::new();
    for b in &status.items {
        let (td, v) = (b.trust_domain.as_str(), b.version);
        if b.complete {
            out.push(item(
                Level::Ok,
                format!("trust bundle {td} v{v}: loaded by every cluster using mTLS"),
                None,
            ));
            continue;
        }
        let behind: Vec<String> = b
            .clusters
            .iter()
            .filter(|c| !c.current && c.lease_live && c.mtls && !c.owner)
            .map(|c| {
                format!(
                    "{} (has {})",
                    c.cluster,
                    c.loaded_version
                        .map(|v| format!("v{v}"))
                        .unwrap_or_else(|| "none".into())
                )
            })
            .collect();
        out.push(item(
            Level::Fail,
            format!("trust bundle {td} v{v}: not loaded by {}", behind.join(", ")),
            Some("those gateways report their bundles with each lease renewal: if this persists, their logs say why the bundle did not load; do not remove an old CA until this passes"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn member(id: u64, leader: Option<u64>, applied: u64) -> MemberView {
        let status = json!({"node_id": id, "state": "Follower", "leader": leader, "leader_api": null,
            "term": 1, "last_log_index": applied, "last_applied": applied, "snapshot": null,
            "members": [], "revision": 1, "now_ms": 1});
        MemberView {
            id,
            api: format!("n{id}"),
            status: Ok(serde_json::from_value(status).unwrap()),
            skew_ms: Some((3.0, 1.0)),
        }
    }

    fn clusters(names: &[(&str, &str)]) -> Listing<Cluster> {
        let items: Vec<serde_json::Value> = names
            .iter()
            .map(|(n, gw)| json!({"name": n, "region": "r", "zone": "z", "network": "n", "gateway": gw, "trust_domain": "t", "labels": {}, "registered_at": 1}))
            .collect();
        serde_json::from_value(json!({"revision": 1, "items": items})).unwrap()
    }

    fn down(id: u64) -> MemberView {
        MemberView {
            id,
            api: format!("n{id}"),
            status: Err("connection refused".into()),
            skew_ms: None,
        }
    }

    fn fails(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .filter(|i| i.level == Level::Fail)
            .map(|i| i.what.clone())
            .collect()
    }

    #[test]
    fn quorum_with_one_node_down_fails_only_that_node() {
        let ms = [member(1, Some(1), 10), member(2, Some(1), 10), down(3)];
        let items = federation(&ms, &[1, 2, 3], 500.0);
        assert_eq!(items[0].level, Level::Ok, "{:?}", items[0]);
        let f = fails(&items);
        assert_eq!(f.len(), 1);
        assert!(f[0].contains("node 3"));
    }

    #[test]
    fn no_quorum_and_skew_fail() {
        let mut a = member(1, None, 10);
        a.skew_ms = Some((2_000.0, 5.0));
        let ms = [a, down(2), down(3)];
        let f = fails(&federation(&ms, &[1, 2, 3], 500.0));
        assert!(f[0].contains("no quorum"), "{f:?}");
        assert!(f.iter().any(|x| x.contains("clock +2000 ms")), "{f:?}");
    }

    #[test]
    fn lag_warns() {
        let ms = [member(1, Some(1), 5_000), member(2, Some(1), 10)];
        let items = federation(&ms, &[1, 2], 500.0);
        assert!(
            items
                .iter()
                .any(|i| i.level == Level::Warn && i.what.contains("4990 entries"))
        );
    }

    #[test]
    fn leases_fresh_expired_missing() {
        let clusters = clusters(&[
            ("a", "10.0.0.1:1"),
            ("b", "10.0.0.2:1"),
            ("c", "10.0.0.3:1"),
        ]);
        let ls: LeaseList = serde_json::from_value(json!({"revision": 1, "now": 10_000, "items": [
            {"cluster": "a", "renewed_at": 9_500, "ttl_ms": 1_500, "expired_by_this_node_clock": false},
            {"cluster": "b", "renewed_at": 5_000, "ttl_ms": 1_500, "expired_by_this_node_clock": true}
        ]}))
        .unwrap();
        let items = leases(&clusters, &ls);
        assert_eq!(items[0].level, Level::Ok);
        assert!(
            items[1].what.contains("expired 3.5 s ago"),
            "{:?}",
            items[1]
        );
        assert!(items[2].what.contains("no lease"));
    }

    #[test]
    fn a_registration_pointing_elsewhere_fails_with_both_addresses() {
        let clusters = clusters(&[("east", "10.0.0.10:15008")]);
        let ls: LeaseList = serde_json::from_value(json!({"revision": 1, "now": 10_000, "items": [
            {"cluster": "east", "renewed_at": 9_900, "ttl_ms": 1_500, "expired_by_this_node_clock": false}
        ]}))
        .unwrap();
        assert!(
            fails(&leases(&clusters, &ls)).is_empty(),
            "no node heard an address yet"
        );
        let mut ls = ls;
        let heard: LeaseList = serde_json::from_value(json!({"revision": 1, "now": 10_000, "items": [
            {"cluster": "east", "renewed_at": 9_900, "ttl_ms": 1_500, "expired_by_this_node_clock": false,
             "gateway": "127.0.0.1:15008", "gateway_seen_at": 9_900}
        ]}))
        .unwrap();
        merge_adverts(&mut ls, &heard);
        let f = fails(&leases(&clusters, &ls));
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].contains("registered with gateway 10.0.0.10:15008"),
            "{f:?}"
        );
        assert!(f[0].contains("advertises 127.0.0.1:15008"), "{f:?}");
    }

    #[test]
    fn trust_incomplete_names_the_clusters_behind() {
        let status: Listing<BundleStatus> = serde_json::from_value(json!({"revision": 1, "items": [{"trust_domain": "west.test", "version": 3, "complete": false, "clusters": [
            {"cluster": "east", "loaded_version": 2, "current": false, "lease_live": true, "mtls": true},
            {"cluster": "west", "loaded_version": 3, "current": true, "lease_live": true, "mtls": true},
            {"cluster": "gone", "loaded_version": 1, "current": false, "lease_live": false, "mtls": true}
        ]}]}))
        .unwrap();
        let f = fails(&trust(&status));
        assert_eq!(
            f,
            vec!["trust bundle west.test v3: not loaded by east (has v2)"]
        );
    }

    #[test]
    fn gateways_on_the_admin_token_warn_and_the_newest_renewal_counts() {
        let mut ls: LeaseList = serde_json::from_value(json!({"revision": 1, "now": 10_000, "items": [
            {"cluster": "a", "renewed_at": 9_500, "ttl_ms": 1_500, "expired_by_this_node_clock": false,
             "has_credential": true, "renewed_with": "admin", "renewed_with_at": 9_000},
            {"cluster": "b", "renewed_at": 9_500, "ttl_ms": 1_500, "expired_by_this_node_clock": false,
             "has_credential": false},
            {"cluster": "c", "renewed_at": 9_500, "ttl_ms": 1_500, "expired_by_this_node_clock": false,
             "has_credential": true, "renewed_with": "cluster", "renewed_with_at": 9_400}
        ]}))
        .unwrap();
        let items = credentials(&ls);
        let levels: Vec<Level> = items.iter().map(|i| i.level).collect();
        assert_eq!(levels, [Level::Warn, Level::Warn, Level::Ok]);
        assert!(items[0].what.contains("admin token"), "{:?}", items[0]);
        assert!(
            items[0]
                .fix
                .as_ref()
                .unwrap()
                .contains("warden cluster credential --name a")
        );
        assert!(items[1].what.contains("no credential of its own"));
        // Another node saw a's gateway renew with its own credential later: that counts.
        let seen: LeaseList = serde_json::from_value(json!({"revision": 1, "now": 10_000, "items": [
            {"cluster": "a", "renewed_at": 9_500, "ttl_ms": 1_500, "expired_by_this_node_clock": false,
             "has_credential": true, "renewed_with": "cluster", "renewed_with_at": 9_600}
        ]}))
        .unwrap();
        merge_adverts(&mut ls, &seen);
        assert_eq!(credentials(&ls)[0].level, Level::Ok);
    }

    #[test]
    fn plaintext_on_non_loopback_addresses_warns() {
        let node = |id: u64, api: &str, raft: &str, tls: bool| {
            let status = json!({"node_id": id, "state": "Leader", "leader": id, "leader_api": null,
                "term": 1, "last_log_index": 1, "last_applied": 1, "snapshot": null,
                "members": [{"id": id, "api_addr": api, "raft_addr": raft, "role": "voter"}],
                "revision": 1, "now_ms": 1, "tls": tls});
            MemberView {
                id,
                api: api.into(),
                status: Ok(serde_json::from_value(status).unwrap()),
                skew_ms: None,
            }
        };
        let members = [
            node(1, "127.0.0.1:7700", "127.0.0.1:7701", false),
            node(2, "10.0.0.2:7700", "127.0.0.1:7701", false),
            node(3, "10.0.0.3:7700", "10.0.0.3:7701", true),
        ];
        let cs = clusters(&[("a", "127.0.0.1:15008"), ("b", "10.0.0.9:15008")]);
        let items = plaintext(&members, &cs, &[]);
        let whats: Vec<&str> = items.iter().map(|i| i.what.as_str()).collect();
        assert_eq!(items.len(), 2, "{whats:?}");
        assert!(whats[0].starts_with("node 2: its API 10.0.0.2:7700"));
        assert!(whats[1].starts_with("cluster b: its east-west gateway 10.0.0.9:15008"));
        assert!(plaintext(&members[..1], &cs, &["t".into()]).is_empty());
    }
}
