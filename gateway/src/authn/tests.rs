use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};

/// An ES256 key: its signing key and its JWK with `kid`.
fn es256(kid: &str) -> (EncodingKey, serde_json::Value) {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = kp.public_key_raw();
    let (x, y) = (&raw[1..33], &raw[33..65]);
    let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)});
    (EncodingKey::from_ec_der(&kp.serialize_der()), jwk)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(key: &EncodingKey, kid: &str, claims: serde_json::Value) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(kid.into());
    jsonwebtoken::encode(&h, &claims, key).unwrap()
}

fn policy() -> CompiledJwt {
    CompiledJwt::compile(
        &serde_json::from_value(serde_json::json!({
            "id": "p", "service": "shop/cart", "providers": [{
                "issuer": "https://idp.test", "audiences": ["cart"],
                "jwks": {"type": "url", "url": "https://idp.test/jwks"},
                "claims_to_headers": [{"claim": "tenant", "header": "x-tenant"}]
            }]
        }))
        .unwrap(),
    )
}

fn with_token(t: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("authorization", format!("Bearer {t}").parse().unwrap());
    h.insert("x-tenant", "forged".parse().unwrap());
    h
}

#[test]
fn a_valid_token_sets_its_claims_and_everything_else_is_refused() {
    let (key, jwk) = es256("k1");
    let (other, _) = es256("k1");
    let keys: KeySets = HashMap::from([(
        "https://idp.test/jwks".to_string(),
        Arc::new(serde_json::from_value(serde_json::json!({"keys": [jwk]})).unwrap()),
    )]);
    let p = policy();
    let claims = |exp: u64, aud: &str| serde_json::json!({"iss": "https://idp.test", "aud": aud, "exp": exp, "tenant": "acme"});
    let mut h = with_token(&token(&key, "k1", claims(now() + 300, "cart")));
    verify(&p, &mut h, &keys).unwrap();
    assert_eq!(
        h["x-tenant"], "acme",
        "the verified claim, not the caller's"
    );
    assert!(h.get("authorization").is_none(), "not forwarded by default");

    let refused = |t: String| {
        let mut h = with_token(&t);
        let r = verify(&p, &mut h, &keys).unwrap_err();
        assert!(
            h.get("x-tenant").is_none(),
            "a forged claim header never passes"
        );
        r
    };
    let why = |r: Refused| match r {
        Refused::Invalid { why, .. } => why,
        Refused::Missing => "missing".into(),
    };
    assert!(why(refused(token(&key, "k1", claims(now() - 120, "cart")))).contains("Expired"));
    assert!(why(refused(token(&key, "k1", claims(now() + 300, "other")))).contains("Audience"));
    assert!(why(refused(token(&other, "k1", claims(now() + 300, "cart")))).contains("Signature"));
    // Within the 60 s skew, an expired token still passes.
    let mut h = with_token(&token(&key, "k1", claims(now() - 30, "cart")));
    assert!(verify(&p, &mut h, &keys).is_ok());
    // alg: none, unsigned.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims(now() + 300, "cart").to_string())
    );
    assert!(why(refused(none)).contains("not a usable JWT"));
    // An unknown key id asks for the key set again.
    let r = refused(token(&key, "k2", claims(now() + 300, "cart")));
    assert_eq!(
        r,
        Refused::Invalid {
            why: "the token's key is not known".into(),
            refresh: Some("https://idp.test/jwks".into())
        }
    );
    let mut bare = HeaderMap::new();
    assert_eq!(verify(&p, &mut bare, &keys), Err(Refused::Missing));
}

#[test]
fn a_cached_token_is_refused_once_its_key_set_is_replaced() {
    let (key, jwk) = es256("k1");
    let (_, other) = es256("k9");
    let set = |jwk: &serde_json::Value| -> KeySets {
        HashMap::from([(
            "https://idp.test/jwks".to_string(),
            Arc::new(serde_json::from_value(serde_json::json!({"keys": [jwk]})).unwrap()),
        )])
    };
    let (first, rotated) = (set(&jwk), set(&other));
    let p = policy();
    let t = token(
        &key,
        "k1",
        serde_json::json!({"iss": "https://idp.test", "aud": "cart", "exp": now() + 300, "tenant": "acme"}),
    );
    for _ in 0..3 {
        let mut h = with_token(&t);
        let claims = verify(&p, &mut h, &first).unwrap().unwrap();
        assert_eq!(claims["tenant"], "acme");
        assert_eq!(
            h["x-tenant"], "acme",
            "claim headers set on a cache hit too"
        );
    }
    let mut h = with_token(&t);
    assert!(
        verify(&p, &mut h, &rotated).is_err(),
        "the cached entry is bound to its key set"
    );
    assert!(h.get("x-tenant").is_none());
}
