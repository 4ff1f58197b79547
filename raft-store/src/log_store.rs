//! [`LogStore`]: openraft's log storage on redb.
//!
//! Every `append` and `save_vote` is one write transaction committed with redb's default
//! `Durability::Immediate` (fsync) before openraft hears it is done, so an acknowledged entry
//! or vote survives a crash. Reads use read transactions and never block writers.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    AnyError, ErrorSubject, ErrorVerb, LogId, LogState, OptionalSend, RaftLogId, RaftLogReader,
    RaftTypeConfig, StorageError, StorageIOError, Vote,
};
use redb::{Database, Durability, ReadableDatabase, ReadableTable};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::db::{KEY_COMMITTED, KEY_PURGED, KEY_VOTE, LOGS, META};

/// The log, vote and committed id of one node. Cheap to clone: clones share the database.
pub struct LogStore<C: RaftTypeConfig> {
    db: Arc<Database>,
    _c: PhantomData<C>,
}

impl<C: RaftTypeConfig> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            _c: PhantomData,
        }
    }
}

impl<C: RaftTypeConfig> LogStore<C> {
    /// Wraps an open database (see [`crate::open`]).
    pub fn new(db: Arc<Database>) -> Self {
        Self {
            db,
            _c: PhantomData,
        }
    }
}

fn io_err<NID: openraft::NodeId>(
    subject: ErrorSubject<NID>,
    verb: ErrorVerb,
    e: impl Into<redb::Error>,
) -> StorageError<NID> {
    let e: redb::Error = e.into();
    StorageError::IO {
        source: StorageIOError::new(subject, verb, AnyError::new(&e)),
    }
}

fn codec_err<NID: openraft::NodeId>(
    subject: ErrorSubject<NID>,
    verb: ErrorVerb,
    e: codec::CodecError,
) -> StorageError<NID> {
    StorageError::IO {
        source: StorageIOError::new(subject, verb, AnyError::new(&e)),
    }
}

impl<C: RaftTypeConfig> LogStore<C> {
    fn read_meta<T: DeserializeOwned>(
        &self,
        key: &str,
        subject: ErrorSubject<C::NodeId>,
    ) -> Result<Option<T>, StorageError<C::NodeId>> {
        let rd = |e: redb::Error| io_err(subject.clone(), ErrorVerb::Read, e);
        let txn = self.db.begin_read().map_err(|e| rd(e.into()))?;
        let table = txn.open_table(META).map_err(|e| rd(e.into()))?;
        match table.get(key).map_err(|e| rd(e.into()))? {
            None => Ok(None),
            Some(v) => codec::decode(v.value())
                .map(Some)
                .map_err(|e| codec_err(subject.clone(), ErrorVerb::Read, e)),
        }
    }

