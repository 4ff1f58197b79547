//! Real TLS handshakes on loopback against the SPIFFE verifiers: who gets in and who does not.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use warden_federation::trust::ca::{Pems, init_ca, issue_leaf, issue_leaf_between};
use warden_federation::trust::spiffe::SpiffeId;
use warden_federation::trust::tls::{Identity, client_config, peer_id, server_config};
use warden_federation::trust::verify::TrustStore;

const DAY: Duration = Duration::from_secs(86_400);

fn ca(td: &str) -> Pems {
    init_ca(td, 365 * DAY).unwrap()
}

fn leaf(ca: &Pems, id: &str) -> Pems {
    issue_leaf(ca, &id.parse::<SpiffeId>().unwrap(), &[], DAY).unwrap()
}

/// A server on 127.0.0.1:0 requiring mTLS and ALPN h2; answers each accepted peer with its
/// SPIFFE ID, and reports each failed handshake's error.
async fn server(
    identity: &Pems,
    store: Arc<TrustStore>,
) -> (String, tokio::sync::mpsc::Receiver<Result<String, String>>) {
    let (id, _) = Identity::from_pem(&identity.cert_pem, &identity.key_pem).unwrap();
    let cfg = server_config(id, store, &[b"h2"]).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        // Bounded: the test makes a handful of connections.
        for _ in 0..32 {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match acceptor.accept(tcp).await {
                    Ok(mut tls) => {
                        let (_, conn) = tls.get_ref();
                        if conn.alpn_protocol() != Some(b"h2") {
                            let _ = tx.send(Err("no h2".into())).await;
                            return;
                        }
                        let who = peer_id(conn.peer_certificates())
                            .map(|i| i.to_string())
                            .unwrap_or_default();
                        let _ = tls.write_all(who.as_bytes()).await;
                        let _ = tls.shutdown().await;
                        let _ = tx.send(Ok(who)).await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string())).await;
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// Connects with `identity` (or none), expecting the server's trust domain `expect_td`.
async fn client(
    addr: &str,
    identity: Option<&Pems>,
    store: Arc<TrustStore>,
    expect_td: &str,
    alpn: &[&[u8]],
) -> Result<String, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let cfg = match identity {
        Some(p) => {
            let (id, _) = Identity::from_pem(&p.cert_pem, &p.key_pem).unwrap();
            client_config(id, store, expect_td, alpn).unwrap()
        }
        None => {
            // Same server verification, but no client certificate at all.
            let mut c = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(
                warden_federation::trust::verify::SpiffeServerVerifier::new(store, expect_td),
            )
            .with_no_client_auth();
            c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            Arc::new(c)
        }
    };
    let connector = tokio_rustls::TlsConnector::from(cfg);
    let name = ServerName::try_from("gateway.invalid").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut buf))
        .await
        .map_err(|_| "timeout".to_string())?
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

struct World {
    a: Pems,
    b: Pems,
    store: Arc<TrustStore>,
}

fn world() -> World {
    let (a, b) = (ca("cluster-a"), ca("cluster-b"));
    let store = TrustStore::new();
    store.set("cluster-a", &a.cert_pem, 1).unwrap();
    store.set("cluster-b", &b.cert_pem, 1).unwrap();
    World { a, b, store }
}

/// A peer of another trusted domain gets in and is identified by its SPIFFE ID.
#[tokio::test]
async fn federated_peer_is_accepted_and_identified() {
    let w = world();
    let (addr, mut rx) = server(&leaf(&w.a, "spiffe://cluster-a/gateway"), w.store.clone()).await;
    let who = client(
        &addr,
        Some(&leaf(&w.b, "spiffe://cluster-b/gateway")),
        w.store.clone(),
        "cluster-a",
        &[b"h2"],
    )
    .await;
    assert_eq!(who.unwrap(), "spiffe://cluster-b/gateway");
    assert_eq!(
        rx.recv().await.unwrap().unwrap(),
        "spiffe://cluster-b/gateway"
    );
}

