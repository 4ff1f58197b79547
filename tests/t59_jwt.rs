//! JWT policies end to end, real processes and a real TLS JWKS server made by the test: a
//! valid token passes and its verified claim reaches the backend (a caller-sent copy of the
//! claim header never does; the token is not forwarded); expired, wrong-audience, bad-signature,
//! `alg: none` and missing tokens get 401 with `www-authenticate`; a token with a key id the
//! gateway has not seen passes once the JWKS actor has fetched the rotated set; with the JWKS
//! server down, the cached keys keep working; a rate limit keyed by the claim header counts per
//! verified tenant.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use support::*;
use warden_federation::paths;

/// An ES256 signing key and its JWK under `kid`.
fn es256(kid: &str) -> (EncodingKey, Value) {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = kp.public_key_raw();
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(&raw[1..33]), "y": URL_SAFE_NO_PAD.encode(&raw[33..65])});
    (EncodingKey::from_ec_der(&kp.serialize_der()), jwk)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn sign(key: &EncodingKey, kid: &str, claims: Value) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(kid.into());
    jsonwebtoken::encode(&h, &claims, key).unwrap()
}

const ISSUER: &str = "https://idp.test";

fn claims(exp_in: i64, aud: &str, tenant: &str) -> Value {
    json!({"iss": ISSUER, "aud": aud, "sub": "alice", "exp": now() + exp_in, "tenant": tenant})
}

/// A JWKS server over TLS (a CA made here; the certificate names 127.0.0.1): serves `keys`,
/// counts fetches, and while `down` answers 503.
struct Jwks {
    url: String,
    ca_pem: String,
    keys: Arc<Mutex<Value>>,
    fetches: Arc<AtomicU32>,
    down: Arc<AtomicBool>,
}

async fn jwks_server(keys: Value) -> Jwks {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/jwks", listener.local_addr().unwrap());
    let keys = Arc::new(Mutex::new(keys));
    let (fetches, down) = (
        Arc::new(AtomicU32::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let (k, f, d) = (keys.clone(), fetches.clone(), down.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, k, f, d) = (acceptor.clone(), k.clone(), f.clone(), d.clone());
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 8192];
                let mut n = 0;
                while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") && n < buf.len() {
                    match s.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(m) => n += m,
                    }
                }
                f.fetch_add(1, Ordering::Relaxed);
                let (status, body) = match d.load(Ordering::Relaxed) {
                    true => ("503 Service Unavailable", String::new()),
                    false => ("200 OK", k.lock().unwrap().to_string()),
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    Jwks {
        url,
        ca_pem: ca_cert.pem(),
        keys,
        fetches,
        down,
    }
}

