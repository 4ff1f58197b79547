//! `warden mesh placements`: where each cluster's gateway sends each service's traffic now
//! and why — one line per gateway and service, from any federation node.

use warden_federation::placement::{MeshPlacements, Placement, PlacementQuery};

use super::client::Conn;

/// `local 0/2 up -> region(central) 100%`: the local endpoints, then the levels with traffic.
fn shares(p: &Placement) -> String {
    let served: Vec<String> = p
        .levels
        .iter()
        .filter(|l| l.traffic_share > 0.0)
        .map(|l| {
            let name = if l.clusters.is_empty() || l.clusters == [l.name.clone()] {
                l.name.clone()
            } else {
                format!("{}({})", l.name, l.clusters.join(","))
            };
            format!("{name} {:.0}%", l.traffic_share * 100.0)
        })
        .collect();
    let to = if served.is_empty() {
        "nowhere".to_string()
    } else {
        served.join(", ")
    };
    format!("local {}/{} up -> {to}", p.local_available, p.local_total)
}

fn print(m: &MeshPlacements) {
    for g in &m.gateways {
        for p in &g.services {
            println!(
                "{:<12} {:<24} {:<44} {}",
                g.cluster,
                p.service,
                shares(p),
                p.reason
            );
        }
    }
    println!(
        "{} gateway(s); {} of {} node(s) answered",
        m.gateways.len(),
        m.nodes_answered,
        m.nodes_asked
    );
}

pub async fn run(
    conn: Conn,
    service: Option<String>,
    cluster: Option<String>,
) -> anyhow::Result<()> {
    let q = PlacementQuery { service, cluster };
    print(&conn.client()?.placements(&q).await?);
    Ok(())
}
