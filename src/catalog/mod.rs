//! `catalog`: an open data folder. The store (source of truth) and the derived indexes
//! (vector, text), kept in step: on open, an index that is missing, damaged, made for
//! another model or too full of tombstones is rebuilt from the store, and one that is
//! merely behind (a run that was killed after committing videos) is brought up to date
//! from the frames it lacks. Writers hold an exclusive lock on the folder.
//!
//! Used by both orchestrators: `jobs` writes through it, `search` reads through it.
//!
//! Split by concern: `open` (opening a folder, its lock, the indexes loaded or rebuilt),
//! `rebuild` (bringing a derived index level with the store), `write` (every change, under
//! the one write lock), `read` (the store's rows and the frames cache), `indexes` (searches
//! of the derived indexes), `tags` (tags, probes, the vocabulary), `switch` (moving to
//! another model), `consistency` (the check that everything agrees), `info` (a folder
//! read without opening it), `ocr` (the on-screen text settings and reads), `speech`
//! (the speech settings and transcripts), `keys` (API keys), `migrate` (moving a library
//! between a data folder and a PostgreSQL server), `vectors` (which vector backend the
//! library uses: the embedded HNSW or pgvector in its PostgreSQL database).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::index::{IndexError, TextIndex};

mod consistency;
mod directory;
mod follow;
mod frames;
mod indexes;
mod info;
mod keys;
mod migrate;
mod ocr;
mod open;
mod queue;
mod read;
mod rebuild;
mod speech;
// The store is the catalog's alone: everything reads and writes through the catalog.
mod store;
mod switch;
mod tags;
#[cfg(test)]
mod tests;
mod vectors;
mod write;

pub use consistency::Consistency;
pub use directory::{Directory, Listed};
use vectors::Vectors;
pub use vectors::{VectorChoice, VectorScope};

pub use info::{LibraryInfo, info, info_in};
pub use keys::{create_key, list_keys, revoke_key};
pub use migrate::migrate;
pub use queue::{Queue, QueueHandle};
use store::Store;
pub use store::node_id;
pub use store::{
    ApiKey, Claim, Counts, FileState, Frame, FrameTag, Integrity, Job, JobFile, JobKind, JobState, KeyScope, NewFrame,
    NewText, NewVideo, SavedProbe, Span, SpanTag, StoreError, Switch, SwitchStatus, TaggedFrame, Text, TextKind, Video,
    VideoStatus, now,
};

/// Errors of opening or updating the data folder.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
    /// `--database` names something other than a PostgreSQL server.
    #[error(
        "--database takes a PostgreSQL URL (postgres://user:password@host:port/database), not {given:?}: leave it out \
         to keep the library in the --data folder (SQLite)"
    )]
    BadDatabase { given: String },
    /// The folder's vectors were made by another model.
    #[error(
        "this library was indexed with the model {indexed:?} but {given:?} is loaded: search with --model pointing at \
         {indexed:?} (or without --model: the library remembers its model), or move the library to the new model \
         without downtime with `vidseek model use DIR` (or use another --data folder)"
    )]
    ModelMismatch { indexed: String, given: String },
    /// `--vectors` names another backend than the library's.
    #[error(
        "this library keeps its vectors in {library} but this node was started with --vectors {given}: leave out \
         --vectors (every node follows the library's choice, made when it was created) or use another library"
    )]
    VectorsMismatch { library: VectorChoice, given: VectorChoice },
    /// `--vectors pgvector` without a PostgreSQL store.
    #[error(
        "--vectors pgvector keeps the vectors in the library's PostgreSQL database, and this library is a --data \
         folder (SQLite): add --database postgres://... or leave out --vectors pgvector"
    )]
    VectorsNeedDatabase,
    /// The folder cannot be written (a read-only mount, no permission).
    #[error(
        "the data folder {} is read-only ({reason}): it can be searched but not changed; make it writable \
         (or pass another --data folder)",
        dir.display()
    )]
    ReadOnly { dir: PathBuf, reason: String },
    /// Another process is writing to the folder.
    #[error("the data folder {} is in use by another vidseek process (indexing or serving); wait for it or stop it", dir.display())]
    Locked { dir: PathBuf },
    /// An API key name that is empty, too long or has other characters than letters,
    /// digits, `-`, `_` and `.`.
    #[error("{name:?} is not a key name: use 1-64 letters, digits, '-', '_' or '.'")]
    BadKeyName { name: String },
    #[error(
        "a key named {name:?} exists already: pick another name, or revoke it first (`vidseek keys revoke {name}`)"
    )]
    KeyNameTaken { name: String },
    #[error("there is no live key named {name:?}: `vidseek keys list` shows the library's keys")]
    NoSuchKey { name: String },
    /// `vidseek migrate --to` names the library being moved.
    #[error("--to names the library itself ({target}): name a new PostgreSQL database or an empty data folder")]
    MigrateToItself { target: String },
    /// `vidseek migrate` into a store that already holds a library.
    #[error(
        "{target} already holds a library ({holds}): migrate only into an empty PostgreSQL database or a new data \
         folder; nothing was written"
    )]
    MigrateTargetInUse { target: String, holds: String },
    /// `vidseek migrate` while the library's queue has work in hand.
    #[error(
        "{jobs} indexing job(s) are running on the library: let them finish (or stop the workers and servers that \
         run them) and migrate again; nothing was written"
    )]
    MigrateBusy { jobs: i64 },
    /// There is no library where one was expected.
    #[error("there is no library at {place}: pass the --data folder (or --database) of the library to move")]
    NoLibrary { place: String },
    /// The system's random source could not be read.
    #[error("cannot make a key: /dev/urandom cannot be read ({0})")]
    KeyMaterial(String),
}

