//! The replicated federation state and its pure `apply`.
//!
//! One handler per command. Each applied change bumps `revision` by exactly one and is
//! appended to a bounded change history, which the watch stream serves; because the history
//! is part of the replicated state, every node numbers changes the same way and a watcher can
//! resume on any node.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use warden_raft_store::StateMachineCore;

use crate::audience::ExportAudience;
use crate::authn::JwtPolicy;
use crate::authz::AuthorizationPolicy;
pub use crate::change::{Change, ChangeEvent, ExportKey};
use crate::command::{Command, CommandResult, Rejection};
use crate::load::LoadReport;
use crate::model::{
    Cluster, ClusterCredential, JoinToken, Lease, SecurityPolicy, ServiceExport, SubsetHealth,
    TrafficPolicy, TrustBundle,
};
use crate::resilience::ResiliencePolicy;
use crate::route::Route;
use crate::state_legacy::{
    WithoutAudience, WithoutCredentials, WithoutExtra, WithoutResilience, WithoutRoutes,
    WithoutSubsets,
};
use crate::stored::Stored;

/// How many changes the history keeps; a watcher further behind must re-list.
pub const HISTORY_LEN: usize = 10_000;

/// The version of how commands and this state encode on disk (the raft store refuses data of
/// another version). Bump it when a persisted type changes shape; appending an enum variant
/// does not change it.
pub const DATA_FORMAT: u32 = 1;

/// Everything the federation agrees on.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FederationState {
    /// Grows by one with every applied change; 0 for an empty store.
    pub revision: u64,
    pub clusters: BTreeMap<String, Cluster>,
    pub exports: BTreeMap<ExportKey, ServiceExport>,
    pub trust_bundles: BTreeMap<String, TrustBundle>,
    /// Liveness leases by cluster.
    pub leases: BTreeMap<String, Lease>,
    /// Traffic policies by id.
    pub policies: BTreeMap<String, TrafficPolicy>,
    /// Authorization policies by id.
    pub security_policies: BTreeMap<String, SecurityPolicy>,
    /// Join tokens by id (hashes only).
    pub join_tokens: BTreeMap<String, JoinToken>,
    /// The last [`HISTORY_LEN`] changes, oldest first.
    pub history: VecDeque<Change>,
    /// Each cluster's own API credential (hashes only). Last, so that the state of an older
    /// build — the same fields without this one — still decodes (see [`crate::state_legacy`]).
    pub credentials: BTreeMap<String, ClusterCredential>,
    /// L7 routes by id (one per service). Last, for the same reason as `credentials`.
    pub routes: BTreeMap<String, Route>,
    /// Healthy endpoints per label set of each export that published them. Last, for the same
    /// reason as `credentials`.
    pub export_subsets: BTreeMap<ExportKey, Vec<SubsetHealth>>,
    /// Resilience policies by id (one per service and rule), each stored as its JSON
    /// document. Last, for the same reason as `credentials`.
    pub resilience: BTreeMap<String, Stored<ResiliencePolicy>>,
    /// JWT policies by id (one per service and rule), as JSON documents. Added with
    /// `resilience`, in the same shape change.
    pub jwt: BTreeMap<String, Stored<JwtPolicy>>,
    /// L7 authorization policies by id, as JSON documents (the same shape change).
    pub authorization: BTreeMap<String, Stored<AuthorizationPolicy>>,
    /// The clusters each export is for, when it names them (JSON documents). Last, for the
    /// same reason as `credentials`.
    pub export_audience: BTreeMap<ExportKey, Stored<ExportAudience>>,
    /// Everything added since: one JSON document whose fields default when absent, so a
    /// field added to it needs no legacy shape. Last, for the same reason as `credentials`.
    pub extra: Stored<Extra>,
}

/// The state added after `export_audience`, as one JSON document ([`FederationState::extra`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extra {
    /// Mesh-wide and per-cluster gateway configuration.
    #[serde(default)]
    pub config: crate::mesh_config::ConfigState,
    /// The last [`crate::audit::AUDIT_LEN`] changes made through the API, oldest first.
    #[serde(default)]
    pub audit: VecDeque<crate::audit::AuditRecord>,
}

impl FederationState {
    /// Records a change for handlers outside this module.
    pub(crate) fn record_change(&mut self, at: u64, event: ChangeEvent) -> u64 {
        self.record(at, event)
    }

    pub(crate) fn record(&mut self, at: u64, event: ChangeEvent) -> u64 {
        self.revision += 1;
        self.history.push_back(Change {
            revision: self.revision,
            at,
            event,
        });
        while self.history.len() > HISTORY_LEN {
            self.history.pop_front();
        }
        self.revision
    }

    /// The oldest revision a watcher may resume after: changes after it are all retained.
    pub fn oldest_resumable(&self) -> u64 {
        self.history
            .front()
            .map(|c| c.revision - 1)
            .unwrap_or(self.revision)
    }

    /// Changes with a revision greater than `after`, or `None` if some were already dropped.
    pub fn changes_after(&self, after: u64, limit: usize) -> Option<Vec<Change>> {
        if after < self.oldest_resumable() {
            return None;
        }
        let start = self.history.partition_point(|c| c.revision <= after);
        Some(
            self.history
                .iter()
                .skip(start)
                .take(limit)
                .cloned()
                .collect(),
        )
    }

