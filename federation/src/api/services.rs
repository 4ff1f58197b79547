//! `/api/v1/clusters/{c}/services/{ns}/{svc}` (export, unexport), `/api/v1/services` (the
//! global catalog) and `/api/v1/trust/bundles`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::body::JsonBody;
use super::error::responses::{BadRequest, NotFound, Unauthorized, Unavailable};
use super::{ApiError, Node, Params, now_ms, read_barrier, written};
use crate::command::Command;
use crate::model::{
    ServiceExport, ServicePort, validate_ca_bundle, validate_dns_label, validate_dns_name,
};

/// The body of an export.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportBody {
    pub ports: Vec<ServicePort>,
    #[serde(default)]
    pub healthy_endpoints: u32,
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    100
}

fn internal() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "state lock poisoned",
    )
}

#[utoipa::path(
    put,
    path = "/api/v1/clusters/{cluster}/services/{namespace}/{service}",
    tag = "services",
    params(("cluster" = String, Path, description = "Exporting cluster"), ("namespace" = String, Path, description = "Namespace"), ("service" = String, Path, description = "Service")),
    request_body = ExportBody,
    responses(
        (status = 200, description = "Exported (or updated)", body = ServiceExport),
        BadRequest, Unauthorized, NotFound, Unavailable
    )
)]
pub(super) async fn export(
    State(node): State<Node>,
    Path((cluster, namespace, service)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<ExportBody>,
) -> Result<Response, ApiError> {
    let export = ServiceExport {
        cluster,
        namespace,
        service,
        ports: body.ports,
        healthy_endpoints: body.healthy_endpoints,
        weight: body.weight,
        updated_at: now_ms(),
    };
    export.validate()?;
    let json = serde_json::to_value(&export).ok();
    let result = node.write(Command::ExportService { export }).await?;
    written(result, StatusCode::OK, json)
}

#[utoipa::path(
    delete,
    path = "/api/v1/clusters/{cluster}/services/{namespace}/{service}",
    tag = "services",
    params(("cluster" = String, Path, description = "Exporting cluster"), ("namespace" = String, Path, description = "Namespace"), ("service" = String, Path, description = "Service")),
    responses(
        (status = 204, description = "Withdrawn"),
        BadRequest, Unauthorized, NotFound, Unavailable
    )
)]
pub(super) async fn unexport(
    State(node): State<Node>,
    Path((cluster, namespace, service)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    validate_dns_label("cluster", &cluster)?;
    validate_dns_label("namespace", &namespace)?;
    validate_dns_label("service", &service)?;
    let result = node
        .write(Command::UnexportService {
            cluster,
            namespace,
            service,
            at: now_ms(),
        })
        .await?;
    written(result, StatusCode::NO_CONTENT, None)
}

#[utoipa::path(
    get,
    path = "/api/v1/services",
    tag = "services",
    params(("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "Exported services with the clusters offering each: `{revision, items: [{namespace, service, clusters}]}`", body = serde_json::Value),
        Unauthorized
    )
)]
pub(super) async fn catalog(
    State(node): State<Node>,
    params: Params,
) -> Result<Response, ApiError> {
    read_barrier(&node, &params).await?;
    let state = node.state.read().map_err(|_| internal())?;
    let mut by_service: BTreeMap<(&str, &str), Vec<serde_json::Value>> = BTreeMap::new();
    for e in state.exports.values() {
        by_service
            .entry((e.namespace.as_str(), e.service.as_str()))
            .or_default()
            .push(json!({
                "cluster": e.cluster,
                "ports": e.ports,
                "healthy_endpoints": e.healthy_endpoints,
                "weight": e.weight,
                "updated_at": e.updated_at,
            }));
    }
    let items: Vec<serde_json::Value> = by_service
        .into_iter()
        .map(|((ns, svc), clusters)| json!({ "namespace": ns, "service": svc, "clusters": clusters }))
        .collect();
    Ok(Json(json!({ "revision": state.revision, "items": items })).into_response())
}

/// Everything a gateway routes by, read under one lock so it is one consistent revision:
/// clusters, exports, leases and traffic policies. Gateways list this, then watch from its
/// revision.
#[utoipa::path(
    get,
    path = "/api/v1/catalog",
    tag = "services",
    params(("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "Everything a gateway routes by, at one revision (clusters, exports, leases, policies, bundles)", body = serde_json::Value),
        Unauthorized
    )
)]
pub(super) async fn routing_catalog(
    State(node): State<Node>,
    params: Params,
) -> Result<Response, ApiError> {
    read_barrier(&node, &params).await?;
    let state = node.state.read().map_err(|_| internal())?;
    let clusters: Vec<_> = state.clusters.values().collect();
    let exports: Vec<_> = state.exports.values().collect();
    let leases: Vec<_> = state.leases.values().collect();
    let policies: Vec<_> = state.policies.values().collect();
    let bundles: Vec<_> = state.trust_bundles.values().collect();
    let security: Vec<_> = state.security_policies.values().collect();
    Ok(Json(json!({
        "revision": state.revision,
        "bundles": bundles,
        "security_policies": security,
        "now": now_ms(),
        "clusters": clusters,
        "exports": exports,
        "leases": leases,
        "policies": policies,
    }))
    .into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/trust/bundles",
    tag = "trust",
    params(("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "`{revision, items: [{trust_domain, ca_bundle_pem, version, updated_at}]}`", body = serde_json::Value),
        Unauthorized
    )
)]
pub(super) async fn bundles(
    State(node): State<Node>,
    params: Params,
) -> Result<Response, ApiError> {
    read_barrier(&node, &params).await?;
    let state = node.state.read().map_err(|_| internal())?;
    let items: Vec<_> = state.trust_bundles.values().collect();
    Ok(Json(json!({ "revision": state.revision, "items": items })).into_response())
}

/// The body of `PUT /api/v1/trust/bundles/{trust_domain}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BundleBody {
    pub ca_bundle_pem: String,
}

#[utoipa::path(
    put,
    path = "/api/v1/trust/bundles/{trust_domain}",
    tag = "trust",
    params(("trust_domain" = String, Path, description = "Trust domain")),
    request_body = BundleBody,
    responses(
        (status = 200, description = "`{trust_domain, version}`: publish old + new CA first when rotating", body = serde_json::Value),
        BadRequest, Unauthorized, Unavailable
    )
)]
pub(super) async fn put_bundle(
    State(node): State<Node>,
    Path(trust_domain): Path<String>,
    JsonBody(body): JsonBody<BundleBody>,
) -> Result<Response, ApiError> {
    validate_dns_name("trust_domain", &trust_domain)?;
    validate_ca_bundle("ca_bundle_pem", &body.ca_bundle_pem)?;
    let result = node
        .write(Command::PutTrustBundle {
            trust_domain: trust_domain.clone(),
            ca_bundle_pem: body.ca_bundle_pem,
            at: now_ms(),
        })
        .await?;
    let bundle = node
        .state
        .read()
        .map_err(|_| internal())?
        .trust_bundles
        .get(&trust_domain)
        .and_then(|b| serde_json::to_value(b).ok());
    written(result, StatusCode::OK, bundle)
}
