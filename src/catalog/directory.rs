//! `catalog::directory`: the library's videos in memory, with the run of frame ids each
//! one owns, so that filters are resolved and a frame id is mapped to its video without
//! a store round trip. Rebuilt on open and kept in step by every write (under the
//! catalog's write lock); readers take a snapshot (`Arc`).

use std::collections::HashMap;

use crate::types::{FrameId, VideoId};

/// A video as search needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Listed {
    pub id: VideoId,
    pub path: String,
    pub mtime_ns: i64,
    pub duration: Option<f64>,
    /// Its frames are ids `first_frame .. first_frame + frames` (none when `frames` is 0).
    pub first_frame: FrameId,
    pub frames: i64,
}

/// Every video of the library.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    videos: HashMap<VideoId, Listed>,
    /// (first frame id, video id) of videos with frames, by first frame id.
    runs: Vec<(FrameId, VideoId)>,
}

impl Directory {
    pub fn new(videos: impl IntoIterator<Item = Listed>) -> Self {
        let mut d = Directory::default();
        for v in videos {
            d.videos.insert(v.id, v);
        }
        d.reindex();
        d
    }

    fn reindex(&mut self) {
        self.runs = self
            .videos
            .values()
            .filter(|v| v.frames > 0)
            .map(|v| (v.first_frame, v.id))
            .collect();
        self.runs.sort_unstable();
    }

    /// Adds or replaces videos and drops others (`remove`), in one new snapshot.
    pub fn with(&self, add: impl IntoIterator<Item = Listed>, remove: &[VideoId]) -> Self {
        let mut d = self.clone();
        for id in remove {
            d.videos.remove(id);
        }
        for v in add {
            d.videos.insert(v.id, v);
        }
        d.reindex();
        d
    }

    pub fn get(&self, id: VideoId) -> Option<&Listed> {
        self.videos.get(&id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Listed> {
        self.videos.values()
    }

    pub fn len(&self) -> usize {
        self.videos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.videos.is_empty()
    }

    /// The video that owns frame `id`.
    pub fn video_of(&self, frame: FrameId) -> Option<&Listed> {
        let i = self.runs.partition_point(|(first, _)| *first <= frame).checked_sub(1)?;
        let v = self.videos.get(&self.runs[i].1)?;
        (frame < v.first_frame + v.frames).then_some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(id: i64, first: i64, frames: i64) -> Listed {
        Listed {
            id,
            path: format!("/v/{id}.mp4"),
            mtime_ns: 0,
            duration: Some(10.0),
            first_frame: first,
            frames,
        }
    }

    #[test]
    fn frames_map_to_their_video() {
        let d = Directory::new([listed(1, 1, 10), listed(2, 11, 5), listed(3, 0, 0), listed(5, 40, 2)]);
        assert_eq!(d.video_of(1).map(|v| v.id), Some(1));
        assert_eq!(d.video_of(10).map(|v| v.id), Some(1));
        assert_eq!(d.video_of(11).map(|v| v.id), Some(2));
        assert_eq!(d.video_of(16), None, "a gap (a removed video's frames)");
        assert_eq!(d.video_of(41).map(|v| v.id), Some(5));
        assert_eq!(d.video_of(0), None);
        let d2 = d.with([listed(6, 50, 3)], &[2]);
        assert_eq!(d2.video_of(12), None);
        assert_eq!(d2.video_of(52).map(|v| v.id), Some(6));
        assert_eq!(d.video_of(12).map(|v| v.id), Some(2), "the old snapshot is unchanged");
    }
}
