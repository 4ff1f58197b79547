//! `warden mesh placements`: where each cluster's gateway sends each service's traffic now
//! and why — one line per gateway and service, from any federation node.

use warden_federation::placement::{MeshPlacements, Placement, PlacementQuery};

use super::client::Conn;

/// `local 0/2 up -> same zone(central) 100%`: the local endpoints, then the levels with
/// traffic (a failover or weight level already names its one cluster).
fn shares(p: &Placement) -> String {
    let served: Vec<String> = p
        .levels
        .iter()
        .filter(|l| l.traffic_share > 0.0)
        .map(|l| {
            let named = l.clusters.len() == 1 && l.name.ends_with(&format!(": {}", l.clusters[0]));
            let more = match l.clusters_omitted {
                0 => String::new(),
                n => format!(",+{n} more"),
            };
            let name = if l.clusters.is_empty() || named {
                l.name.clone()
            } else {
                format!("{}({}{more})", l.name, l.clusters.join(","))
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
        "{} gateway(s); {} of {} node(s) answered{}",
        m.gateways.len(),
        m.nodes_answered,
        m.nodes_asked,
        if m.truncated {
            "; cut at 10,000 placements: ask with --service or --cluster"
        } else {
            ""
        }
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
