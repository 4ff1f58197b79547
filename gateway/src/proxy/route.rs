//! Which service a request names: `svc.ns`, `svc.ns.svc.cluster.local` or
//! `svc.ns.svc.clusterset.local` in the Host/authority, or `x-warden-service: ns/svc` on the
//! east-west hop.

use crate::table::ServiceKey;

/// Parses an authority (with or without port) into (namespace, service).
pub fn service_from_authority(authority: &str) -> Option<ServiceKey> {
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let rest = host
        .strip_suffix(".svc.cluster.local")
        .or_else(|| host.strip_suffix(".svc.clusterset.local"))
        .unwrap_or(&host);
    let (svc, ns) = rest.split_once('.')?;
    if svc.is_empty() || ns.is_empty() || ns.contains('.') {
        return None;
    }
    Some((ns.to_string(), svc.to_string()))
}

/// Parses `ns/svc`.
pub fn service_from_header(v: &str) -> Option<ServiceKey> {
    let (ns, svc) = v.split_once('/')?;
    if ns.is_empty() || svc.is_empty() || svc.contains('/') {
        return None;
    }
    Some((ns.to_string(), svc.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_forms() {
        let k = Some(("shop".to_string(), "cart".to_string()));
        assert_eq!(service_from_authority("cart.shop"), k);
        assert_eq!(service_from_authority("cart.shop:8080"), k);
        assert_eq!(service_from_authority("cart.shop.svc.cluster.local"), k);
        assert_eq!(
            service_from_authority("Cart.Shop.svc.clusterset.local:80"),
            k
        );
        assert_eq!(service_from_authority("cart"), None);
        assert_eq!(service_from_authority("a.b.c"), None);
        assert_eq!(service_from_authority(".shop"), None);
        assert_eq!(service_from_header("shop/cart"), k);
        assert_eq!(service_from_header("shop"), None);
    }
}
