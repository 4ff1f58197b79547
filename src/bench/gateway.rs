//! `warden bench gateway`: the data path measured side by side in one run — direct to the
//! backend, through one gateway, through two gateways (the cross-cluster hop), and through
//! HAProxy in HTTP mode when installed — then failover time over repeated trials.
//!
//! Every part is a real process on loopback: a federation node, two gateways (clusters `a`
//! and `b`), echo backends, HAProxy. Service `shop/cart` has a backend in both clusters;
//! `shop/remote` only in `b`, so a request for it at gateway `a` crosses to `b`.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::http_load::{self, Run};
use crate::local::pki::{Pki, pki};
use crate::local::procs::{self, Proc};
use crate::local::wait::{admin_json, wait_for};

const TOKEN: &str = "bench-admin-token-0123456789";

#[derive(clap::Args)]
pub struct GatewayBenchArgs {
    /// Seconds per throughput and latency row.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent connections for the saturation rows.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Requests per second for the fixed-rate latency rows.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Failover trials.
    #[arg(long, default_value_t = 10)]
    trials: usize,
    /// Skip the throughput/latency rows (failover only).
    #[arg(long)]
    no_throughput: bool,
}

fn gateway_config(
    dir: &Path,
    name: &str,
    region: &str,
    zone: &str,
    fed: &str,
    services: &[(&str, &str)],
    extra: &str,
) -> Result<String> {
    let mut cfg = format!(
        "{extra}\n[cluster]\nname = \"{name}\"\nregion = \"{region}\"\nzone = \"{zone}\"\ntrust_domain = \"{name}.bench\"\n\
         [federation]\nendpoints = [\"http://{fed}\"]\n\
         [listeners]\noutbound = \"127.0.0.1:0\"\neastwest = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n\
         [discovery]\nallow_loopback_endpoints = true\n"
    );
    for (svc, ep) in services {
        cfg.push_str(&format!(
            "[[services]]\nnamespace = \"shop\"\nname = \"{svc}\"\nendpoints = [\"{ep}\"]\nprobe = \"/healthz\"\n"
        ));
    }
    let path = dir.join(format!("gateway-{name}.toml"));
    std::fs::write(&path, cfg)?;
    Ok(path.display().to_string())
}

fn row(label: &str, sat: &Run, fixed: &Run, base: Option<(&Run, &Run)>) {
    let ratio = base
        .map(|(bs, bf)| {
            format!(
                "{:>6.2}x | {:>6.2}x",
                sat.rate() / bs.rate(),
                fixed.latencies.ms(0.99) / bf.latencies.ms(0.99)
            )
        })
        .unwrap_or_else(|| format!("{:>7} | {:>7}", "1.00x", "1.00x"));
    println!(
        "| {label:<28} | {:>9.0} | {:>7.2} | {:>7.2} | {:>7.2} | {:>7.2} | {:>6} | {ratio} |",
        sat.rate(),
        sat.latencies.ms(0.5),
        fixed.latencies.ms(0.5),
        fixed.latencies.ms(0.99),
        fixed.latencies.ms(0.999),
        sat.errors + fixed.errors,
    );
}

struct Mesh {
    _fed: Proc,
    a1: Proc,
    a1_addr: String,
    b1: Proc,
    gw_a: Proc,
    gw_b: Proc,
    gw_c: Proc,
    /// mTLS pair: d has no local `tlsremote`, e does; both with their own CA.
    gw_d: Proc,
    gw_e: Proc,
    /// d's identity and e's CA, to time raw handshakes against e's east-west listener.
    d_pki: Pki,
    e_pki: Pki,
}

