//! The sampler proper: takes the spans' candidate pictures in time order and keeps the
//! frames worth embedding, each with the time range it stands for.
//!
//! Does no decoding and no threading (`sample` drives the span decoders).

use std::path::Path;

use super::convert::ToRgb;
use super::sample::{SampleOptions, SampleReason, SampleStats, SampledFrame, grid_after};
use super::signature::Signature;
use super::spans::Piece;
use super::thumbnail::Thumbnailer;
use super::{DecodeError, failed_at};

/// The sampler proper: takes the spans' candidates in time order and keeps the frames
/// worth embedding (periodic ticks, shot changes, minus near-duplicates), each with the
/// time range it stands for.
pub(super) struct Sampler<'a> {
    pub(super) path: &'a Path,
    pub(super) opts: &'a SampleOptions,
    pub(super) interval: f64,
    pub(super) to_rgb: ToRgb,
    pub(super) thumbs: Option<Thumbnailer>,
    pub(super) next_sample: f64,
    pub(super) prev_sig: Option<Signature>,
    // The last kept frame, held until the next kept frame (or the end) fixes its end.
    pub(super) pending: Option<(SampledFrame, Signature)>,
    pub(super) stats: SampleStats,
    pub(super) sink: &'a mut dyn FnMut(SampledFrame) -> bool,
}

impl Sampler<'_> {
    /// Takes one piece; false once the sink wants no more.
    pub(super) fn take(&mut self, piece: Piece) -> Result<bool, DecodeError> {
        let c = match piece {
            Piece::Failed(e) => return Err(e),
            Piece::End(end) => {
                self.stats.decoded_frames += end.decoded;
                self.stats.skipped_packets += end.skipped;
                self.stats.spans += 1;
                self.stats.last_time = self.stats.last_time.max(end.last_time);
                if end.last_sig.is_some() {
                    self.prev_sig = end.last_sig;
                }
                return Ok(true);
            }
            Piece::Candidate(c) => c,
        };
        let opts = self.opts;
        let shot = c.shot.unwrap_or_else(|| {
            self.prev_sig
                .as_ref()
                .is_some_and(|p| p.diff(&c.sig) >= opts.scene_threshold)
        });
        let t = c.t;
        let periodic = t + 1e-6 >= self.next_sample;
        if !(periodic || shot) {
            return Ok(true);
        }
        if periodic {
            // Stay on the grid k/fps even when frames are skipped.
            self.next_sample = grid_after(t, self.interval);
        }
        self.stats.sampled += 1;
        if shot {
            self.stats.shot_changes += 1;
        }
        if let Some((_, psig)) = self.pending.as_ref()
            && !shot
            && psig.diff(&c.sig) < opts.dedup_threshold
        {
            return Ok(true); // collapsed into the pending frame
        }
        let image = self.to_rgb.convert(self.path, &c.frame)?;
        let thumbnail = match self.thumbs.as_mut() {
            Some(th) => th.encode(&image).map_err(failed_at(self.path, "making a thumbnail"))?,
            None => Vec::new(),
        };
        let kept = SampledFrame {
            start: t,
            end: t,
            peak: t,
            image,
            thumbnail,
            reason: if shot {
                SampleReason::ShotChange
            } else {
                SampleReason::Periodic
            },
        };
        self.stats.kept += 1;
        if let Some((mut prev, _)) = self.pending.replace((kept, c.sig)) {
            prev.end = t.max(prev.start);
            if !(self.sink)(prev) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
