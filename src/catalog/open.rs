//! Opening a data folder: its lock, the store (adopting the model when new), and the
//! derived indexes loaded, caught up or rebuilt from the store.

use std::fs::File;
use std::path::Path;
use std::sync::{Arc, RwLock};

use super::rebuild::{
    MAX_TOMBSTONE_SHARE, catch_up, check_recall, delete_gone, fill_from_store, load_directory, text_doc,
};
use super::store::is_postgres_url;
use super::vectors::Vectors;
use super::{Access, Catalog, CatalogError, Store, VectorChoice, db_path};
use crate::index::{IndexError, TextIndex, VectorBackend, VectorIndex};

/// The library's store: a PostgreSQL server when `database` names one (the library is
/// shared by the machines that name it), else the SQLite database in `data_dir`.
pub(super) async fn open_store(data_dir: &Path, database: Option<&str>) -> Result<Store, CatalogError> {
    match database {
        None => Ok(Store::open(&db_path(data_dir)).await?),
        Some(url) if is_postgres_url(url) => Ok(Store::connect(url).await?),
        Some(other) => Err(CatalogError::BadDatabase {
            given: other.chars().take_while(|c| *c != ':').collect(),
        }),
    }
}

impl Catalog {
    /// Opens `data_dir` for vectors of `model` (`dim` values each), its store the
    /// SQLite database in the folder.
    pub async fn open(data_dir: &Path, model: &str, dim: usize, access: Access) -> Result<Self, CatalogError> {
        Self::open_in(data_dir, None, model, dim, access).await
    }

    /// Opens a library whose store is `database` (a `postgres://` URL; None: the
    /// SQLite database in `data_dir`); its derived indexes live in `data_dir`, which the
    /// writer locks (each machine of a shared library has its own).
    pub async fn open_in(
        data_dir: &Path,
        database: Option<&str>,
        model: &str,
        dim: usize,
        access: Access,
    ) -> Result<Self, CatalogError> {
        Self::open_with(data_dir, database, None, model, dim, access).await
    }

    /// [`Catalog::open_in`] with the node's vector backend choice (`--vectors`; None:
    /// the library's, HNSW for a new one).
    pub async fn open_with(
        data_dir: &Path,
        database: Option<&str>,
        vectors: Option<VectorChoice>,
        model: &str,
        dim: usize,
        access: Access,
    ) -> Result<Self, CatalogError> {
        std::fs::create_dir_all(data_dir).map_err(|e| IndexError::io(data_dir, e))?;
        let lock = match access {
            Access::Write => Some(lock_folder(data_dir)?),
            Access::Read => None,
        };
        let store = open_store(data_dir, database).await?;
        // Before anything is written: a refused choice leaves the library as it was.
        let choice = super::vectors::choose(&store, vectors, access).await?;
        match store.model().await? {
            Some((indexed, _)) if indexed != model => {
                return Err(CatalogError::ModelMismatch {
                    indexed,
                    given: model.to_string(),
                });
            }
            Some(_) => {}
            None => {
                // An empty store adopts the model; one with frames but no model never happens.
                if access == Access::Write {
                    store.set_model(model, dim).await?;
                }
            }
        }
        let vectors = match choice {
            VectorChoice::Hnsw => Vectors::Embedded(open_vectors(data_dir, &store, model, dim, access).await?),
            VectorChoice::Pgvector => Vectors::Pg(super::vectors::open_pg(&store, model, dim, access).await?),
        };
        let (text, text_gen) = match TextIndex::open(&data_dir.join("text")) {
            Ok(t) => t,
            // A read-only folder can still be searched: the text index is rebuilt in memory.
            Err(e) if access == Access::Read => {
                tracing::info!("{e}; searching with a text index built in memory");
                (TextIndex::in_memory()?, None)
            }
            Err(e) => return Err(e.into()),
        };
        let generation = store.generation().await?;
        if text_gen != Some(generation) {
            tracing::info!("rebuilding the text index (at {text_gen:?}, store at {generation})");
            text.rebuild(
                &store.texts().await?.iter().map(text_doc).collect::<Vec<_>>(),
                generation,
            )?;
        }
        let directory = load_directory(&store).await?;
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            store,
            active: RwLock::new((model.to_string(), dim)),
            vectors: RwLock::new(vectors),
            text,
            directory: RwLock::new(Arc::new(directory)),
            frames: Default::default(),
            writes: tokio::sync::Mutex::new(()),
            followed: generation.into(),
            _lock: lock,
        })
    }
}

pub(super) fn lock_folder(dir: &Path) -> Result<File, CatalogError> {
    let path = dir.join("lock");
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied => CatalogError::ReadOnly {
                dir: dir.to_path_buf(),
                reason: e.to_string(),
            },
            _ => IndexError::io(&path, e).into(),
        })?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(CatalogError::Locked { dir: dir.to_path_buf() }),
        Err(std::fs::TryLockError::Error(e)) => Err(IndexError::io(&path, e).into()),
    }
}

/// Loads the vector index and brings it level with the store, rebuilding when needed.
async fn open_vectors(
    data_dir: &Path,
    store: &Store,
    model: &str,
    dim: usize,
    access: Access,
) -> Result<Box<dyn VectorBackend>, CatalogError> {
    let dir = data_dir.join("vectors");
    let generation = store.generation().await?;
    // The default backend: HNSW in memory, persisted beside the database.
    let writable = access == Access::Write;
    let fresh = async || -> Result<Box<dyn VectorBackend>, CatalogError> {
        let live = store.counts().await?.frames as usize;
        let idx: Box<dyn VectorBackend> =
            Box::new(VectorIndex::create(model, dim, live, writable.then_some(dir.as_path())));
        Ok(idx)
    };
    let loaded: Option<Box<dyn VectorBackend>> = match VectorIndex::load(&dir, model, dim, writable) {
        Ok(v) => v.map(|v| Box::new(v) as Box<dyn VectorBackend>),
        Err(e) => {
            tracing::warn!("{e}");
            None
        }
    };
    let mut idx = match loaded {
        Some(mut v) => {
            // Points whose frames are gone (removed or re-indexed videos) become
            // tombstones. An index saved at the store's generation kept them: frames
            // leave the store only in writes that move the generation on.
            if !(v.deletions_known() && v.generation() == generation) {
                delete_gone(v.as_mut(), store).await?;
            }
            if v.tombstones() as f64 > MAX_TOMBSTONE_SHARE * v.points().max(1) as f64 {
                tracing::info!(
                    "rebuilding the vector index: {} of its {} points are deleted frames",
                    v.tombstones(),
                    v.points()
                );
                fill_from_store(fresh().await?, store).await?
            } else {
                v
            }
        }
        None => fill_from_store(fresh().await?, store).await?,
    };
    // Frames committed after the index was last saved.
    let behind = idx.high_water() < store.max_frame_id().await?;
    if behind {
        catch_up(idx.as_mut(), store).await?;
    }
    // (An index still loading its saved graph checks itself once loaded.)
    if idx.ready() && !check_recall(idx.as_ref(), store).await? {
        tracing::warn!("vector index self-recall too low after load; rebuilding");
        idx = fill_from_store(fresh().await?, store).await?;
    }
    if access == Access::Write && (idx.generation() != generation || behind || !dir.join("vectors.json").exists()) {
        idx.checkpoint(&dir, generation)?;
    }
    Ok(idx)
}