/// Times `n` new mTLS connections (TCP connect + TLS 1.3 handshake with client certificate)
/// to an east-west listener, as a gateway makes them.
async fn handshakes(addr: &str, me: &Pki, peer: &Pki, n: usize) -> Result<super::stats::Latencies> {
    use warden_federation::trust::tls::{Identity, client_config};
    use warden_federation::trust::verify::TrustStore;
    let store = TrustStore::new();
    store.set(&peer.td, &peer.ca.cert_pem, 1)?;
    let (id, _) = Identity::from_pem(&me.leaf.cert_pem, &me.leaf.key_pem)?;
    let cfg = client_config(id, store, &peer.td, &[b"h2"])?;
    let connector = tokio_rustls::TlsConnector::from(cfg);
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let name = rustls::pki_types::ServerName::try_from("warden-gateway.invalid")?;
        let tls = connector.connect(name, tcp).await?;
        lat.push(t.elapsed());
        drop(tls);
    }
    Ok(super::stats::Latencies::new(lat))
}

async fn mesh(dir: &Path) -> Result<Mesh> {
    let fed_cfg = dir.join("fed.toml");
    std::fs::write(
        &fed_cfg,
        format!(
            "node_id = 1\ndata_dir = {:?}\napi_listen = \"127.0.0.1:0\"\nraft_listen = \"127.0.0.1:0\"\nbootstrap = true\n",
            dir.join("fed").display().to_string()
        ),
    )?;
    let fed = procs::warden(
        &["federation", "--config", &fed_cfg.display().to_string()],
        &dir.join("fed.log"),
        TOKEN,
    )
    .await?;
    let fed_api = fed.addr("api")?;
    let a1 = procs::warden(&["echo", "--name", "a-1"], &dir.join("a1.log"), TOKEN).await?;
    let b1 = procs::warden(&["echo", "--name", "b-1"], &dir.join("b1.log"), TOKEN).await?;
    let (a1_addr, b1_addr) = (a1.addr("addr")?, b1.addr("addr")?);
    let cfg_b = gateway_config(
        dir,
        "b",
        "bench",
        "zb",
        &fed_api,
        &[("cart", &b1_addr), ("remote", &b1_addr)],
        "",
    )?;
    let cfg_a = gateway_config(dir, "a", "bench", "za", &fed_api, &[("cart", &a1_addr)], "")?;
    // Same as a, but the data path on one actix Arbiter per core (Envoy's threading model);
    // in another region so it is never a's failover target.
    let cfg_c = gateway_config(
        dir,
        "c",
        "bench-other",
        "zc",
        &fed_api,
        &[("cart", &a1_addr)],
        "[runtime]\ndata_path = \"per_core\"",
    )?;
    let gw_b = procs::warden(
        &["gateway", "--config", &cfg_b],
        &dir.join("gw-b.log"),
        TOKEN,
    )
    .await?;
    let gw_a = procs::warden(
        &["gateway", "--config", &cfg_a],
        &dir.join("gw-a.log"),
        TOKEN,
    )
    .await?;
    let gw_c = procs::warden(
        &["gateway", "--config", &cfg_c],
        &dir.join("gw-c.log"),
        TOKEN,
    )
    .await?;
    let (d_pki, e_pki) = (pki(dir, "d.bench")?, pki(dir, "e.bench")?);
    let cfg_d = gateway_config(
        dir,
        "d",
        "bench-tls-d",
        "zd",
        &fed_api,
        &[],
        &d_pki.tls_table,
    )?;
    let cfg_e = gateway_config(
        dir,
        "e",
        "bench-tls-e",
        "ze",
        &fed_api,
        &[("tlsremote", &b1_addr)],
        &e_pki.tls_table,
    )?;
    let gw_d = procs::warden(
        &["gateway", "--config", &cfg_d],
        &dir.join("gw-d.log"),
        TOKEN,
    )
    .await?;
    let gw_e = procs::warden(
        &["gateway", "--config", &cfg_e],
        &dir.join("gw-e.log"),
        TOKEN,
    )
    .await?;
    let client = reqwest::Client::new();
    let admin_d = gw_d.addr("admin")?;
    wait_for(
        "gateway d to see cluster e",
        Duration::from_secs(30),
        || async {
            admin_json(&client, &admin_d, "/explain?authority=tlsremote.shop")
                .await
                .is_some_and(|e| e["served_by"].as_array().is_some_and(|a| !a.is_empty()))
        },
    )
    .await?;
    let admin_a = gw_a.addr("admin")?;
    wait_for(
        "gateway a to see cluster b",
        Duration::from_secs(30),
        || async {
            admin_json(&client, &admin_a, "/explain?authority=remote.shop")
                .await
                .is_some_and(|e| e["served_by"].as_array().is_some_and(|a| !a.is_empty()))
        },
    )
    .await?;
    Ok(Mesh {
        _fed: fed,
        a1,
        a1_addr,
        b1,
        gw_a,
        gw_b,
        gw_c,
        gw_d,
        gw_e,
        d_pki,
        e_pki,
    })
}