    fn write_meta<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        subject: ErrorSubject<C::NodeId>,
    ) -> Result<(), StorageError<C::NodeId>> {
        self.write_meta_with(key, value, subject, Durability::Immediate)
    }

    fn write_meta_with<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        subject: ErrorSubject<C::NodeId>,
        durability: Durability,
    ) -> Result<(), StorageError<C::NodeId>> {
        let bytes =
            codec::encode(value).map_err(|e| codec_err(subject.clone(), ErrorVerb::Write, e))?;
        let wr = |e: redb::Error| io_err(subject.clone(), ErrorVerb::Write, e);
        let mut txn = self.db.begin_write().map_err(|e| wr(e.into()))?;
        txn.set_durability(durability).map_err(|e| wr(e.into()))?;
        {
            let mut table = txn.open_table(META).map_err(|e| wr(e.into()))?;
            table
                .insert(key, bytes.as_slice())
                .map_err(|e| wr(e.into()))?;
        }
        txn.commit().map_err(|e| wr(e.into()))
    }

    /// Deletes every log entry whose index lies in `range`, and optionally records the last
    /// purged id, in one durable transaction.
    fn delete_logs(
        &self,
        range: (Bound<u64>, Bound<u64>),
        purged: Option<&LogId<C::NodeId>>,
    ) -> Result<(), StorageError<C::NodeId>> {
        let wr = |e: redb::Error| io_err(ErrorSubject::Logs, ErrorVerb::Delete, e);
        let purged_bytes = match purged {
            Some(id) => Some(
                codec::encode(id)
                    .map_err(|e| codec_err(ErrorSubject::Logs, ErrorVerb::Write, e))?,
            ),
            None => None,
        };
        let txn = self.db.begin_write().map_err(|e| wr(e.into()))?;
        {
            let mut logs = txn.open_table(LOGS).map_err(|e| wr(e.into()))?;
            logs.retain_in::<u64, _>(range, |_, _| false)
                .map_err(|e| wr(e.into()))?;
            if let Some(bytes) = purged_bytes {
                let mut meta = txn.open_table(META).map_err(|e| wr(e.into()))?;
                meta.insert(KEY_PURGED, bytes.as_slice())
                    .map_err(|e| wr(e.into()))?;
            }
        }
        txn.commit().map_err(|e| wr(e.into()))
    }
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    /// Writes entries in one durable (fsynced) transaction. openraft's `append` uses this;
    /// it is public for bulk loading (benchmarks, restore tools) outside a running Raft.
    pub fn append_entries(
        &self,
        entries: impl IntoIterator<Item = C::Entry>,
    ) -> Result<(), StorageError<C::NodeId>> {
        let wr = |e: redb::Error| io_err(ErrorSubject::Logs, ErrorVerb::Write, e);
        let txn = self.db.begin_write().map_err(|e| wr(e.into()))?;
        {
            let mut table = txn.open_table(LOGS).map_err(|e| wr(e.into()))?;
            for entry in entries {
                let id = entry.get_log_id().clone();
                let index = id.index;
                let bytes = codec::encode(&entry)
                    .map_err(|e| codec_err(ErrorSubject::Log(id), ErrorVerb::Write, e))?;
                table
                    .insert(index, bytes.as_slice())
                    .map_err(|e| wr(e.into()))?;
            }
        }
        // Durability::Immediate (the default): commit returns after fsync.
        txn.commit().map_err(|e| wr(e.into()))?;
        Ok(())
    }
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        let rd = |e: redb::Error| io_err(ErrorSubject::Logs, ErrorVerb::Read, e);
        let txn = self.db.begin_read().map_err(|e| rd(e.into()))?;
        let table = txn.open_table(LOGS).map_err(|e| rd(e.into()))?;
        let bounds = (range.start_bound().cloned(), range.end_bound().cloned());
        let mut out = Vec::new();
        for item in table.range::<u64>(bounds).map_err(|e| rd(e.into()))? {
            let (k, v) = item.map_err(|e| rd(e.into()))?;
            let entry: C::Entry = codec::decode(v.value())
                .map_err(|e| codec_err(ErrorSubject::LogIndex(k.value()), ErrorVerb::Read, e))?;
            out.push(entry);
        }
        Ok(out)
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        let last_purged_log_id: Option<LogId<C::NodeId>> =
            self.read_meta(KEY_PURGED, ErrorSubject::Logs)?;
        let rd = |e: redb::Error| io_err(ErrorSubject::Logs, ErrorVerb::Read, e);
        let txn = self.db.begin_read().map_err(|e| rd(e.into()))?;
        let table = txn.open_table(LOGS).map_err(|e| rd(e.into()))?;
        let last = match table.last().map_err(|e| rd(e.into()))? {
            Some((k, v)) => {
                let entry: C::Entry = codec::decode(v.value()).map_err(|e| {
                    codec_err(ErrorSubject::LogIndex(k.value()), ErrorVerb::Read, e)
                })?;
                Some(entry.get_log_id().clone())
            }
            None => last_purged_log_id.clone(),
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.write_meta(KEY_VOTE, vote, ErrorSubject::Vote)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        self.read_meta(KEY_VOTE, ErrorSubject::Vote)
    }

    /// Records the committed id without an fsync of its own: it only saves replay work on
    /// restart (a stale value is safe — the leader re-sends the commit index), and the next
    /// durable append makes it durable anyway. This saves one fsync per commit on every node.
    async fn save_committed(
        &mut self,
        committed: Option<LogId<C::NodeId>>,
    ) -> Result<(), StorageError<C::NodeId>> {
        self.write_meta_with(
            KEY_COMMITTED,
            &committed,
            ErrorSubject::Store,
            Durability::None,
        )
    }

    async fn read_committed(
        &mut self,
    ) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(self
            .read_meta::<Option<LogId<C::NodeId>>>(KEY_COMMITTED, ErrorSubject::Store)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.append_entries(entries)?;
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        tracing::debug!(index = log_id.index, "truncating log");
        self.delete_logs((Bound::Included(log_id.index), Bound::Unbounded), None)
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        tracing::debug!(index = log_id.index, "purging log");
        self.delete_logs(
            (Bound::Unbounded, Bound::Included(log_id.index)),
            Some(&log_id),
        )
    }
}
