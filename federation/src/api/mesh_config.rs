//! `/api/v1/mesh/config` and `/api/v1/clusters/{name}/config`: the gateway settings kept in
//! the store ([`crate::mesh_config`]). Each document is replaced whole by PUT (`{}` clears
//! it); `?dry_run=true` answers what the write would change and writes nothing. Writes need
//! the admin credential: a cluster's own credential cannot change its gateway's settings.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::body::JsonBody;
use super::common::{Node, Params, dry_run, read_barrier, state, written};
use super::error::ApiError;
use super::error::responses::{BadRequest, NotFound, Unauthorized, Unavailable};
use crate::clock::now_ms;
use crate::command::Command;
use crate::mesh_config::{ConfigScope, MeshConfig};
use crate::model::validate_dns_label;
use crate::stored::Stored;
use crate::wire::{ConfigDocument, DryRun, DryRunChange};

#[utoipa::path(
    get,
    operation_id = "mesh_config_get",
    path = "/api/v1/mesh/config",
    tag = "mesh",
    params(("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "The mesh-wide gateway settings (`{}`: none set) and the store revision", body = ConfigDocument),
        BadRequest, Unauthorized, Unavailable
    )
)]
pub(super) async fn get_mesh(
    State(node): State<Node>,
    params: Params,
) -> Result<Response, ApiError> {
    read_barrier(&node, &params).await?;
    let s = state(&node)?;
    Ok(Json(ConfigDocument {
        revision: s.revision,
        config: s.extra.config.mesh.clone(),
    })
    .into_response())
}

#[utoipa::path(
    put,
    operation_id = "mesh_config_put",
    path = "/api/v1/mesh/config",
    tag = "mesh",
    params(("dry_run" = Option<bool>, Query, description = "Answer what would change (a DryRun) and write nothing")),
    request_body = MeshConfig,
    responses(
        (status = 200, description = "Stored (with dry_run: a DryRun of MeshConfig)", body = ConfigDocument),
        BadRequest, Unauthorized, Unavailable
    )
)]
pub(super) async fn put_mesh(
    State(node): State<Node>,
    params: Params,
    JsonBody(config): JsonBody<MeshConfig>,
) -> Result<Response, ApiError> {
    put(&node, ConfigScope::Mesh, &params, config).await
}

#[utoipa::path(
    get,
    operation_id = "cluster_config_get",
    path = "/api/v1/clusters/{name}/config",
    tag = "mesh",
    params(
        ("name" = String, Path, description = "Cluster name"),
        ("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")
    ),
    responses(
        (status = 200, description = "The cluster's overrides of the mesh-wide settings (`{}`: none)", body = ConfigDocument),
        BadRequest, Unauthorized, NotFound, Unavailable
    )
)]
pub(super) async fn get_cluster(
    State(node): State<Node>,
    Path(name): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    validate_dns_label("name", &name)?;
    read_barrier(&node, &params).await?;
    let s = state(&node)?;
    if !s.clusters.contains_key(&name) {
        return Err(ApiError::not_found(format!("cluster {name:?}")));
    }
    Ok(Json(ConfigDocument {
        revision: s.revision,
        config: s
            .extra
            .config
            .clusters
            .get(&name)
            .cloned()
            .unwrap_or_default(),
    })
    .into_response())
}

#[utoipa::path(
    put,
    operation_id = "cluster_config_put",
    path = "/api/v1/clusters/{name}/config",
    tag = "mesh",
    params(
        ("name" = String, Path, description = "Cluster name"),
        ("dry_run" = Option<bool>, Query, description = "Answer what would change (a DryRun) and write nothing")
    ),
    request_body = MeshConfig,
    responses(
        (status = 200, description = "Stored (with dry_run: a DryRun of MeshConfig); `{}` removes the overrides", body = ConfigDocument),
        BadRequest, Unauthorized, NotFound, Unavailable
    )
)]
pub(super) async fn put_cluster(
    State(node): State<Node>,
    Path(name): Path<String>,
    params: Params,
    JsonBody(config): JsonBody<MeshConfig>,
) -> Result<Response, ApiError> {
    validate_dns_label("name", &name)?;
    put(&node, ConfigScope::Cluster(name), &params, config).await
}

/// Validates, then answers a dry run or writes the document of `scope`.
async fn put(
    node: &Node,
    scope: ConfigScope,
    params: &Params,
    config: MeshConfig,
) -> Result<Response, ApiError> {
    let dry = dry_run(params)?;
    config.validate()?;
    if dry {
        let s = state(node)?;
        let current = match &scope {
            ConfigScope::Mesh => Some(s.extra.config.mesh.clone()),
            ConfigScope::Cluster(name) if s.clusters.contains_key(name) => {
                s.extra.config.clusters.get(name).cloned()
            }
            ConfigScope::Cluster(name) => {
                return Err(ApiError::not_found(format!("cluster {name:?}")));
            }
        };
        return Ok(dry_answer(current, config));
    }
    let (stored, at) = (Stored(config.clone()), now_ms());
    let cmd = match scope {
        ConfigScope::Mesh => Command::PutMeshConfig { config: stored, at },
        ConfigScope::Cluster(cluster) => Command::PutClusterConfig {
            cluster,
            config: stored,
            at,
        },
    };
    let result = node.write(cmd).await?;
    let revision = applied_revision(&result);
    written(
        result,
        StatusCode::OK,
        Some(ConfigDocument { revision, config }),
    )
}

/// The revision a write was applied at (0 for a refusal, which `written` answers instead).
fn applied_revision(result: &crate::command::CommandResult) -> u64 {
    match result {
        crate::command::CommandResult::Applied { revision } => *revision,
        _ => 0,
    }
}

fn dry_answer(current: Option<MeshConfig>, proposed: MeshConfig) -> Response {
    let change = match &current {
        Some(c) if *c == proposed => DryRunChange::Unchanged,
        None if proposed == MeshConfig::default() => DryRunChange::Unchanged,
        Some(_) => DryRunChange::Replace,
        None => DryRunChange::Create,
    };
    Json(DryRun {
        change,
        current,
        proposed,
    })
    .into_response()
}
