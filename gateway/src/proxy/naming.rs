//! Stage "name the service": which service a request is for. On the east-west listener the
//! calling gateway names it in `x-warden-service: ns/svc`; otherwise the URI authority
//! (HTTP/2 `:authority`, absolute-form HTTP/1.1) names it, or — for a client that dialed the
//! gateway's own address — the Host header.

use http::{HeaderMap, Uri};

use super::context::Listener;
use super::error::ProxyError;
use crate::key::ServiceKey;

/// Header carrying the service on the east-west hop.
pub const SERVICE_HEADER: &str = "x-warden-service";
/// Header carrying the service port on the east-west hop (HTTP requests and TCP tunnels).
pub const PORT_HEADER: &str = "x-warden-port";

/// The service a request names.
pub fn service_of(
    uri: &Uri,
    headers: &HeaderMap,
    listener: Listener,
) -> Result<ServiceKey, ProxyError> {
    if listener == Listener::EastWest
        && let Some(v) = headers.get(SERVICE_HEADER).and_then(|v| v.to_str().ok())
    {
        return ServiceKey::parse(v).ok_or(ProxyError::NoService);
    }
    uri.authority()
        .and_then(|a| ServiceKey::from_authority(a.as_str()))
        .or_else(|| {
            headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .and_then(ServiceKey::from_authority)
        })
        .ok_or(ProxyError::NoService)
}

/// The service port a request names: on the east-west hop the calling gateway's
/// `x-warden-port`; otherwise the port of the authority that named the service (`None`: none
/// given, the service's first port).
pub fn port_of(uri: &Uri, headers: &HeaderMap, listener: Listener) -> Option<u16> {
    let port = |a: &str| {
        let (_, p) = a.rsplit_once(':')?;
        p.parse::<u16>().ok().filter(|p| *p != 0)
    };
    if listener == Listener::EastWest {
        return headers
            .get(PORT_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u16>().ok());
    }
    if let Some(a) = uri.authority().map(|a| a.as_str())
        && ServiceKey::from_authority(a).is_some()
    {
        return port(a);
    }
    headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_port_comes_from_the_authority_that_named_the_service() {
        let named: Uri = "http://cart.shop:8080/x".parse().unwrap();
        assert_eq!(
            port_of(&named, &HeaderMap::new(), Listener::Outbound),
            Some(8080)
        );
        let dialed: Uri = "http://127.0.0.1:15001/x".parse().unwrap();
        let h = headers(&[("host", "cart.shop.svc.clusterset.local:9090")]);
        assert_eq!(port_of(&dialed, &h, Listener::Outbound), Some(9090));
        let h = headers(&[("host", "cart.shop")]);
        assert_eq!(port_of(&dialed, &h, Listener::Outbound), None);
        let h = headers(&[("x-warden-port", "7000"), ("host", "cart.shop:1")]);
        let bare: Uri = "/x".parse().unwrap();
        assert_eq!(port_of(&bare, &h, Listener::EastWest), Some(7000));
    }

    #[test]
    fn authority_then_host_and_the_east_west_header() {
        let cart = ServiceKey::new("shop", "cart");
        let uri: Uri = "http://cart.shop/x".parse().unwrap();
        assert_eq!(
            service_of(&uri, &HeaderMap::new(), Listener::Outbound).unwrap(),
            cart
        );
        // A client that dialed the gateway's address: the Host header names the service.
        let dialed: Uri = "http://127.0.0.1:15001/x".parse().unwrap();
        let h = headers(&[("host", "cart.shop.svc.cluster.local")]);
        assert_eq!(service_of(&dialed, &h, Listener::Outbound).unwrap(), cart);
        let path: Uri = "/x".parse().unwrap();
        assert!(matches!(
            service_of(&path, &HeaderMap::new(), Listener::Outbound),
            Err(ProxyError::NoService)
        ));
        // East-west: the header wins; a bad one is no service, not a fallback to Host.
        let ew = headers(&[(SERVICE_HEADER, "shop/cart"), ("host", "other.ns")]);
        assert_eq!(service_of(&path, &ew, Listener::EastWest).unwrap(), cart);
        let bad = headers(&[(SERVICE_HEADER, "nope"), ("host", "cart.shop")]);
        assert!(service_of(&path, &bad, Listener::EastWest).is_err());
        // Outbound ignores the east-west header.
        let spoof = headers(&[(SERVICE_HEADER, "shop/admin"), ("host", "cart.shop")]);
        assert_eq!(service_of(&path, &spoof, Listener::Outbound).unwrap(), cart);
    }
}
