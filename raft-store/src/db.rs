//! Opens the one redb file of a node's data directory and names its tables.
//!
//! redb was chosen over a hand-written segmented log because it gives crash-safe, fsynced
//! transactions (copy-on-write B-trees with a checksummed commit) in pure Rust, and ranged
//! deletes for truncation and purging come for free. See `docs/raft-store.md`.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, TableDefinition};

/// Log entries by index, each encoded with [`crate::codec`].
pub(crate) const LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("logs");
/// Small records: the vote, the committed log id, the last purged log id.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// The latest snapshot: its meta and its data.
pub(crate) const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshot");

pub(crate) const KEY_VOTE: &str = "vote";
pub(crate) const KEY_COMMITTED: &str = "committed";
pub(crate) const KEY_PURGED: &str = "last_purged";
pub(crate) const KEY_SNAPSHOT: &str = "current";
/// The data format version the store was created with (see [`open`]).
pub(crate) const KEY_FORMAT: &str = "format";

/// A storage failure outside openraft's own error type (opening the data directory).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open raft store {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: redb::Error,
    },
    /// The data directory holds data of another format than this build reads.
    #[error(
        "raft store {path} holds data format {found}; this build reads format {expected}: start this member with an empty data directory and add it again (it catches up from the others)"
    )]
    Format {
        path: String,
        found: u32,
        expected: u32,
    },
}

/// Opens (creating if needed) `<dir>/raft.redb` and makes sure every table exists.
///
/// `format` is the version of what the state machine's types encode to: log entries and
/// snapshots are not self-describing, so data written in another format would decode wrongly.
/// A new store records `format`; an existing one must hold the same (stores made before the
/// version was recorded count as format 1).
pub fn open(dir: &Path, format: u32) -> Result<Arc<Database>, StoreError> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
        path: dir.display().to_string(),
        source,
    })?;
    let path = dir.join("raft.redb");
    let open_err = |source: redb::Error| StoreError::Open {
        path: path.display().to_string(),
        source,
    };
    let db = Database::create(&path).map_err(|e| open_err(e.into()))?;
    let txn = db.begin_write().map_err(|e| open_err(e.into()))?;
    {
        use redb::{ReadableTable, ReadableTableMetadata};
        let logs = txn.open_table(LOGS).map_err(|e| open_err(e.into()))?;
        let mut meta = txn.open_table(META).map_err(|e| open_err(e.into()))?;
        let snapshot = txn.open_table(SNAPSHOT).map_err(|e| open_err(e.into()))?;
        let stored = meta
            .get(KEY_FORMAT)
            .map_err(|e| open_err(e.into()))?
            .map(|v| {
                let b = v.value();
                <[u8; 4]>::try_from(b).map(u32::from_le_bytes).unwrap_or(0)
            });
        let empty = logs.is_empty().map_err(|e| open_err(e.into()))?
            && meta.is_empty().map_err(|e| open_err(e.into()))?
            && snapshot.is_empty().map_err(|e| open_err(e.into()))?;
        let found = match stored {
            Some(f) => f,
            None if empty => {
                meta.insert(KEY_FORMAT, format.to_le_bytes().as_slice())
                    .map_err(|e| open_err(e.into()))?;
                format
            }
            None => 1,
        };
        if found != format {
            return Err(StoreError::Format {
                path: path.display().to_string(),
                found,
                expected: format,
            });
        }
    }
    txn.commit().map_err(|e| open_err(e.into()))?;
    Ok(Arc::new(db))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_keeps_its_format_and_refuses_another() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path(), 2).unwrap());
        drop(open(dir.path(), 2).unwrap());
        let err = open(dir.path(), 3).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Format {
                    found: 2,
                    expected: 3,
                    ..
                }
            ),
            "{err}"
        );
    }
}
