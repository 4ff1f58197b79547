//! Stage "check and clean the head": what a client may not put in a request. A request whose
//! Host is repeated or names another authority than its target is refused (400 naming
//! `host`); before forwarding, hop-by-hop headers — and every header a `Connection` header
//! names — are removed, and so is every `x-warden-*` header a caller sent: those are the
//! gateways' own (the service and source cluster on the east-west hop, the verified caller to
//! backends), set only by a gateway after the caller's ones are gone.

use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use warden_federation::trust::spiffe::SpiffeId;

use super::error::ProxyError;

/// Header giving a backend the caller this gateway verified on the east-west hop: the
/// calling gateway's SPIFFE ID and, when registered with that identity's trust domain, its
/// cluster — `spiffe=<id>; cluster=<name>`. Absent when nothing was verified.
pub const CALLER_HEADER: &str = "x-warden-caller";

/// Prefix of the headers only gateways set.
const OWN_PREFIX: &str = "x-warden-";

/// Refuses a request head with more than one Host, or a Host that names another authority
/// than the request target (HTTP/2 `:authority`, absolute-form HTTP/1.1).
pub fn check_host(uri: &Uri, headers: &HeaderMap) -> Result<(), ProxyError> {
    let mut hosts = headers.get_all(http::header::HOST).iter();
    let Some(host) = hosts.next() else {
        return Ok(());
    };
    if hosts.next().is_some() {
        return Err(bad_host("more than one Host header".into()));
    }
    let host = host
        .to_str()
        .map_err(|_| bad_host("the Host header is not visible ASCII".into()))?;
    if let Some(authority) = uri.authority()
        && !authority.as_str().eq_ignore_ascii_case(host)
    {
        return Err(bad_host(format!(
            "Host {host:?} differs from the request target's authority {:?}",
            authority.as_str()
        )));
    }
    Ok(())
}

fn bad_host(message: String) -> ProxyError {
    ProxyError::BadRequest {
        field: "host",
        message,
    }
}

/// Removes what must not travel past this hop: the headers a `Connection` header names, the
/// hop-by-hop headers (RFC 9110 §7.6.1), and every `x-warden-*` header.
pub fn clean(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        // `te: trailers` is handled below: gRPC needs it on the next hop.
        if name != http::header::TE {
            h.remove(name);
        }
    }
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
    ] {
        h.remove(name);
    }
    // `te: trailers` must pass for gRPC; anything else is hop-by-hop. Every TE header is
    // looked at (a second one could carry more than `trailers`), and one clean value is left.
    let trailers = h.get_all(http::header::TE).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
        })
    });
    if h.remove(http::header::TE).is_some() && trailers {
        h.insert(http::header::TE, HeaderValue::from_static("trailers"));
    }
    let own: Vec<HeaderName> = h
        .keys()
        .filter(|k| k.as_str().starts_with(OWN_PREFIX))
        .cloned()
        .collect();
    for name in own {
        h.remove(name);
    }
}

/// The [`CALLER_HEADER`] value for a verified peer and its cluster (when verified too).
pub fn caller_value(peer: &SpiffeId, cluster: Option<&str>) -> Option<HeaderValue> {
    let v = match cluster {
        Some(c) => format!("spiffe={peer}; cluster={c}"),
        None => format!("spiffe={peer}"),
    };
    HeaderValue::from_str(&v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn host_must_be_single_and_match_the_target() {
        let origin: Uri = "/x".parse().unwrap();
        let absolute: Uri = "http://cart.shop/x".parse().unwrap();
        assert!(check_host(&origin, &map(&[("host", "cart.shop")])).is_ok());
        assert!(check_host(&origin, &HeaderMap::new()).is_ok());
        assert!(check_host(&absolute, &map(&[("host", "CART.shop")])).is_ok());
        let two = map(&[("host", "cart.shop"), ("host", "admin.shop")]);
        let e = check_host(&origin, &two).unwrap_err();
        assert!(matches!(e, ProxyError::BadRequest { field: "host", .. }));
        assert_eq!(e.status(), http::StatusCode::BAD_REQUEST);
        let other = map(&[("host", "admin.shop")]);
        assert!(check_host(&absolute, &other).is_err());
    }

    #[test]
    fn connection_named_hop_by_hop_and_own_headers_are_removed() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret, te"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("x-warden-source-cluster", "forged"),
            ("x-warden-caller", "spiffe=spiffe://evil.test/x"),
            ("X-Warden-Service", "shop/admin"),
            ("accept", "*/*"),
        ]);
        clean(&mut h);
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "te"], "{h:?}");
        // A second TE header cannot carry more than `trailers` past the hop.
        let mut h = map(&[("te", "trailers"), ("te", "gzip")]);
        clean(&mut h);
        let te: Vec<_> = h.get_all("te").iter().collect();
        assert_eq!(te, ["trailers"], "{h:?}");
        let mut h = map(&[("te", "gzip, deflate")]);
        clean(&mut h);
        assert!(h.get("te").is_none(), "{h:?}");
    }

    #[test]
    fn the_caller_names_the_peer_and_the_verified_cluster() {
        let id: SpiffeId = "spiffe://west.test/ns/warden/sa/gateway".parse().unwrap();
        assert_eq!(
            caller_value(&id, Some("west")).unwrap(),
            "spiffe=spiffe://west.test/ns/warden/sa/gateway; cluster=west"
        );
        assert_eq!(
            caller_value(&id, None).unwrap(),
            "spiffe=spiffe://west.test/ns/warden/sa/gateway"
        );
    }
}
