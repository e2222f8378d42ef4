//! `catalog`: an open data folder. The store (source of truth) and the derived indexes
//! (vector, text), kept in step: on open, an index that is missing, damaged, made for
//! another model or too full of tombstones is rebuilt from the store, and one that is
//! merely behind (a run that was killed after committing videos) is brought up to date
//! from the frames it lacks. Writers hold an exclusive lock on the folder.
//!
//! Used by both orchestrators: `jobs` writes through it, `search` reads through it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use crate::index::{IndexError, TextDoc, TextIndex, VectorIndex};
use crate::store::{NewVideo, Store, StoreError, Text};

/// Errors of opening or updating the data folder.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The folder's vectors were made by another model.
    #[error(
        "this library was indexed with the model {indexed:?} but {given:?} is loaded: search with --model pointing at \
         {indexed:?}, or re-embed everything with `vidseek reembed` (or use another --data folder)"
    )]
    ModelMismatch { indexed: String, given: String },
    /// Another process is writing to the folder.
    #[error("the data folder {} is in use by another vidseek process (indexing or serving); wait for it or stop it", dir.display())]
    Locked { dir: PathBuf },
}

impl CatalogError {
    pub fn is_user_error(&self) -> bool {
        matches!(self, CatalogError::ModelMismatch { .. } | CatalogError::Locked { .. })
    }
}

/// Rebuild the vector index when more than this share of its points are deleted frames.
const MAX_TOMBSTONE_SHARE: f64 = 0.25;
/// Self-recall below this after a load or build triggers one rebuild.
const MIN_SELF_RECALL: f64 = 0.98;

pub struct Catalog {
    pub data_dir: PathBuf,
    pub store: Store,
    model: String,
    dim: usize,
    vectors: RwLock<VectorIndex>,
    text: TextIndex,
    text_writes: Mutex<()>,
    _lock: Option<File>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("data_dir", &self.data_dir)
            .field("model", &self.model)
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
    /// Opens `data_dir` for vectors of `model` (`dim` values each).
    pub async fn open(data_dir: &Path, model: &str, dim: usize, access: Access) -> Result<Self, CatalogError> {
        std::fs::create_dir_all(data_dir).map_err(|e| IndexError::io(data_dir, e))?;
        let lock = match access {
            Access::Write => Some(lock_folder(data_dir)?),
            Access::Read => None,
        };
        let store = Store::open(&db_path(data_dir)).await?;
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
        let vectors = open_vectors(data_dir, &store, model, dim, access).await?;
        let (text, text_gen) = TextIndex::open(&data_dir.join("text"))?;
        let generation = store.generation().await?;
        if text_gen != Some(generation) {
            tracing::info!("rebuilding the text index (at {text_gen:?}, store at {generation})");
            text.rebuild(
                &store.texts().await?.iter().map(text_doc).collect::<Vec<_>>(),
                generation,
            )?;
        }
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            store,
            model: model.to_string(),
            dim,
            vectors: RwLock::new(vectors),
            text,
            text_writes: Mutex::new(()),
            _lock: lock,
        })
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Writes one indexed video (replacing an earlier version of the same file) to the
    /// store in one transaction, then to the indexes. Returns the video id.
    pub async fn add_video(&self, v: &NewVideo) -> Result<i64, CatalogError> {
        let replaced = self.store.video_by_path(&v.path).await?.map(|old| old.id);
        let (id, frame_ids, generation) = self.store.put_video(v, &self.model).await?;
        {
            let mut vectors = self.vectors.write().unwrap_or_else(|e| e.into_inner());
            let items: Vec<(i64, &[f32])> = frame_ids
                .iter()
                .zip(&v.frames)
                .map(|(fid, f)| (*fid, f.vector.as_slice()))
                .collect();
            vectors.insert(&items)?;
        }
        let texts: Vec<TextDoc> = v
            .texts
            .iter()
            .map(|t| TextDoc {
                text_id: 0,
                video_id: id,
                kind: t.kind.to_string(),
                start: t.start,
                end: t.end,
                text: t.text.clone(),
            })
            .collect();
        let _w = self.text_writes.lock().unwrap_or_else(|e| e.into_inner());
        self.text
            .update(&replaced.into_iter().collect::<Vec<_>>(), &texts, generation)?;
        Ok(id)
    }

    /// Deletes a video; its frames become tombstones in the vector index.
    pub async fn remove_video(&self, id: i64) -> Result<bool, CatalogError> {
        let Some((_frames, generation)) = self.store.remove_video(id).await? else {
            return Ok(false);
        };
        let _w = self.text_writes.lock().unwrap_or_else(|e| e.into_inner());
        self.text.update(&[id], &[], generation)?;
        Ok(true)
    }

    /// Persists the vector index at the store's current generation (after a job; a
    /// crash before this only means the next open catches up from the store).
    pub async fn save_vectors(&self) -> Result<(), CatalogError> {
        let generation = self.store.generation().await?;
        let mut v = self.vectors.write().unwrap_or_else(|e| e.into_inner());
        if v.generation != generation || !self.data_dir.join("vectors/vectors.json").exists() {
            v.save(&self.data_dir.join("vectors"), generation)?;
        }
        Ok(())
    }

    /// Nearest frames to a unit vector: (frame id, cosine), best first. Deleted frames
    /// may appear; the caller drops ids the store no longer has.
    pub fn nearest(&self, query: &[f32], k: usize, ef: usize) -> Vec<(i64, f32)> {
        self.vectors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .search(query, k, ef)
    }

    /// Points in the vector index (live frames and tombstones).
    pub fn vector_points(&self) -> usize {
        self.vectors.read().unwrap_or_else(|e| e.into_inner()).points
    }

    pub fn text_search(&self, query: &str, limit: usize) -> Result<Vec<crate::index::TextHit>, CatalogError> {
        Ok(self.text.search(query, limit)?)
    }
}

