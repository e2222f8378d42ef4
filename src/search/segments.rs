//! `search::segments`: scored frames grown into moments. Within each video the best
//! unclaimed frame seeds a segment that grows over neighbouring frames (in stored
//! order; one missing frame is bridged) whose score is within `delta` of the seed's,
//! so a scene that matches comes back as one span with its start, end and best moment.

use std::collections::HashMap;

use super::{Segment, Source};
use crate::catalog::Frame;

/// Groups scored frames into segments per video (unordered).
pub fn from_frames(scored: Vec<(Frame, f32)>, delta: f32) -> Vec<Segment> {
    let mut by_video: HashMap<i64, Vec<(Frame, f32)>> = HashMap::new();
    for (f, s) in scored {
        by_video.entry(f.video_id).or_default().push((f, s));
    }
    let mut out = Vec::new();
    for (video_id, mut frames) in by_video {
        frames.sort_by_key(|(f, _)| f.seq);
        let mut claimed = vec![false; frames.len()];
        let mut order: Vec<usize> = (0..frames.len()).collect();
        order.sort_by(|&a, &b| frames[b].1.total_cmp(&frames[a].1));
        for seed in order {
            if claimed[seed] {
                continue;
            }
            let floor = frames[seed].1 - delta;
            let (mut lo, mut hi) = (seed, seed);
            while lo > 0
                && !claimed[lo - 1]
                && frames[lo - 1].1 >= floor
                && frames[lo].0.seq - frames[lo - 1].0.seq <= 2
            {
                lo -= 1;
            }
            while hi + 1 < frames.len()
                && !claimed[hi + 1]
                && frames[hi + 1].1 >= floor
                && frames[hi + 1].0.seq - frames[hi].0.seq <= 2
            {
                hi += 1;
            }
            for c in claimed.iter_mut().take(hi + 1).skip(lo) {
                *c = true;
            }
            let (peak, score) = (&frames[seed].0, frames[seed].1);
            out.push(Segment {
                video_id,
                start: frames[lo].0.start,
                end: frames[hi].0.end,
                peak: peak.peak,
                score,
                frame_id: Some(peak.id),
                ..Segment::new(video_id, Source::Visual)
            });
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn frame(id: i64, seq: i64, video: i64) -> Frame {
        Frame {
            id,
            video_id: video,
            seq,
            start: seq as f64,
            end: seq as f64 + 1.0,
            peak: seq as f64,
            shot: false,
        }
    }

    #[test]
    fn adjacent_frames_close_to_the_best_merge_into_one_segment() {
        let scored = vec![
            (frame(1, 0, 7), 0.10),
            (frame(2, 1, 7), 0.30),
            (frame(3, 2, 7), 0.31),
            (frame(4, 3, 7), 0.29),
            (frame(5, 4, 7), 0.12),
            (frame(6, 9, 7), 0.30), // far away: its own segment
        ];
        let mut segs = from_frames(scored, 0.05);
        segs.sort_by(|a, b| b.score.total_cmp(&a.score));
        assert_eq!(
            (segs[0].start, segs[0].end, segs[0].peak, segs[0].frame_id),
            (1.0, 4.0, 2.0, Some(3))
        );
        assert_eq!((segs[1].start, segs[1].end), (9.0, 10.0));
    }
}
