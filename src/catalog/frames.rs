//! `catalog::frames`: the frames (times) and tags of recently searched videos, in
//! memory, so that a search maps its hits to moments and their tag chips without a
//! store round trip. Filled per video on first use (one store read of its frames and
//! tags), dropped for a video by every write that changes it, and emptied when it holds
//! more than [`MAX_FRAMES`]. An epoch counter keeps a read that raced a write from
//! filling the cache with what the write replaced.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::store::{Frame, FrameTag};
use crate::types::{FrameId, VideoId};

/// Frames held before the cache starts again (about 60 bytes each).
const MAX_FRAMES: usize = 2_000_000;

/// A video's frames in order, with each frame's tags (label, probability).
#[derive(Debug, Default)]
pub struct VideoFrames {
    pub frames: Vec<Frame>,
    pub tags: Vec<Vec<(Arc<str>, f32)>>,
}

impl VideoFrames {
    pub fn new(frames: Vec<Frame>, tags: Vec<FrameTag>) -> Self {
        let mut per: Vec<Vec<(Arc<str>, f32)>> = vec![Vec::new(); frames.len()];
        let mut labels: HashMap<String, Arc<str>> = HashMap::new();
        for t in tags {
            if let Some(i) = Self::index_in(&frames, t.frame) {
                let l = labels
                    .entry(t.label)
                    .or_insert_with_key(|k| Arc::from(k.as_str()))
                    .clone();
                per[i].push((l, t.prob));
            }
        }
        Self { frames, tags: per }
    }

    fn index_in(frames: &[Frame], id: FrameId) -> Option<usize> {
        // A video's frames have increasing ids in seq order.
        frames.binary_search_by_key(&id, |f| f.id).ok()
    }

    /// The frame `id` of this video.
    pub fn frame(&self, id: FrameId) -> Option<&Frame> {
        Self::index_in(&self.frames, id).map(|i| &self.frames[i])
    }

    /// Frames overlapping [start, end) with their tags.
    pub fn within(&self, start: f64, end: f64) -> impl Iterator<Item = (&Frame, &[(Arc<str>, f32)])> {
        self.frames
            .iter()
            .zip(&self.tags)
            .filter(move |(f, _)| f.end > start && f.start < end)
            .map(|(f, t)| (f, t.as_slice()))
    }
}

#[derive(Default)]
pub struct FrameCache {
    videos: RwLock<(HashMap<VideoId, Arc<VideoFrames>>, usize)>,
    epoch: AtomicU64,
}

impl FrameCache {
    pub fn get(&self, video: VideoId) -> Option<Arc<VideoFrames>> {
        self.videos
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .get(&video)
            .cloned()
    }

    /// The epoch to pass to [`FrameCache::put`] for what is read from the store now.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Keeps a video's frames read at `epoch` (unless a write came since).
    pub fn put(&self, video: VideoId, frames: Arc<VideoFrames>, epoch: u64) {
        let mut g = self.videos.write().unwrap_or_else(|e| e.into_inner());
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        if g.1 + frames.frames.len() > MAX_FRAMES {
            g.0.clear();
            g.1 = 0;
        }
        g.1 += frames.frames.len();
        if let Some(old) = g.0.insert(video, frames) {
            g.1 -= old.frames.len();
        }
    }

    /// Drops videos (their frames or tags changed).
    pub fn forget(&self, videos: &[VideoId]) {
        let mut g = self.videos.write().unwrap_or_else(|e| e.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        for v in videos {
            if let Some(old) = g.0.remove(v) {
                g.1 -= old.frames.len();
            }
        }
    }

    /// Drops everything (a model switch).
    pub fn clear(&self) {
        let mut g = self.videos.write().unwrap_or_else(|e| e.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        g.0.clear();
        g.1 = 0;
    }
}
