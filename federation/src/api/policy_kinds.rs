//! The kinds the shared CRUD serves ([`super::policy_crud`], its handlers in [`super::crud_api`]): how each is built from its body,
//! validated, found in the state and written.

use std::collections::BTreeMap;

use super::policy_crud::PolicyKind;
use crate::authn::JwtPolicy;
use crate::authz::AuthorizationPolicy;
use crate::clock::now_ms;
use crate::command::Command;
use crate::model::{FieldError, SecurityPolicy, TrafficPolicy};
use crate::resilience::ResiliencePolicy;
use crate::route::Route;
use crate::state::FederationState;
use crate::stored::Stored;
use crate::wire::{
    AuthorizationBody, JwtBody, PolicyBody, ResilienceBody, RouteBody, SecurityBody,
};

pub(super) struct Traffic;
pub(super) struct Security;

impl PolicyKind for Traffic {
    const WHAT: &'static str = "traffic policy";
    type Body = PolicyBody;
    type Policy = TrafficPolicy;
    fn body_id(b: &Self::Body) -> Option<&String> {
        b.id.as_ref()
    }
    fn id(p: &TrafficPolicy) -> &String {
        &p.id
    }
    fn build(id: String, b: Self::Body) -> TrafficPolicy {
        TrafficPolicy {
            id,
            service: b.service,
            failover_order: b.failover_order,
            weights: b.weights,
            overprovisioning_percent: b.overprovisioning_percent,
            max_egress_percent: b.max_egress_percent,
            updated_at: now_ms(),
        }
    }
    fn validate(p: &TrafficPolicy) -> Result<(), FieldError> {
        p.validate()
    }
    fn all(state: &FederationState) -> &BTreeMap<String, TrafficPolicy> {
        &state.policies
    }
    fn put_command(policy: TrafficPolicy) -> Command {
        Command::PutTrafficPolicy { policy }
    }
    fn delete_command(id: String) -> Command {
        Command::DeleteTrafficPolicy { id, at: now_ms() }
    }
    fn one_per_service(p: &TrafficPolicy) -> Option<(&String, String)> {
        Some((&p.id, p.service.clone()))
    }
    fn updated_at(p: &mut TrafficPolicy) -> &mut u64 {
        &mut p.updated_at
    }
}

impl PolicyKind for Security {
    const WHAT: &'static str = "security policy";
    type Body = SecurityBody;
    type Policy = SecurityPolicy;
    fn body_id(b: &Self::Body) -> Option<&String> {
        b.id.as_ref()
    }
    fn id(p: &SecurityPolicy) -> &String {
        &p.id
    }
    fn build(id: String, b: Self::Body) -> SecurityPolicy {
        SecurityPolicy {
            id,
            service: b.service,
            action: b.action,
            sources: b.sources,
            updated_at: now_ms(),
        }
    }
    fn validate(p: &SecurityPolicy) -> Result<(), FieldError> {
        p.validate()
    }
    fn all(state: &FederationState) -> &BTreeMap<String, SecurityPolicy> {
        &state.security_policies
    }
    fn put_command(policy: SecurityPolicy) -> Command {
        Command::PutSecurityPolicy { policy }
    }
    fn delete_command(id: String) -> Command {
        Command::DeleteSecurityPolicy { id, at: now_ms() }
    }
    fn one_per_service(_: &SecurityPolicy) -> Option<(&String, String)> {
        None
    }
    fn updated_at(p: &mut SecurityPolicy) -> &mut u64 {
        &mut p.updated_at
    }
}

pub(super) struct Routes;

impl PolicyKind for Routes {
    const WHAT: &'static str = "route";
    type Body = RouteBody;
    type Policy = Route;
    fn body_id(b: &Self::Body) -> Option<&String> {
        b.id.as_ref()
    }
    fn id(p: &Route) -> &String {
        &p.id
    }
    fn build(id: String, b: Self::Body) -> Route {
        Route {
            id,
            service: b.service,
            rules: b.rules,
            updated_at: now_ms(),
        }
    }
    fn validate(p: &Route) -> Result<(), FieldError> {
        crate::route::validate(p)
    }
    fn all(state: &FederationState) -> &BTreeMap<String, Route> {
        &state.routes
    }
    fn put_command(route: Route) -> Command {
        Command::PutRoute { route }
    }
    fn delete_command(id: String) -> Command {
        Command::DeleteRoute { id, at: now_ms() }
    }
    fn one_per_service(p: &Route) -> Option<(&String, String)> {
        Some((&p.id, p.service.clone()))
    }
    fn updated_at(p: &mut Route) -> &mut u64 {
        &mut p.updated_at
    }
}

