//! Every change to the library, under the one write lock (`Catalog::writes`), so the store
//! and both indexes see changes in the same order.

use std::path::Path;

use super::rebuild::{MAX_TOMBSTONE_SHARE, fill_from_store, load_directory};
use super::vectors::Vectors;
use super::{Catalog, CatalogError, Listed, NewVideo, Video};
use crate::index::TextDoc;
use crate::types::{FrameId, VideoId};

impl Catalog {
    /// Writes one indexed video (replacing an earlier version of the same file) to the
    /// store in one transaction, then to the indexes. Returns the video id.
    pub async fn add_video(&self, v: &NewVideo) -> Result<VideoId, CatalogError> {
        let _w = self.writes.lock().await;
        let w = self.store.put_video(v, &self.model()).await?;
        let (id, generation) = (w.video_id, w.generation);
        // pgvector: the store wrote the rows in the video's transaction (and the
        // replaced frames' rows went with them).
        if let Some(vectors) = self.vectors.write().unwrap_or_else(|e| e.into_inner()).embedded() {
            vectors.delete(&w.replaced_frames);
            let items: Vec<(FrameId, &[f32])> = w
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
            .zip(&w.text_ids)
            .map(|(t, text_id)| TextDoc {
                text_id: *text_id,
                video_id: id,
                kind: t.kind,
                start: t.start,
                end: t.end,
                text: t.text.clone(),
                quad: t.quad,
            })
            .collect();
        let replaced: Vec<VideoId> = w.replaced_video.into_iter().collect();
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
        self.followed_own(generation);
        self.compact_if_needed().await?;
        Ok(id)
    }

    /// Deletes a video; its frames become tombstones in the vector index.
    pub async fn remove_video(&self, id: VideoId) -> Result<bool, CatalogError> {
        let _w = self.writes.lock().await;
        let Some(removed) = self.store.remove_video(id).await? else {
            return Ok(false);
        };
        if let Some(v) = self.vectors.write().unwrap_or_else(|e| e.into_inner()).embedded() {
            v.delete(&removed.frames);
        }
        self.frames.forget(&[id]);
        self.text.update(&[id], &[], removed.generation)?;
        let next = self.directory().with([], &[id]);
        self.set_directory(next);
        self.followed_own(removed.generation);
        self.compact_if_needed().await?;
        Ok(true)
    }

    /// Rebuilds the vector index from the store once more than a quarter of its points
    /// are deleted frames (hnsw_rs cannot remove points; searches skip tombstones, but
    /// a graph mostly made of them searches slowly and can miss live frames). Called
    /// with the write lock held; searches use the old graph until the new one is in.
    async fn compact_if_needed(&self) -> Result<(), CatalogError> {
        let (points, dead) = match &*self.vectors.read().unwrap_or_else(|e| e.into_inner()) {
            Vectors::Embedded(v) => (v.points(), v.tombstones()),
            // pgvector reclaims deleted rows itself (VACUUM).
            Vectors::Pg(_) => return Ok(()),
        };
        if (dead as f64) <= MAX_TOMBSTONE_SHARE * points.max(1) as f64 {
            return Ok(());
        }
        tracing::info!("compacting the vector index: {dead} of its {points} points are deleted frames");
        let live = points - dead;
        let empty = match &*self.vectors.read().unwrap_or_else(|e| e.into_inner()) {
            Vectors::Embedded(v) => v.empty_like(&self.model(), self.dim(), live),
            Vectors::Pg(_) => return Ok(()),
        };
        let fresh = fill_from_store(empty, &self.store).await?;
        *self.vectors.write().unwrap_or_else(|e| e.into_inner()) = Vectors::Embedded(fresh);
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

    /// Persists the vector index at the store's current generation (after a job; a
    /// crash before this only means the next open catches up from the store).
    pub async fn save_vectors(&self) -> Result<(), CatalogError> {
        // No write between reading the generation and saving: the index saved must be
        // the store's at that generation, its deletions included (an open trusts them).
        let _w = self.writes.lock().await;
        let generation = self.store.generation().await?;
        let mut guard = self.vectors.write().unwrap_or_else(|e| e.into_inner());
        let Some(v) = guard.embedded() else {
            // pgvector's rows are durable with the store's commits.
            return Ok(());
        };
        if v.generation() != generation || !self.data_dir.join("vectors/vectors.json").exists() {
            v.checkpoint(&self.data_dir.join("vectors"), generation)?;
        }
        Ok(())
    }
}
