//! Which vector backend a library uses, and the one place that dispatches to it.
//!
//! Two shapes behind one enum, because they differ in kind, not in detail: the embedded
//! backend ([`VectorBackend`], by default the in-process HNSW graph) is synchronous,
//! derived on each node from the store and filtered by a closure over frame ids;
//! pgvector ([`PgTable`]) lives in the store's own PostgreSQL database, is written in
//! the store's transactions and is searched by SQL with the scope's videos and frames as
//! predicates inside the index scan. The catalog's writes, follows, switches and
//! searches match on [`Vectors`]; nothing else knows which one runs.
//!
//! The choice (`--vectors hnsw|pgvector`) is remembered in the library (`meta.vectors`)
//! when a writer first names one, so every node uses the same: a node that names the
//! other one is refused with both named (`VectorsMismatch`), a node that names none
//! follows the library (HNSW when nobody ever named one: naming pgvector on such a
//! library moves it, its table filled from the store; nodes still holding a graph keep
//! serving from it until restarted). pgvector needs a PostgreSQL store (`--database`) and the
//! `vector` extension 0.8 or newer, checked before anything is written.

use std::collections::HashSet;

use super::store::{Backend, PgTable, Store};
use super::{Access, CatalogError};
use crate::index::VectorBackend;
use crate::types::{FrameId, VideoId};

/// Where a library's frame vectors are searched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VectorChoice {
    /// HNSW in each node's memory, derived from the store (the default).
    Hnsw,
    /// pgvector's HNSW index in the library's PostgreSQL database.
    Pgvector,
}

impl VectorChoice {
    /// Its name on the command line and in `meta.vectors`.
    pub fn as_str(self) -> &'static str {
        match self {
            VectorChoice::Hnsw => "hnsw",
            VectorChoice::Pgvector => "pgvector",
        }
    }
}

impl std::fmt::Display for VectorChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for VectorChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hnsw" => Ok(VectorChoice::Hnsw),
            "pgvector" => Ok(VectorChoice::Pgvector),
            other => Err(format!("{other:?} is not a vector backend: use hnsw or pgvector")),
        }
    }
}

/// The active model's vectors as the catalog holds them.
pub(super) enum Vectors {
    /// In this process (HNSW by default).
    Embedded(Box<dyn VectorBackend>),
    /// In the store's database (pgvector): the catalog keeps only the table's name.
    Pg(PgTable),
}

impl Vectors {
    pub(super) fn model(&self) -> &str {
        match self {
            Vectors::Embedded(v) => v.model(),
            Vectors::Pg(t) => &t.model,
        }
    }

    pub(super) fn dim(&self) -> usize {
        match self {
            Vectors::Embedded(v) => v.dim(),
            Vectors::Pg(t) => t.dim,
        }
    }

    /// The embedded backend, when that is what the library uses.
    pub(super) fn embedded(&mut self) -> Option<&mut Box<dyn VectorBackend>> {
        match self {
            Vectors::Embedded(v) => Some(v),
            Vectors::Pg(_) => None,
        }
    }
}

/// Which frames a vector search may return: the allowed videos (sorted) and frames.
#[derive(Clone, Copy, Debug, Default)]
pub struct VectorScope<'a> {
    /// Allowed videos, sorted (None: every video).
    pub videos: Option<&'a [VideoId]>,
    /// Allowed frames (a `tag:` filter; None: every frame of the allowed videos).
    pub frames: Option<&'a HashSet<FrameId>>,
}

impl VectorScope<'_> {
    /// Whether every frame is allowed.
    pub fn is_all(&self) -> bool {
        self.videos.is_none() && self.frames.is_none()
    }
}

/// The library's backend: `given` (the node's `--vectors`) checked against the one the
/// library remembers, pgvector's requirements checked, and a writer's first choice
/// recorded. Nothing is written when a check fails.
pub(super) async fn choose(
    store: &Store,
    given: Option<VectorChoice>,
    access: Access,
) -> Result<VectorChoice, CatalogError> {
    let recorded = match store.meta("vectors").await? {
        Some(v) => Some(
            v.parse::<VectorChoice>()
                .map_err(|e| CatalogError::Store(super::StoreError::Corrupt(format!("meta.vectors: {e}"))))?,
        ),
        None => None,
    };
    if let (Some(g), Some(r)) = (given, recorded)
        && g != r
    {
        return Err(CatalogError::VectorsMismatch { library: r, given: g });
    }
    let chosen = given.or(recorded).unwrap_or(VectorChoice::Hnsw);
    if chosen == VectorChoice::Pgvector {
        if matches!(store.backend(), Backend::Sqlite) {
            return Err(CatalogError::VectorsNeedDatabase);
        }
        store.check_pgvector().await?;
    }
    // A library nobody named a backend for is HNSW's; naming pgvector on it moves it
    // (its table is filled from the store below), and from then on it is remembered.
    if recorded.is_none() && given.is_some() && access == Access::Write {
        store.set_meta("vectors", chosen.as_str()).await?;
    }
    Ok(chosen)
}

/// The pgvector table of `model` made level with the store: created when missing,
/// filled with the stored vectors it lacks, its HNSW index built.
pub(super) async fn open_pg(store: &Store, model: &str, dim: usize, access: Access) -> Result<PgTable, CatalogError> {
    let t = PgTable::new(model, dim);
    if access == Access::Write || !store.pg_table_exists(&t).await? {
        store.pg_create(&t).await?;
        let added = store.pg_fill(&t).await?;
        if added > 0 {
            tracing::info!("pgvector: {added} stored vectors of {model} added to {}", t.name);
        }
        store.pg_index(&t).await?;
    }
    Ok(t)
}
