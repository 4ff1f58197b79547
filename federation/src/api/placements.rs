//! `GET /api/v1/observability/placements?service=&cluster=`: where each gateway sends each
//! service's traffic now and why ([`crate::placement`]), from this node and every other member
//! (asked at once, 1 s each, like the golden signals; `scope=local` answers this node's only).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::common::{Node, Params, checked_param, state};
use super::error::ApiError;
use super::error::responses::{BadRequest, Unauthorized};
use super::observability::{ask_peers, local_scope};
use crate::clock::now_ms;
use crate::model::{validate_dns_label, validate_service_ref};
use crate::placement::{MeshPlacements, PlacementQuery, cap, newest_per_cluster};
use crate::rpc::{ForwardRequest, ForwardResponse};
use crate::stored::Stored;

#[utoipa::path(
    get,
    operation_id = "observability_placements",
    path = "/api/v1/observability/placements",
    tag = "mesh",
    params(
        ("service" = Option<String>, Query, description = "Only this service (namespace/service)"),
        ("cluster" = Option<String>, Query, description = "Only this cluster's gateway"),
        ("scope" = Option<String>, Query, description = "local: this node's reports only")
    ),
    responses(
        (status = 200, description = "Per gateway, per service: its priority levels with their healthy and traffic shares, the clusters in each, and why (the compact form of each gateway's /explain, reported when it changes and at least every 30 s)", body = MeshPlacements),
        BadRequest, Unauthorized
    )
)]
pub(super) async fn placements(
    State(node): State<Node>,
    params: Params,
) -> Result<Response, ApiError> {
    let service = checked_param(&params, "service", validate_service_ref)?;
    let cluster = checked_param(&params, "cluster", validate_dns_label)?;
    let local = local_scope(&params)?;
    let q = PlacementQuery { service, cluster };
    let mine = node.placements.query(&q, now_ms());
    let (mut gateways, mut truncated) = (mine.gateways, mine.truncated);
    let (mut asked, mut answered) = (1, 1);
    if !local {
        let (peers, answers) = ask_peers(&node, &ForwardRequest::Placements(Stored(q))).await;
        asked += peers;
        for r in answers {
            if let ForwardResponse::Placements(theirs) = r {
                answered += 1;
                truncated |= theirs.0.truncated;
                gateways.extend(theirs.0.gateways);
            }
        }
        gateways = newest_per_cluster(gateways);
    }
    // Only clusters still registered: a removed one's report may linger on peers.
    if let Ok(s) = state(&node) {
        gateways.retain(|g| s.clusters.contains_key(&g.cluster));
    }
    truncated |= cap(&mut gateways);
    Ok(Json(MeshPlacements {
        gateways,
        nodes_asked: asked,
        nodes_answered: answered,
        truncated,
    })
    .into_response())
}
