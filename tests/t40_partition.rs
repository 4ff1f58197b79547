//! Network partition in network namespaces (root only): the isolated leader cannot commit,
//! the majority elects a leader and commits, and after healing every node converges.
//!
//! Topology, all made and removed by this test: a hub namespace with a bridge; one namespace
//! per node, each joined to the bridge by a veth pair; one veth from the test's own namespace
//! to the bridge so the test can reach the nodes. A partition takes one node's link down.

mod support;

use std::process::Command;
use std::time::Duration;

use support::*;

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Namespaces and links of one test run; removed on drop.
struct Net {
    prefix: String,
    subnet: String,
}

impl Net {
    fn ns(&self, i: &str) -> String {
        format!("{}{i}", self.prefix)
    }
    fn addr(&self, i: u8) -> String {
        format!("{}.{i}", self.subnet)
    }

    fn create() -> Result<Net, String> {
        let id = std::process::id();
        let net = Net {
            prefix: format!("wdp{}", id % 100_000),
            subnet: format!("10.199.{}", 20 + id % 200),
        };
        let hub = net.ns("h");
        ip(&["netns", "add", &hub])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for i in 1..=3u8 {
            let ns = net.ns(&i.to_string());
            ip(&["netns", "add", &ns])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n",
                &hub,
                "link",
                "add",
                &format!("b{i}"),
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &ns,
            ])?;
            ip(&[
                "-n",
                &hub,
                "link",
                "set",
                &format!("b{i}"),
                "master",
                "br0",
                "up",
            ])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", net.addr(i)),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        }
        // The test's own leg into the bridge.
        let host_if = format!("{}t", net.prefix);
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", "bt", "netns", &hub,
        ])?;
        ip(&["-n", &hub, "link", "set", "bt", "master", "br0", "up"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", net.addr(254)),
            "dev",
            &host_if,
        ])?;
        ip(&["link", "set", &host_if, "up"])?;
        Ok(net)
    }

    fn set_link(&self, node: u64, up: bool) {
        ip(&[
            "-n",
            &self.ns("h"),
            "link",
            "set",
            &format!("b{node}"),
            if up { "up" } else { "down" },
        ])
        .expect("set link");
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &format!("{}t", self.prefix)]);
        for n in ["1", "2", "3", "h"] {
            let _ = ip(&["netns", "del", &self.ns(n)]);
        }
    }
}

/// The isolated leader answers 503 for writes; the majority elects a leader and commits;
/// after healing all nodes converge, and the never-committed write is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_leader_cannot_commit_majority_can() {
    if !is_root() {
        eprintln!("skipped: needs root (network namespaces)");
        return;
    }
    let net = match Net::create() {
        Ok(n) => n,
        Err(e) => panic!("cannot build the test network (is iproute2 installed?): {e}"),
    };
    let tmp = tempfile::tempdir().unwrap();
    let hosts: Vec<String> = (1..=3u8).map(|i| format!("{}:0", net.addr(i))).collect();
    let prefixes: [Vec<String>; 3] = [1, 2, 3].map(|i: u8| {
        vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            net.ns(&i.to_string()),
        ]
    });
    let mut nodes =
        three_nodes_with(tmp.path(), &[&hosts[0], &hosts[1], &hosts[2]], &prefixes).await;
    let client = http();
    for i in 0..10 {
        assert_eq!(
            register(&client, &nodes[i % 3], &format!("pre{i}")).await,
            Some(201)
        );
    }
    converged(&client, &nodes, Duration::from_secs(30)).await;
    // From outside loopback, even reads need the token.
    let r = http_anonymous()
        .get(nodes[0].url(paths::CLUSTERS))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    let old = eventually(Duration::from_secs(20), "leader", || {
        leader(&client, &nodes)
    })
    .await;
    let old_idx = nodes.iter().position(|n| n.id == old).unwrap();
    net.set_link(old, false);

    // From inside the isolated leader's namespace, with the real CLI: the write fails with 503.
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.ns(&old.to_string()),
            env!("CARGO_BIN_EXE_warden"),
        ])
        .args([
            "cluster",
            "register",
            "--api",
            &format!("http://{}", nodes[old_idx].api),
        ])
        .args([
            "--name",
            "isolated",
            "--region",
            "r",
            "--zone",
            "z",
            "--gateway",
            "127.0.0.1:15008",
        ])
        .args(["--trust-domain", "isolated.test"])
        .env("WARDEN_ADMIN_TOKEN", TOKEN)
        .output()
        .expect("run the CLI");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the isolated leader must not commit");
    assert!(stderr.contains("HTTP 503"), "{stderr}");

    // The majority side elects a new leader and commits.
    let majority: Vec<&NodeProc> = nodes.iter().filter(|n| n.id != old).collect();
    let new_leader = eventually(Duration::from_secs(30), "a majority leader", || async {
        for n in &majority {
            if let Some(s) = mesh_status(&client, n).await
                && s["state"] == "Leader"
            {
                return s["node_id"].as_u64();
            }
        }
        None
    })
    .await;
    assert_ne!(new_leader, old);
    for i in 0..5 {
        let target = majority[i % 2];
        eventually(Duration::from_secs(20), "majority write", || async {
            match register(&client, target, &format!("maj{i}")).await {
                Some(201) | Some(409) => Some(()),
                _ => None,
            }
        })
        .await;
    }

    // Heal; everyone converges on the majority's history.
    net.set_link(old, true);
    let rev = converged(&client, &nodes, Duration::from_secs(60)).await;
    for n in &nodes {
        let (r, names) = cluster_names(&client, n).await.unwrap();
        assert_eq!(r, rev);
        for i in 0..5 {
            assert!(
                names.contains(&format!("maj{i}")),
                "node {} misses maj{i}",
                n.id
            );
        }
        assert!(
            !names.contains(&"isolated".to_string()),
            "an uncommitted write surfaced on node {}",
            n.id
        );
    }
    for n in nodes.iter_mut() {
        n.kill().await;
    }
}