pub async fn run(args: GatewayBenchArgs) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let mut m = mesh(dir).await?;
    let out_a = m.gw_a.addr("outbound")?;
    println!(
        "warden bench gateway: processes on loopback; HTTP/1.1 keep-alive client; 2-core machine"
    );
    let _ = &m.gw_b;

    if !args.no_throughput {
        println!(
            "saturation: {} connections closed-loop for {} s; fixed rate: {} req/s open-loop for {} s (latency from scheduled send)\n",
            args.concurrency, args.seconds, args.rate, args.seconds
        );
        println!(
            "| {:<28} | {:>9} | {:>7} | {:>7} | {:>7} | {:>7} | {:>6} | {:>7} | {:>7} |",
            "path",
            "req/s sat",
            "p50 sat",
            "p50 ms",
            "p99 ms",
            "p999 ms",
            "errors",
            "req/s vs direct",
            "p99 vs direct"
        );
        println!(
            "|{:-<30}|{:->11}|{:->9}|{:->9}|{:->9}|{:->9}|{:->8}|{:->9}|{:->9}|",
            "", "", "", "", "", "", "", "", ""
        );
        let mut rows: Vec<(String, String, String)> = vec![
            (
                "direct to backend".into(),
                m.a1_addr.clone(),
                "cart.shop".into(),
            ),
            (
                "one gateway (local)".into(),
                out_a.clone(),
                "cart.shop".into(),
            ),
            (
                "one gateway, per-core arbiters".into(),
                m.gw_c.addr("outbound")?,
                "cart.shop".into(),
            ),
            (
                "two gateways (east-west h2)".into(),
                out_a.clone(),
                "remote.shop".into(),
            ),
            (
                "two gateways (east-west mTLS)".into(),
                m.gw_d.addr("outbound")?,
                "tlsremote.shop".into(),
            ),
        ];
        let hp_port = procs::free_port()?;
        let hp_addr = format!("127.0.0.1:{hp_port}");
        let haproxy = procs::haproxy(dir, &hp_addr, &m.a1_addr).await?;
        if haproxy.is_some() {
            rows.push((
                "haproxy (http mode)".into(),
                hp_addr.clone(),
                "cart.shop".into(),
            ));
        }
        let mut base: Option<(Run, Run)> = None;
        for (label, addr, host) in rows {
            let sat = http_load::closed_loop(&addr, &host, args.concurrency, args.seconds).await?;
            let fixed = http_load::open_loop(&addr, &host, args.rate, args.seconds).await?;
            row(&label, &sat, &fixed, base.as_ref().map(|(a, b)| (a, b)));
            if base.is_none() {
                base = Some((sat, fixed));
            }
        }
        if haproxy.is_none() {
            println!("(haproxy not installed: no HAProxy row; apt-get install haproxy)");
        }
        let hs = handshakes(&m.gw_e.addr("eastwest")?, &m.d_pki, &m.e_pki, 300).await?;
        println!(
            "\nnew mTLS connection to a remote gateway (TCP connect + TLS 1.3 handshake with client certificate and SPIFFE verification, 300 in a row): p50 {:.2} ms, p99 {:.2} ms. A pooled connection pays none of it: compare the two two-gateway rows.",
            hs.ms(0.5),
            hs.ms(0.99)
        );
        println!();
    }

    failover_trials(&mut m, args.trials).await
}

