//! `/api/v1/trust/bundles` (the federated CA bundles) and `/api/v1/trust/status` (which
//! clusters loaded each bundle's current version: when a staged rotation may proceed).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::body::JsonBody;
use super::common::{Node, Params, read_barrier, state, written};
use super::error::ApiError;
use super::error::responses::{BadRequest, Unauthorized, Unavailable};
use crate::clock::now_ms;
use crate::command::Command;
use crate::model::{TrustBundle, validate_ca_bundle, validate_dns_name};
use crate::wire::{BundleBody, BundleLoad, BundleStatus, Listing};

#[utoipa::path(
    get,
    path = "/api/v1/trust/bundles",
    tag = "trust",
    params(("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "Every trust domain's CA bundle", body = Listing<TrustBundle>),
        Unauthorized
    )
)]
pub(super) async fn bundles(
    State(node): State<Node>,
    params: Params,
) -> Result<Response, ApiError> {
    read_barrier(&node, &params).await?;
    let state = state(&node)?;
    Ok(Json(Listing {
        revision: state.revision,
        items: state.trust_bundles.values().cloned().collect::<Vec<_>>(),
    })
    .into_response())
}

#[utoipa::path(
    put,
    path = "/api/v1/trust/bundles/{trust_domain}",
    tag = "trust",
    params(("trust_domain" = String, Path, description = "Trust domain")),
    request_body = BundleBody,
    responses(
        (status = 200, description = "The bundle with its new version: publish old + new CA first when rotating", body = TrustBundle),
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
    let bundle = state(&node)?.trust_bundles.get(&trust_domain).cloned();
    written(result, StatusCode::OK, bundle)
}

/// For each trust bundle, which clusters' gateways have loaded its current version (from their
/// lease renewals). A rotation step may proceed when `complete`.
#[utoipa::path(
    get,
    operation_id = "trust_status",
    path = "/api/v1/trust/status",
    tag = "trust",
    params(("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
    responses(
        (status = 200, description = "Per trust bundle: version, and which clusters loaded it (`complete`)", body = Listing<BundleStatus>),
        Unauthorized
    )
)]
pub(super) async fn status(State(node): State<Node>, params: Params) -> Result<Response, ApiError> {
    read_barrier(&node, &params).await?;
    let state = state(&node)?;
    let now = now_ms();
    let items = state
        .trust_bundles
        .values()
        .map(|b| {
            let clusters: Vec<BundleLoad> = state
                .clusters
                .keys()
                .map(|c| {
                    let lease = state.leases.get(c);
                    let loaded = lease.and_then(|l| l.trust_versions.get(&b.trust_domain).copied());
                    BundleLoad {
                        cluster: c.clone(),
                        loaded_version: loaded,
                        current: loaded == Some(b.version),
                        lease_live: lease.is_some_and(|l| now < l.renewed_at + l.ttl_ms),
                        // A gateway reporting no bundles at all runs without mTLS: it cannot
                        // block a rotation.
                        mtls: lease.is_some_and(|l| !l.trust_versions.is_empty()),
                        owner: state.domain_owner(&b.trust_domain) == Some(c.as_str()),
                    }
                })
                .collect();
            BundleStatus {
                trust_domain: b.trust_domain.clone(),
                version: b.version,
                // The owner never loads its own domain from the store (its files are the
                // source): only the other clusters' gateways count.
                complete: clusters
                    .iter()
                    .all(|c| c.current || c.owner || !c.lease_live || !c.mtls),
                clusters,
            }
        })
        .collect();
    Ok(Json(Listing {
        revision: state.revision,
        items,
    })
    .into_response())
}
