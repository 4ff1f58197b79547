//! The layer behind `?dry_run=true` on every write endpoint ([`crate::dry_run`]): a non-GET
//! request with `dry_run=true` runs as a dry run and its answer carries
//! `x-warden-dry-run: true`. Handlers with a richer dry run of their own (policies, routes,
//! mesh configuration: a `DryRun` body) answer before they write, under the same header.

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth::Caller;
use super::error::ApiError;

/// The response header that marks an answer nothing was written for.
pub const DRY_RUN_HEADER: &str = "x-warden-dry-run";

/// Documents `dry_run` on every write operation that does not document its own.
pub fn document(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::{ObjectBuilder, RefOr, Required, Type};
    for item in api.paths.paths.values_mut() {
        for op in [&mut item.put, &mut item.post, &mut item.delete]
            .into_iter()
            .flatten()
        {
            let params = op.parameters.get_or_insert_with(Vec::new);
            let named = |p: &RefOr<utoipa::openapi::path::Parameter>| matches!(p, RefOr::T(p) if p.name == "dry_run");
            if params.iter().any(named) {
                continue;
            }
            params.push(
                ParameterBuilder::new()
                    .name("dry_run")
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some(
                        "Check and answer as the write would (marked x-warden-dry-run: true); write nothing",
                    ))
                    .schema(Some(ObjectBuilder::new().schema_type(Type::Boolean)))
                    .build()
                    .into(),
            );
        }
    }
}

pub async fn layer(req: Request, next: Next) -> Response {
    let asked = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "dry_run=true"));
    if !asked || matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    // A dry run copies the whole state: not something a cluster's own credential (which
    // its gateway uses for renewals and exports, and never needs to try out) may make the
    // node do at will.
    if matches!(req.extensions().get::<Caller>(), Some(Caller::Cluster(_))) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "dry runs need the admin credential",
        )
        .into_response();
    }
    let mut resp = crate::dry_run::scope(next.run(req)).await;
    resp.headers_mut()
        .insert(DRY_RUN_HEADER, HeaderValue::from_static("true"));
    resp
}
