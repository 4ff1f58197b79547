//! [`StateMachineStore`]: openraft's state machine, with snapshots persisted on redb.
//!
//! The application state (any [`StateMachineCore`]) lives in memory behind a shared lock so
//! that readers (the REST API) never go through Raft. It is made durable by snapshots: a built
//! or installed snapshot is written to disk before openraft is told, and on start the node
//! restores the last snapshot and openraft re-applies the committed log after it.

use std::io::Cursor;
use std::marker::PhantomData;
use std::sync::{Arc, RwLock};

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftSnapshotBuilder,
    RaftTypeConfig, Snapshot, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use redb::{Database, ReadableDatabase};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::db::{KEY_SNAPSHOT, SNAPSHOT};

/// The application's deterministic state machine.
///
/// `apply` must be pure: the same requests in the same order give the same state and
/// responses on every node. Anything time-dependent comes inside the request.
pub trait StateMachineCore: Default + Serialize + DeserializeOwned + Send + Sync + 'static {
    type Request;
    type Response;
    /// Applies one committed request found at `log_index`.
    fn apply(&mut self, log_index: u64, request: &Self::Request) -> Self::Response;
    /// The response recorded for entries that carry no request (blank and membership entries).
    fn empty_response(&self) -> Self::Response;
    /// Decodes a snapshot of the state. The default is the codec's; a state that grew a
    /// field may also read the shape an older build wrote.
    fn decode_state(bytes: &[u8]) -> Result<Self, codec::CodecError> {
        codec::decode(bytes)
    }
}

/// The in-memory application state, shared with readers.
pub type SharedState<S> = Arc<RwLock<S>>;

/// What is persisted for the current snapshot.
type StoredSnapshot<C> = (
    SnapshotMeta<<C as RaftTypeConfig>::NodeId, <C as RaftTypeConfig>::Node>,
    Vec<u8>,
);

/// openraft's state machine for one node.
pub struct StateMachineStore<C: RaftTypeConfig, S> {
    db: Arc<Database>,
    state: SharedState<S>,
    last_applied: Option<LogId<C::NodeId>>,
    membership: StoredMembership<C::NodeId, C::Node>,
    /// Makes snapshot ids unique within this process's lifetime.
    snapshot_seq: u64,
    _c: PhantomData<C>,
}

fn sm_err<NID: openraft::NodeId>(
    verb: ErrorVerb,
    e: impl std::error::Error + 'static,
) -> StorageError<NID> {
    StorageError::IO {
        source: StorageIOError::new(ErrorSubject::Snapshot(None), verb, AnyError::new(&e)),
    }
}

fn lock_err<NID: openraft::NodeId>() -> StorageError<NID> {
    StorageError::IO {
        source: StorageIOError::new(
            ErrorSubject::StateMachine,
            ErrorVerb::Write,
            AnyError::error("state lock poisoned by a panic in apply"),
        ),
    }
}

fn load_snapshot<C: RaftTypeConfig>(
    db: &Database,
) -> Result<Option<StoredSnapshot<C>>, StorageError<C::NodeId>> {
    let txn = db.begin_read().map_err(|e| sm_err(ErrorVerb::Read, e))?;
    let table = txn
        .open_table(SNAPSHOT)
        .map_err(|e| sm_err(ErrorVerb::Read, e))?;
    match table
        .get(KEY_SNAPSHOT)
        .map_err(|e| sm_err(ErrorVerb::Read, e))?
    {
        None => Ok(None),
        Some(v) => codec::decode(v.value())
            .map(Some)
            .map_err(|e| sm_err(ErrorVerb::Read, e)),
    }
}

fn save_snapshot<C: RaftTypeConfig>(
    db: &Database,
    meta: &SnapshotMeta<C::NodeId, C::Node>,
    data: &[u8],
) -> Result<(), StorageError<C::NodeId>> {
    let bytes = codec::encode(&(meta, data)).map_err(|e| sm_err(ErrorVerb::Write, e))?;
    let txn = db.begin_write().map_err(|e| sm_err(ErrorVerb::Write, e))?;
    {
        let mut table = txn
            .open_table(SNAPSHOT)
            .map_err(|e| sm_err(ErrorVerb::Write, e))?;
        table
            .insert(KEY_SNAPSHOT, bytes.as_slice())
            .map_err(|e| sm_err(ErrorVerb::Write, e))?;
    }
    txn.commit().map_err(|e| sm_err(ErrorVerb::Write, e))
}

