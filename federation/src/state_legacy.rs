//! Reading the federation state an older build wrote. Snapshots are bincode, which is
//! positional: a field added at the end of [`FederationState`] makes an older snapshot end
//! early. [`decode`] reads the current shape and, when that fails, the one before it — the
//! same fields without `credentials` — so a node upgraded in place keeps its data (the data
//! format stays 1). An older build refuses a newer snapshot (its bytes do not end where that
//! build expects), so upgrade every federation node before any cluster credential is issued.

use std::collections::{BTreeMap, VecDeque};

use serde::Deserialize;
use warden_raft_store::codec::{self, CodecError};

use crate::model::{
    Cluster, JoinToken, Lease, SecurityPolicy, ServiceExport, TrafficPolicy, TrustBundle,
};
use crate::state::{Change, ExportKey, FederationState};

/// The state before cluster credentials.
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize, Default))]
struct WithoutCredentials {
    revision: u64,
    clusters: BTreeMap<String, Cluster>,
    exports: BTreeMap<ExportKey, ServiceExport>,
    trust_bundles: BTreeMap<String, TrustBundle>,
    leases: BTreeMap<String, Lease>,
    policies: BTreeMap<String, TrafficPolicy>,
    security_policies: BTreeMap<String, SecurityPolicy>,
    join_tokens: BTreeMap<String, JoinToken>,
    history: VecDeque<Change>,
}

/// Decodes a snapshot of the current shape, or of the shape before cluster credentials.
pub fn decode(bytes: &[u8]) -> Result<FederationState, CodecError> {
    match codec::decode::<FederationState>(bytes) {
        Ok(s) => Ok(s),
        Err(current) => match codec::decode::<WithoutCredentials>(bytes) {
            Ok(old) => Ok(FederationState {
                revision: old.revision,
                clusters: old.clusters,
                exports: old.exports,
                trust_bundles: old.trust_bundles,
                leases: old.leases,
                policies: old.policies,
                security_policies: old.security_policies,
                join_tokens: old.join_tokens,
                history: old.history,
                credentials: BTreeMap::new(),
            }),
            Err(_) => Err(current),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_from_before_credentials_still_decodes() {
        // The older shape, as an older build encodes it.
        let old = WithoutCredentials {
            revision: 42,
            ..Default::default()
        };
        let bytes = codec::encode(&old).unwrap();
        let s = decode(&bytes).unwrap();
        assert_eq!(s.revision, 42);
        assert!(s.credentials.is_empty());
        // The current shape round-trips; garbage is still an error.
        let mut now = FederationState {
            revision: 7,
            ..Default::default()
        };
        now.credentials.insert(
            "east".into(),
            crate::model::ClusterCredential {
                secret_sha256: "ab".into(),
                issued_at: 1,
            },
        );
        let back = decode(&codec::encode(&now).unwrap()).unwrap();
        assert_eq!(back.credentials.len(), 1);
        assert!(decode(&[1, 2, 3]).is_err());
    }
}
