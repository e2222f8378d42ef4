//! `catalog`: an open data folder. The store (source of truth) and the derived indexes
//! (vector, text), kept in step: on open, an index that is missing, damaged, made for
//! another model or too full of tombstones is rebuilt from the store, and one that is
//! merely behind (a run that was killed after committing videos) is brought up to date
//! from the frames it lacks. Writers hold an exclusive lock on the folder.
//!
//! Used by both orchestrators: `jobs` writes through it, `search` reads through it.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::index::vector::MIN_SELF_RECALL; // below it after a build or catch-up: one rebuild
use crate::index::{IndexError, TextDoc, TextIndex, VectorBackend, VectorIndex};

// The store is the catalog's alone: everything reads and writes through the catalog.
mod directory;
mod frames;
mod queue;
mod store;

pub use directory::{Directory, Listed};
pub use queue::Queue;
use store::Store;
pub use store::{
    Counts, FileState, Frame, Integrity, Job, JobFile, JobKind, JobState, NewFrame, NewText, NewVideo, SavedProbe,
    StoreError, Switch, SwitchStatus, Text, TextKind, Video, VideoStatus, now,
};

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
         {indexed:?} (or without --model: the library remembers its model), or move the library to the new model \
         without downtime with `vidseek model use DIR` (or use another --data folder)"
    )]
    ModelMismatch { indexed: String, given: String },
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
}

impl crate::error::Classified for CatalogError {
    fn fault(&self) -> crate::error::Fault {
        use crate::error::Fault;
        match self {
            CatalogError::Store(e) => e.fault(),
            CatalogError::Index(e) => e.fault(),
            CatalogError::ModelMismatch { .. } | CatalogError::Locked { .. } => Fault::Conflict,
            CatalogError::ReadOnly { .. } => Fault::Unavailable,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            CatalogError::Store(e) => e.code(),
            CatalogError::Index(e) => e.code(),
            CatalogError::ModelMismatch { .. } => "model_mismatch",
            CatalogError::Locked { .. } => "locked",
            CatalogError::ReadOnly { .. } => "read_only",
        }
    }
}

/// See [`Catalog::consistency`].
#[derive(Clone, Debug, serde::Serialize, PartialEq)]
pub struct Consistency {
    /// Frames and texts in the store.
    pub frames: i64,
    pub texts: i64,
    /// Points of the vector index that are live frames, and deleted ones.
    pub vector_live: usize,
    pub vector_tombstones: usize,
    /// Stored frames the vector index lacks, and live points the store lacks.
    pub frames_not_in_vector_index: Vec<i64>,
    pub vector_points_not_in_store: Vec<i64>,
    /// Stored frames looked up by their own vector, and those not found.
    pub frames_checked: usize,
    pub frames_unreachable: Vec<i64>,
    /// Documents in the text index.
    pub text_docs: u64,
    /// True when nothing above disagrees.
    pub agree: bool,
}

/// Rebuild the vector index when more than this share of its points are deleted frames.
const MAX_TOMBSTONE_SHARE: f64 = 0.25;