impl crate::error::Classified for CatalogError {
    fn fault(&self) -> crate::error::Fault {
        use crate::error::Fault;
        match self {
            CatalogError::Store(e) => e.fault(),
            CatalogError::Index(e) => e.fault(),
            CatalogError::ModelMismatch { .. } | CatalogError::Locked { .. } => Fault::Conflict,
            CatalogError::VectorsMismatch { .. } => Fault::Conflict,
            CatalogError::VectorsNeedDatabase => Fault::BadInput,
            CatalogError::ReadOnly { .. } => Fault::Unavailable,
            CatalogError::BadDatabase { .. } | CatalogError::BadKeyName { .. } => Fault::BadInput,
            CatalogError::KeyNameTaken { .. } => Fault::Conflict,
            CatalogError::MigrateToItself { .. } | CatalogError::NoLibrary { .. } => Fault::BadInput,
            CatalogError::MigrateTargetInUse { .. } | CatalogError::MigrateBusy { .. } => Fault::Conflict,
            CatalogError::NoSuchKey { .. } => Fault::NotFound,
            CatalogError::KeyMaterial(_) => Fault::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            CatalogError::Store(e) => e.code(),
            CatalogError::Index(e) => e.code(),
            CatalogError::ModelMismatch { .. } => "model_mismatch",
            CatalogError::Locked { .. } => "locked",
            CatalogError::VectorsMismatch { .. } => "vectors_mismatch",
            CatalogError::VectorsNeedDatabase => "vectors_need_database",
            CatalogError::ReadOnly { .. } => "read_only",
            CatalogError::BadDatabase { .. } => "bad_database",
            CatalogError::BadKeyName { .. } => "bad_key_name",
            CatalogError::KeyNameTaken { .. } => "key_name_taken",
            CatalogError::NoSuchKey { .. } => "no_such_key",
            CatalogError::MigrateToItself { .. } => "migrate_to_itself",
            CatalogError::MigrateTargetInUse { .. } => "migrate_target_in_use",
            CatalogError::MigrateBusy { .. } => "migrate_busy",
            CatalogError::NoLibrary { .. } => "no_library",
            CatalogError::KeyMaterial(_) => self.fault().code(),
        }
    }
}

/// An open data folder: the store and the indexes derived from it, kept in step.
pub struct Catalog {
    /// The folder holding the database and the indexes.
    pub data_dir: PathBuf,
    store: Store,
    /// The active model's name and dimension (changed by a completed switch).
    active: RwLock<(String, usize)>,
    /// The vector backend: embedded (HNSW by default; see [`crate::index::VectorBackend`] for what
    /// another must do) or pgvector in the store's database.
    vectors: RwLock<Vectors>,
    text: TextIndex,
    /// The videos with their frame runs, in memory (a snapshot per read).
    directory: RwLock<Arc<Directory>>,
    /// Frames and tags of recently searched videos.
    frames: frames::FrameCache,
    /// Held by every change to the library (store write plus index updates), so the
    /// store and both indexes see changes in the same order: a video deleted while it is
    /// being written can never leave its texts or vectors behind.
    writes: tokio::sync::Mutex<()>,
    /// The store generation the indexes reflect of other processes' writes (see
    /// [`Catalog::follow`]).
    followed: std::sync::atomic::AtomicU64,
    _lock: Option<File>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("data_dir", &self.data_dir)
            .field("model", &self.model())
            .finish()
    }
}

/// How the folder is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Searching only: no lock, indexes brought up to date in memory only.
    Read,
    /// Indexing or serving: exclusive lock, repaired indexes are saved.
    Write,
}

pub fn db_path(data: &Path) -> PathBuf {
    data.join("vidseek.db")
}

impl Catalog {
    /// The active model's name.
    pub fn model(&self) -> String {
        self.active.read().unwrap_or_else(|e| e.into_inner()).0.clone()
    }

    /// The active model's vector dimension.
    pub fn dim(&self) -> usize {
        self.active.read().unwrap_or_else(|e| e.into_inner()).1
    }

    /// True when the store is a server other machines share (PostgreSQL): their writes
    /// reach this node's indexes through [`Catalog::follow`].
    pub fn is_shared(&self) -> bool {
        !matches!(self.store.backend(), store::Backend::Sqlite)
    }

    /// The job queue (its rows live in the store).
    pub fn queue(&self) -> Queue<'_> {
        Queue::new(&self.store)
    }

    /// Closes the database (the indexes are saved by their own calls).
    pub async fn close(&self) {
        self.store.close().await;
    }

    /// The library's videos with their frame runs (a snapshot).
    pub fn directory(&self) -> Arc<Directory> {
        self.directory.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_directory(&self, d: Directory) {
        *self.directory.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(d);
    }
}
