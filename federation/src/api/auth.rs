//! Who may call the API: writes need the admin bearer token or an admin SPIFFE identity's
//! client certificate; reads are open to loopback callers and need the token from elsewhere;
//! a joining cluster authenticates with its join token (checked by the handler).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::common::Node;
use super::error::ApiError;
use crate::paths;
use crate::trust::spiffe::PeerIdentity;

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn token_matches(given: &[u8], expected: &[u8]) -> bool {
    if given.len() != expected.len() {
        return false;
    }
    given
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// The middleware in front of every route.
pub async fn auth(State(node): State<Node>, req: Request, next: Next) -> Response {
    let is_read = matches!(*req.method(), Method::GET | Method::HEAD);
    let loopback = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip().is_loopback())
        .unwrap_or(false);
    // A joining cluster authenticates with its join token, not the admin token.
    let is_join = *req.method() == Method::POST && req.uri().path() == paths::JOIN;
    if (is_read && loopback) || is_join {
        return next.run(req).await;
    }
    // An admin identity proven by a client certificate (API over TLS).
    let admin_cert = req
        .extensions()
        .get::<PeerIdentity>()
        .and_then(|p| p.0.as_ref())
        .is_some_and(|id| node.admin_spiffe_ids.iter().any(|a| a == id));
    if admin_cert {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(t) if token_matches(t.as_bytes(), node.admin_token.as_bytes()) => next.run(req).await,
        Some(_) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the bearer token is not valid",
        )
        .into_response(),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this request needs an Authorization: Bearer <admin token> header",
        )
        .into_response(),
    }
}
