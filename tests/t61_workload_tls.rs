//! The calling workload's identity on the outbound listener, real processes and real TLS
//! handshakes on loopback: with `listeners.outbound_tls = "optional"`, a workload presenting a
//! certificate of its cluster's CA is known by its SPIFFE ID to authorization — an allow
//! policy on `workloads` lets `sa/web` and the `ns/ops/*` prefix in and denies `sa/batch` and a
//! caller without a certificate (each denial audited with the workload named); a certificate of
//! a CA the federation does not trust fails the handshake. With `"required"`, a caller without
//! a certificate cannot complete a request at all.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use support::*;
use warden_federation::paths;
use warden_federation::trust::tls::{anonymous_client_config, client_config};

/// Issues a certificate for `id` from the CA in `ca_dir`; (cert path, key path).
fn issue(ca_dir: &Path, id: &str, out: &str) -> (String, String) {
    let prefix = ca_dir.join(out);
    let p = prefix.display().to_string();
    warden(&[
        "trust",
        "issue",
        "--ca-dir",
        &ca_dir.display().to_string(),
        "--spiffe-id",
        id,
        "--out",
        &p,
    ]);
    (format!("{p}.pem"), format!("{p}.key"))
}

/// GET cart.shop over TLS to the outbound listener `addr`, presenting `cert` (or none), and
/// verifying the gateway's SPIFFE identity in `east.test` against `ca`: the status, or the
/// failure.
async fn workload_get(
    addr: &str,
    cert: Option<&(String, String)>,
    ca: &Path,
) -> Result<u16, String> {
    let ca_pem = std::fs::read_to_string(ca).unwrap();
    let mut cfg = match cert {
        Some((c, k)) => {
            let loaded = warden_federation::trust::files::load(Path::new(c), Path::new(k), ca)
                .map_err(|e| e.to_string())?;
            (*client_config(loaded.identity, loaded.store, "east.test", &[b"h2"]).unwrap()).clone()
        }
        None => anonymous_client_config(&ca_pem).unwrap(),
    };
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("gateway.invalid").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .map_err(|e| format!("h2: {e}"))?;
    tokio::spawn(conn);
    let req = http::Request::get("http://cart.shop/")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let call = async {
        let resp = send
            .send_request(req)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let status = resp.status().as_u16();
        let _ = resp.into_body().collect().await;
        Ok(status)
    };
    tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .map_err(|_| "timed out".to_string())?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_are_known_by_their_certificates_on_the_outbound_listener() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let node = one_node(root).await;
    let tls = pki(root, "east.test");
    let mut east = east_of(root, &node, &tls).await;
    let cfg = std::fs::read_to_string(&east.config).unwrap();
    let listeners = "admin = \"127.0.0.1:0\"\n";
    let with_tls = |mode: &str| {
        cfg.replacen(
            listeners,
            &format!("{listeners}outbound_tls = {mode:?}\n"),
            1,
        )
    };
    std::fs::write(&east.config, with_tls("optional")).unwrap();
    east.gateway.restart_with(None).await;
    let ca_dir = root.join("pki-east.test");
    let ca = ca_dir.join("ca.pem");
    let web = issue(&ca_dir, "spiffe://east.test/ns/shop/sa/web", "web");
    let batch = issue(&ca_dir, "spiffe://east.test/ns/shop/sa/batch", "batch");
    let probe = issue(&ca_dir, "spiffe://east.test/ns/ops/sa/probe", "probe");
    let out = east.outbound();
    eventually(Duration::from_secs(30), "cart answers over TLS", || async {
        (workload_get(&out, Some(&web), &ca).await == Ok(200)).then_some(())
    })
    .await;

    let admin = http();
    put_ok(
        &admin,
        &node.url(&paths::authorization_policy("cart-callers")),
        &json!({"service": "shop/cart", "action": "allow", "rules": [
            {"workloads": ["spiffe://east.test/ns/shop/sa/web", "spiffe://east.test/ns/ops/*"]}]}),
    )
    .await;
    eventually(Duration::from_secs(30), "the policy is applied", || async {
        (workload_get(&out, Some(&batch), &ca).await == Ok(403)).then_some(())
    })
    .await;
    assert_eq!(workload_get(&out, Some(&web), &ca).await, Ok(200), "sa/web");
    assert_eq!(
        workload_get(&out, Some(&probe), &ca).await,
        Ok(200),
        "ns/ops/*"
    );
    assert_eq!(
        workload_get(&out, None, &ca).await,
        Ok(403),
        "no certificate"
    );

    // A certificate of a CA the federation does not trust: no handshake.
    let rogue_dir = root.join("pki-rogue.test");
    let _ = pki(root, "rogue.test");
    let rogue = issue(&rogue_dir, "spiffe://rogue.test/ns/shop/sa/web", "web");
    let r = workload_get(&out, Some(&rogue), &ca).await;
    assert!(r.is_err(), "an untrusted certificate was accepted: {r:?}");
    // Plain HTTP on a TLS listener gets nowhere either.
    let plain = http()
        .get(format!("http://{out}/"))
        .header("host", "cart.shop")
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);

    let log = std::fs::read_to_string(root.join("gateway-east.log")).unwrap();
    let denials: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("request denied"))
        .collect();
    assert!(
        denials
            .iter()
            .any(|l| l.contains("spiffe://east.test/ns/shop/sa/batch")),
        "the denial names the workload: {denials:?}"
    );

    // Required: a caller without a certificate cannot complete a request.
    std::fs::write(&east.config, with_tls("required")).unwrap();
    east.gateway.restart_with(None).await;
    let out = east.outbound();
    eventually(Duration::from_secs(30), "cart answers again", || async {
        (workload_get(&out, Some(&web), &ca).await == Ok(200)).then_some(())
    })
    .await;
    let r = workload_get(&out, None, &ca).await;
    assert!(r.is_err(), "a caller without a certificate got {r:?}");
    println!("required: without a certificate → {}", r.unwrap_err());
}