    fn put_bundle(&mut self, trust_domain: &str, pem: &str, at: u64) -> u64 {
        let version = self
            .trust_bundles
            .get(trust_domain)
            .map(|b| b.version + 1)
            .unwrap_or(1);
        let bundle = TrustBundle {
            trust_domain: trust_domain.to_string(),
            ca_bundle_pem: pem.to_string(),
            version,
            updated_at: at,
        };
        self.trust_bundles
            .insert(trust_domain.to_string(), bundle.clone());
        self.record(at, ChangeEvent::TrustBundlePut(bundle))
    }

    /// Whether `cluster` may be registered: its name is free, and no other cluster owns its
    /// trust domain (a trust domain belongs to the cluster that first registered it). A join
    /// (`by_token`) may only take a domain nobody holds, not even by a bundle an admin set.
    pub fn may_register(&self, cluster: &Cluster, by_token: bool) -> Result<(), Rejection> {
        if self.clusters.contains_key(&cluster.name) {
            return Err(Rejection::AlreadyExists(format!(
                "cluster {:?}",
                cluster.name
            )));
        }
        if let Some(owner) = self.domain_owner(&cluster.trust_domain) {
            return Err(Rejection::AlreadyExists(format!(
                "trust domain {:?} (owned by cluster {owner:?})",
                cluster.trust_domain
            )));
        }
        if by_token && self.trust_bundles.contains_key(&cluster.trust_domain) {
            return Err(Rejection::AlreadyExists(format!(
                "a trust bundle for {:?} (a join may only take a domain nobody holds)",
                cluster.trust_domain
            )));
        }
        Ok(())
    }

    /// The cluster that owns `trust_domain`, if any.
    pub fn domain_owner(&self, trust_domain: &str) -> Option<&str> {
        self.clusters
            .values()
            .find(|c| c.trust_domain == trust_domain)
            .map(|c| c.name.as_str())
    }

    /// Whether a join with this token may go ahead at `at`.
    pub fn check_join_token(
        &self,
        token_id: &str,
        secret_sha256: &str,
        at: u64,
    ) -> Result<(), String> {
        match self.join_tokens.get(token_id) {
            None => Err("unknown join token".to_string()),
            Some(t) if t.secret_sha256 != secret_sha256 => {
                Err("wrong join token secret".to_string())
            }
            Some(JoinToken {
                used_by: Some(by), ..
            }) => Err(format!("join token already used (by cluster {by:?})")),
            Some(t) if at > t.expires_at => Err(format!(
                "join token expired at {} (ms since epoch)",
                t.expires_at
            )),
            Some(_) => Ok(()),
        }
    }

    fn register_cluster(
        &mut self,
        cluster: &Cluster,
        pem: Option<&str>,
        by_token: bool,
    ) -> CommandResult {
        if let Err(r) = self.may_register(cluster, by_token) {
            return CommandResult::Rejected(r);
        }
        let at = cluster.registered_at;
        self.clusters.insert(cluster.name.clone(), cluster.clone());
        let mut revision = self.record(at, ChangeEvent::ClusterPut(cluster.clone()));
        if let Some(pem) = pem {
            revision = self.put_bundle(&cluster.trust_domain, pem, at);
        }
        CommandResult::Applied { revision }
    }

    fn remove_cluster(&mut self, name: &str, at: u64) -> CommandResult {
        let Some(cluster) = self.clusters.remove(name) else {
            return CommandResult::Rejected(Rejection::NotFound(format!("cluster {name:?}")));
        };
        let keys: Vec<ExportKey> = self
            .exports
            .keys()
            .filter(|k| k.0 == name)
            .cloned()
            .collect();
        for key in keys {
            self.exports.remove(&key);
            self.export_subsets.remove(&key);
            self.export_audience.remove(&key);
            let (cluster, namespace, service) = key;
            self.record(
                at,
                ChangeEvent::ServiceDeleted {
                    cluster,
                    namespace,
                    service,
                },
            );
        }
        self.leases.remove(name);
        self.credentials.remove(name);
        // Its gateway goes with it; a cluster registered again under the name starts bare.
        self.extra.0.config.clusters.remove(name);
        let mut revision = self.record(
            at,
            ChangeEvent::ClusterDeleted {
                name: name.to_string(),
            },
        );
        let shared = self
            .clusters
            .values()
            .any(|c| c.trust_domain == cluster.trust_domain);
        if !shared && self.trust_bundles.remove(&cluster.trust_domain).is_some() {
            revision = self.record(
                at,
                ChangeEvent::TrustBundleDeleted {
                    trust_domain: cluster.trust_domain,
                },
            );
        }
        CommandResult::Applied { revision }
    }