/// Each bad client is refused at the handshake, and the server survives all of them.
#[tokio::test]
async fn bad_clients_are_refused() {
    let w = world();
    let (addr, mut rx) = server(&leaf(&w.a, "spiffe://cluster-a/gateway"), w.store.clone()).await;
    let c = ca("cluster-c"); // not in the store
    let impostor = leaf(&w.b, "spiffe://cluster-a/ns/shop/sa/cart"); // cluster-a's name, B's CA
    let now = time::OffsetDateTime::now_utc();
    let expired = issue_leaf_between(
        &w.b,
        &"spiffe://cluster-b/gateway".parse().unwrap(),
        &[],
        now - time::Duration::days(2),
        now - time::Duration::days(1),
    )
    .unwrap();
    let cases: Vec<(&str, Option<Pems>)> = vec![
        ("no client certificate", None),
        ("untrusted CA", Some(leaf(&c, "spiffe://cluster-c/gateway"))),
        (
            "impersonation: cluster-a ID signed by cluster-b's CA",
            Some(impostor),
        ),
        ("expired leaf", Some(expired)),
    ];
    for (what, id) in cases {
        let r = client(&addr, id.as_ref(), w.store.clone(), "cluster-a", &[b"h2"]).await;
        assert!(
            r.is_err() || r.as_deref() == Ok(""),
            "{what}: got in: {r:?}"
        );
        let server_side = rx.recv().await.unwrap();
        assert!(server_side.is_err(), "{what}: server accepted");
        eprintln!("{what}: server error {:?}", server_side.unwrap_err());
    }
    // Garbage bytes on the TLS port.
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(rx.recv().await.unwrap().is_err());
    // A client that cannot speak h2: with only http/1.1 offered the handshake fails; with no
    // ALPN at all the server drops the connection after the handshake.
    let good = leaf(&w.b, "spiffe://cluster-b/gateway");
    assert!(
        client(
            &addr,
            Some(&good),
            w.store.clone(),
            "cluster-a",
            &[b"http/1.1"]
        )
        .await
        .is_err()
    );
    assert!(rx.recv().await.unwrap().is_err());
    let r = client(&addr, Some(&good), w.store.clone(), "cluster-a", &[]).await;
    assert!(!matches!(r.as_deref(), Ok(s) if !s.is_empty()), "{r:?}");
    assert_eq!(rx.recv().await.unwrap(), Err("no h2".to_string()));
    // And the server still serves a good client.
    let who = client(&addr, Some(&good), w.store.clone(), "cluster-a", &[b"h2"]).await;
    assert_eq!(who.unwrap(), "spiffe://cluster-b/gateway");
}

/// A client refuses a server of another trust domain than the one it dials.
#[tokio::test]
async fn client_refuses_the_wrong_trust_domain() {
    let w = world();
    let (addr, _rx) = server(&leaf(&w.a, "spiffe://cluster-a/gateway"), w.store.clone()).await;
    let r = client(
        &addr,
        Some(&leaf(&w.b, "spiffe://cluster-b/gateway")),
        w.store.clone(),
        "cluster-b",
        &[b"h2"],
    )
    .await;
    assert!(r.is_err(), "{r:?}");
}

/// Staged rotation: bundle [old, new] → leaves re-issued by the new CA work alongside old ones
/// → old CA dropped → leaves of the old CA are refused, new ones still work.
#[tokio::test]
async fn staged_rotation() {
    let w = world();
    let (addr, _rx) = server(&leaf(&w.a, "spiffe://cluster-a/gateway"), w.store.clone()).await;
    let old_leaf = leaf(&w.b, "spiffe://cluster-b/gateway");
    let b2 = ca("cluster-b");
    w.store
        .set("cluster-b", &format!("{}{}", w.b.cert_pem, b2.cert_pem), 2)
        .unwrap();
    let new_leaf = leaf(&b2, "spiffe://cluster-b/gateway");
    for l in [&old_leaf, &new_leaf] {
        assert!(
            client(&addr, Some(l), w.store.clone(), "cluster-a", &[b"h2"])
                .await
                .is_ok()
        );
    }
    w.store.set("cluster-b", &b2.cert_pem, 3).unwrap();
    assert!(
        client(
            &addr,
            Some(&old_leaf),
            w.store.clone(),
            "cluster-a",
            &[b"h2"]
        )
        .await
        .is_err()
    );
    assert!(
        client(
            &addr,
            Some(&new_leaf),
            w.store.clone(),
            "cluster-a",
            &[b"h2"]
        )
        .await
        .is_ok()
    );
    assert_eq!(w.store.versions()["cluster-b"], 3);
}

/// CA keys are written owner-only.
#[test]
fn keys_are_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ca.key");
    warden_federation::trust::ca::write_secret(&p, "secret").unwrap();
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600
    );
}