/// Forgets every video's frames and texts and records `model` as the folder's model,
/// returning the paths that were indexed (to index them again with the new model).
pub async fn reset_for_model(data_dir: &Path, model: &str, dim: usize) -> Result<Vec<String>, CatalogError> {
    let _lock = lock_folder(data_dir)?;
    let store = Store::open(&db_path(data_dir)).await?;
    let paths = store.videos().await?.into_iter().map(|v| v.path).collect();
    store.clear_videos().await?;
    store.set_model(model, dim).await?;
    store.close().await;
    for sub in ["vectors", "text"] {
        let d = data_dir.join(sub);
        if d.exists() {
            std::fs::remove_dir_all(&d).map_err(|e| IndexError::io(&d, e))?;
        }
    }
    Ok(paths)
}

fn text_doc(t: &Text) -> TextDoc {
    TextDoc {
        text_id: t.id,
        video_id: t.video_id,
        kind: t.kind.clone(),
        start: t.start,
        end: t.end,
        text: t.text.clone(),
    }
}

fn lock_folder(dir: &Path) -> Result<File, CatalogError> {
    let path = dir.join("lock");
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| IndexError::io(&path, e))?;
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
) -> Result<VectorIndex, CatalogError> {
    let dir = data_dir.join("vectors");
    let generation = store.generation().await?;
    let live = store.counts().await?.frames as usize;
    let loaded = match VectorIndex::load(&dir, model, dim) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!("{e}");
            None
        }
    };
    let mut idx = match loaded {
        Some(v) => {
            // Points whose frames are gone (removed or re-indexed videos).
            let dead = v
                .points
                .saturating_sub(store.frames_upto(v.max_frame_id).await? as usize);
            if dead as f64 > MAX_TOMBSTONE_SHARE * v.points.max(1) as f64 {
                tracing::info!(
                    "rebuilding the vector index: {dead} of its {} points are deleted frames",
                    v.points
                );
                build_from_store(store, model, dim, live).await?
            } else {
                v
            }
        }
        None => build_from_store(store, model, dim, live).await?,
    };
    // Frames committed after the index was last saved.
    let behind = idx.max_frame_id < store.max_frame_id().await?;
    if behind {
        catch_up(&mut idx, store).await?;
    }
    if !check_recall(&idx, store).await? {
        tracing::warn!("vector index self-recall too low after load; rebuilding");
        idx = build_from_store(store, model, dim, live).await?;
    }
    if access == Access::Write && (idx.generation != generation || behind || !dir.join("vectors.json").exists()) {
        idx.save(&dir, generation)?;
    }
    Ok(idx)
}

async fn build_from_store(
    store: &Store,
    model: &str,
    dim: usize,
    capacity: usize,
) -> Result<VectorIndex, CatalogError> {
    let mut idx = VectorIndex::new(model, dim, capacity);
    catch_up(&mut idx, store).await?;
    Ok(idx)
}

/// Inserts every stored frame the index does not hold yet.
async fn catch_up(idx: &mut VectorIndex, store: &Store) -> Result<(), CatalogError> {
    let mut after = idx.max_frame_id;
    loop {
        let batch = store.vectors_after(after, 20_000).await?;
        let Some(last) = batch.last().map(|(id, _)| *id) else {
            break;
        };
        let items: Vec<(i64, &[f32])> = batch.iter().map(|(id, v)| (*id, v.as_slice())).collect();
        idx.insert(&items)?;
        after = last;
    }
    Ok(())
}

/// Checks that stored frames find themselves (hnsw_rs can leave points unreachable).
async fn check_recall(idx: &VectorIndex, store: &Store) -> Result<bool, CatalogError> {
    if idx.points < 50 {
        return Ok(true);
    }
    // An evenly spread sample of up to 200 live frames.
    let max = store.max_frame_id().await?;
    let step = (max / 200).max(1);
    let mut sample = Vec::new();
    let mut after = 0;
    while sample.len() < 200 && after < max {
        let batch = store.vectors_after(after, 1).await?;
        let Some((id, v)) = batch.into_iter().next() else {
            break;
        };
        sample.push((id, v));
        after = id + step - 1;
    }
    let recall = idx.self_recall(&sample, 64);
    tracing::debug!("vector index self-recall {recall:.3} on {} frames", sample.len());
    Ok(recall >= MIN_SELF_RECALL)
}