/// An open data folder: the store and the indexes derived from it, kept in step.
pub struct Catalog {
    /// The folder holding the database and the indexes.
    pub data_dir: PathBuf,
    store: Store,
    /// The active model's name and dimension (changed by a completed switch).
    active: RwLock<(String, usize)>,
    /// The vector backend (HNSW by default; see [`VectorBackend`] for what another must do).
    vectors: RwLock<Box<dyn VectorBackend>>,
    text: TextIndex,
    /// The videos with their frame runs, in memory (a snapshot per read).
    directory: RwLock<Arc<Directory>>,
    /// Frames and tags of recently searched videos.
    frames: frames::FrameCache,
    /// Held by every change to the library (store write plus index updates), so the
    /// store and both indexes see changes in the same order: a video deleted while it is
    /// being written can never leave its texts or vectors behind.
    writes: tokio::sync::Mutex<()>,
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
            _lock: lock,
        })
    }

    /// The active model's name.
    pub fn model(&self) -> String {
        self.active.read().unwrap_or_else(|e| e.into_inner()).0.clone()
    }

    /// The active model's vector dimension.
    pub fn dim(&self) -> usize {
        self.active.read().unwrap_or_else(|e| e.into_inner()).1
    }

    /// Remembers the active model's package folder, so the library can be opened later
    /// without `--model` (and knows where its model is after a switch).
    pub async fn remember_model_dir(&self, dir: &Path) -> Result<(), CatalogError> {
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        if self.store.pending_switch().await?.is_none()
            && self.store.model_dir().await?.as_deref() != Some(dir.as_path())
        {
            self.store.set_model_dir(&dir).await?;
        }
        Ok(())
    }

    /// Completes a switch once every frame has a vector of the new model: builds the
    /// new vector index from the store (searches keep using the old one meanwhile),
    /// then, holding the write lock, brings it level with frames added or removed
    /// during the build, commits the switch in one store transaction and swaps the
    /// index and the active model in. Returns the ids of videos that could not be
    /// re-embedded (kept as failed, with the reason).
    pub async fn finish_switch(&self, s: &Switch) -> Result<Vec<i64>, CatalogError> {
        let frames = self.store.counts().await?.frames as usize;
        let empty = self
            .vectors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .empty_like(&s.model, s.dim, frames);
        let mut fresh = fill_from_store(empty, &self.store).await?;
        let _w = self.writes.lock().await;
        catch_up(fresh.as_mut(), &self.store).await?;
        delete_gone(fresh.as_mut(), &self.store).await?;
        let (generation, stale) = self.store.finish_switch(s).await?;
        self.text.update(&stale, &[], generation)?;
        fresh.checkpoint(&self.data_dir.join("vectors"), generation)?;
        {
            // Both at once for readers: `model()` waits while the index changes hands, so
            // no caller sees the new index under the old model's name (a search that
            // started before retries with the model it then gets). Nothing takes the
            // vector lock and then this one, so the order cannot deadlock.
            let mut active = self.active.write().unwrap_or_else(|e| e.into_inner());
            *self.vectors.write().unwrap_or_else(|e| e.into_inner()) = fresh;
            *active = (s.model.clone(), s.dim);
        }
        self.frames.clear();
        self.set_directory(load_directory(&self.store).await?);
        Ok(stale)
    }

    /// Writes one indexed video (replacing an earlier version of the same file) to the
    /// store in one transaction, then to the indexes. Returns the video id.
    pub async fn add_video(&self, v: &NewVideo) -> Result<i64, CatalogError> {
        let _w = self.writes.lock().await;
        let w = self.store.put_video(v, &self.model()).await?;
        let (id, generation) = (w.video_id, w.generation);
        {
            let mut vectors = self.vectors.write().unwrap_or_else(|e| e.into_inner());
            vectors.delete(&w.replaced_frames);
            let items: Vec<(i64, &[f32])> = w
                .frame_ids
                .iter()
                .zip(&v.frames)
                .map(|(fid, f)| (*fid, f.vector.as_slice()))
                .collect();
            vectors.upsert(&items)?;
            vectors.settle();
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
        let replaced: Vec<i64> = w.replaced_video.into_iter().collect();
        self.frames.forget(&[&[id][..], &replaced].concat());
        self.text.update(&replaced, &texts, generation)?;
        let listed = Listed {
            id,
            path: v.path.clone(),
            mtime_ns: v.mtime_ns,
            duration: (v.duration > 0.0).then_some(v.duration),
            first_frame: w.frame_ids.first().copied().unwrap_or(0),
            frames: w.frame_ids.len() as i64,
        };
        let next = self.directory().with([listed], &replaced);
        self.set_directory(next);
        self.compact_if_needed().await?;
        Ok(id)
    }

    /// Deletes a video; its frames become tombstones in the vector index.
    pub async fn remove_video(&self, id: i64) -> Result<bool, CatalogError> {
        let _w = self.writes.lock().await;
        let Some((frames, generation)) = self.store.remove_video(id).await? else {
            return Ok(false);
        };
        self.vectors.write().unwrap_or_else(|e| e.into_inner()).delete(&frames);
        self.frames.forget(&[id]);
        self.text.update(&[id], &[], generation)?;
        let next = self.directory().with([], &[id]);
        self.set_directory(next);
        self.compact_if_needed().await?;
        Ok(true)
    }

    /// Rebuilds the vector index from the store once more than a quarter of its points
    /// are deleted frames (hnsw_rs cannot remove points; searches skip tombstones, but
    /// a graph mostly made of them searches slowly and can miss live frames). Called
    /// with the write lock held; searches use the old graph until the new one is in.
    async fn compact_if_needed(&self) -> Result<(), CatalogError> {
        let (points, dead) = {
            let v = self.vectors.read().unwrap_or_else(|e| e.into_inner());
            (v.points(), v.tombstones())
        };
        if (dead as f64) <= MAX_TOMBSTONE_SHARE * points.max(1) as f64 {
            return Ok(());
        }
        tracing::info!("compacting the vector index: {dead} of its {points} points are deleted frames");
        let live = points - dead;
        let fresh = {
            let empty =
                self.vectors
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .empty_like(&self.model(), self.dim(), live);
            fill_from_store(empty, &self.store).await?
        };
        *self.vectors.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// Forgets every video whose file no longer exists; returns the videos removed.
    pub async fn prune(&self) -> Result<Vec<Video>, CatalogError> {
        let mut removed = Vec::new();
        for v in self.store.videos().await? {
            if !Path::new(&v.path).exists() && self.remove_video(v.id).await? {
                removed.push(v);
            }
        }
        Ok(removed)
    }

    /// Whether the store and both indexes agree: the vector index holds exactly the
    /// stored frames (deleted ones are tombstones), a sample of `max_frames` of them
    /// (spread evenly, all when fewer) is found by its own vector, and the text index
    /// holds exactly the store's texts.
    pub async fn consistency(&self, max_frames: usize) -> Result<Consistency, CatalogError> {
        let _w = self.writes.lock().await;
        let counts = self.store.counts().await?;
        let stored = self.store.frame_ids().await?;
        let (mut live, tombstones) = {
            let v = self.vectors.read().unwrap_or_else(|e| e.into_inner());
            (v.live_ids(), v.tombstones())
        };
        live.sort_unstable();
        let not_in_index: Vec<i64> = stored
            .iter()
            .filter(|id| live.binary_search(id).is_err())
            .copied()
            .collect();
        let not_in_store: Vec<i64> = live
            .iter()
            .filter(|id| stored.binary_search(id).is_err())
            .copied()
            .collect();
        let step = (stored.len() / max_frames.max(1)).max(1);
        let mut checked = 0;
        let mut unreachable = Vec::new();
        for id in stored.iter().step_by(step) {
            let Some((_, v)) = self
                .store
                .vectors_after(id - 1, 1, &self.model())
                .await?
                .into_iter()
                .next()
            else {
                continue;
            };
            checked += 1;
            // Several frames can hold the very same picture (a file copied twice): any
            // hit as close as the frame itself counts.
            if !self
                .nearest(&v, 10, 128)
                .iter()
                .any(|(hit, s)| hit == id || *s >= 0.99999)
            {
                unreachable.push(*id);
            }
        }
        let text_docs = self.text.num_docs();
        let agree = not_in_index.is_empty()
            && not_in_store.is_empty()
            && unreachable.is_empty()
            && text_docs == counts.texts as u64;
        Ok(Consistency {
            frames: counts.frames,
            texts: counts.texts,
            vector_live: live.len(),
            vector_tombstones: tombstones,
            frames_not_in_vector_index: not_in_index,
            vector_points_not_in_store: not_in_store,
            frames_checked: checked,
            frames_unreachable: unreachable,
            text_docs,
            agree,
        })
    }

    /// Persists the vector index at the store's current generation (after a job; a
    /// crash before this only means the next open catches up from the store).
    pub async fn save_vectors(&self) -> Result<(), CatalogError> {
        // No write between reading the generation and saving: the index saved must be
        // the store's at that generation, its deletions included (an open trusts them).
        let _w = self.writes.lock().await;
        let generation = self.store.generation().await?;
        let mut v = self.vectors.write().unwrap_or_else(|e| e.into_inner());
        if v.generation() != generation || !self.data_dir.join("vectors/vectors.json").exists() {
            v.checkpoint(&self.data_dir.join("vectors"), generation)?;
        }
        Ok(())
    }

    // ------------------------------------------------------------ reads of the store

    /// A video by id.
    pub async fn video(&self, id: i64) -> Result<Option<Video>, CatalogError> {
        Ok(self.store.video(id).await?)
    }

    /// A video by its file's path.
    pub async fn video_by_path(&self, path: &str) -> Result<Option<Video>, CatalogError> {
        Ok(self.store.video_by_path(path).await?)
    }

    /// Every video (indexed and failed), by path.
    pub async fn videos(&self) -> Result<Vec<Video>, CatalogError> {
        Ok(self.store.videos().await?)
    }

    /// A video's frames in order.
    pub async fn frames_of(&self, video: i64) -> Result<Vec<Frame>, CatalogError> {
        Ok(self.video_frames(video).await?.frames.clone())
    }

    /// A video's frames and their tags, from memory after the first read.
    pub async fn video_frames(&self, video: i64) -> Result<Arc<frames::VideoFrames>, CatalogError> {
        if let Some(f) = self.frames.get(video) {
            return Ok(f);
        }
        let epoch = self.frames.epoch();
        let f = Arc::new(frames::VideoFrames::new(
            self.store.frames_of(video).await?,
            self.store.tags_of_video(video).await?,
        ));
        self.frames.put(video, f.clone(), epoch);
        Ok(f)
    }

    /// The videos (in the directory) owning `frames`, those not in memory yet read in
    /// one go (None when they hold too many frames for that: the caller asks the store
    /// for just the rows it needs).
    async fn videos_of_frames(
        &self,
        frames: impl Iterator<Item = i64>,
    ) -> Result<Option<HashMap<i64, Arc<frames::VideoFrames>>>, CatalogError> {
        const MAX_FRAMES_READ: i64 = 50_000;
        let dir = self.directory();
        let mut out: HashMap<i64, Arc<frames::VideoFrames>> = HashMap::new();
        let mut missing: Vec<i64> = Vec::new();
        let mut to_read = 0;
        for f in frames {
            let Some(v) = dir.video_of(f) else { continue };
            if out.contains_key(&v.id) || missing.contains(&v.id) {
                continue;
            }
            match self.frames.get(v.id) {
                Some(c) => {
                    out.insert(v.id, c);
                }
                None => {
                    missing.push(v.id);
                    to_read += v.frames;
                }
            }
        }
        if to_read > MAX_FRAMES_READ {
            return Ok(None);
        }
        if !missing.is_empty() {
            let epoch = self.frames.epoch();
            let rows = self.store.frames_of_videos(&missing).await?;
            let tags = self.store.tags_of_videos(&missing).await?;
            let mut by_video: HashMap<i64, (Vec<Frame>, Vec<(i64, String, f32)>)> = HashMap::new();
            for f in rows {
                by_video.entry(f.video_id).or_default().0.push(f);
            }
            for t in tags {
                if let Some(v) = dir.video_of(t.0)
                    && let Some(e) = by_video.get_mut(&v.id)
                {
                    e.1.push(t);
                }
            }
            for id in missing {
                let (f, t) = by_video.remove(&id).unwrap_or_default();
                let v = Arc::new(frames::VideoFrames::new(f, t));
                self.frames.put(id, v.clone(), epoch);
                out.insert(id, v);
            }
        }
        Ok(Some(out))
    }

    /// Frames by id (deleted ones are absent), in the order asked.
    pub async fn frames_by_ids(&self, ids: &[i64]) -> Result<Vec<Frame>, CatalogError> {
        let Some(videos) = self.videos_of_frames(ids.iter().copied()).await? else {
            return Ok(self.store.frames_by_ids(ids).await?);
        };
        let dir = self.directory();
        Ok(ids
            .iter()
            .filter_map(|id| videos.get(&dir.video_of(*id)?.id)?.frame(*id).cloned())
            .collect())
    }

    /// The cosine of `query` (embedded with `model`) with each of a video's frames:
    /// (frame, score), in order.
    pub async fn frame_scores(
        &self,
        video: i64,
        model: &str,
        query: &[f32],
    ) -> Result<Vec<(Frame, f32)>, CatalogError> {
        let frames = self.video_frames(video).await?;
        let ids: Vec<i64> = frames.frames.iter().map(|f| f.id).collect();
        let vectors: HashMap<i64, Vec<f32>> = self.vectors_by_ids(model, &ids).await?.into_iter().collect();
        Ok(frames
            .frames
            .iter()
            .filter_map(|f| {
                let s = vectors.get(&f.id).map(|v| crate::simd::dot(query, v))?;
                Some((f.clone(), s))
            })
            .collect())
    }

    /// The JPEG thumbnail of a frame.
    pub async fn thumbnail(&self, frame: i64) -> Result<Option<Vec<u8>>, CatalogError> {
        Ok(self.store.thumbnail(frame).await?)
    }

    /// Counts of videos, frames and texts.
    pub async fn counts(&self) -> Result<Counts, CatalogError> {
        Ok(self.store.counts().await?)
    }

    /// The active model's package folder, when recorded.
    pub async fn model_dir(&self) -> Result<Option<PathBuf>, CatalogError> {
        Ok(self.store.model_dir().await?)
    }

    /// The switch to another model under way, if any.
    pub async fn pending_switch(&self) -> Result<Option<Switch>, CatalogError> {
        Ok(self.store.pending_switch().await?)
    }

    /// The switch under way with its progress.
    pub async fn switch_status(&self) -> Result<Option<SwitchStatus>, CatalogError> {
        Ok(self.store.switch_status().await?)
    }

    /// The job queue (its rows live in the store).
    pub fn queue(&self) -> Queue<'_> {
        Queue::new(&self.store)
    }

    // ------------------------------------------------------------ writes

    /// Records that a file could not be indexed (a file indexed before keeps its frames).
    pub async fn put_failed(
        &self,
        path: &str,
        size: i64,
        mtime_ns: i64,
        hash: &str,
        error: &str,
    ) -> Result<(), CatalogError> {
        let _w = self.writes.lock().await;
        self.store.put_failed(path, size, mtime_ns, hash, error).await?;
        self.set_directory(load_directory(&self.store).await?);
        Ok(())
    }

    /// Records a switch to another model (its vectors are then added alongside).
    pub async fn begin_switch(&self, s: &Switch) -> Result<(), CatalogError> {
        Ok(self.store.begin_switch(s).await?)
    }

    /// Abandons a switch: the new model's vectors go, the active model stays.
    pub async fn cancel_switch(&self) -> Result<(), CatalogError> {
        Ok(self.store.cancel_switch().await?)
    }

    /// Frames of `model` still to embed, and of all frames.
    pub async fn vectors_missing(&self, model: &str) -> Result<(i64, i64), CatalogError> {
        Ok(self.store.vectors_missing(model).await?)
    }

    /// Indexed videos lacking vectors of `model`.
    pub async fn videos_missing(&self, model: &str) -> Result<Vec<Video>, CatalogError> {
        Ok(self.store.videos_missing(model).await?)
    }

    /// Adds `model`'s vectors for frames (one transaction); the vector index is not
    /// touched: they are for a model the index does not hold yet.
    pub async fn put_vectors(&self, model: &str, vectors: &[(i64, Vec<f32>)]) -> Result<u64, CatalogError> {
        Ok(self.store.put_vectors(model, vectors).await?)
    }

    /// Writes videos to the store only, leaving the indexes behind (as a killed run
    /// would): the next open catches them up. For bulk loads (benchmarks).
    pub async fn add_videos_unindexed(&self, videos: &[NewVideo]) -> Result<(), CatalogError> {
        let _w = self.writes.lock().await;
        let model = self.model();
        for v in videos {
            self.store.put_video(v, &model).await?;
        }
        self.frames.clear();
        self.set_directory(load_directory(&self.store).await?);
        Ok(())
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

    /// Stored vectors of `model` for frames (deleted ones are absent).
    pub async fn vectors_by_ids(&self, model: &str, ids: &[i64]) -> Result<Vec<(i64, Vec<f32>)>, CatalogError> {
        {
            // The active model's vectors are beside the vector index: no store round trip.
            let v = self.vectors.read().unwrap_or_else(|e| e.into_inner());
            if v.model() == model
                && let Some(found) = v.vectors(ids)
            {
                return Ok(found);
            }
        }
        Ok(self.store.vectors_by_ids(model, ids).await?)
    }

    /// Cached embeddings of texts (label vocabularies) for `model`.
    pub async fn text_vectors(&self, model: &str, texts: &[String]) -> Result<Vec<(String, Vec<f32>)>, CatalogError> {
        Ok(self.store.text_vectors(model, texts).await?)
    }

    /// Caches embeddings of texts for `model`.
    pub async fn put_text_vectors(&self, model: &str, items: &[(String, Vec<f32>)]) -> Result<(), CatalogError> {
        Ok(self.store.put_text_vectors(model, items).await?)
    }

    /// A library setting (the tag vocabulary, ...), when set.
    pub async fn setting(&self, key: &str) -> Result<Option<String>, CatalogError> {
        Ok(self.store.meta(&format!("setting.{key}")).await?)
    }

    /// Sets a library setting.
    pub async fn set_setting(&self, key: &str, value: &str) -> Result<(), CatalogError> {
        Ok(self.store.set_meta(&format!("setting.{key}"), value).await?)
    }

    /// Indexed videos whose tags are not of `stamp`.
    pub async fn videos_to_tag(&self, stamp: &str) -> Result<Vec<i64>, CatalogError> {
        Ok(self.store.videos_to_tag(stamp).await?)
    }

    /// Replaces a video's tags: (frame id, label, probability).
    pub async fn put_tags(&self, video: i64, stamp: &str, tags: &[(i64, String, f32)]) -> Result<(), CatalogError> {
        let done = self.store.put_tags(video, stamp, tags).await;
        self.frames.forget(&[video]);
        Ok(done?)
    }

    /// Every tagged frame: (label, video id, frame seq, frame id).
    pub async fn tagged_frames(&self) -> Result<Vec<(String, i64, i64, i64)>, CatalogError> {
        Ok(self.store.tagged_frames().await?)
    }

    /// The frames tagged with a label.
    pub async fn frames_tagged(&self, label: &str) -> Result<Vec<i64>, CatalogError> {
        Ok(self.store.frames_tagged(label).await?)
    }

    /// The tags of the frames inside spans (video, start, end): (span index, label, probability).
    pub async fn tags_in_spans(&self, spans: &[(i64, f64, f64)]) -> Result<Vec<(usize, String, f32)>, CatalogError> {
        let dir = self.directory();
        let firsts = spans.iter().filter_map(|(v, _, _)| dir.get(*v).map(|l| l.first_frame));
        let Some(videos) = self.videos_of_frames(firsts).await? else {
            return Ok(self.store.tags_in_spans(spans).await?);
        };
        let mut out = Vec::new();
        for (i, (v, start, end)) in spans.iter().enumerate() {
            if let Some(frames) = videos.get(v) {
                for (_, tags) in frames.within(*start, *end) {
                    out.extend(tags.iter().map(|(l, p)| (i, l.to_string(), *p)));
                }
            }
        }
        Ok(out)
    }

    /// Every frame id.
    pub async fn all_frame_ids(&self) -> Result<Vec<i64>, CatalogError> {
        Ok(self.store.all_frame_ids().await?)
    }

    /// A video's (frame id, vector) of `model`, in order.
    pub async fn video_vectors(&self, video: i64, model: &str) -> Result<Vec<(i64, Vec<f32>)>, CatalogError> {
        Ok(self.store.vectors_of(video, model).await?)
    }

    /// About `n` random frames with their vectors of `model`.
    pub async fn sample_frames(&self, model: &str, n: usize) -> Result<Vec<(i64, Vec<f32>)>, CatalogError> {
        Ok(self.store.sample_frames(model, n).await?)
    }

    /// Saved probes.
    pub async fn probes(&self) -> Result<Vec<SavedProbe>, CatalogError> {
        Ok(self.store.probes().await?)
    }

    /// Saves (or replaces) a probe.
    pub async fn put_probe(&self, p: &SavedProbe) -> Result<(), CatalogError> {
        Ok(self.store.put_probe(p).await?)
    }

    /// Deletes a saved probe; false when there was none of that name.
    pub async fn delete_probe(&self, name: &str) -> Result<bool, CatalogError> {
        Ok(self.store.delete_probe(name).await?)
    }

    /// Nearest live frames to a unit vector: (frame id, cosine), best first.
    pub fn nearest(&self, query: &[f32], k: usize, ef: usize) -> Vec<(i64, f32)> {
        self.vectors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .search(query, k, ef, None)
    }

    /// [`Catalog::nearest`] for a query embedded with `model`; refused when the index
    /// holds another model's vectors (a switch completed after the query was embedded:
    /// embed it again with the active model).
    /// `filter` restricts the frames during the graph search (None: all).
    pub fn nearest_for(
        &self,
        model: &str,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: Option<&dyn Fn(i64) -> bool>,
    ) -> Result<Vec<(i64, f32)>, CatalogError> {
        let v = self.vectors.read().unwrap_or_else(|e| e.into_inner());
        if v.model() != model || v.dim() != query.len() {
            return Err(CatalogError::ModelMismatch {
                indexed: v.model().to_string(),
                given: model.to_string(),
            });
        }
        Ok(v.search(query, k, ef, filter))
    }

    /// Points in the vector index (live frames and tombstones).
    pub fn vector_points(&self) -> usize {
        self.vectors.read().unwrap_or_else(|e| e.into_inner()).points()
    }

    /// False while the saved vector graph is still loading (searches are exact scans
    /// meanwhile: correct, slower on a large library).
    pub fn vectors_ready(&self) -> bool {
        self.vectors.read().unwrap_or_else(|e| e.into_inner()).ready()
    }

    /// Waits until the vector graph is loaded (benchmarks, tools that want ANN speed).
    pub fn wait_vectors_ready(&self) {
        while !self.vectors_ready() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The best `limit` text matches (subtitles, titles, file names) of a structured
    /// lexical query, only in `videos` when given.
    pub fn text_search(
        &self,
        query: &crate::index::LexicalQuery,
        videos: Option<&[i64]>,
        limit: usize,
    ) -> Result<Vec<crate::index::TextHit>, CatalogError> {
        Ok(self.text.search(query, videos, limit)?)
    }
    /// Points in the vector index that are deleted frames.
    pub fn vector_tombstones(&self) -> usize {
        self.vectors.read().unwrap_or_else(|e| e.into_inner()).tombstones()
    }
}

/// Reads the directory of videos and frame runs from the store.
async fn load_directory(store: &Store) -> Result<Directory, CatalogError> {
    let runs: std::collections::HashMap<i64, (i64, i64)> = store
        .frame_runs()
        .await?
        .into_iter()
        .map(|(v, first, n)| (v, (first, n)))
        .collect();
    Ok(Directory::new(store.videos().await?.into_iter().map(|v| {
        let (first_frame, frames) = runs.get(&v.id).copied().unwrap_or((0, 0));
        Listed {
            id: v.id,
            path: v.path,
            mtime_ns: v.mtime_ns,
            duration: v.duration,
            first_frame,
            frames,
        }
    })))
}

/// What a data folder holds, read without a model or the writer's lock (the CLI's
/// `videos`, `model status`; checks).
#[derive(Clone, Debug, serde::Serialize)]
pub struct LibraryInfo {
    /// The active model and its dimension (None: nothing indexed yet).
    pub model: Option<(String, usize)>,
    /// The active model's package folder, when recorded.
    pub model_dir: Option<PathBuf>,
    /// A switch to another model under way.
    pub switch: Option<SwitchStatus>,
    /// Every video, by path.
    pub videos: Vec<Video>,
    /// Counts of videos, frames and texts.
    pub counts: Counts,
    /// Consistency counters for the active model's vectors.
    pub integrity: Integrity,
    /// The store generation the derived indexes record.
    pub generation: u64,
    /// The 100 most recent jobs, newest first.
    pub jobs: Vec<Job>,
}

/// Reads [`LibraryInfo`] of the data folder `data_dir`.
pub async fn info(data_dir: &Path) -> Result<LibraryInfo, CatalogError> {
    let store = Store::open(&db_path(data_dir)).await?;
    let model = store.model().await?;
    let integrity = store.integrity(model.as_ref().map_or("", |m| m.0.as_str())).await?;
    let info = LibraryInfo {
        model_dir: store.model_dir().await?,
        switch: store.switch_status().await?,
        videos: store.videos().await?,
        counts: store.counts().await?,
        generation: store.generation().await?,
        jobs: store.jobs(100).await?,
        integrity,
        model,
    };
    store.close().await;
    Ok(info)
}

fn text_doc(t: &Text) -> TextDoc {
    TextDoc {
        text_id: t.id,
        video_id: t.video_id,
        kind: t.kind.to_string(),
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

/// Makes tombstones of `idx`'s live points whose frames the store no longer has.
async fn delete_gone(idx: &mut dyn VectorBackend, store: &Store) -> Result<(), CatalogError> {
    let stored = store.frame_ids().await?;
    let dead: Vec<i64> = idx
        .live_ids()
        .into_iter()
        .filter(|id| stored.binary_search(id).is_err())
        .collect();
    idx.delete(&dead);
    Ok(())
}

/// `idx` (empty) with every stored frame of its model.
async fn fill_from_store(
    mut idx: Box<dyn VectorBackend>,
    store: &Store,
) -> Result<Box<dyn VectorBackend>, CatalogError> {
    catch_up(idx.as_mut(), store).await?;
    // The batches read from the store are freed between the graph's nodes: give the
    // pages back rather than keep them resident.
    crate::util::trim_heap();
    Ok(idx)
}

/// Feeds the backend every stored frame above its high-water mark (its model's vectors).
async fn catch_up(idx: &mut dyn VectorBackend, store: &Store) -> Result<(), CatalogError> {
    let mut after = idx.high_water();
    let model = idx.model().to_string();
    loop {
        let batch = store.vectors_after(after, 20_000, &model).await?;
        let Some(last) = batch.last().map(|(id, _)| *id) else {
            break;
        };
        let items: Vec<(i64, &[f32])> = batch.iter().map(|(id, v)| (*id, v.as_slice())).collect();
        idx.upsert(&items)?;
        after = last;
    }
    idx.settle();
    Ok(())
}

/// Checks that stored frames find themselves (hnsw_rs can leave points unreachable).
async fn check_recall(idx: &dyn VectorBackend, store: &Store) -> Result<bool, CatalogError> {
    if idx.points() < 50 {
        return Ok(true);
    }
    // An evenly spread sample of up to 200 live frames.
    let max = store.max_frame_id().await?;
    let step = (max / 200).max(1);
    let mut sample = Vec::new();
    let mut after = 0;
    while sample.len() < 200 && after < max {
        let batch = store.vectors_after(after, 1, idx.model()).await?;
        let Some((id, v)) = batch.into_iter().next() else {
            break;
        };
        sample.push((id, v));
        after = id + step - 1;
    }
    // A wide beam: this looks for points the graph lost (hnsw_rs can leave some
    // unreachable under contention), not for a narrow search's misses, which a rebuild
    // with the same parameters would not mend.
    let recall = idx.self_recall(&sample, 512);
    tracing::debug!("vector index self-recall {recall:.3} on {} frames", sample.len());
    Ok(recall >= MIN_SELF_RECALL)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIM: usize = 16;

    /// A video of `frames` frames whose vectors are spread around its own direction.
    fn video(path: &str, seed: u64, frames: usize) -> NewVideo {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f32 / (1u64 << 53) as f32 - 0.5
        };
        NewVideo {
            path: path.into(),
            duration: frames as f64,
            frames: (0..frames)
                .map(|i| {
                    let mut vector: Vec<f32> = (0..DIM).map(|_| next()).collect();
                    let n = vector.iter().map(|a| a * a).sum::<f32>().sqrt();
                    vector.iter_mut().for_each(|a| *a /= n);
                    NewFrame {
                        start: i as f64,
                        end: i as f64 + 1.0,
                        peak: i as f64,
                        shot: false,
                        vector,
                        extra_vectors: Vec::new(),
                        thumbnail: Vec::new(),
                    }
                })
                .collect(),
            ..NewVideo::default()
        }
    }

    async fn open(dir: &Path) -> Catalog {
        Catalog::open(dir, "m", DIM, Access::Write).await.unwrap()
    }

    /// Ids of a video's frames, from the store.
    async fn frame_ids(c: &Catalog, video: i64) -> Vec<i64> {
        c.frames_of(video).await.unwrap().iter().map(|f| f.id).collect()
    }

    #[test]
    fn a_saved_index_keeps_its_tombstones_and_one_behind_the_store_is_compared_with_it() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path();
            let c = open(dir).await;
            let a = c.add_video(&video("/a.mp4", 1, 20)).await.unwrap();
            let b = c.add_video(&video("/b.mp4", 2, 20)).await.unwrap();
            let d = c.add_video(&video("/d.mp4", 3, 20)).await.unwrap();
            c.add_video(&video("/e.mp4", 4, 200)).await.unwrap();
            let (a_ids, d_ids) = (frame_ids(&c, a).await, frame_ids(&c, d).await);
            let a_vectors = c.vectors_by_ids("m", &a_ids).await.unwrap();
            let d_vectors = c.vectors_by_ids("m", &d_ids).await.unwrap();
            c.remove_video(a).await.unwrap();
            c.save_vectors().await.unwrap();
            c.close().await;
            drop(c);

            let meta_path = dir.join("vectors/vectors.json");
            let saved = std::fs::read_to_string(&meta_path).unwrap();
            let meta: serde_json::Value = serde_json::from_str(&saved).unwrap();
            let run = |ids: &[i64]| serde_json::json!([ids[0], ids[ids.len() - 1]]);
            assert_eq!(meta["deleted"], serde_json::json!([run(&a_ids)]));

            // Reopened at the saved generation: the removed video's frames are
            // tombstones again, never returned, and the index agrees with the store.
            let c = open(dir).await;
            c.wait_vectors_ready();
            assert_eq!((c.vector_points(), c.vector_tombstones()), (260, 20));
            for (id, v) in &a_vectors {
                assert!(
                    c.nearest(v, 10, 64).iter().all(|(hit, _)| !a_ids.contains(hit)),
                    "frame {id} came back"
                );
            }
            assert!(c.consistency(1000).await.unwrap().agree);
            c.close().await;
            drop(c);

            // The open trusts the saved tombstones without reading the store's frame ids:
            // with the removed video's run taken out of the file by hand, its frames are
            // live again (a comparison with the store would have found them).
            let mut forged = meta.clone();
            forged["deleted"] = serde_json::json!([]);
            std::fs::write(&meta_path, serde_json::to_vec(&forged).unwrap()).unwrap();
            let c = open(dir).await;
            assert_eq!(c.vector_tombstones(), 0);
            c.close().await;
            drop(c);
            std::fs::write(&meta_path, &saved).unwrap();

            // A video removed after the last save (a crash before the checkpoint): the
            // store's generation moved on, so the open compares the ids and finds it.
            let c = open(dir).await;
            c.remove_video(d).await.unwrap();
            c.close().await;
            drop(c);
            let c = open(dir).await;
            c.wait_vectors_ready();
            assert_eq!(c.vector_tombstones(), 40);
            for (id, v) in &d_vectors {
                assert!(
                    c.nearest(v, 10, 64).iter().all(|(hit, _)| !d_ids.contains(hit)),
                    "frame {id} came back"
                );
            }
            assert!(c.consistency(1000).await.unwrap().agree);
            // Saved now, at the new generation, with both videos' tombstones.
            c.save_vectors().await.unwrap();
            let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
            assert_eq!(meta["deleted"], serde_json::json!([run(&a_ids), run(&d_ids)]));

            // A checkpoint that leaves a large dump as it is (two frames added) still
            // records the generation and the tombstones; the next open adds the two
            // frames from the store and compares nothing.
            let f = c.add_video(&video("/f.mp4", 5, 2)).await.unwrap();
            c.remove_video(b).await.unwrap();
            c.save_vectors().await.unwrap();
            let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
            assert_eq!(meta["points"], 260, "the dump was rewritten");
            assert_eq!(meta["generation"], c.store.generation().await.unwrap());
            // (The three videos' frames have consecutive ids: one run.)
            assert_eq!(meta["deleted"], serde_json::json!([[a_ids[0], d_ids[d_ids.len() - 1]]]));
            c.close().await;
            drop(c);
            let c = open(dir).await;
            c.wait_vectors_ready();
            assert_eq!((c.vector_points(), c.vector_tombstones()), (262, 60));
            let f_ids = frame_ids(&c, f).await;
            let f_vectors = c.vectors_by_ids("m", &f_ids).await.unwrap();
            assert!(c.nearest(&f_vectors[0].1, 1, 64)[0].0 == f_ids[0]);
            assert!(c.consistency(1000).await.unwrap().agree);
            c.close().await;
        });
    }
}
