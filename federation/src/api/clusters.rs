//! `/api/v1/clusters`: register, list, read, remove, status.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::body::JsonBody;
use super::error::responses::{BadRequest, Conflict, NotFound, Unauthorized, Unavailable};
use super::{ApiError, Node, Params, now_ms, read_barrier, written};
use crate::command::Command;
use crate::model::{Cluster, validate_dns_label};

/// The body of `POST /api/v1/clusters`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterCluster {
    pub name: String,
    pub region: String,
    pub zone: String,
    #[serde(default = "default_network")]
    pub network: String,
    pub gateway: String,
    pub trust_domain: String,
    #[serde(default)]
    pub ca_bundle_pem: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_network() -> String {
    "default".into()
}

fn state_err() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "state lock poisoned",
    )
}

#[utoipa::path(
    post,
    path = "/api/v1/clusters",
    tag = "clusters",
    request_body = RegisterCluster,
    responses(
        (status = 201, description = "Registered", body = Cluster),
        BadRequest, Unauthorized, Conflict, Unavailable
    )
)]
pub(super) async fn register(
    State(node): State<Node>,
    JsonBody(req): JsonBody<RegisterCluster>,
) -> Result<Response, ApiError> {
    let cluster = Cluster::registration(
        req.name,
        req.region,
        req.zone,
        req.network,
        req.gateway,
        req.trust_domain,
        req.labels,
        now_ms(),
        req.ca_bundle_pem.as_deref(),
    )?;
    let json = serde_json::to_value(&cluster).ok();
    let cmd = Command::RegisterCluster {
        cluster,
        ca_bundle_pem: req.ca_bundle_pem,
    };
    written(node.write(cmd).await?, StatusCode::CREATED, json)
}

#[utoipa::path(
    get,
    path = "/api/v1/clusters",
    tag = "clusters",
    params(("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "Every registered cluster: `{revision, items: [Cluster]}`", body = serde_json::Value),
        Unauthorized
    )
)]
pub(super) async fn list(State(node): State<Node>, params: Params) -> Result<Response, ApiError> {
    read_barrier(&node, &params).await?;
    let state = node.state.read().map_err(|_| state_err())?;
    let items: Vec<&Cluster> = state.clusters.values().collect();
    Ok(Json(json!({ "revision": state.revision, "items": items })).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/clusters/{name}",
    tag = "clusters",
    params(("name" = String, Path, description = "Cluster name"), ("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "The cluster", body = Cluster),
        BadRequest, Unauthorized, NotFound
    )
)]
pub(super) async fn get_one(
    State(node): State<Node>,
    Path(name): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    validate_dns_label("name", &name)?;
    read_barrier(&node, &params).await?;
    let state = node.state.read().map_err(|_| state_err())?;
    match state.clusters.get(&name) {
        Some(c) => Ok(Json(c).into_response()),
        None => Err(ApiError::not_found(format!("cluster {name:?} not found"))),
    }
}

#[utoipa::path(
    delete,
    path = "/api/v1/clusters/{name}",
    tag = "clusters",
    params(("name" = String, Path, description = "Cluster name")),
    responses(
        (status = 204, description = "Removed with its exports and lease"),
        BadRequest, Unauthorized, NotFound, Unavailable
    )
)]
pub(super) async fn remove(
    State(node): State<Node>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    validate_dns_label("name", &name)?;
    let cmd = Command::RemoveCluster { name, at: now_ms() };
    written(node.write(cmd).await?, StatusCode::NO_CONTENT, None)
}

/// How long the status probe waits for a TCP connection to the gateway.
const GATEWAY_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

#[utoipa::path(
    get,
    path = "/api/v1/clusters/{name}/status",
    tag = "clusters",
    params(("name" = String, Path, description = "Cluster name"), ("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "Registration, exports, lease, and whether this node reaches the gateway", body = serde_json::Value),
        BadRequest, Unauthorized, NotFound
    )
)]
pub(super) async fn status(
    State(node): State<Node>,
    Path(name): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    validate_dns_label("name", &name)?;
    read_barrier(&node, &params).await?;
    let (cluster, services, lease) = {
        let state = node.state.read().map_err(|_| state_err())?;
        let Some(cluster) = state.clusters.get(&name).cloned() else {
            return Err(ApiError::not_found(format!("cluster {name:?} not found")));
        };
        let services: Vec<serde_json::Value> = state
            .exports
            .values()
            .filter(|e| e.cluster == name)
            .map(|e| {
                json!({
                    "namespace": e.namespace,
                    "service": e.service,
                    "healthy_endpoints": e.healthy_endpoints,
                    "updated_at": e.updated_at,
                })
            })
            .collect();
        let lease = state.leases.get(&name).cloned();
        (cluster, services, lease)
    };
    // Observed from this node: can it open a TCP connection to the cluster's gateway?
    let started = std::time::Instant::now();
    let probe = tokio::time::timeout(
        GATEWAY_PROBE_TIMEOUT,
        tokio::net::TcpStream::connect(cluster.gateway.as_str()),
    )
    .await;
    let (reachable, detail) = match probe {
        Ok(Ok(_)) => (true, "tcp connect succeeded".to_string()),
        Ok(Err(e)) => (false, format!("tcp connect failed: {e}")),
        Err(_) => (
            false,
            format!("tcp connect timed out after {GATEWAY_PROBE_TIMEOUT:?}"),
        ),
    };
    // The gateway's lease renewal is the freshest sign of life; exports are the next best.
    let last_seen = lease.as_ref().map(|l| l.renewed_at).or_else(|| {
        services
            .iter()
            .filter_map(|s| s["updated_at"].as_u64())
            .max()
    });
    let lease_json = lease.map(|l| {
        json!({ "renewed_at": l.renewed_at, "ttl_ms": l.ttl_ms, "expired": now_ms() > l.renewed_at + l.ttl_ms })
    });
    Ok(Json(json!({
        "name": cluster.name,
        "gateway": cluster.gateway,
        "gateway_reachable": reachable,
        "gateway_probe": { "from_node": node.id, "detail": detail, "millis": started.elapsed().as_millis() as u64 },
        "exported_services": services,
        "last_seen": last_seen,
        "lease": lease_json,
        "registered_at": cluster.registered_at,
    }))
    .into_response())
}