/// Kills all of cluster a's backends under load, `trials` times.
async fn failover_trials(m: &mut Mesh, trials: usize) -> Result<()> {
    let client = reqwest::Client::new();
    let admin_a = m.gw_a.addr("admin")?;
    let out_a = m.gw_a.addr("outbound")?;
    println!(
        "failover: 4 closed-loop clients on gateway a for shop/cart; SIGKILL a's only backend; restore; {trials} trials"
    );
    println!(
        "| trial | first remote response ms | routing drops local ms | failed requests | failback ms |"
    );
    println!(
        "|------:|-------------------------:|-----------------------:|----------------:|------------:|"
    );
    let (mut firsts, mut drops, mut backs, mut failed_total) =
        (Vec::new(), Vec::new(), Vec::new(), 0u64);
    for trial in 1..=trials {
        // Steady state: all local.
        wait_for("local routing", Duration::from_secs(30), || async {
            admin_json(&client, &admin_a, "/explain?authority=cart.shop")
                .await
                .is_some_and(|e| e["levels"][0]["traffic_share"].as_f64() == Some(1.0))
        })
        .await?;
        let log: Arc<Mutex<Vec<(Instant, u16, String)>>> = Default::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hc = http_load::client();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (hc, out, log, stop) = (hc.clone(), out_a.clone(), log.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                // Bounded by `stop` and by count.
                for _ in 0..200_000 {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    let (s, server) = http_load::get(&hc, &out, "cart.shop").await;
                    if let Ok(mut l) = log.lock() {
                        l.push((Instant::now(), s, server));
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let t0 = Instant::now();
        m.a1.kill().await;
        // When the routing table stops offering the local endpoint.
        wait_for(
            "routing to drop the local endpoint",
            Duration::from_secs(30),
            || async {
                admin_json(&client, &admin_a, "/config_dump")
                    .await
                    .is_some_and(|d| d["local"]["shop/cart"]["endpoints"][0]["available"] == false)
            },
        )
        .await?;
        let dropped = t0.elapsed();
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Restore on the same address and time the failback (first local response).
        m.a1 = procs::warden(
            &["echo", "--name", "a-1", "--listen", &m.a1_addr],
            &std::env::temp_dir().join("warden-bench-a1.log"),
            TOKEN,
        )
        .await
        .context("restarting a's backend")?;
        let t_restore = Instant::now();
        wait_for("failback", Duration::from_secs(30), || {
            let log = log.clone();
            async move {
                log.lock()
                    .map(|l| {
                        l.iter()
                            .any(|(t, s, srv)| *t > t_restore && *s == 200 && srv.starts_with("a-"))
                    })
                    .unwrap_or(false)
            }
        })
        .await?;
        let back = t_restore.elapsed();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for t in tasks {
            let _ = t.await;
        }
        let l = log.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        let first_remote = l
            .iter()
            .find(|(t, s, srv)| *t > t0 && *s == 200 && srv.starts_with("b-"))
            .map(|(t, _, _)| t.duration_since(t0));
        let failed = l.iter().filter(|(_, s, _)| *s != 200).count() as u64;
        failed_total += failed;
        let first_ms = first_remote
            .map(|d| d.as_secs_f64() * 1e3)
            .unwrap_or(f64::NAN);
        println!(
            "| {trial:>5} | {first_ms:>24.2} | {:>22.0} | {failed:>15} | {:>11.0} |",
            dropped.as_secs_f64() * 1e3,
            back.as_secs_f64() * 1e3
        );
        firsts.push(first_ms);
        drops.push(dropped.as_secs_f64() * 1e3);
        backs.push(back.as_secs_f64() * 1e3);
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    println!(
        "median: first remote response {:.2} ms, routing drops local {:.0} ms, failback {:.0} ms; failed requests in all trials: {failed_total}",
        med(&mut firsts),
        med(&mut drops),
        med(&mut backs)
    );
    let _ = &m.b1;
    Ok(())
}