impl<C, S> StateMachineStore<C, S>
where
    C: RaftTypeConfig,
    S: StateMachineCore,
{
    /// Opens the state machine of a database, restoring the last snapshot if there is one.
    pub fn new(db: Arc<Database>) -> Result<Self, StorageError<C::NodeId>> {
        let mut sm = Self {
            db,
            state: Arc::new(RwLock::new(S::default())),
            last_applied: None,
            membership: StoredMembership::default(),
            snapshot_seq: 0,
            _c: PhantomData,
        };
        if let Some((meta, data)) = load_snapshot::<C>(&sm.db)? {
            let state: S = S::decode_state(&data).map_err(|e| sm_err(ErrorVerb::Read, e))?;
            *sm.state.write().map_err(|_| lock_err())? = state;
            sm.last_applied = meta.last_log_id;
            sm.membership = meta.last_membership.clone();
        }
        Ok(sm)
    }

    /// The state readers use; it reflects every applied entry.
    pub fn state(&self) -> SharedState<S> {
        self.state.clone()
    }
}

/// Builds a snapshot of the state as it was when the builder was made.
pub struct SnapshotBuilder<C: RaftTypeConfig> {
    db: Arc<Database>,
    meta: SnapshotMeta<C::NodeId, C::Node>,
    /// The encoded state, or why it could not be captured (a codec error, or a lock poisoned
    /// by a panic in apply): never an empty snapshot that would pass for a real one.
    data: Result<Vec<u8>, String>,
    /// How long encoding the state took (applies wait for it: it holds the state's lock).
    capture: std::time::Duration,
}

impl<C> RaftSnapshotBuilder<C> for SnapshotBuilder<C>
where
    C: RaftTypeConfig<SnapshotData = Cursor<Vec<u8>>>,
{
    async fn build_snapshot(&mut self) -> Result<Snapshot<C>, StorageError<C::NodeId>> {
        let data = match &self.data {
            Ok(d) => d.clone(),
            Err(e) => {
                return Err(StorageError::IO {
                    source: StorageIOError::new(
                        ErrorSubject::Snapshot(None),
                        ErrorVerb::Write,
                        AnyError::error(format!("cannot capture the state: {e}")),
                    ),
                });
            }
        };
        let started = std::time::Instant::now();
        save_snapshot::<C>(&self.db, &self.meta, &data)?;
        tracing::info!(
            snapshot = %self.meta.snapshot_id,
            bytes = data.len(),
            capture_ms = self.capture.as_secs_f64() * 1e3,
            save_ms = started.elapsed().as_secs_f64() * 1e3,
            "snapshot built"
        );
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl<C, S> RaftStateMachine<C> for StateMachineStore<C, S>
where
    C: RaftTypeConfig<Entry = openraft::Entry<C>, SnapshotData = Cursor<Vec<u8>>>,
    S: StateMachineCore<Request = C::D, Response = C::R>,
{
    type SnapshotBuilder = SnapshotBuilder<C>;

    async fn applied_state(
        &mut self,
    ) -> Result<
        (
            Option<LogId<C::NodeId>>,
            StoredMembership<C::NodeId, C::Node>,
        ),
        StorageError<C::NodeId>,
    > {
        Ok((self.last_applied.clone(), self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<C::R>, StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut state = self.state.write().map_err(|_| lock_err())?;
        let mut out = Vec::new();
        for entry in entries {
            self.last_applied = Some(entry.log_id.clone());
            let resp = match &entry.payload {
                EntryPayload::Blank => state.empty_response(),
                EntryPayload::Normal(req) => state.apply(entry.log_id.index, req),
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                    state.empty_response()
                }
            };
            out.push(resp);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshot_seq += 1;
        let id = self.snapshot_seq;
        let started = std::time::Instant::now();
        let data = match self.state.read() {
            Ok(s) => codec::encode(&*s).map_err(|e| e.to_string()),
            Err(_) => Err("state lock poisoned by a panic in apply".to_string()),
        };
        // A snapshot no node could decode again must not replace the log behind it.
        let data = data.and_then(|d| {
            if d.len() > codec::MAX_DECODE_BYTES {
                Err(format!(
                    "the state encodes to {} bytes, beyond the {} a node can read back",
                    d.len(),
                    codec::MAX_DECODE_BYTES
                ))
            } else {
                Ok(d)
            }
        });
        let snapshot_id = match &self.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, id),
            None => format!("none-{id}"),
        };
        SnapshotBuilder {
            db: self.db.clone(),
            meta: SnapshotMeta {
                last_log_id: self.last_applied.clone(),
                last_membership: self.membership.clone(),
                snapshot_id,
            },
            data,
            capture: started.elapsed(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<C::NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<C::NodeId, C::Node>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<C::NodeId>> {
        let data = snapshot.into_inner();
        let new_state: S = S::decode_state(&data).map_err(|e| sm_err(ErrorVerb::Read, e))?;
        // Durable first: if we crash after this, restart restores the installed snapshot.
        save_snapshot::<C>(&self.db, meta, &data)?;
        *self.state.write().map_err(|_| lock_err())? = new_state;
        self.last_applied = meta.last_log_id.clone();
        self.membership = meta.last_membership.clone();
        tracing::info!(snapshot = %meta.snapshot_id, "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<C>>, StorageError<C::NodeId>> {
        Ok(load_snapshot::<C>(&self.db)?.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
