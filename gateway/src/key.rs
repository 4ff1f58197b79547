//! [`ServiceKey`]: a service's name in the mesh (namespace and name) as a type, and the
//! spellings it is read from: `ns/svc` (the east-west header, policies, TCP routes) and the
//! authorities `svc.ns`, `svc.ns.svc.cluster.local`, `svc.ns.svc.clusterset.local`.

use std::fmt;

use serde::Serialize;

/// A service: its namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ServiceKey {
    pub namespace: String,
    pub name: String,
}

impl ServiceKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// Parses `ns/svc`.
    pub fn parse(v: &str) -> Option<Self> {
        let (ns, svc) = v.split_once('/')?;
        if ns.is_empty() || svc.is_empty() || svc.contains('/') {
            return None;
        }
        Some(Self::new(ns, svc))
    }

    /// Parses an authority (with or without port): `svc.ns`, `svc.ns.svc.cluster.local` or
    /// `svc.ns.svc.clusterset.local`, case-insensitively.
    pub fn from_authority(authority: &str) -> Option<Self> {
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
        Some(Self::new(ns, svc))
    }
}

/// `ns/svc`.
impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_and_header_forms() {
        let k = Some(ServiceKey::new("shop", "cart"));
        assert_eq!(ServiceKey::from_authority("cart.shop"), k);
        assert_eq!(ServiceKey::from_authority("cart.shop:8080"), k);
        assert_eq!(ServiceKey::from_authority("cart.shop.svc.cluster.local"), k);
        assert_eq!(
            ServiceKey::from_authority("Cart.Shop.svc.clusterset.local:80"),
            k
        );
        assert_eq!(ServiceKey::from_authority("cart"), None);
        assert_eq!(ServiceKey::from_authority("a.b.c"), None);
        assert_eq!(ServiceKey::from_authority(".shop"), None);
        assert_eq!(ServiceKey::parse("shop/cart"), k);
        assert_eq!(ServiceKey::parse("shop"), None);
        assert_eq!(ServiceKey::parse("shop/cart/x"), None);
        assert_eq!(k.map(|k| k.to_string()).as_deref(), Some("shop/cart"));
    }
}