/// GET cart.shop/?headers=1 through `out` with `token`: (status, www-authenticate, body).
async fn call_with(
    client: &reqwest::Client,
    out: &str,
    token: Option<&str>,
) -> (u16, String, Value) {
    let mut r = client
        .get(format!("http://{out}/?headers=1"))
        .header("host", "cart.shop")
        .header("x-tenant", "forged");
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let www = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, www, resp.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_verified_against_a_jwks_fetched_and_cached_by_the_gateway() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (k1, jwk1) = es256("k1");
    let (k2, jwk2) = es256("k2");
    let (forger, _) = es256("k1");
    let jwks = jwks_server(json!({"keys": [jwk1]})).await;
    let (node, east, client) = east_serving(root, "").await;
    let admin = http();
    let out = east.outbound();

    // `alg: none` cannot even be written into a policy.
    let bad = admin
        .put(node.url(&paths::jwt_policy("cart-jwt")))
        .json(
            &json!({"service": "shop/cart", "providers": [{"issuer": ISSUER,
            "jwks": {"type": "url", "url": jwks.url}, "algorithms": ["none"]}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let policy = json!({"service": "shop/cart", "providers": [{
        "issuer": ISSUER, "audiences": ["cart"], "algorithms": ["ES256"],
        "jwks": {"type": "url", "url": jwks.url, "refresh_s": 2, "ca_bundle_pem": jwks.ca_pem},
        "claims_to_headers": [{"claim": "tenant", "header": "x-tenant"}]}]});
    put_ok(&admin, &node.url(&paths::jwt_policy("cart-jwt")), &policy).await;
    // Until the policy reaches the gateway, nothing checks tokens (and the caller's own
    // x-tenant passes): wait for it to be in force first.
    eventually(
        Duration::from_secs(30),
        "the policy is in force",
        || async { (call_with(&client, &out, None).await.0 == 401).then_some(()) },
    )
    .await;
    let good = sign(&k1, "k1", claims(300, "cart", "acme"));
    let body = eventually(Duration::from_secs(30), "a valid token passes", || async {
        let (s, _, body) = call_with(&client, &out, Some(&good)).await;
        (s == 200).then_some(body)
    })
    .await;
    assert_eq!(
        body["headers"]["x-tenant"], "acme",
        "the verified claim, not the caller's"
    );
    assert!(
        body["headers"].get("authorization").is_none(),
        "the token is not forwarded"
    );

    // Missing and invalid tokens: 401, with RFC 6750's header.
    let (s, www, _) = call_with(&client, &out, None).await;
    assert_eq!((s, www.as_str()), (401, "Bearer realm=\"shop/cart\""));
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims(300, "cart", "acme").to_string())
    );
    for (what, token) in [
        ("expired", sign(&k1, "k1", claims(-600, "cart", "acme"))),
        (
            "wrong audience",
            sign(&k1, "k1", claims(300, "billing", "acme")),
        ),
        (
            "bad signature",
            sign(&forger, "k1", claims(300, "cart", "acme")),
        ),
        ("alg none", none),
    ] {
        let (s, www, _) = call_with(&client, &out, Some(&token)).await;
        assert_eq!(s, 401, "{what}");
        assert!(
            www.starts_with("Bearer realm=\"shop/cart\", error=\"invalid_token\""),
            "{what}: {www}"
        );
    }

    // The issuer rotates to k2: a k2 token is refused until the gateway has the new set, which
    // the unknown key id makes it fetch soon (not only at the next refresh).
    *jwks.keys.lock().unwrap() = json!({"keys": [jwk2.clone()]});
    let rotated = sign(&k2, "k2", claims(300, "cart", "beta"));
    let (s, _, _) = call_with(&client, &out, Some(&rotated)).await;
    assert_eq!(s, 401, "not yet loaded");
    let body = eventually(
        Duration::from_secs(30),
        "the rotated key is fetched",
        || async {
            let (s, _, body) = call_with(&client, &out, Some(&rotated)).await;
            (s == 200).then_some(body)
        },
    )
    .await;
    assert_eq!(body["headers"]["x-tenant"], "beta");

    // The JWKS server goes down: after several refresh periods the cached keys still work.
    jwks.down.store(true, Ordering::Relaxed);
    let before = jwks.fetches.load(Ordering::Relaxed);
    eventually(
        Duration::from_secs(30),
        "the gateway tried the dead server",
        || async { (jwks.fetches.load(Ordering::Relaxed) >= before + 2).then_some(()) },
    )
    .await;
    assert_eq!(
        call_with(&client, &out, Some(&rotated)).await.0,
        200,
        "cached keys keep working"
    );
    let m = metrics_text(&client, &east.admin()).await;
    assert!(metric_sum(&m, "warden_jwks_loads_total", &["outcome=\"failed\""]) >= 2.0);

    // A rate limit keyed by the verified tenant: beta's bucket is spent, acme's is not, and a
    // forged x-tenant header does not move a caller into another bucket.
    put_ok(
        &admin,
        &node.url(&paths::resilience_policy("cart-tenants")),
        &json!({
        "service": "shop/cart", "rate_limits": [{"requests": 2, "unit": "hour",
            "key": {"type": "header", "name": "x-tenant"}}]}),
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "the tenant limit is applied",
        || async { (call_with(&client, &out, Some(&rotated)).await.0 == 429).then_some(()) },
    )
    .await;
    let acme = sign(&k2, "k2", claims(300, "cart", "acme"));
    assert_eq!(
        call_with(&client, &out, Some(&acme)).await.0,
        200,
        "acme has its own bucket"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l7_authorization_denies_on_method_and_path_with_one_audit_line() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (node, east, client) = east_serving(root, "").await;
    let admin = http();
    let out = east.outbound();
    let send = |method: reqwest::Method, path: &'static str| {
        let req = client
            .request(method, format!("http://{out}{path}"))
            .header("host", "cart.shop");
        async move {
            let r = req.send().await.unwrap();
            let code = r
                .headers()
                .get("x-warden-error")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            (r.status().as_u16(), code)
        }
    };
    // A bad rule is a 400 naming its field, and writes nothing.
    let bad = admin
        .put(node.url(&paths::authorization_policy("no-admin-delete")))
        .json(&json!({"service": "shop/cart", "action": "deny",
            "rules": [{"methods": ["DELETE"], "paths": [{"type": "PathPrefix", "value": "admin"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    assert_eq!(
        bad.json::<Value>().await.unwrap()["error"]["field"],
        "rules[0].paths[0].value"
    );
    put_ok(
        &admin,
        &node.url(&paths::authorization_policy("no-admin-delete")),
        &json!({
            "service": "shop/cart", "action": "deny",
            "rules": [{"methods": ["DELETE"], "paths": [{"type": "PathPrefix", "value": "/admin"}]}]
        }),
    )
    .await;
    eventually(Duration::from_secs(30), "the deny is applied", || async {
        (send(reqwest::Method::DELETE, "/admin/users").await.0 == 403).then_some(())
    })
    .await;
    let explain = |q: &str| {
        let url = format!("http://{}/explain?authority=cart.shop&{q}", east.admin());
        let client = client.clone();
        async move { get_json(&client, &url).await.unwrap() }
    };
    let v = explain("method=DELETE&path=/admin/x").await;
    assert_eq!(
        v["authorization"]["verdict"],
        json!({"allowed": false, "policy": "no-admin-delete"})
    );
    let v = explain("method=GET&path=/admin/x").await;
    assert_eq!(v["authorization"]["verdict"]["allowed"], true);
    let log = || std::fs::read_to_string(root.join("gateway-east.log")).unwrap_or_default();
    let audited = |log: &str| {
        log.lines()
            .filter(|l| l.contains("request denied") && l.contains("no-admin-delete"))
            .count()
    };
    let before = audited(&log());
    assert_eq!(
        send(reqwest::Method::DELETE, "/admin/users").await,
        (403, "forbidden".to_string())
    );
    assert_eq!(
        send(reqwest::Method::GET, "/admin/users").await.0,
        200,
        "another method"
    );
    assert_eq!(
        send(reqwest::Method::DELETE, "/administrator").await.0,
        200,
        "another path"
    );
    assert_eq!(send(reqwest::Method::DELETE, "/carts/1").await.0, 200);
    eventually(Duration::from_secs(10), "the denial is audited", || async {
        (audited(&log()) > before).then_some(())
    })
    .await;
    assert_eq!(audited(&log()), before + 1, "one audit line per denial");
    let m = metrics_text(&client, &east.admin()).await;
    assert!(
        metric_sum(
            &m,
            "warden_authz_denied_total",
            &["policy=\"no-admin-delete\""]
        ) >= 2.0
    );

    // An allow policy makes the service deny by default what it does not allow: east's own
    // callers are not among its source clusters.
    put_ok(
        &admin,
        &node.url(&paths::authorization_policy("west-only")),
        &json!({
            "service": "shop/cart", "action": "allow", "rules": [{"source_clusters": ["west"]}]
        }),
    )
    .await;
    eventually(Duration::from_secs(30), "the allow is applied", || async {
        (send(reqwest::Method::GET, "/x").await == (403, "forbidden".to_string())).then_some(())
    })
    .await;
    let r = admin
        .delete(node.url(&paths::authorization_policy("west-only")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    eventually(Duration::from_secs(30), "the allow is gone", || async {
        (send(reqwest::Method::GET, "/x").await.0 == 200).then_some(())
    })
    .await;
}
