//! Commands proposed to Raft and the results of applying them.
//!
//! A command carries everything its apply needs, including the proposer's timestamp, so that
//! applying it is deterministic on every node. Business rejections (a duplicate name, an
//! unknown cluster) are values of [`CommandResult`], not storage errors.

use serde::{Deserialize, Serialize};

use crate::audience::ExportAudience;
use crate::authn::JwtPolicy;
use crate::authz::AuthorizationPolicy;
use crate::load::LoadReport;
use crate::member_change::MemberChange;
use crate::mesh_config::MeshConfig;
use crate::model::{
    Cluster, ClusterCredential, JoinToken, Lease, SecurityPolicy, ServiceExport, SubsetHealth,
    TrafficPolicy,
};
use crate::resilience::ResiliencePolicy;
use crate::route::Route;
use crate::stored::Stored;

/// A change to the federation state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Adds a cluster; with a CA bundle, also sets its trust domain's bundle.
    RegisterCluster {
        cluster: Cluster,
        ca_bundle_pem: Option<String>,
    },
    /// Removes a cluster, its exports, and its trust bundle when no other cluster shares it.
    RemoveCluster { name: String, at: u64 },
    /// Creates or replaces an export.
    ExportService { export: ServiceExport },
    /// Removes an export.
    UnexportService {
        cluster: String,
        namespace: String,
        service: String,
        at: u64,
    },
    /// Renews a cluster's liveness lease.
    RenewLease { lease: Lease },
    /// Creates or replaces a traffic policy.
    PutTrafficPolicy { policy: TrafficPolicy },
    /// Removes a traffic policy.
    DeleteTrafficPolicy { id: String, at: u64 },
    /// Stores a new join token (hash only).
    CreateJoinToken { token: JoinToken },
    /// Registers a cluster and its CA bundle with a join token, consuming the token.
    JoinCluster {
        token_id: String,
        secret_sha256: String,
        cluster: Cluster,
        ca_bundle_pem: String,
    },
    /// Creates or replaces an authorization policy.
    PutSecurityPolicy { policy: SecurityPolicy },
    /// Removes an authorization policy.
    DeleteSecurityPolicy { id: String, at: u64 },
    /// Creates or replaces the CA bundle of a trust domain.
    PutTrustBundle {
        trust_domain: String,
        ca_bundle_pem: String,
        at: u64,
    },
    // New variants go last: log entries name variants by their index.
    /// Ends a cluster's lease at once (its gateway is draining): peers stop sending to it.
    WithdrawLease { cluster: String, at: u64 },
    /// Points a cluster's registration at another east-west gateway address.
    SetClusterGateway {
        name: String,
        gateway: String,
        at: u64,
    },
    /// [`Command::RegisterCluster`], and the cluster's own API credential with it.
    RegisterClusterWithCredential {
        cluster: Cluster,
        ca_bundle_pem: Option<String>,
        credential: ClusterCredential,
    },
    /// [`Command::JoinCluster`], and the cluster's own API credential with it.
    JoinClusterWithCredential {
        token_id: String,
        secret_sha256: String,
        cluster: Cluster,
        ca_bundle_pem: String,
        credential: ClusterCredential,
    },
    /// Replaces a cluster's API credential (the old one stops working).
    SetClusterCredential {
        cluster: String,
        credential: ClusterCredential,
    },
    /// Creates or replaces a route (one per service).
    PutRoute { route: Route },
    /// Removes a route.
    DeleteRoute { id: String, at: u64 },
    /// [`Command::ExportService`], and the healthy endpoints per label set with it.
    ExportServiceWithSubsets {
        export: ServiceExport,
        subsets: Vec<SubsetHealth>,
    },
    /// Creates or replaces a resilience policy (one per service and rule).
    PutResiliencePolicy { policy: Stored<ResiliencePolicy> },
    /// Removes a resilience policy.
    DeleteResiliencePolicy { id: String, at: u64 },
    /// Creates or replaces a JWT policy (one per service and rule).
    PutJwtPolicy { policy: Stored<JwtPolicy> },
    /// Removes a JWT policy.
    DeleteJwtPolicy { id: String, at: u64 },
    /// Creates or replaces an L7 authorization policy.
    PutAuthorizationPolicy { policy: Stored<AuthorizationPolicy> },
    /// Removes an L7 authorization policy.
    DeleteAuthorizationPolicy { id: String, at: u64 },
    /// [`Command::ExportServiceWithSubsets`] for the named clusters only.
    ExportServiceTo {
        export: ServiceExport,
        subsets: Vec<SubsetHealth>,
        audience: Stored<ExportAudience>,
    },
    /// Renews a cluster's lease, carrying its gateway's demand on mesh-wide rate limits.
    RenewLeaseWithLoad {
        lease: Lease,
        load: Stored<LoadReport>,
    },
    /// Concurrent writes proposed as one log entry (group commit): applied in order, each as
    /// if it were an entry of its own, answered with [`CommandResult::Batch`]. Proposed only
    /// when every voter has said it decodes it (see [`crate::batch`]); never nested.
    Batch(Vec<Command>),
    /// Replaces the mesh-wide gateway configuration (an unchanged one writes no change).
    PutMeshConfig { config: Stored<MeshConfig>, at: u64 },
    /// Replaces one registered cluster's overrides; an empty document removes them.
    PutClusterConfig {
        cluster: String,
        config: Stored<MeshConfig>,
        at: u64,
    },
    /// `command` made through the API by `who` (`what`: the request): applied as itself,
    /// then recorded in the audit log when it changed anything ([`crate::audit`]).
    Audited {
        who: String,
        what: String,
        at: u64,
        command: Box<Command>,
    },
    /// A change to the Raft group's members that committed: recorded for the watch and the
    /// audit log ([`crate::member_change`]); the membership itself is Raft's.
    RecordMemberChange {
        change: Stored<MemberChange>,
        at: u64,
    },
}

/// Why a command was refused by the state machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rejection {
    /// The named thing exists already.
    AlreadyExists(String),
    /// The named thing does not exist.
    NotFound(String),
    /// A join token that is unknown, wrong, used or expired.
    JoinTokenRejected(String),
}

/// The outcome of applying one log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResult {
    /// Applied; the state is now at `revision`.
    Applied { revision: u64 },
    /// Refused; nothing changed.
    Rejected(Rejection),
    /// An entry that carries no command (blank or membership).
    Empty,
    /// The results of a [`Command::Batch`], in its order.
    Batch(Vec<CommandResult>),
}
