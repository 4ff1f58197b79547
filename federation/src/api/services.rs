//! `/api/v1/clusters/{c}/services/{ns}/{svc}` (export, unexport), `/api/v1/services` (the
//! global catalog) and `/api/v1/catalog` (everything a gateway routes by).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::body::JsonBody;
use super::common::{Node, Params, read_barrier, state, written};
use super::error::ApiError;
use super::error::responses::{BadRequest, NotFound, Unauthorized, Unavailable};
use crate::audience::ExportAudience;
use crate::clock::now_ms;
use crate::command::Command;
use crate::model::{FieldError, ServiceExport, validate_dns_label, validate_subsets};
use crate::stored::Stored;
use crate::wire::{
    CatalogEntry, CatalogService, ExportBody, ExportSubsets, ExportTo, Listing, RoutingCatalog,
};

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
    validate_subsets("subsets", &body.subsets)?;
    let in_subsets = body
        .subsets
        .iter()
        .map(|s| u64::from(s.healthy_endpoints))
        .sum::<u64>();
    if in_subsets > u64::from(export.healthy_endpoints) {
        return Err(FieldError::new(
            "subsets",
            "the label sets count more healthy endpoints than healthy_endpoints",
        )
        .into());
    }
    let audience = ExportAudience {
        export_to: body.export_to,
    };
    audience.validate("export_to")?;
    let answer = export.clone();
    let command = match audience.export_to.is_empty() {
        true => Command::ExportServiceWithSubsets {
            export,
            subsets: body.subsets,
        },
        false => Command::ExportServiceTo {
            export,
            subsets: body.subsets,
            audience: Stored(audience),
        },
    };
    let result = node.write(command).await?;
    written(result, StatusCode::OK, Some(answer))
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
    written::<()>(result, StatusCode::NO_CONTENT, None)
}

#[utoipa::path(
    get,
    path = "/api/v1/services",
    tag = "services",
    params(("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "Exported services with the clusters offering each", body = Listing<CatalogService>),
        Unauthorized
    )
)]
pub(super) async fn catalog(
    State(node): State<Node>,
    params: Params,
) -> Result<Response, ApiError> {
    read_barrier(&node, &params).await?;
    let state = state(&node)?;
    let mut by_service: BTreeMap<(&str, &str), Vec<CatalogEntry>> = BTreeMap::new();
    for e in state.exports.values() {
        by_service
            .entry((e.namespace.as_str(), e.service.as_str()))
            .or_default()
            .push(CatalogEntry {
                cluster: e.cluster.clone(),
                ports: e.ports.clone(),
                healthy_endpoints: e.healthy_endpoints,
                weight: e.weight,
                updated_at: e.updated_at,
                subsets: state
                    .export_subsets
                    .get(&(e.cluster.clone(), e.namespace.clone(), e.service.clone()))
                    .cloned()
                    .unwrap_or_default(),
                export_to: state
                    .export_audience
                    .get(&(e.cluster.clone(), e.namespace.clone(), e.service.clone()))
                    .map(|a| a.0.export_to.clone())
                    .unwrap_or_default(),
            });
    }
    let items = by_service
        .into_iter()
        .map(|((ns, svc), clusters)| CatalogService {
            namespace: ns.to_string(),
            service: svc.to_string(),
            clusters,
        })
        .collect();
    Ok(Json(Listing {
        revision: state.revision,
        items,
    })
    .into_response())
}

/// Everything a gateway routes by, read under one lock so it is one consistent revision.
/// Gateways list this, then watch from its revision.
#[utoipa::path(
    get,
    path = "/api/v1/catalog",
    tag = "services",
    params(("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "Everything a gateway routes by, at one revision (clusters, exports, leases, policies, bundles)", body = RoutingCatalog),
        Unauthorized
    )
)]
pub(super) async fn routing_catalog(
    State(node): State<Node>,
    params: Params,
) -> Result<Response, ApiError> {
    read_barrier(&node, &params).await?;
    let state = state(&node)?;
    Ok(Json(RoutingCatalog {
        revision: state.revision,
        now: now_ms(),
        clusters: state.clusters.values().cloned().collect(),
        exports: state.exports.values().cloned().collect(),
        leases: state.leases.values().cloned().collect(),
        policies: state.policies.values().cloned().collect(),
        bundles: state.trust_bundles.values().cloned().collect(),
        security_policies: state.security_policies.values().cloned().collect(),
        routes: state.routes.values().cloned().collect(),
        resilience: state.resilience.values().map(|p| p.0.clone()).collect(),
        jwt: state.jwt.values().map(|p| p.0.clone()).collect(),
        authorization: state.authorization.values().map(|p| p.0.clone()).collect(),
        export_subsets: state
            .export_subsets
            .iter()
            .map(|((cluster, namespace, service), subsets)| ExportSubsets {
                cluster: cluster.clone(),
                namespace: namespace.clone(),
                service: service.clone(),
                subsets: subsets.clone(),
            })
            .collect(),
        export_audience: state
            .export_audience
            .iter()
            .map(|((cluster, namespace, service), a)| ExportTo {
                cluster: cluster.clone(),
                namespace: namespace.clone(),
                service: service.clone(),
                export_to: a.0.export_to.clone(),
            })
            .collect(),
        mesh_config: state.extra.config.mesh.clone(),
        cluster_configs: state.extra.config.clusters.clone(),
    })
    .into_response())
}
