//! Reads of the store that handlers, search and jobs need, the frames of recently searched
//! videos answered from memory (`frames::FrameCache`) and the active model's vectors from
//! beside the vector index.

use std::collections::HashMap;
use std::sync::Arc;

use super::frames::VideoFrames;
use super::{Catalog, CatalogError, Counts, Frame, FrameTag, Video};
use crate::types::{FrameId, VideoId};

impl Catalog {
    /// A video by id.
    pub async fn video(&self, id: VideoId) -> Result<Option<Video>, CatalogError> {
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
    pub async fn frames_of(&self, video: VideoId) -> Result<Vec<Frame>, CatalogError> {
        Ok(self.video_frames(video).await?.frames.clone())
    }

    /// A video's frames and their tags, from memory after the first read.
    pub async fn video_frames(&self, video: VideoId) -> Result<Arc<VideoFrames>, CatalogError> {
        if let Some(f) = self.frames.get(video) {
            return Ok(f);
        }
        let epoch = self.frames.epoch();
        let f = Arc::new(VideoFrames::new(
            self.store.frames_of(video).await?,
            self.store.tags_of_video(video).await?,
        ));
        self.frames.put(video, f.clone(), epoch);
        Ok(f)
    }

    /// The videos (in the directory) owning `frames`, those not in memory yet read in
    /// one go (None when they hold too many frames for that: the caller asks the store
    /// for just the rows it needs).
    pub(super) async fn videos_of_frames(
        &self,
        frames: impl Iterator<Item = FrameId>,
    ) -> Result<Option<HashMap<VideoId, Arc<VideoFrames>>>, CatalogError> {
        const MAX_FRAMES_READ: i64 = 50_000;
        let dir = self.directory();
        let mut out: HashMap<VideoId, Arc<VideoFrames>> = HashMap::new();
        let mut missing: Vec<VideoId> = Vec::new();
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
            let mut by_video: HashMap<VideoId, (Vec<Frame>, Vec<FrameTag>)> = HashMap::new();
            for f in rows {
                by_video.entry(f.video_id).or_default().0.push(f);
            }
            for t in tags {
                if let Some(v) = dir.video_of(t.frame)
                    && let Some(e) = by_video.get_mut(&v.id)
                {
                    e.1.push(t);
                }
            }
            for id in missing {
                let (f, t) = by_video.remove(&id).unwrap_or_default();
                let v = Arc::new(VideoFrames::new(f, t));
                self.frames.put(id, v.clone(), epoch);
                out.insert(id, v);
            }
        }
        Ok(Some(out))
    }

    /// Frames by id (deleted ones are absent), in the order asked.
    pub async fn frames_by_ids(&self, ids: &[FrameId]) -> Result<Vec<Frame>, CatalogError> {
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
        video: VideoId,
        model: &str,
        query: &[f32],
    ) -> Result<Vec<(Frame, f32)>, CatalogError> {
        let frames = self.video_frames(video).await?;
        let ids: Vec<FrameId> = frames.frames.iter().map(|f| f.id).collect();
        let vectors: HashMap<FrameId, Vec<f32>> = self.vectors_by_ids(model, &ids).await?.into_iter().collect();
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
    pub async fn thumbnail(&self, frame: FrameId) -> Result<Option<Vec<u8>>, CatalogError> {
        Ok(self.store.thumbnail(frame).await?)
    }

    /// Counts of videos, frames and texts.
    pub async fn counts(&self) -> Result<Counts, CatalogError> {
        Ok(self.store.counts().await?)
    }

    /// Stored vectors of `model` for frames (deleted ones are absent).
    pub async fn vectors_by_ids(&self, model: &str, ids: &[FrameId]) -> Result<Vec<(FrameId, Vec<f32>)>, CatalogError> {
        {
            // The active model's vectors are beside the vector index: no store round trip.
            // pgvector: from the store, in the same database (never a node's file).
            let v = self.vectors.read().unwrap_or_else(|e| e.into_inner());
            if let super::vectors::Vectors::Embedded(v) = &*v
                && v.model() == model
                && let Some(found) = v.vectors(ids)
            {
                return Ok(found);
            }
        }
        Ok(self.store.vectors_by_ids(model, ids).await?)
    }

    /// A video's (frame id, vector) of `model`, in order.
    pub async fn video_vectors(&self, video: VideoId, model: &str) -> Result<Vec<(FrameId, Vec<f32>)>, CatalogError> {
        Ok(self.store.vectors_of(video, model).await?)
    }

    /// About `n` random frames with their vectors of `model`.
    pub async fn sample_frames(&self, model: &str, n: usize) -> Result<Vec<(FrameId, Vec<f32>)>, CatalogError> {
        Ok(self.store.sample_frames(model, n).await?)
    }
}
