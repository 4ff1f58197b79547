//! The services this gateway exports, as the registry hands them to the publisher: a shared
//! view, so neither actor imports the other.

use actix::Addr;

use super::pool::PoolActor;

/// A local service to export, with its pool (for its healthy endpoint count).
#[derive(Clone)]
pub struct Export {
    pub namespace: String,
    pub name: String,
    pub ports: Vec<warden_federation::model::ServicePort>,
    pub weight: u32,
    /// Only these clusters may import it (empty: every cluster).
    pub export_to: Vec<String>,
    pub pool: Addr<PoolActor>,
}

/// The full set of exports at one generation.
#[derive(Clone, Default)]
pub struct ExportSet {
    /// Discovery has seen the full state at least once: only then may exports that are not
    /// in `items` be removed from the store.
    pub synced: bool,
    /// Bumped on every change; a new generation triggers a reconcile with the store.
    pub generation: u64,
    pub items: Vec<Export>,
}
