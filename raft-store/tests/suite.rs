//! Runs openraft's storage conformance suite against the redb-backed store.

use std::collections::BTreeMap;
use std::io::Cursor;

use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};
use serde::{Deserialize, Serialize};
use warden_raft_store::{LogStore, StateMachineCore, StateMachineStore};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Set {
    key: String,
    value: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Kv(BTreeMap<String, String>);

impl StateMachineCore for Kv {
    type Request = Set;
    type Response = Option<String>;
    fn apply(&mut self, _index: u64, r: &Set) -> Option<String> {
        self.0.insert(r.key.clone(), r.value.clone())
    }
    fn empty_response(&self) -> Option<String> {
        None
    }
}

openraft::declare_raft_types!(
    pub TestConfig:
        D = Set,
        R = Option<String>,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TestConfig>,
        SnapshotData = Cursor<Vec<u8>>,
);

struct Builder;

impl
    StoreBuilder<
        TestConfig,
        LogStore<TestConfig>,
        StateMachineStore<TestConfig, Kv>,
        tempfile::TempDir,
    > for Builder
{
    async fn build(
        &self,
    ) -> Result<
        (
            tempfile::TempDir,
            LogStore<TestConfig>,
            StateMachineStore<TestConfig, Kv>,
        ),
        StorageError<u64>,
    > {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = warden_raft_store::open(dir.path(), 1).expect("open store");
        let log = LogStore::new(db.clone());
        let sm = StateMachineStore::new(db)?;
        Ok((dir, log, sm))
    }
}

/// The store passes every case of openraft's storage conformance suite.
#[test]
fn openraft_storage_suite() {
    if let Err(e) = Suite::test_all(Builder) {
        panic!("storage suite failed: {e}");
    }
}

/// A state whose lock was poisoned by a panic in apply yields an error, never an empty
/// snapshot that a follower would install as the whole state.
#[test]
fn a_poisoned_state_gives_no_snapshot() {
    use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let db = warden_raft_store::open(dir.path(), 1).unwrap();
        let mut sm: StateMachineStore<TestConfig, Kv> = StateMachineStore::new(db).unwrap();
        let state = sm.state();
        let _ = std::thread::spawn(move || {
            let _held = state.write().unwrap();
            panic!("poison the lock (expected in this test)");
        })
        .join();
        let mut builder = sm.get_snapshot_builder().await;
        let err = builder.build_snapshot().await.unwrap_err();
        assert!(err.to_string().contains("poisoned"), "{err}");
    });
}

/// A state that encodes past what a node can decode again is not made a snapshot: building
/// fails and nothing replaces the log behind it (a follower could never install it).
#[test]
fn a_state_too_large_to_read_back_gives_no_snapshot() {
    use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let db = warden_raft_store::open(dir.path(), 1).unwrap();
        let mut sm: StateMachineStore<TestConfig, Kv> = StateMachineStore::new(db).unwrap();
        let big = "x".repeat(warden_raft_store::codec::MAX_DECODE_BYTES + 1);
        sm.state().write().unwrap().0.insert("k".into(), big);
        let mut builder = sm.get_snapshot_builder().await;
        let err = builder.build_snapshot().await.unwrap_err();
        assert!(err.to_string().contains("read back"), "{err}");
        assert!(sm.get_current_snapshot().await.unwrap().is_none());
    });
}
