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
}

/// Opens (creating if needed) `<dir>/raft.redb` and makes sure every table exists.
pub fn open(dir: &Path) -> Result<Arc<Database>, StoreError> {
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
        txn.open_table(LOGS).map_err(|e| open_err(e.into()))?;
        txn.open_table(META).map_err(|e| open_err(e.into()))?;
        txn.open_table(SNAPSHOT).map_err(|e| open_err(e.into()))?;
    }
    txn.commit().map_err(|e| open_err(e.into()))?;
    Ok(Arc::new(db))
}
