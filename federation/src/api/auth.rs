//! Who may call the API. Writes need the admin bearer token, an admin SPIFFE identity's
//! client certificate, or — for what is a cluster's own — that cluster's credential
//! (`<cluster>.<secret>`, see [`crate::credential`] and [`super::scope`]). Reads are open to
//! loopback callers and need a credential from elsewhere; a joining cluster authenticates with
//! its join token (checked by the handler). The caller is left in the request's extensions as
//! a [`Caller`].

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::common::{Node, state};
use super::error::ApiError;
use crate::credential;
use crate::paths;
use crate::trust::spiffe::PeerIdentity;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The admin token or an admin identity.
    Admin,
    /// A cluster's own credential.
    Cluster(String),
    /// No credential (a loopback read, or a join with its join token).
    Anonymous,
}

/// The middleware in front of every route.
pub async fn auth(State(node): State<Node>, mut req: Request, next: Next) -> Response {
    let (caller, who) = match identify(&node, &req) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    if let Caller::Cluster(cluster) = &caller {
        let allowed = match state(&node) {
            Ok(s) => super::scope::cluster_may(req.method(), req.uri().path(), cluster, |td| {
                s.domain_owner(td).map(str::to_string)
            }),
            Err(e) => return e.into_response(),
        };
        if let Err(why) = allowed {
            return ApiError::new(StatusCode::FORBIDDEN, "forbidden", why).into_response();
        }
    }
    req.extensions_mut().insert(caller);
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    // Writes run on behalf of their caller: the audit log records who made each change.
    let actor = crate::audit::Actor {
        who,
        what: format!("{} {}", req.method(), req.uri().path()),
    };
    crate::audit::scope(actor, next.run(req)).await
}

/// The caller, and how the audit log names it: `admin-token`, the admin SPIFFE ID,
/// `cluster:<name>`, or `join-token` (and `anonymous` for reads).
fn identify(node: &Node, req: &Request) -> Result<(Caller, String), ApiError> {
    let is_read = matches!(*req.method(), Method::GET | Method::HEAD);
    let loopback = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip().is_loopback())
        .unwrap_or(false);
    // A joining cluster authenticates with its join token, not the admin token.
    let is_join = *req.method() == Method::POST && req.uri().path() == paths::JOIN;
    if is_join {
        return Ok((Caller::Anonymous, "join-token".into()));
    }
    if is_read && loopback {
        return Ok((Caller::Anonymous, "anonymous".into()));
    }
    // An admin identity proven by a client certificate (API over TLS).
    let admin_cert = req
        .extensions()
        .get::<PeerIdentity>()
        .and_then(|p| p.0.as_ref())
        .filter(|id| node.admin_spiffe_ids.iter().any(|a| a == *id));
    if let Some(id) = admin_cert {
        return Ok((Caller::Admin, id.clone()));
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = given else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this request needs an Authorization: Bearer <admin token or cluster credential> header",
        ));
    };
    if credential::same(token.as_bytes(), node.admin_token.as_bytes()) {
        return Ok((Caller::Admin, "admin-token".into()));
    }
    if let Some((cluster, secret)) = credential::parse(token)
        && state(node)?.credential_matches(cluster, secret)
    {
        return Ok((
            Caller::Cluster(cluster.to_string()),
            format!("cluster:{cluster}"),
        ));
    }
    Err(ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "the bearer token is not valid",
    ))
}
