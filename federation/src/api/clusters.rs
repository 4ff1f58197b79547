//! `/api/v1/clusters`: register, list, read, remove, status, and correcting the registered
//! gateway address.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::body::JsonBody;
use super::common::{Node, Params, check_registration, read_barrier, state, written};
use super::error::ApiError;
use super::error::responses::{
    BadRequest, Conflict, Forbidden, NotFound, Unauthorized, Unavailable,
};
use crate::clock::now_ms;
use crate::command::Command;
use crate::credential;
use crate::model::{Cluster, validate_dns_label, validate_host_port};
use crate::wire::{
    ClusterRegistered, ClusterStatus, CredentialIssued, ExportedService, GatewayBody, GatewayProbe,
    LeaseState, Listing, RegisterCluster,
};

#[utoipa::path(
    post,
    path = "/api/v1/clusters",
    tag = "clusters",
    request_body = RegisterCluster,
    responses(
        (status = 201, description = "Registered, with the cluster's own API credential (shown once)", body = ClusterRegistered),
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
    check_registration(&node, &cluster, false)?;
    let issued = issue(&cluster.name)?;
    let answer = ClusterRegistered {
        cluster: cluster.clone(),
        credential: issued.token,
    };
    let cmd = Command::RegisterClusterWithCredential {
        cluster,
        ca_bundle_pem: req.ca_bundle_pem,
        credential: issued.stored,
    };
    written(node.write(cmd).await?, StatusCode::CREATED, Some(answer))
}

/// A new credential for `cluster`, or why there is none.
pub(super) fn issue(cluster: &str) -> Result<credential::Issued, ApiError> {
    credential::issue(cluster, now_ms()).ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "no randomness for a credential",
        )
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/clusters/{name}/credential",
    tag = "clusters",
    params(("name" = String, Path, description = "Cluster name")),
    responses(
        (status = 201, description = "The cluster's new API credential (shown once); the previous one stops working", body = CredentialIssued),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable
    )
)]
pub(super) async fn new_credential(
    State(node): State<Node>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    validate_dns_label("name", &name)?;
    let issued = issue(&name)?;
    let answer = CredentialIssued {
        cluster: name.clone(),
        credential: issued.token,
        issued_at: issued.stored.issued_at,
    };
    let cmd = Command::SetClusterCredential {
        cluster: name,
        credential: issued.stored,
    };
    written(node.write(cmd).await?, StatusCode::CREATED, Some(answer))
}

#[utoipa::path(
    get,
    operation_id = "clusters_list",
    path = "/api/v1/clusters",
    tag = "clusters",
    params(("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "Every registered cluster", body = Listing<Cluster>),
        Unauthorized
    )
)]
pub(super) async fn list(State(node): State<Node>, params: Params) -> Result<Response, ApiError> {
    read_barrier(&node, &params).await?;
    let state = state(&node)?;
    let answer = Listing {
        revision: state.revision,
        items: state.clusters.values().cloned().collect::<Vec<Cluster>>(),
    };
    Ok(Json(answer).into_response())
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
    match state(&node)?.clusters.get(&name) {
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
    let cmd = Command::RemoveCluster {
        name: name.clone(),
        at: now_ms(),
    };
    let answer = written::<()>(node.write(cmd).await?, StatusCode::NO_CONTENT, None)?;
    // Its recent requests go with it (peers' copies are filtered out of every answer).
    node.recent.forget(&name);
    node.placements.forget(&name);
    Ok(answer)
}

#[utoipa::path(
    put,
    path = "/api/v1/clusters/{name}/gateway",
    tag = "clusters",
    params(("name" = String, Path, description = "Cluster name")),
    request_body = GatewayBody,
    responses(
        (status = 200, description = "The registration with its new gateway address", body = Cluster),
        BadRequest, Unauthorized, NotFound, Unavailable
    )
)]
pub(super) async fn set_gateway(
    State(node): State<Node>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<GatewayBody>,
) -> Result<Response, ApiError> {
    validate_dns_label("name", &name)?;
    validate_host_port("gateway", &body.gateway)?;
    let gateway = body.gateway.clone();
    let cmd = Command::SetClusterGateway {
        name: name.clone(),
        gateway: body.gateway,
        at: now_ms(),
    };
    let result = node.write(cmd).await?;
    let mut cluster = state(&node)?.clusters.get(&name).cloned();
    if crate::dry_run::active()
        && let Some(c) = cluster.as_mut()
    {
        // Nothing was written: show the registration as the write would have left it.
        c.gateway = gateway;
    }
    written(result, StatusCode::OK, cluster)
}

/// How long the status probe waits for a TCP connection to the gateway.
const GATEWAY_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

#[utoipa::path(
    get,
    operation_id = "cluster_status",
    path = "/api/v1/clusters/{name}/status",
    tag = "clusters",
    params(("name" = String, Path, description = "Cluster name"), ("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "Registration, exports, lease, and whether this node reaches the gateway", body = ClusterStatus),
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
        let state = state(&node)?;
        let Some(cluster) = state.clusters.get(&name).cloned() else {
            return Err(ApiError::not_found(format!("cluster {name:?} not found")));
        };
        let services: Vec<ExportedService> = state
            .exports
            .values()
            .filter(|e| e.cluster == name)
            .map(|e| ExportedService {
                namespace: e.namespace.clone(),
                service: e.service.clone(),
                healthy_endpoints: e.healthy_endpoints,
                updated_at: e.updated_at,
            })
            .collect();
        (cluster, services, state.leases.get(&name).cloned())
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
    let last_seen = lease
        .as_ref()
        .map(|l| l.renewed_at)
        .or_else(|| services.iter().map(|s| s.updated_at).max());
    Ok(Json(ClusterStatus {
        name: cluster.name,
        gateway: cluster.gateway,
        gateway_reachable: reachable,
        gateway_probe: GatewayProbe {
            from_node: node.id,
            detail,
            millis: started.elapsed().as_millis() as u64,
        },
        exported_services: services,
        last_seen,
        lease: lease.map(|l| LeaseState {
            renewed_at: l.renewed_at,
            ttl_ms: l.ttl_ms,
            expired: now_ms() > l.renewed_at + l.ttl_ms,
        }),
        registered_at: cluster.registered_at,
    })
    .into_response())
}
