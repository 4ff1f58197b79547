//! `POST /api/v1/mesh/validate`: checks a bundle of objects (mesh and cluster configuration,
//! traffic and security policies, routes, resilience, JWT and authorization policies) as
//! their writes would — every error, by field path into the bundle — and warns about what is
//! valid but probably not meant, given the mesh as the store holds it ([`crate::lint`]).
//! Nothing is written.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::body::JsonBody;
use super::common::{Node, state};
use super::error::ApiError;
use super::error::responses::{BadRequest, Unauthorized, Unavailable};
use super::policy_crud::PolicyKind;
use super::policy_kinds::{Authorization, Jwt, Resilience, Routes, Security, Traffic};
use crate::lint::{Finding, Mesh};
use crate::model::{FieldError, validate_dns_label};
use crate::state::FederationState;
use crate::wire::{ValidateBundle, ValidationReport};

#[utoipa::path(
    post,
    operation_id = "mesh_validate",
    path = "/api/v1/mesh/validate",
    tag = "mesh",
    request_body = ValidateBundle,
    responses(
        (status = 200, description = "Every error and warning, by field path into the bundle; nothing is written", body = ValidationReport),
        BadRequest, Unauthorized, Unavailable
    )
)]
pub(super) async fn validate(
    State(node): State<Node>,
    JsonBody(bundle): JsonBody<ValidateBundle>,
) -> Result<Response, ApiError> {
    let state = state(&node)?;
    Ok(Json(report(&state, bundle)).into_response())
}

struct Findings {
    errors: Vec<Finding>,
    warnings: Vec<Finding>,
}

impl Findings {
    fn invalid(&mut self, prefix: &str, e: FieldError) {
        self.errors.push(Finding::new(
            format!("{prefix}.{}", e.field),
            "invalid_field",
            e.message,
        ));
    }
}

/// The report for `bundle` against `state`.
pub fn report(state: &FederationState, bundle: ValidateBundle) -> ValidationReport {
    let mesh = Mesh { state };
    let mut out = Findings {
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    if let Some(c) = &bundle.mesh_config
        && let Err(e) = c.validate()
    {
        out.invalid("mesh_config", e);
    }
    for (name, c) in &bundle.cluster_configs {
        let f = format!("cluster_configs.{name}");
        if let Err(e) = validate_dns_label(&f, name) {
            out.errors
                .push(Finding::new(e.field, "invalid_field", e.message));
        } else if !state.clusters.contains_key(name) {
            out.errors.push(Finding::new(
                &f,
                "not_found",
                format!("no cluster {name:?} is registered"),
            ));
        }
        if let Err(e) = c.validate() {
            out.invalid(&f, e);
        }
    }
    check::<Traffic>(
        state,
        "traffic_policies",
        bundle.traffic_policies,
        &mut out,
        |f, p, w| mesh.traffic(f, p, w),
    );
    check::<Security>(
        state,
        "security_policies",
        bundle.security_policies,
        &mut out,
        |f, p, w| mesh.security(f, p, w),
    );
    check::<Routes>(state, "routes", bundle.routes, &mut out, |f, p, w| {
        mesh.route(f, p, w)
    });
    check::<Resilience>(
        state,
        "resilience_policies",
        bundle.resilience_policies,
        &mut out,
        |f, p, w| mesh.service(&format!("{f}.service"), &p.service, w),
    );
    check::<Jwt>(
        state,
        "jwt_policies",
        bundle.jwt_policies,
        &mut out,
        |f, p, w| mesh.service(&format!("{f}.service"), &p.service, w),
    );
    check::<Authorization>(
        state,
        "authorization_policies",
        bundle.authorization_policies,
        &mut out,
        |f, p, w| mesh.authorization(f, p, w),
    );
    ValidationReport {
        valid: out.errors.is_empty(),
        errors: out.errors,
        warnings: out.warnings,
    }
}

/// Builds and validates each body of one kind as its write would (an id is required; one
/// per service where the kind allows one, counting the store and the bundle), then lints the
/// valid ones.
fn check<K: PolicyKind>(
    state: &FederationState,
    kind: &str,
    bodies: Vec<K::Body>,
    out: &mut Findings,
    lint: impl Fn(&str, &K::Policy, &mut Vec<Finding>),
) {
    let ids: BTreeSet<String> = bodies
        .iter()
        .filter_map(|b| K::body_id(b).cloned())
        .collect();
    let mut seen_ids = BTreeSet::new();
    let mut slots: Vec<(String, String)> = Vec::new();
    for (i, body) in bodies.into_iter().enumerate() {
        let f = format!("{kind}[{i}]");
        let Some(id) = K::body_id(&body).cloned() else {
            out.errors.push(Finding::new(
                format!("{f}.id"),
                "invalid_field",
                format!("a {} in a bundle needs its id", K::WHAT),
            ));
            continue;
        };
        if !seen_ids.insert(id.clone()) {
            out.errors.push(Finding::new(
                format!("{f}.id"),
                "duplicate",
                format!("{id:?} appears twice in the bundle"),
            ));
            continue;
        }
        let p = K::build(id, body);
        if let Err(e) = K::validate(&p) {
            out.invalid(&f, e);
            continue;
        }
        if let Some((id, slot)) = K::one_per_service(&p) {
            // Held in the store by an object the bundle does not replace, or earlier in it.
            let stored = K::all(state)
                .values()
                .filter_map(K::one_per_service)
                .find(|(other, s)| *s == slot && *other != id && !ids.contains(*other))
                .map(|(other, _)| other.clone());
            let bundled = slots
                .iter()
                .find(|(other, s)| *s == slot && other != id)
                .map(|(other, _)| other.clone());
            if let Some(other) = stored.or(bundled) {
                out.errors.push(Finding::new(
                    format!("{f}.service"),
                    "already_exists",
                    format!("a {} for {slot} ({other:?}) exists", K::WHAT),
                ));
                continue;
            }
            slots.push((id.clone(), slot));
        }
        lint(&f, &p, &mut out.warnings);
    }
}
