//! The data path (hyper + rustls): no actor is awaited here; each request reads the routing
//! snapshot once and moves through a short list of stages over one
//! [`context::RequestCtx`] (`docs/request-lifecycle.md` draws it):
//!
//! 1. [`server`] — accept: TCP options, mTLS on the east-west listener, HTTP/1.1 or HTTP/2,
//!    the drain signal. Raw TCP listeners go to [`tcp`].
//! 2. [`request`] — the stage list itself, in order:
//!    - [`headers`] — refuse a repeated or conflicting Host (400); later, in the plan, drop
//!      hop-by-hop, `Connection`-named and caller-sent `x-warden-*` headers and give the
//!      backend the verified caller;
//!    - [`naming`] — name the service (authority, Host, or `x-warden-service`);
//!    - [`inbound`] — east-west only: the caller's identity and authorization (and CONNECT);
//!    - [`view`], [`plan`] — the routing snapshot read once, as plain data: targets, retry
//!      allowance, timeouts, the request each attempt sends;
//!    - [`authn`] — a JWT policy's bearer token, before the route (the service's) and after
//!      (the matched rule's);
//!    - [`access`] — authorization on L7 attributes (after the rule's JWT, below);
//!    - [`rules`] — match the service's route: a rule, a backend subset, filters, timeouts;
//!    - [`resilience`] — rate limits, injected faults, then (after the plan) the service's
//!      circuit breaker;
//!    - [`upgrade`] — a WebSocket (HTTP/1.1 `Upgrade`, or extended CONNECT across the
//!      east-west hop; what was asked, in [`switch`]) is sent once and spliced instead of
//!      buffered and retried;
//!    - [`body`] — buffer a small body so it can be replayed;
//!    - [`mirror`] — copy a share of requests to a shadow service, fire-and-forget;
//!    - [`forward`] — send with [`client`], retry on another target as [`retry::Retry`]
//!      allows, drawing on the [`budget`];
//!    - [`respond`] — errors made into responses in one place (gRPC-aware);
//!    - [`account`] — metrics and the access line.
//!
//! Shared pieces: [`context`] (the per-worker and per-request contexts), [`attempt`] (a
//! target as plain data), [`error`], [`mtls`]
//! (the east-west TLS listener side and connector), [`trace`] (W3C trace context),
//! [`splice`] (raw TCP and CONNECT tunnels, with their idle timeout).

pub mod access;
pub mod account;
pub mod attempt;
pub mod authn;
pub mod body;
pub mod budget;
pub mod builders;
pub mod bytes;
pub mod client;
pub mod context;
pub mod error;
pub mod forward;
pub mod headers;
pub mod inbound;
pub mod limited;
pub mod mirror;
pub mod mtls;
pub mod naming;
pub mod placement;
pub mod plan;
pub mod request;
pub mod resilience;
pub mod respond;
pub mod retry;
pub mod rules;
pub mod server;
pub mod splice;
pub mod switch;
pub mod tcp;
pub mod trace;
pub mod upgrade;
pub mod view;
