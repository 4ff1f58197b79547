//! Reading the federation state an older build wrote. Snapshots are bincode, which is
//! positional: a field added at the end of [`crate::state::FederationState`] makes an older
//! snapshot end early. When the current shape does not decode, the state reads the earlier
//! ones with [`decode`] — [`WithoutAudience`], [`WithoutResilience`], [`WithoutSubsets`],
//! [`WithoutRoutes`], then [`WithoutCredentials`] — so a node upgraded
//! in place keeps its data (the data format stays 1). An older build refuses a newer snapshot
//! (its bytes do not end where that build expects), so upgrade every federation node before
//! any cluster credential is issued, any route, resilience or JWT policy is applied or any
//! gateway of this build publishes its exports.

use std::collections::{BTreeMap, VecDeque};

use serde::Deserialize;
use warden_raft_store::codec::{self, CodecError};

use crate::audience::ExportAudience;
use crate::authn::JwtPolicy;
use crate::authz::AuthorizationPolicy;
use crate::change::{Change, ExportKey};
use crate::model::{
    Cluster, ClusterCredential, JoinToken, Lease, SecurityPolicy, ServiceExport, SubsetHealth,
    TrafficPolicy, TrustBundle,
};
use crate::resilience::ResiliencePolicy;
use crate::route::Route;
use crate::stored::Stored;

/// The state before cluster credentials.
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize, Default))]
pub struct WithoutCredentials {
    pub revision: u64,
    pub clusters: BTreeMap<String, Cluster>,
    pub exports: BTreeMap<ExportKey, ServiceExport>,
    pub trust_bundles: BTreeMap<String, TrustBundle>,
    pub leases: BTreeMap<String, Lease>,
    pub policies: BTreeMap<String, TrafficPolicy>,
    pub security_policies: BTreeMap<String, SecurityPolicy>,
    pub join_tokens: BTreeMap<String, JoinToken>,
    pub history: VecDeque<Change>,
}

/// The state before routes: the shape above, then the credentials (bincode writes a nested
/// struct as its fields in order, so this reads the same bytes as the flat struct did).
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize, Default))]
pub struct WithoutRoutes {
    pub before: WithoutCredentials,
    pub credentials: BTreeMap<String, ClusterCredential>,
}

/// The state before per-subset export health: the shape above, then the routes.
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize, Default))]
pub struct WithoutSubsets {
    pub before: WithoutRoutes,
    pub routes: BTreeMap<String, Route>,
}

/// The state before resilience policies: the shape above, then the subsets.
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize, Default))]
pub struct WithoutResilience {
    pub before: WithoutSubsets,
    pub export_subsets: BTreeMap<ExportKey, Vec<SubsetHealth>>,
}

/// The state before export audiences: the shape above, then the resilience, JWT and
/// authorization documents.
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize, Default))]
pub struct WithoutAudience {
    pub before: WithoutResilience,
    pub resilience: BTreeMap<String, Stored<ResiliencePolicy>>,
    pub jwt: BTreeMap<String, Stored<JwtPolicy>>,
    pub authorization: BTreeMap<String, Stored<AuthorizationPolicy>>,
}

/// The state before the `extra` document: the shape above, then export audiences.
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize, Default))]
pub struct WithoutExtra {
    pub before: WithoutAudience,
    pub export_audience: BTreeMap<ExportKey, Stored<ExportAudience>>,
}

/// Decodes a snapshot of an earlier shape; the state module turns it into the current shape
/// when the current shape does not decode.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    codec::decode::<T>(bytes)
}