    fn export_service(
        &mut self,
        export: &ServiceExport,
        subsets: Option<&[SubsetHealth]>,
        audience: Option<&Stored<ExportAudience>>,
    ) -> CommandResult {
        if !self.clusters.contains_key(&export.cluster) {
            return CommandResult::Rejected(Rejection::NotFound(format!(
                "cluster {:?}",
                export.cluster
            )));
        }
        let key = (
            export.cluster.clone(),
            export.namespace.clone(),
            export.service.clone(),
        );
        self.exports.insert(key.clone(), export.clone());
        match audience {
            Some(a) => self.export_audience.insert(key.clone(), a.clone()),
            None => self.export_audience.remove(&key),
        };
        if let Some(a) = audience {
            let subsets = subsets.map(<[SubsetHealth]>::to_vec).unwrap_or_default();
            match subsets.is_empty() {
                true => self.export_subsets.remove(&key),
                false => self.export_subsets.insert(key, subsets.clone()),
            };
            let event = ChangeEvent::ServicePutTo {
                export: export.clone(),
                subsets,
                audience: Box::new(a.clone()),
            };
            let revision = self.record(export.updated_at, event);
            return CommandResult::Applied { revision };
        }
        let event = match subsets {
            Some(subsets) => {
                self.export_subsets.insert(key, subsets.to_vec());
                ChangeEvent::ServicePutWithSubsets {
                    export: export.clone(),
                    subsets: subsets.to_vec(),
                }
            }
            None => {
                self.export_subsets.remove(&key);
                ChangeEvent::ServicePut(export.clone())
            }
        };
        let revision = self.record(export.updated_at, event);
        CommandResult::Applied { revision }
    }

    fn unexport_service(&mut self, key: ExportKey, at: u64) -> CommandResult {
        self.export_subsets.remove(&key);
        self.export_audience.remove(&key);
        if self.exports.remove(&key).is_none() {
            return CommandResult::Rejected(Rejection::NotFound(format!(
                "service {}/{} in cluster {:?}",
                key.1, key.2, key.0
            )));
        }
        let (cluster, namespace, service) = key;
        let revision = self.record(
            at,
            ChangeEvent::ServiceDeleted {
                cluster,
                namespace,
                service,
            },
        );
        CommandResult::Applied { revision }
    }
}

impl FederationState {
    fn renew_lease(&mut self, lease: &Lease, load: Option<&Stored<LoadReport>>) -> CommandResult {
        if !self.clusters.contains_key(&lease.cluster) {
            return CommandResult::Rejected(Rejection::NotFound(format!(
                "cluster {:?}",
                lease.cluster
            )));
        }
        self.leases.insert(lease.cluster.clone(), lease.clone());
        let event = match load {
            None => ChangeEvent::LeaseRenewed(lease.clone()),
            Some(l) => ChangeEvent::LeaseRenewedWithLoad {
                lease: lease.clone(),
                load: Box::new(l.clone()),
            },
        };
        let revision = self.record(lease.renewed_at, event);
        CommandResult::Applied { revision }
    }

    fn withdraw_lease(&mut self, cluster: &str, at: u64) -> CommandResult {
        if !self.clusters.contains_key(cluster) {
            return CommandResult::Rejected(Rejection::NotFound(format!("cluster {cluster:?}")));
        }
        if self.leases.remove(cluster).is_none() {
            // Nothing to withdraw: no change, no revision.
            return CommandResult::Applied {
                revision: self.revision,
            };
        }
        let revision = self.record(
            at,
            ChangeEvent::LeaseWithdrawn {
                cluster: cluster.to_string(),
            },
        );
        CommandResult::Applied { revision }
    }

    fn set_cluster_gateway(&mut self, name: &str, gateway: &str, at: u64) -> CommandResult {
        let Some(c) = self.clusters.get_mut(name) else {
            return CommandResult::Rejected(Rejection::NotFound(format!("cluster {name:?}")));
        };
        if c.gateway == gateway {
            return CommandResult::Applied {
                revision: self.revision,
            };
        }
        c.gateway = gateway.to_string();
        let updated = c.clone();
        let revision = self.record(at, ChangeEvent::ClusterPut(updated));
        CommandResult::Applied { revision }
    }

    fn put_policy(&mut self, policy: &TrafficPolicy) -> CommandResult {
        let others = self.policies.values().map(|p| (&p.id, &p.service));
        if let Some(taken) = service_taken(others, &policy.id, &policy.service, "traffic policy") {
            return taken;
        }
        self.policies.insert(policy.id.clone(), policy.clone());
        let revision = self.record(policy.updated_at, ChangeEvent::PolicyPut(policy.clone()));
        CommandResult::Applied { revision }
    }

    fn delete_policy(&mut self, id: &str, at: u64) -> CommandResult {
        if self.policies.remove(id).is_none() {
            return CommandResult::Rejected(Rejection::NotFound(format!("traffic policy {id:?}")));
        }
        let revision = self.record(at, ChangeEvent::PolicyDeleted { id: id.to_string() });
        CommandResult::Applied { revision }
    }
}

/// The rejection when another object (`id`, `service`) than `id` is already attached to
/// `service`: traffic policies and routes are one per service.
pub(crate) fn service_taken<'a>(
    mut others: impl Iterator<Item = (&'a String, &'a String)>,
    id: &str,
    service: &str,
    what: &str,
) -> Option<CommandResult> {
    let (other, _) = others.find(|(i, s)| *s == service && *i != id)?;
    Some(CommandResult::Rejected(Rejection::AlreadyExists(format!(
        "a {what} for {service} ({other:?})"
    ))))
}

