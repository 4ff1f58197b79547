//! The demo's story, step by step, each measured from the recorded traffic:
//!
//! 1. steady state: east serves `cart` locally, `ledger` goes to central (nearest);
//! 2. east's `cart` backends killed → failover to central (same region);
//! 3. restored → failback to east;
//! 4. cluster central stopped (gateway and federation node) → `ledger` reroutes to west, and the
//!    Raft group keeps committing with two of three nodes;
//! 5. central restarted → `ledger` returns;
//! 6. central's CA rotated (old + new bundle, re-issued certificate, new bundle only) while
//!    east's `ledger` calls cross into central over mTLS;
//! 7. a canary across clusters: a route sends `ledger` 90/10 to v1 (central) and v2 (west),
//!    then 50/50, applied live through the store; the shares are measured per subset.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde::Serialize;

use super::mesh::Mesh;
use super::traffic::{Traffic, first, last, window};
use super::view::View;
use crate::local::pki::handshake;
use warden_federation::route::{RouteBackend, RouteRule};
use warden_federation::wire::RouteBody;

/// What the demo measured.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub failover_ms: Option<f64>,
    pub failover_failed: usize,
    pub failback_first_local_ms: Option<f64>,
    pub failback_all_local_ms: Option<f64>,
    pub failback_failed: usize,
    pub reroute_ms: Option<f64>,
    pub reroute_failed: usize,
    pub quorum_kept: bool,
    pub leader_while_down: Option<u64>,
    pub writes_committed_while_down: u64,
    pub return_ms: Option<f64>,
    pub return_failed: usize,
    pub rotation_ms: Option<f64>,
    pub rotation_requests: usize,
    pub rotation_failed: usize,
    /// Measured shares of `ledger` per subset (v1, v2) under the 90/10 route, then 50/50.
    pub canary_90_10: Option<(f64, f64)>,
    pub canary_50_50: Option<(f64, f64)>,
    pub canary_requests: usize,
    pub canary_failed: usize,
    pub total_requests: usize,
    pub total_failed: usize,
    pub seconds: f64,
}

