//! Joining without exchanging kubeconfigs: `POST /api/v1/join-tokens` (admin) makes a
//! single-use, expiring token `<id>.<secret>.<ca-pin>`; `POST /api/v1/join` registers a cluster
//! and its CA bundle with it. Only the secret's SHA-256 reaches the Raft log. The CA pin lets
//! the joining side verify the API's TLS certificate without any prior trust
//! (`warden cluster join` checks that a certificate in the served chain hashes to it).

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::body::JsonBody;
use super::common::{Node, check_registration, state, written};
use super::error::ApiError;
use super::error::responses::{
    BadRequest, Conflict, Forbidden, TooManyRequests, Unauthorized, Unavailable,
};
use crate::clock::now_ms;
use crate::command::Command;
use crate::model::{Cluster, JoinToken};
use crate::trust::digest::sha256_hex;
use crate::wire::{ClusterRegistered, JoinRequest, JoinTokenIssued, TokenRequest};

fn random_hex(n: usize) -> Result<String, ApiError> {
    crate::credential::random_hex(n).ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "no randomness",
        )
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/join-tokens",
    tag = "trust",
    request_body = TokenRequest,
    responses(
        (status = 201, description = "Single use; the token pins the federation CA", body = JoinTokenIssued),
        BadRequest, Unauthorized, Unavailable
    )
)]
pub(super) async fn create_token(
    State(node): State<Node>,
    JsonBody(req): JsonBody<TokenRequest>,
) -> Result<Response, ApiError> {
    let Some(pin) = node.ca_pin.clone() else {
        return Err(ApiError::bad_request(
            "join tokens need the API served over TLS (a [tls] table in the node config): the token pins its CA",
        ));
    };
    if req.ttl_s == 0 || req.ttl_s > 7 * 86_400 {
        return Err(ApiError::bad_field("ttl_s", "ttl_s must be 1-604800"));
    }
    let (id, secret) = (random_hex(8)?, random_hex(32)?);
    let now = now_ms();
    let token = JoinToken {
        id: id.clone(),
        secret_sha256: sha256_hex(secret.as_bytes()),
        created_at: now,
        expires_at: now + req.ttl_s * 1000,
        used_by: None,
    };
    let expires_at = token.expires_at;
    written::<()>(
        node.write(Command::CreateJoinToken { token }).await?,
        StatusCode::CREATED,
        None,
    )?;
    Ok((
        StatusCode::CREATED,
        Json(JoinTokenIssued {
            token: format!("{id}.{secret}.{pin}"),
            id,
            expires_at,
        }),
    )
        .into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/join",
    tag = "trust",
    request_body = JoinRequest,
    responses(
        (status = 201, description = "Registered with its trust bundle, with the cluster's own API credential (shown once)", body = ClusterRegistered),
        BadRequest, Forbidden, Conflict, TooManyRequests, Unavailable
    )
)]
pub(super) async fn join(
    State(node): State<Node>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    JsonBody(req): JsonBody<JoinRequest>,
) -> Result<Response, ApiError> {
    if !node.join_attempts.allow(peer.ip(), now_ms()) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many join attempts from this address; wait a minute",
        ));
    }
    let mut parts = req.token.split('.');
    let (Some(id), Some(secret)) = (parts.next(), parts.next()) else {
        return Err(ApiError::bad_field(
            "token",
            "a join token looks like <id>.<secret>.<ca-pin>",
        ));
    };
    let cluster = Cluster::registration(
        req.name,
        req.region,
        req.zone,
        req.network,
        req.gateway,
        req.trust_domain,
        req.labels,
        now_ms(),
        Some(&req.ca_bundle_pem),
    )?;
    // Checked before anything is proposed: a bad token or a taken domain writes nothing.
    let secret_sha256 = sha256_hex(secret.as_bytes());
    state(&node)?
        .check_join_token(id, &secret_sha256, cluster.registered_at)
        .map_err(|why| ApiError::new(StatusCode::FORBIDDEN, "join_token_rejected", why))?;
    check_registration(&node, &cluster, true)?;
    let issued = super::clusters::issue(&cluster.name)?;
    let answer = ClusterRegistered {
        cluster: cluster.clone(),
        credential: issued.token,
    };
    let result = node
        .write(Command::JoinClusterWithCredential {
            token_id: id.to_string(),
            secret_sha256,
            cluster,
            ca_bundle_pem: req.ca_bundle_pem,
            credential: issued.stored,
        })
        .await?;
    written(result, StatusCode::CREATED, Some(answer))
}
