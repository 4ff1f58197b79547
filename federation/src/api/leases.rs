//! Cluster leases: `PUT /api/v1/clusters/{name}/lease` (a gateway renews its cluster's),
//! `DELETE` the same (a draining gateway withdraws it, so peers stop sending at once), and
//! `GET /api/v1/leases`.

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::auth::Caller;
use super::body::JsonBody;
use super::common::{Node, Params, read_barrier, state, written};
use super::error::ApiError;
use super::error::responses::{BadRequest, NotFound, Unauthorized, Unavailable};
use crate::advertised::CredentialKind;
use crate::clock::now_ms;
use crate::command::{Command, CommandResult};
use crate::model::{Lease, validate_dns_label, validate_host_port};
use crate::stored::Stored;
use crate::wire::{LeaseBody, LeaseList, LeaseView};

#[utoipa::path(
    put,
    path = "/api/v1/clusters/{name}/lease",
    tag = "clusters",
    params(("name" = String, Path, description = "Cluster name")),
    request_body = LeaseBody,
    responses(
        (status = 200, description = "Lease renewed", body = Lease),
        BadRequest, Unauthorized, NotFound, Unavailable
    )
)]
pub(super) async fn renew(
    State(node): State<Node>,
    Path(name): Path<String>,
    caller: Option<Extension<Caller>>,
    JsonBody(body): JsonBody<LeaseBody>,
) -> Result<Response, ApiError> {
    validate_dns_label("name", &name)?;
    if !(300..=600_000).contains(&body.ttl_ms) {
        return Err(ApiError::bad_field("ttl_ms", "ttl_ms must be 300-600000"));
    }
    if let Some(gw) = &body.gateway {
        validate_host_port("gateway", gw)?;
    }
    if let Some(load) = &body.load {
        load.validate()?;
    }
    if let Some(s) = &body.signals {
        s.validate()?;
    }
    if let Some(r) = &body.recent {
        r.validate()?;
    }
    if let Some(p) = &body.placements {
        p.validate()?;
    }
    let lease = Lease {
        cluster: name,
        renewed_at: now_ms(),
        ttl_ms: body.ttl_ms,
        trust_versions: body.trust_versions,
    };
    let command = match body.load {
        None => Command::RenewLease {
            lease: lease.clone(),
        },
        Some(load) => Command::RenewLeaseWithLoad {
            lease: lease.clone(),
            load: Stored(load),
        },
    };
    match node.write(command).await? {
        // A dry run leaves the in-memory record of renewals alone too.
        CommandResult::Applied { .. } if crate::dry_run::active() => {
            Ok(Json(lease).into_response())
        }
        CommandResult::Applied { .. } => {
            if let Some(s) = body.signals {
                node.signals.record(&lease.cluster, lease.renewed_at, s);
            }
            if let Some(r) = body.recent {
                node.recent.record(&lease.cluster, r);
            }
            if let Some(p) = body.placements {
                node.placements.record(&lease.cluster, lease.renewed_at, p);
            }
            if let Some(gw) = &body.gateway {
                node.advertised.record(&lease.cluster, gw, lease.renewed_at);
            }
            let kind = match caller.map(|Extension(c)| c) {
                Some(Caller::Cluster(_)) => Some(CredentialKind::Cluster),
                Some(Caller::Admin) => Some(CredentialKind::Admin),
                _ => None,
            };
            if let Some(kind) = kind {
                node.advertised
                    .renewed_with(&lease.cluster, kind, lease.renewed_at);
            }
            Ok(Json(lease).into_response())
        }
        other => written::<()>(other, StatusCode::OK, None),
    }
}

#[utoipa::path(
    delete,
    path = "/api/v1/clusters/{name}/lease",
    tag = "clusters",
    params(("name" = String, Path, description = "Cluster name")),
    responses(
        (status = 204, description = "Withdrawn: other clusters stop sending to it now"),
        BadRequest, Unauthorized, NotFound, Unavailable
    )
)]
pub(super) async fn withdraw(
    State(node): State<Node>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    validate_dns_label("name", &name)?;
    node.advertised.forget(&name);
    let cmd = Command::WithdrawLease {
        cluster: name,
        at: now_ms(),
    };
    written::<()>(node.write(cmd).await?, StatusCode::NO_CONTENT, None)
}

#[utoipa::path(
    get,
    operation_id = "leases_list",
    path = "/api/v1/leases",
    tag = "clusters",
    params(("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "Every cluster's lease, judged by this node's clock, with the address its gateway advertised when renewing through this node", body = LeaseList),
        Unauthorized
    )
)]
pub(super) async fn list(State(node): State<Node>, params: Params) -> Result<Response, ApiError> {
    read_barrier(&node, &params).await?;
    let state = state(&node)?;
    let now = now_ms();
    let items = state
        .leases
        .values()
        .map(|l| {
            let advert = node.advertised.get(&l.cluster);
            let renewal = node.advertised.renewal(&l.cluster);
            LeaseView {
                has_credential: state.credentials.contains_key(&l.cluster),
                renewed_with: renewal.map(|r| r.credential.as_str().to_string()),
                renewed_with_at: renewal.map(|r| r.seen_at),
                cluster: l.cluster.clone(),
                renewed_at: l.renewed_at,
                ttl_ms: l.ttl_ms,
                expired_by_this_node_clock: now > l.renewed_at + l.ttl_ms,
                gateway: advert.as_ref().map(|a| a.gateway.clone()),
                gateway_seen_at: advert.map(|a| a.seen_at),
            }
        })
        .collect();
    Ok(Json(LeaseList {
        revision: state.revision,
        now,
        items,
    })
    .into_response())
}
