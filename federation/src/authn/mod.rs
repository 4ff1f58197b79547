//! JWT policies: which tokens a service's requests (or those a rule of its route matched) must
//! carry — issuers, audiences, signing keys from a JWKS (a file or an https URL), allowed
//! algorithms, clock skew — and which verified claims become request headers that route
//! matches, rate-limit keys and the backend can use. Stored, like resilience policies, as
//! their JSON document ([`crate::stored::Stored`]). [`validate`] names the field at fault.

mod types;
mod validate;

pub use types::*;
pub use validate::validate;

#[cfg(test)]
mod tests;
