//! Reading the federation state an older build wrote. Snapshots are bincode, which is
//! positional: a field added at the end of [`crate::state::FederationState`] makes an older
//! snapshot end early. When the current shape does not decode, the state reads the one before
//! it with [`decode`] — the same fields without `credentials` — so a node upgraded in place
//! keeps its data (the data format stays 1). An older build refuses a newer snapshot (its bytes do not end where that
//! build expects), so upgrade every federation node before any cluster credential is issued.

use std::collections::{BTreeMap, VecDeque};

use serde::Deserialize;
use warden_raft_store::codec::{self, CodecError};

use crate::change::{Change, ExportKey};
use crate::model::{
    Cluster, JoinToken, Lease, SecurityPolicy, ServiceExport, TrafficPolicy, TrustBundle,
};

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

/// Decodes a snapshot of the shape before cluster credentials; the state module turns it
/// into the current shape (with no credentials) when the current shape does not decode.
pub fn decode(bytes: &[u8]) -> Result<WithoutCredentials, CodecError> {
    codec::decode::<WithoutCredentials>(bytes)
}