impl From<WithoutCredentials> for FederationState {
    fn from(old: WithoutCredentials) -> Self {
        FederationState {
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
            routes: BTreeMap::new(),
            export_subsets: BTreeMap::new(),
            resilience: BTreeMap::new(),
            jwt: BTreeMap::new(),
            authorization: BTreeMap::new(),
            export_audience: BTreeMap::new(),
            extra: Stored(Extra::default()),
        }
    }
}

impl From<WithoutRoutes> for FederationState {
    fn from(old: WithoutRoutes) -> Self {
        FederationState {
            credentials: old.credentials,
            ..FederationState::from(old.before)
        }
    }
}

impl From<WithoutSubsets> for FederationState {
    fn from(old: WithoutSubsets) -> Self {
        FederationState {
            routes: old.routes,
            ..FederationState::from(old.before)
        }
    }
}

impl From<WithoutResilience> for FederationState {
    fn from(old: WithoutResilience) -> Self {
        FederationState {
            export_subsets: old.export_subsets,
            ..FederationState::from(old.before)
        }
    }
}

impl From<WithoutExtra> for FederationState {
    fn from(old: WithoutExtra) -> Self {
        FederationState {
            export_audience: old.export_audience,
            ..FederationState::from(old.before)
        }
    }
}

impl From<WithoutAudience> for FederationState {
    fn from(old: WithoutAudience) -> Self {
        FederationState {
            resilience: old.resilience,
            jwt: old.jwt,
            authorization: old.authorization,
            ..FederationState::from(old.before)
        }
    }
}

impl StateMachineCore for FederationState {
    type Request = Command;
    type Response = CommandResult;

    fn apply(&mut self, _log_index: u64, command: &Command) -> CommandResult {
        match command {
            Command::Batch(commands) => {
                CommandResult::Batch(commands.iter().map(|c| self.apply(_log_index, c)).collect())
            }
            Command::RegisterCluster {
                cluster,
                ca_bundle_pem,
            } => self.register_cluster(cluster, ca_bundle_pem.as_deref(), false),
            Command::RemoveCluster { name, at } => self.remove_cluster(name, *at),
            Command::ExportService { export } => self.export_service(export, None, None),
            Command::ExportServiceTo {
                export,
                subsets,
                audience,
            } => self.export_service(export, Some(subsets), Some(audience)),
            Command::UnexportService {
                cluster,
                namespace,
                service,
                at,
            } => self.unexport_service((cluster.clone(), namespace.clone(), service.clone()), *at),
            Command::RenewLease { lease } => self.renew_lease(lease, None),
            Command::RenewLeaseWithLoad { lease, load } => self.renew_lease(lease, Some(load)),
            Command::CreateJoinToken { token } => {
                if self.join_tokens.contains_key(&token.id) {
                    return CommandResult::Rejected(Rejection::AlreadyExists(format!(
                        "join token {:?}",
                        token.id
                    )));
                }
                self.join_tokens.insert(token.id.clone(), token.clone());
                CommandResult::Applied {
                    revision: self.revision,
                }
            }
            Command::JoinCluster {
                token_id,
                secret_sha256,
                cluster,
                ca_bundle_pem,
            } => {
                let verdict = self.check_join_token(token_id, secret_sha256, cluster.registered_at);
                if let Err(why) = verdict {
                    return CommandResult::Rejected(Rejection::JoinTokenRejected(why));
                }
                let result = self.register_cluster(cluster, Some(ca_bundle_pem), true);
                if let CommandResult::Applied { .. } = result
                    && let Some(t) = self.join_tokens.get_mut(token_id)
                {
                    t.used_by = Some(cluster.name.clone());
                }
                result
            }
            Command::PutSecurityPolicy { policy } => {
                self.security_policies
                    .insert(policy.id.clone(), policy.clone());
                let revision = self.record(
                    policy.updated_at,
                    ChangeEvent::SecurityPolicyPut(policy.clone()),
                );
                CommandResult::Applied { revision }
            }
            Command::DeleteSecurityPolicy { id, at } => {
                if self.security_policies.remove(id).is_none() {
                    return CommandResult::Rejected(Rejection::NotFound(format!(
                        "security policy {id:?}"
                    )));
                }
                let revision =
                    self.record(*at, ChangeEvent::SecurityPolicyDeleted { id: id.clone() });
                CommandResult::Applied { revision }
            }
            Command::PutTrafficPolicy { policy } => self.put_policy(policy),
            Command::DeleteTrafficPolicy { id, at } => self.delete_policy(id, *at),
            Command::PutTrustBundle {
                trust_domain,
                ca_bundle_pem,
                at,
            } => {
                let revision = self.put_bundle(trust_domain, ca_bundle_pem, *at);
                CommandResult::Applied { revision }
            }
            Command::WithdrawLease { cluster, at } => self.withdraw_lease(cluster, *at),
            Command::SetClusterGateway { name, gateway, at } => {
                self.set_cluster_gateway(name, gateway, *at)
            }
            Command::RegisterClusterWithCredential {
                cluster,
                ca_bundle_pem,
                credential,
            } => {
                let result = self.register_cluster(cluster, ca_bundle_pem.as_deref(), false);
                self.keep_credential(&result, &cluster.name, credential);
                result
            }
            Command::JoinClusterWithCredential {
                token_id,
                secret_sha256,
                cluster,
                ca_bundle_pem,
                credential,
            } => {
                let result = self.apply(
                    _log_index,
                    &Command::JoinCluster {
                        token_id: token_id.clone(),
                        secret_sha256: secret_sha256.clone(),
                        cluster: cluster.clone(),
                        ca_bundle_pem: ca_bundle_pem.clone(),
                    },
                );
                self.keep_credential(&result, &cluster.name, credential);
                result
            }
            Command::SetClusterCredential {
                cluster,
                credential,
            } => self.set_credential(cluster, credential),
            Command::PutRoute { route } => self.put_route(route),
            Command::DeleteRoute { id, at } => self.delete_route(id, *at),
            Command::ExportServiceWithSubsets { export, subsets } => {
                self.export_service(export, Some(subsets), None)
            }
            Command::PutResiliencePolicy { policy } => self.put_document(policy),
            Command::DeleteResiliencePolicy { id, at } => {
                self.delete_document::<ResiliencePolicy>(id, *at)
            }
            Command::PutJwtPolicy { policy } => self.put_document(policy),
            Command::DeleteJwtPolicy { id, at } => self.delete_document::<JwtPolicy>(id, *at),
            Command::Audited {
                who,
                what,
                at,
                command,
            } => {
                let before = self.revision;
                let result = self.apply(_log_index, command);
                if self.revision > before {
                    let audit = &mut self.extra.0.audit;
                    audit.push_back(crate::audit::AuditRecord {
                        revision: self.revision,
                        at: *at,
                        who: who.clone(),
                        what: what.clone(),
                    });
                    while audit.len() > crate::audit::AUDIT_LEN {
                        audit.pop_front();
                    }
                }
                result
            }
            Command::PutMeshConfig { config, at } => self.put_mesh_config(config, *at),
            Command::PutClusterConfig {
                cluster,
                config,
                at,
            } => self.put_cluster_config(cluster, config, *at),
            Command::PutAuthorizationPolicy { policy } => self.put_document(policy),
            Command::DeleteAuthorizationPolicy { id, at } => {
                self.delete_document::<AuthorizationPolicy>(id, *at)
            }
            Command::RecordMemberChange { change, at } => {
                let revision =
                    self.record(*at, ChangeEvent::MemberChanged(Box::new(change.clone())));
                CommandResult::Applied { revision }
            }
        }
    }

