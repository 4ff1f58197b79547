//! The change history's types: what a watcher sees and how exports are keyed. Shared by the
//! replicated state, the older-state reader and the watch stream.

use serde::{Deserialize, Serialize};

use crate::audience::ExportAudience;
use crate::authn::JwtPolicy;
use crate::authz::AuthorizationPolicy;
use crate::load::LoadReport;
use crate::member_change::MemberChange;
use crate::mesh_config::MeshConfig;
use crate::model::{
    Cluster, Lease, SecurityPolicy, ServiceExport, SubsetHealth, TrafficPolicy, TrustBundle,
};
use crate::resilience::ResiliencePolicy;
use crate::route::Route;
use crate::stored::Stored;

/// One change as a watcher sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeEvent {
    ClusterPut(Cluster),
    ClusterDeleted {
        name: String,
    },
    ServicePut(ServiceExport),
    ServiceDeleted {
        cluster: String,
        namespace: String,
        service: String,
    },
    TrustBundlePut(TrustBundle),
    TrustBundleDeleted {
        trust_domain: String,
    },
    LeaseRenewed(Lease),
    PolicyPut(TrafficPolicy),
    PolicyDeleted {
        id: String,
    },
    SecurityPolicyPut(SecurityPolicy),
    SecurityPolicyDeleted {
        id: String,
    },
    // New variants go last: snapshots name variants by their index.
    LeaseWithdrawn {
        cluster: String,
    },
    RoutePut(Route),
    RouteDeleted {
        id: String,
    },
    ServicePutWithSubsets {
        export: ServiceExport,
        subsets: Vec<SubsetHealth>,
    },
    ResiliencePolicyPut(Box<Stored<ResiliencePolicy>>),
    ResiliencePolicyDeleted {
        id: String,
    },
    JwtPolicyPut(Box<Stored<JwtPolicy>>),
    JwtPolicyDeleted {
        id: String,
    },
    AuthorizationPolicyPut(Box<Stored<AuthorizationPolicy>>),
    AuthorizationPolicyDeleted {
        id: String,
    },
    LeaseRenewedWithLoad {
        lease: Lease,
        load: Box<Stored<LoadReport>>,
    },
    ServicePutTo {
        export: ServiceExport,
        subsets: Vec<SubsetHealth>,
        audience: Box<Stored<ExportAudience>>,
    },
    MeshConfigPut(Box<Stored<MeshConfig>>),
    /// An empty document: the cluster's overrides were removed.
    ClusterConfigPut {
        cluster: String,
        config: Box<Stored<MeshConfig>>,
    },
    /// A Raft member was added or removed.
    MemberChanged(Box<Stored<MemberChange>>),
}

/// A numbered change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub revision: u64,
    pub at: u64,
    pub event: ChangeEvent,
}

/// Key of an export: (cluster, namespace, service).
pub type ExportKey = (String, String, String);