/// How long steps hold so a watcher can follow (longer when interactive).
pub struct Pace {
    pub hold: Duration,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Waits until `f` gives `Some`, refreshing the live table, or fails after `patience`.
async fn until<T>(
    view: &View,
    traffic: &Traffic,
    what: &str,
    patience: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T> {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("{what} did not happen within {patience:?}");
        }
        view.table(traffic, false);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn hold(view: &View, traffic: &Traffic, d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        view.table(traffic, false);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn failed_between(traffic: &Traffic, from: Duration, to: Duration) -> (usize, usize) {
    let s: Vec<_> = traffic
        .since(from)
        .into_iter()
        .filter(|s| s.sent < to)
        .collect();
    (s.len(), s.iter().filter(|s| s.failed()).count())
}

pub async fn run(mesh: &mut Mesh, traffic: &Traffic, view: &View, pace: &Pace) -> Result<Summary> {
    let mut sum = Summary::default();
    let wall = Instant::now();
    let begin = traffic.now();

    view.say("\n[1/7] steady state: east serves cart itself; ledger (not in east) goes to central, the nearest");
    hold(view, traffic, pace.hold).await;
    view.table(traffic, true);

    view.say("\n[2/7] killing east's two cart backends (SIGKILL)");
    let t = traffic.now();
    mesh.kill_backends("east").await;
    let at = until(
        view,
        traffic,
        "failover of cart",
        Duration::from_secs(15),
        || first(&traffic.since(t), "cart", t, |c| c != "east"),
    )
    .await?;
    sum.failover_ms = Some(ms(at - t));
    hold(view, traffic, pace.hold).await;
    (_, sum.failover_failed) = failed_between(traffic, t, traffic.now());
    view.table(traffic, true);
    view.say(&format!(
        "      cart failed over: first response from another cluster {:.1} ms after the kill, {} failed requests",
        ms(at - t),
        sum.failover_failed
    ));

    view.say("\n[3/7] restarting east's cart backends");
    let t = traffic.now();
    mesh.restart_backends("east").await?;
    let local = until(
        view,
        traffic,
        "failback of cart",
        Duration::from_secs(20),
        || first(&traffic.since(t), "cart", t, |c| c == "east"),
    )
    .await?;
    // All local: no remote answer for a whole second.
    until(
        view,
        traffic,
        "all cart traffic local",
        Duration::from_secs(20),
        || {
            let s = traffic.since(t);
            let now = traffic.now();
            let last_remote = last(&s, "cart", t, |c| c != "east").unwrap_or(t);
            (now.saturating_sub(last_remote) >= Duration::from_secs(1)).then_some(())
        },
    )
    .await?;
    let s = traffic.since(t);
    let all_local = last(&s, "cart", t, |c| c != "east").unwrap_or(local);
    sum.failback_first_local_ms = Some(ms(local - t));
    sum.failback_all_local_ms = Some(ms(all_local.max(local) - t));
    (_, sum.failback_failed) = failed_between(traffic, t, traffic.now());
    view.table(traffic, true);
    view.say(&format!(
        "      cart failed back: first local response after {:.0} ms, all local after {:.0} ms (probes + ramp), {} failed",
        ms(local - t),
        ms(all_local.max(local) - t),
        sum.failback_failed
    ));

    view.say("\n[4/7] stopping cluster central: its gateway and its federation node (SIGKILL)");
    let before = mesh.raft_status().await.map(|(_, r)| r).unwrap_or(0);
    let t = traffic.now();
    mesh.stop_cluster("central").await;
    let at = until(
        view,
        traffic,
        "ledger rerouting to west",
        Duration::from_secs(15),
        || first(&traffic.since(t), "ledger", t, |c| c == "west"),
    )
    .await?;
    sum.reroute_ms = Some(ms(at - t));
    hold(view, traffic, pace.hold.max(Duration::from_secs(2))).await;
    let after = mesh.raft_status().await;
    sum.leader_while_down = after.map(|(l, _)| l);
    sum.writes_committed_while_down = after.map(|(_, r)| r.saturating_sub(before)).unwrap_or(0);
    sum.quorum_kept = sum.leader_while_down.is_some() && sum.writes_committed_while_down > 0;
    (_, sum.reroute_failed) = failed_between(traffic, t, traffic.now());
    view.table(traffic, true);
    view.say(&format!(
        "      ledger rerouted to west {:.1} ms after the stop, {} failed; Raft kept quorum with 2 of 3 nodes: leader node {}, {} changes committed meanwhile (leases, exports)",
        ms(at - t),
        sum.reroute_failed,
        sum.leader_while_down.map(|l| l.to_string()).unwrap_or_else(|| "none".into()),
        sum.writes_committed_while_down
    ));

    view.say(
        "\n[5/7] restarting cluster central (node rejoins from its disk, gateway renews its lease)",
    );
    let t = traffic.now();
    mesh.restart_cluster("central").await?;
    let at = until(
        view,
        traffic,
        "ledger returning to central",
        Duration::from_secs(20),
        || first(&traffic.since(t), "ledger", t, |c| c == "central"),
    )
    .await?;
    sum.return_ms = Some(ms(at - t));
    hold(view, traffic, pace.hold).await;
    (_, sum.return_failed) = failed_between(traffic, t, traffic.now());
    view.table(traffic, true);
    view.say(&format!(
        "      ledger back on central {:.0} ms after the restart, {} failed",
        ms(at - t),
        sum.return_failed
    ));

    view.say("\n[6/7] rotating central's CA while east calls ledger in central over mTLS");
    let t = traffic.now();
    let started = Instant::now();
    rotate(mesh, view, traffic, "central").await?;
    sum.rotation_ms = Some(started.elapsed().as_secs_f64() * 1e3);
    hold(view, traffic, Duration::from_millis(500)).await;
    (sum.rotation_requests, sum.rotation_failed) = failed_between(traffic, t, traffic.now());
    view.table(traffic, true);
    view.say(&format!(
        "      rotated in {:.0} ms: {} requests during the rotation, {} failed",
        sum.rotation_ms.unwrap_or_default(),
        sum.rotation_requests,
        sum.rotation_failed
    ));

    view.say("\n[7/7] a canary across clusters: a route splits ledger 90/10 between v1 (central) and v2 (west), then 50/50, live");
    let t = traffic.now();
    let api = mesh.api(0)?;
    api.put_route(CANARY, &canary(90, 10)).await?;
    sum.canary_90_10 = Some(shares(view, traffic, pace).await?);
    view.table(traffic, true);
    api.put_route(CANARY, &canary(50, 50)).await?;
    sum.canary_50_50 = Some(shares(view, traffic, pace).await?);
    view.table(traffic, true);
    (sum.canary_requests, sum.canary_failed) = failed_between(traffic, t, traffic.now());
    let pct = |s: Option<(f64, f64)>| {
        let (a, b) = s.unwrap_or_default();
        format!("v1 {:.0} % / v2 {:.0} %", a * 100.0, b * 100.0)
    };
    view.say(&format!(
        "      route 90/10: {}; shifted to 50/50: {}; {} requests, {} failed",
        pct(sum.canary_90_10),
        pct(sum.canary_50_50),
        sum.canary_requests,
        sum.canary_failed
    ));

    (sum.total_requests, sum.total_failed) = failed_between(traffic, begin, traffic.now());
    sum.seconds = wall.elapsed().as_secs_f64();
    Ok(sum)
}

/// The demo's route for `ledger`.
const CANARY: &str = "ledger-canary";
/// `ledger` requests measured per share.
const SHARE_SAMPLES: usize = 300;

/// The canary route: `v1` and `v2` of `ledger` weighted `w1`:`w2`.
fn canary(w1: u32, w2: u32) -> RouteBody {
    let backend = |version: &str, weight: u32| RouteBackend {
        service: None,
        subset: [("version".to_string(), version.to_string())].into(),
        weight,
    };
    RouteBody {
        id: None,
        service: "shop/ledger".into(),
        rules: vec![RouteRule {
            name: Some("canary".into()),
            matches: Vec::new(),
            filters: Vec::new(),
            backends: vec![backend("v1", w1), backend("v2", w2)],
            timeouts: None,
            retry: None,
        }],
    }
}

/// The shares of `ledger` answered by v1 (central) and v2 (west) over the next
/// [`SHARE_SAMPLES`] requests, once the route just written has reached east's gateway (its
/// watch delivers it within milliseconds; a short settle keeps older requests out).
async fn shares(view: &View, traffic: &Traffic, pace: &Pace) -> Result<(f64, f64)> {
    hold(view, traffic, Duration::from_millis(300)).await;
    let from = traffic.now();
    let n = || {
        traffic
            .since(from)
            .iter()
            .filter(|s| s.service == "ledger")
            .count()
    };
    until(
        view,
        traffic,
        "ledger samples",
        Duration::from_secs(30),
        || (n() >= SHARE_SAMPLES).then_some(()),
    )
    .await?;
    hold(view, traffic, pace.hold).await;
    let w = window(&traffic.since(from), "ledger", &["central", "west"]);
    Ok((w.shares[0], w.shares[1]))
}

/// Staged rotation: publish old + new CA and wait until every gateway loaded it; re-issue the
/// gateway's certificate from the new CA (reloaded from its files without a restart) and check
/// a new connection verifies against the new CA alone; then publish the new CA only.
async fn rotate(mesh: &mut Mesh, view: &View, traffic: &Traffic, name: &str) -> Result<()> {
    use warden_federation::trust::ca::{init_ca, issue_leaf, write_public, write_secret};
    let api = mesh.api(0)?;
    let td = mesh.cluster(name).pki.td.clone();
    let old = mesh.cluster(name).pki.ca.cert_pem.clone();
    let ca2 = init_ca(&td, Duration::from_secs(86_400))?;
    let publish = |pem: String| {
        let (api, td) = (api.clone(), td.clone());
        async move { anyhow::Ok(api.put_bundle(&td, &pem).await?.version) }
    };
    let loaded_everywhere = |version: u64| {
        let api = api.clone();
        let td = td.clone();
        async move {
            let status = api.trust_status().await.ok()?;
            let b = status.items.into_iter().find(|b| b.trust_domain == td)?;
            (b.version == version && b.complete).then_some(())
        }
    };
    let wait_loaded = |version: u64| async move {
        let deadline = Instant::now() + Duration::from_secs(20);
        while loaded_everywhere(version).await.is_none() {
            if Instant::now() > deadline {
                bail!("bundle version {version} was not loaded by every gateway in 20 s");
            }
            view.table(traffic, false);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    };

    let v = publish(format!("{old}{}", ca2.cert_pem)).await?;
    wait_loaded(v).await?;
    view.say(&format!(
        "      bundle v{v} (old + new CA) loaded by every gateway"
    ));

    let id = format!("spiffe://{td}/ns/warden/sa/gateway").parse()?;
    let leaf = issue_leaf(&ca2, &id, &[], Duration::from_secs(86_400))?;
    let base = mesh.dir.join(&td);
    write_secret(&base.join("gw.key.new"), &leaf.key_pem)?;
    write_public(&base.join("gw.pem.new"), &leaf.cert_pem)?;
    // Swap each file atomically; the gateway retries a reload that caught them mismatched.
    std::fs::rename(base.join("gw.key.new"), base.join("gw.key"))?;
    std::fs::rename(base.join("gw.pem.new"), base.join("gw.pem"))?;
    let (ew, east) = (mesh.cluster(name).eastwest.clone(), mesh.cluster("east"));
    let deadline = Instant::now() + Duration::from_secs(15);
    while !handshake(&ew, &east.pki, &td, &ca2.cert_pem).await {
        if Instant::now() > deadline {
            bail!("{name} did not load its re-issued certificate within 15 s");
        }
        view.table(traffic, false);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    view.say(&format!(
        "      {name}'s gateway serves a certificate from the new CA (reloaded, no restart)"
    ));

    let v = publish(ca2.cert_pem.clone()).await?;
    wait_loaded(v).await?;
    view.say(&format!(
        "      bundle v{v} (new CA only) loaded by every gateway"
    ));
    let c = mesh.cluster_mut(name);
    c.pki.ca = ca2;
    c.pki.leaf = leaf;
    Ok(())
}
