//! The HTTP handlers of the policy-like kinds (traffic, security and resilience policies,
//! routes), written once: [`crud_handlers`] makes, in a module per kind, `create`, `put`,
//! `list`, `get_one` and `delete` with their OpenAPI documentation, each calling the shared
//! CRUD in [`super::policy_crud`] with the kind's [`super::policy_crud::PolicyKind`].

/// The five handlers of one kind, documented for OpenAPI under `$path` and `$tag`.
macro_rules! crud_handlers {
    (
        kind = $kind:ident, body = $body:ident, object = $obj:ident,
        path = $path:literal, item = $item:literal, tag = $tag:literal,
        every = $every:literal, one = $one:literal, id = $id:literal $(,)?
    ) => {
        use axum::extract::{Path, State};
        use axum::response::Response;

        use super::super::body::JsonBody;
        use super::super::common::{Node, Params, dry_run};
        use super::super::error::ApiError;
        use super::super::error::responses::{
            BadRequest, Conflict, NotFound, Unauthorized, Unavailable,
        };
        use super::super::policy_crud as crud;
        use super::super::policy_kinds::$kind;
        #[allow(unused_imports)]
        use crate::wire::{DryRun, Listing};

        #[utoipa::path(
            post,
            operation_id = concat!($tag, "_create"),
            path = $path,
            tag = $tag,
            params(("dry_run" = Option<bool>, Query, description = "Answer what the write would change; write nothing")),
            request_body = $body,
            responses(
                (status = 201, description = "Created", body = $obj),
                (status = 200, description = "With dry_run: what would change", body = DryRun<$obj>),
                BadRequest, Unauthorized, Conflict, Unavailable
            )
        )]
        pub(in super::super) async fn create(
            State(node): State<Node>,
            params: Params,
            JsonBody(body): JsonBody<$body>,
        ) -> Result<Response, ApiError> {
            crud::create::<$kind>(&node, body, dry_run(&params)?).await
        }

        #[utoipa::path(
            put,
            operation_id = concat!($tag, "_put"),
            path = $item,
            tag = $tag,
            params(("id" = String, Path, description = $id), ("dry_run" = Option<bool>, Query, description = "Answer what the write would change; write nothing")),
            request_body = $body,
            responses(
                (status = 200, description = "Created or replaced (with dry_run: what would change, a DryRun)", body = $obj),
                BadRequest, Unauthorized, Conflict, Unavailable
            )
        )]
        pub(in super::super) async fn put(
            State(node): State<Node>,
            Path(id): Path<String>,
            params: Params,
            JsonBody(body): JsonBody<$body>,
        ) -> Result<Response, ApiError> {
            crud::put::<$kind>(&node, id, body, dry_run(&params)?).await
        }

        #[utoipa::path(
            get,
            operation_id = concat!($tag, "_list"),
            path = $path,
            tag = $tag,
            params(("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
            responses(
                (status = 200, description = $every, body = Listing<$obj>),
                Unauthorized
            )
        )]
        pub(in super::super) async fn list(
            State(node): State<Node>,
            params: Params,
        ) -> Result<Response, ApiError> {
            crud::list::<$kind>(&node, &params).await
        }

        #[utoipa::path(
            get,
            operation_id = concat!($tag, "_get"),
            path = $item,
            tag = $tag,
            params(("id" = String, Path, description = $id), ("consistent" = Option<bool>, Query, description = "Linearizable read through the leader (default: this node's applied state)")),
            responses(
                (status = 200, description = $one, body = $obj),
                Unauthorized, NotFound
            )
        )]
        pub(in super::super) async fn get_one(
            State(node): State<Node>,
            Path(id): Path<String>,
            params: Params,
        ) -> Result<Response, ApiError> {
            crud::get::<$kind>(&node, &id, &params).await
        }

        #[utoipa::path(
            delete,
            operation_id = concat!($tag, "_delete"),
            path = $item,
            tag = $tag,
            params(("id" = String, Path, description = $id)),
            responses(
                (status = 204, description = "Deleted"),
                Unauthorized, NotFound, Unavailable
            )
        )]
        pub(in super::super) async fn delete(
            State(node): State<Node>,
            Path(id): Path<String>,
        ) -> Result<Response, ApiError> {
            crud::delete::<$kind>(&node, id).await
        }
    };
}

/// `/api/v1/traffic/policies`: failover order, weights, egress caps (one per service).
pub(super) mod traffic {
    use crate::model::TrafficPolicy;
    use crate::wire::PolicyBody;
    crud_handlers!(
        kind = Traffic,
        body = PolicyBody,
        object = TrafficPolicy,
        path = "/api/v1/traffic/policies",
        item = "/api/v1/traffic/policies/{id}",
        tag = "traffic",
        every = "Every traffic policy",
        one = "The policy",
        id = "Policy id",
    );
}

/// `/api/v1/security/policies`: authorization (allow/deny by source).
pub(super) mod security {
    use crate::model::SecurityPolicy;
    use crate::wire::SecurityBody;
    crud_handlers!(
        kind = Security,
        body = SecurityBody,
        object = SecurityPolicy,
        path = "/api/v1/security/policies",
        item = "/api/v1/security/policies/{id}",
        tag = "security",
        every = "Every authorization policy",
        one = "The policy",
        id = "Policy id",
    );
}

/// `/api/v1/routes`: L7 routes (one per service).
pub(super) mod routes {
    use crate::route::Route;
    use crate::wire::RouteBody;
    crud_handlers!(
        kind = Routes,
        body = RouteBody,
        object = Route,
        path = "/api/v1/routes",
        item = "/api/v1/routes/{id}",
        tag = "routes",
        every = "Every route",
        one = "The route",
        id = "Route id",
    );
}

/// `/api/v1/security/authorization`: L7 authorization policies.
pub(super) mod authorization {
    use crate::authz::AuthorizationPolicy;
    use crate::wire::AuthorizationBody;
    crud_handlers!(
        kind = Authorization,
        body = AuthorizationBody,
        object = AuthorizationPolicy,
        path = "/api/v1/security/authorization",
        item = "/api/v1/security/authorization/{id}",
        tag = "authorization",
        every = "Every L7 authorization policy",
        one = "The policy",
        id = "Policy id",
    );
}

/// `/api/v1/security/jwt`: JWT policies (one per service and rule).
pub(super) mod jwt {
    use crate::authn::JwtPolicy;
    use crate::wire::JwtBody;
    crud_handlers!(
        kind = Jwt,
        body = JwtBody,
        object = JwtPolicy,
        path = "/api/v1/security/jwt",
        item = "/api/v1/security/jwt/{id}",
        tag = "jwt",
        every = "Every JWT policy",
        one = "The policy",
        id = "Policy id",
    );
}

/// `/api/v1/resilience/policies`: circuit breakers, rate limits, faults (one per service and
/// rule).
pub(super) mod resilience {
    use crate::resilience::ResiliencePolicy;
    use crate::wire::ResilienceBody;
    crud_handlers!(
        kind = Resilience,
        body = ResilienceBody,
        object = ResiliencePolicy,
        path = "/api/v1/resilience/policies",
        item = "/api/v1/resilience/policies/{id}",
        tag = "resilience",
        every = "Every resilience policy",
        one = "The policy",
        id = "Policy id",
    );
}