    fn decode_state(bytes: &[u8]) -> Result<Self, warden_raft_store::codec::CodecError> {
        use crate::state_legacy as legacy;
        warden_raft_store::codec::decode::<FederationState>(bytes).or_else(|current| {
            legacy::decode::<WithoutExtra>(bytes)
                .map(FederationState::from)
                .or_else(|_| legacy::decode::<WithoutAudience>(bytes).map(FederationState::from))
                .or_else(|_| legacy::decode::<WithoutResilience>(bytes).map(FederationState::from))
                .or_else(|_| legacy::decode::<WithoutSubsets>(bytes).map(FederationState::from))
                .or_else(|_| legacy::decode::<WithoutRoutes>(bytes).map(FederationState::from))
                .or_else(|_| legacy::decode::<WithoutCredentials>(bytes).map(FederationState::from))
                .map_err(|_| current)
        })
    }

    fn empty_response(&self) -> CommandResult {
        CommandResult::Empty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_from_before_credentials_still_decodes() {
        use warden_raft_store::codec;
        // The older shape, as an older build encodes it.
        let old = WithoutCredentials {
            revision: 42,
            ..Default::default()
        };
        let bytes = codec::encode(&old).unwrap();
        let s = FederationState::decode_state(&bytes).unwrap();
        assert_eq!(s.revision, 42);
        assert!(s.credentials.is_empty());
        // The current shape round-trips; garbage is still an error.
        let mut now = FederationState {
            revision: 7,
            ..Default::default()
        };
        now.credentials.insert(
            "east".into(),
            ClusterCredential {
                secret_sha256: "ab".into(),
                issued_at: 1,
            },
        );
        let back = FederationState::decode_state(&codec::encode(&now).unwrap()).unwrap();
        assert_eq!(back.credentials.len(), 1);
        assert!(FederationState::decode_state(&[1, 2, 3]).is_err());
    }
    use crate::model::{Lease, TrafficPolicy};
    use crate::model::{Protocol, ServicePort};

    fn cluster(name: &str, td: &str) -> Cluster {
        Cluster {
            name: name.into(),
            region: "r".into(),
            zone: "z".into(),
            network: "n".into(),
            gateway: "127.0.0.1:15008".into(),
            trust_domain: td.into(),
            labels: Default::default(),
            registered_at: 10,
        }
    }

    fn export(c: &str, svc: &str) -> ServiceExport {
        ServiceExport {
            cluster: c.into(),
            namespace: "ns".into(),
            service: svc.into(),
            ports: vec![ServicePort {
                name: "http".into(),
                port: 80,
                protocol: Protocol::Http,
            }],
            healthy_endpoints: 1,
            weight: 100,
            updated_at: 20,
        }
    }

    fn register(s: &mut FederationState, name: &str, td: &str, pem: bool) -> CommandResult {
        s.apply(
            1,
            &Command::RegisterCluster {
                cluster: cluster(name, td),
                ca_bundle_pem: pem.then(|| "PEM".to_string()),
            },
        )
    }

    #[test]
    fn register_is_create_only() {
        let mut s = FederationState::default();
        assert_eq!(
            register(&mut s, "a", "a.td", false),
            CommandResult::Applied { revision: 1 }
        );
        assert!(matches!(
            register(&mut s, "a", "a.td", false),
            CommandResult::Rejected(Rejection::AlreadyExists(_))
        ));
        assert_eq!(s.revision, 1, "a rejection changes nothing");
    }

    #[test]
    fn register_with_bundle_sets_the_bundle() {
        let mut s = FederationState::default();
        assert_eq!(
            register(&mut s, "a", "a.td", true),
            CommandResult::Applied { revision: 2 }
        );
        assert_eq!(s.trust_bundles["a.td"].version, 1);
        s.apply(
            2,
            &Command::PutTrustBundle {
                trust_domain: "a.td".into(),
                ca_bundle_pem: "P2".into(),
                at: 30,
            },
        );
        assert_eq!(s.trust_bundles["a.td"].version, 2);
    }

    #[test]
    fn export_needs_a_cluster_and_unexport_needs_an_export() {
        let mut s = FederationState::default();
        let r = s.apply(
            1,
            &Command::ExportService {
                export: export("a", "cart"),
            },
        );
        assert!(matches!(r, CommandResult::Rejected(Rejection::NotFound(_))));
        register(&mut s, "a", "a.td", false);
        let r = s.apply(
            2,
            &Command::ExportService {
                export: export("a", "cart"),
            },
        );
        assert_eq!(r, CommandResult::Applied { revision: 2 });
        let un = Command::UnexportService {
            cluster: "a".into(),
            namespace: "ns".into(),
            service: "cart".into(),
            at: 5,
        };
        assert_eq!(s.apply(3, &un), CommandResult::Applied { revision: 3 });
        assert!(matches!(
            s.apply(4, &un),
            CommandResult::Rejected(Rejection::NotFound(_))
        ));
    }

    #[test]
    fn subsets_travel_with_their_export_and_leave_with_it() {
        let mut s = FederationState::default();
        register(&mut s, "a", "a.td", false);
        let v2 = SubsetHealth {
            labels: [("version".to_string(), "v2".to_string())].into(),
            healthy_endpoints: 1,
        };
        let with = Command::ExportServiceWithSubsets {
            export: export("a", "cart"),
            subsets: vec![v2.clone()],
        };
        assert_eq!(s.apply(2, &with), CommandResult::Applied { revision: 2 });
        let key = ("a".to_string(), "ns".to_string(), "cart".to_string());
        assert_eq!(s.export_subsets[&key], vec![v2.clone()]);
        assert!(matches!(
            &s.history.back().unwrap().event,
            ChangeEvent::ServicePutWithSubsets { subsets, .. } if subsets == &vec![v2.clone()]
        ));
        // An update without them (an older gateway) says nothing about subsets any more.
        let without = Command::ExportService {
            export: export("a", "cart"),
        };
        s.apply(3, &without);
        assert!(!s.export_subsets.contains_key(&key));
        s.apply(4, &with);
        let un = Command::UnexportService {
            cluster: "a".into(),
            namespace: "ns".into(),
            service: "cart".into(),
            at: 5,
        };
        s.apply(5, &un);
        assert!(s.export_subsets.is_empty(), "unexport takes the subsets");
        s.apply(6, &with);
        s.apply(
            7,
            &Command::RemoveCluster {
                name: "a".into(),
                at: 6,
            },
        );
        assert!(
            s.export_subsets.is_empty(),
            "removing the cluster takes them"
        );
        // Without a cluster, nothing is stored.
        assert!(matches!(
            s.apply(8, &with),
            CommandResult::Rejected(Rejection::NotFound(_))
        ));
        assert!(s.export_subsets.is_empty());
    }

    #[test]
    fn a_snapshot_from_before_subsets_keeps_its_routes() {
        use warden_raft_store::codec;
        let mut old = crate::state_legacy::WithoutSubsets {
            before: WithoutRoutes {
                before: WithoutCredentials {
                    revision: 9,
                    ..Default::default()
                },
                credentials: Default::default(),
            },
            routes: Default::default(),
        };
        old.before.credentials.insert(
            "east".into(),
            ClusterCredential {
                secret_sha256: "ab".into(),
                issued_at: 1,
            },
        );
        let route: crate::route::Route = serde_json::from_value(serde_json::json!({
            "id": "cart", "service": "shop/cart",
            "rules": [{"backends": [{"subset": {"version": "v2"}}]}]
        }))
        .unwrap();
        old.routes.insert(route.id.clone(), route);
        let s = FederationState::decode_state(&codec::encode(&old).unwrap()).unwrap();
        assert_eq!(s.revision, 9);
        assert_eq!(s.credentials.len(), 1);
        assert_eq!(s.routes.len(), 1);
        assert!(s.export_subsets.is_empty());
    }

    #[test]
    fn a_trust_domain_belongs_to_one_cluster() {
        let mut s = FederationState::default();
        register(&mut s, "east", "east.td", true);
        let before = s.trust_bundles["east.td"].clone();
        assert!(matches!(
            register(&mut s, "evil", "east.td", true),
            CommandResult::Rejected(Rejection::AlreadyExists(m)) if m.contains("owned by cluster \"east\"")
        ));
        assert_eq!(
            s.trust_bundles["east.td"], before,
            "the bundle is untouched"
        );
        assert!(!s.clusters.contains_key("evil"));
        // A join may not take a domain an admin put a bundle for, even with no cluster in it.
        s.apply(
            9,
            &Command::PutTrustBundle {
                trust_domain: "spare.td".into(),
                ca_bundle_pem: "P".into(),
                at: 1,
            },
        );
        assert!(s.may_register(&cluster("x", "spare.td"), false).is_ok());
        assert!(s.may_register(&cluster("x", "spare.td"), true).is_err());
    }

    #[test]
    fn remove_cluster_takes_its_exports_and_its_bundle() {
        let mut s = FederationState::default();
        register(&mut s, "a", "a.td", true);
        register(&mut s, "b", "b.td", true);
        for (i, c) in ["a", "b"].into_iter().enumerate() {
            s.apply(
                3 + i as u64,
                &Command::ExportService {
                    export: export(c, "cart"),
                },
            );
        }
        s.apply(
            5,
            &Command::RemoveCluster {
                name: "a".into(),
                at: 50,
            },
        );
        assert!(!s.clusters.contains_key("a"));
        assert_eq!(s.exports.len(), 1);
        assert!(
            !s.trust_bundles.contains_key("a.td"),
            "its CA is no longer trusted"
        );
        assert!(s.trust_bundles.contains_key("b.td"));
        // The freed domain may be registered again.
        assert!(matches!(
            register(&mut s, "c", "a.td", false),
            CommandResult::Applied { .. }
        ));
        let r = s.apply(
            7,
            &Command::RemoveCluster {
                name: "a".into(),
                at: 70,
            },
        );
        assert!(matches!(r, CommandResult::Rejected(Rejection::NotFound(_))));
    }

    #[test]
    fn apply_is_deterministic_and_history_is_contiguous() {
        let cmds: Vec<Command> = (0..50)
            .map(|i| Command::RegisterCluster {
                cluster: cluster(&format!("c{i}"), &format!("td{i}")),
                ca_bundle_pem: None,
            })
            .chain((0..50).map(|i| Command::RemoveCluster {
                name: format!("c{}", i * 2),
                at: 99,
            }))
            .collect();
        let run = || {
            let mut s = FederationState::default();
            let out: Vec<_> = cmds
                .iter()
                .enumerate()
                .map(|(i, c)| s.apply(i as u64, c))
                .collect();
            (warden_raft_store::codec::encode(&s).unwrap(), out)
        };
        assert_eq!(run(), run());
        let mut s = FederationState::default();
        for (i, c) in cmds.iter().enumerate() {
            s.apply(i as u64, c);
        }
        let revs: Vec<u64> = s.history.iter().map(|c| c.revision).collect();
        assert_eq!(revs, (1..=s.revision).collect::<Vec<_>>());
        assert_eq!(
            s.changes_after(70, 100).unwrap().first().unwrap().revision,
            71
        );
    }

    #[test]
    fn a_batch_applies_in_order_as_separate_entries_would() {
        let register = |name: &str, td: &str| Command::RegisterCluster {
            cluster: cluster(name, td),
            ca_bundle_pem: None,
        };
        let cmds = vec![
            register("a", "ta"),
            register("a", "ta"),
            register("b", "tb"),
            Command::RemoveCluster {
                name: "a".into(),
                at: 9,
            },
        ];
        let mut one_by_one = FederationState::default();
        let each: Vec<_> = cmds
            .iter()
            .enumerate()
            .map(|(i, c)| one_by_one.apply(i as u64, c))
            .collect();
        let mut batched = FederationState::default();
        let r = batched.apply(0, &Command::Batch(cmds));
        assert_eq!(r, CommandResult::Batch(each.clone()));
        assert!(matches!(
            each[1],
            CommandResult::Rejected(Rejection::AlreadyExists(_))
        ));
        assert_eq!(
            warden_raft_store::codec::encode(&batched).unwrap(),
            warden_raft_store::codec::encode(&one_by_one).unwrap(),
            "the same state, the same revisions"
        );
    }

    fn lease_of_a() -> Lease {
        Lease {
            cluster: "a".into(),
            renewed_at: 5,
            ttl_ms: 1000,
            trust_versions: Default::default(),
        }
    }

    #[test]
    fn leases_need_a_cluster_and_go_with_it() {
        let mut s = FederationState::default();
        let lease = lease_of_a();
        assert!(matches!(
            s.apply(
                1,
                &Command::RenewLease {
                    lease: lease.clone()
                }
            ),
            CommandResult::Rejected(Rejection::NotFound(_))
        ));
        register(&mut s, "a", "a.td", false);
        assert_eq!(
            s.apply(2, &Command::RenewLease { lease }),
            CommandResult::Applied { revision: 2 }
        );
        assert_eq!(s.leases["a"].renewed_at, 5);
        s.apply(
            3,
            &Command::RemoveCluster {
                name: "a".into(),
                at: 9,
            },
        );
        assert!(s.leases.is_empty());
    }

    #[test]
    fn a_renewal_with_load_carries_it_in_its_one_change_and_the_snapshot_reads_back() {
        let mut s = FederationState::default();
        register(&mut s, "a", "a.td", false);
        let lease = lease_of_a();
        let load = LoadReport {
            demand: [("cart-mesh/all".to_string(), 150.5)].into(),
        };
        let before = s.history.len();
        assert_eq!(
            s.apply(
                2,
                &Command::RenewLeaseWithLoad {
                    lease: lease.clone(),
                    load: Stored(load.clone()),
                }
            ),
            CommandResult::Applied { revision: 2 }
        );
        assert_eq!(
            s.history.len(),
            before + 1,
            "one change, as a plain renewal"
        );
        assert_eq!(s.leases["a"], lease);
        match &s.history.back().unwrap().event {
            ChangeEvent::LeaseRenewedWithLoad { lease: l, load: r } => {
                assert_eq!((l, &r.0), (&lease, &load))
            }
            e => panic!("{e:?}"),
        }
        let back =
            FederationState::decode_state(&warden_raft_store::codec::encode(&s).unwrap()).unwrap();
        assert_eq!(back.history, s.history);
    }

    #[test]
    fn a_withdrawn_lease_is_gone_and_a_gateway_can_be_corrected() {
        let mut s = FederationState::default();
        register(&mut s, "a", "a.td", false);
        let lease = lease_of_a();
        s.apply(2, &Command::RenewLease { lease });
        let w = Command::WithdrawLease {
            cluster: "a".into(),
            at: 6,
        };
        assert_eq!(s.apply(3, &w), CommandResult::Applied { revision: 3 });
        assert!(s.leases.is_empty());
        assert!(matches!(
            s.history.back().map(|c| &c.event),
            Some(ChangeEvent::LeaseWithdrawn { cluster }) if cluster == "a"
        ));
        assert_eq!(
            s.apply(4, &w),
            CommandResult::Applied { revision: 3 },
            "nothing left to withdraw: no change"
        );
        let set = |gw: &str| Command::SetClusterGateway {
            name: "a".into(),
            gateway: gw.into(),
            at: 7,
        };
        assert_eq!(
            s.apply(5, &set("127.0.0.1:2")),
            CommandResult::Applied { revision: 4 }
        );
        assert_eq!(s.clusters["a"].gateway, "127.0.0.1:2");
        assert_eq!(
            s.apply(6, &set("127.0.0.1:2")),
            CommandResult::Applied { revision: 4 }
        );
        let missing = Command::SetClusterGateway {
            name: "zz".into(),
            gateway: "127.0.0.1:2".into(),
            at: 7,
        };
        assert!(matches!(
            s.apply(7, &missing),
            CommandResult::Rejected(Rejection::NotFound(_))
        ));
    }

    #[test]
    fn one_policy_per_service() {
        let mut s = FederationState::default();
        let p = |id: &str| TrafficPolicy {
            id: id.into(),
            service: "shop/cart".into(),
            failover_order: vec![],
            weights: [("a".to_string(), 80), ("b".to_string(), 20)].into(),
            overprovisioning_percent: None,
            max_egress_percent: None,
            updated_at: 1,
        };
        assert_eq!(
            s.apply(1, &Command::PutTrafficPolicy { policy: p("p1") }),
            CommandResult::Applied { revision: 1 }
        );
        assert_eq!(
            s.apply(2, &Command::PutTrafficPolicy { policy: p("p1") }),
            CommandResult::Applied { revision: 2 }
        );
        assert!(matches!(
            s.apply(3, &Command::PutTrafficPolicy { policy: p("p2") }),
            CommandResult::Rejected(Rejection::AlreadyExists(_))
        ));
        assert_eq!(
            s.apply(
                4,
                &Command::DeleteTrafficPolicy {
                    id: "p1".into(),
                    at: 2
                }
            ),
            CommandResult::Applied { revision: 3 }
        );
        assert!(matches!(
            s.apply(
                5,
                &Command::DeleteTrafficPolicy {
                    id: "p1".into(),
                    at: 2
                }
            ),
            CommandResult::Rejected(Rejection::NotFound(_))
        ));
    }

    #[test]
    fn history_is_bounded_and_old_revisions_expire() {
        let mut s = FederationState::default();
        for i in 0..(HISTORY_LEN + 10) {
            s.put_bundle("td", "P", i as u64);
        }
        assert_eq!(s.history.len(), HISTORY_LEN);
        assert!(
            s.changes_after(0, 10).is_none(),
            "revision 0 fell out of the history"
        );
        assert!(s.changes_after(10, 10).is_some());
        assert_eq!(s.changes_after(s.revision, 10).unwrap().len(), 0);
    }
}