pub(super) struct Resilience;

impl PolicyKind for Resilience {
    const WHAT: &'static str = "resilience policy";
    type Body = ResilienceBody;
    type Policy = Stored<ResiliencePolicy>;
    fn body_id(b: &Self::Body) -> Option<&String> {
        b.id.as_ref()
    }
    fn id(p: &Self::Policy) -> &String {
        &p.id
    }
    fn build(id: String, b: Self::Body) -> Self::Policy {
        Stored(ResiliencePolicy {
            id,
            service: b.service,
            rule: b.rule,
            circuit_breaker: b.circuit_breaker,
            outlier_detection: b.outlier_detection,
            rate_limits: b.rate_limits,
            fault: b.fault,
            mirror: b.mirror,
            updated_at: now_ms(),
        })
    }
    fn validate(p: &Self::Policy) -> Result<(), FieldError> {
        crate::resilience::validate(p)
    }
    fn all(state: &FederationState) -> &BTreeMap<String, Self::Policy> {
        &state.resilience
    }
    fn put_command(policy: Self::Policy) -> Command {
        Command::PutResiliencePolicy { policy }
    }
    fn delete_command(id: String) -> Command {
        Command::DeleteResiliencePolicy { id, at: now_ms() }
    }
    /// One per service and rule: `ns/svc` or `ns/svc rule "name"`.
    fn one_per_service(p: &Self::Policy) -> Option<(&String, String)> {
        Some((&p.id, p.scope()))
    }
    fn updated_at(p: &mut Self::Policy) -> &mut u64 {
        &mut p.0.updated_at
    }
}

pub(super) struct Jwt;

impl PolicyKind for Jwt {
    const WHAT: &'static str = "JWT policy";
    type Body = JwtBody;
    type Policy = Stored<JwtPolicy>;
    fn body_id(b: &Self::Body) -> Option<&String> {
        b.id.as_ref()
    }
    fn id(p: &Self::Policy) -> &String {
        &p.id
    }
    fn build(id: String, b: Self::Body) -> Self::Policy {
        Stored(JwtPolicy {
            id,
            service: b.service,
            rule: b.rule,
            providers: b.providers,
            require: b.require,
            updated_at: now_ms(),
        })
    }
    fn validate(p: &Self::Policy) -> Result<(), FieldError> {
        crate::authn::validate(p)
    }
    fn all(state: &FederationState) -> &BTreeMap<String, Self::Policy> {
        &state.jwt
    }
    fn put_command(policy: Self::Policy) -> Command {
        Command::PutJwtPolicy { policy }
    }
    fn delete_command(id: String) -> Command {
        Command::DeleteJwtPolicy { id, at: now_ms() }
    }
    /// One per service and rule.
    fn one_per_service(p: &Self::Policy) -> Option<(&String, String)> {
        Some((&p.id, p.scope()))
    }
    fn updated_at(p: &mut Self::Policy) -> &mut u64 {
        &mut p.0.updated_at
    }
}

pub(super) struct Authorization;

impl PolicyKind for Authorization {
    const WHAT: &'static str = "authorization policy";
    type Body = AuthorizationBody;
    type Policy = Stored<AuthorizationPolicy>;
    fn body_id(b: &Self::Body) -> Option<&String> {
        b.id.as_ref()
    }
    fn id(p: &Self::Policy) -> &String {
        &p.id
    }
    fn build(id: String, b: Self::Body) -> Self::Policy {
        Stored(AuthorizationPolicy {
            id,
            service: b.service,
            action: b.action,
            rules: b.rules,
            updated_at: now_ms(),
        })
    }
    fn validate(p: &Self::Policy) -> Result<(), FieldError> {
        crate::authz::validate(p)
    }
    fn all(state: &FederationState) -> &BTreeMap<String, Self::Policy> {
        &state.authorization
    }
    fn put_command(policy: Self::Policy) -> Command {
        Command::PutAuthorizationPolicy { policy }
    }
    fn delete_command(id: String) -> Command {
        Command::DeleteAuthorizationPolicy { id, at: now_ms() }
    }
    /// Many per service.
    fn one_per_service(_: &Self::Policy) -> Option<(&String, String)> {
        None
    }
    fn updated_at(p: &mut Self::Policy) -> &mut u64 {
        &mut p.0.updated_at
    }
}
