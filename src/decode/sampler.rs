//! The sampler proper: takes the spans' candidate pictures in time order and keeps the
//! frames worth embedding, each with the time range it stands for.
//!
//! Does no decoding and no threading (`sample` drives the span decoders).

use std::path::Path;

use super::convert::ToRgb;
use super::open::{VideoInfo, frame_dt};
use super::sample::{SampleOptions, SampleReason, SampleStats, SampledFrame, grid_after};
use super::signature::Signature;
use super::spans::Piece;
use super::thumbnail::Thumbnailer;
use super::{DecodeError, failed_at};

/// The sampler proper: takes the spans' candidates in time order and keeps the frames
/// worth embedding (periodic ticks, shot changes, minus near-duplicates), each with the
/// time range it stands for.
pub(super) struct Sampler<'a> {
    path: &'a Path,
    opts: &'a SampleOptions,
    interval: f64,
    to_rgb: ToRgb,
    thumbs: Option<Thumbnailer>,
    next_sample: f64,
    prev_sig: Option<Signature>,
    // The last kept frame, held until the next kept frame (or the end) fixes its end.
    pending: Option<(SampledFrame, Signature)>,
    stats: SampleStats,
    sink: &'a mut dyn FnMut(SampledFrame) -> bool,
}

impl<'a> Sampler<'a> {
    /// A sampler of the pictures of `info` as `opts` ask, handing kept frames to `sink`.
    pub(super) fn new(
        path: &'a Path,
        opts: &'a SampleOptions,
        info: &VideoInfo,
        sink: &'a mut dyn FnMut(SampledFrame) -> bool,
    ) -> Result<Self, DecodeError> {
        let thumbs = match opts.thumb_short_side {
            0 => None,
            short => {
                let ToRgb { width, height, .. } = ToRgb::new(info, opts.short_side);
                let (w, h) = if info.rotation % 180 == 90 {
                    (height, width)
                } else {
                    (width, height)
                };
                Some(Thumbnailer::new(w, h, short).map_err(failed_at(path, "opening the thumbnail encoder"))?)
            }
        };
        Ok(Self {
            path,
            opts,
            interval: opts.interval(),
            to_rgb: ToRgb::new(info, opts.short_side),
            thumbs,
            next_sample: 0.0,
            prev_sig: None,
            pending: None,
            stats: SampleStats {
                hwaccel: "software".into(),
                ..SampleStats::default()
            },
            sink,
        })
    }

    /// Says how the pictures are decoded ([`SampleStats::hwaccel`]).
    pub(super) fn decoding_with(&mut self, how: String) {
        self.stats.hwaccel = how;
    }

    /// Takes one piece; false once the sink wants no more.
    pub(super) fn take(&mut self, piece: Piece) -> Result<bool, DecodeError> {
        let c = match piece {
            Piece::Failed(e) => return Err(e),
            Piece::End(end) => {
                self.stats.decoded_frames += end.decoded;
                self.stats.gpu_frames += end.gpu;
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

    /// After the last piece: the counters, once the stream is checked (some picture
    /// decoded, not cut short) and the last kept frame is given its end and handed over
    /// (unless `stopped`).
    pub(super) fn finish(self, info: &VideoInfo, stopped: bool) -> Result<SampleStats, DecodeError> {
        let Sampler {
            path,
            interval,
            mut stats,
            mut pending,
            sink,
            ..
        } = self;
        let frame_dt = frame_dt(info.fps);
        if stats.decoded_frames == 0 {
            return Err(DecodeError::NoFrame {
                path: path.to_path_buf(),
                reason: "the video stream holds no decodable picture".into(),
            });
        }
        // NVDEC attached is not NVDEC used: FFmpeg decodes in software by itself where the
        // stream's profile or size is beyond the hardware. The pictures say which.
        if stats.hwaccel == "cuda" && stats.gpu_frames < stats.decoded_frames {
            stats.hwaccel = format!(
                "software (FFmpeg decoded {} of {} pictures without NVDEC: the stream's profile or size is not \
                 supported by it)",
                stats.decoded_frames - stats.gpu_frames,
                stats.decoded_frames
            );
        }
        // A stream that ends well before its declared duration was cut short.
        if !stopped && info.duration > 2.0 && stats.last_time + frame_dt < 0.9 * info.duration - 1.0 {
            return Err(DecodeError::Truncated {
                path: path.to_path_buf(),
                decoded: stats.last_time,
                declared: info.duration,
            });
        }
        if let Some((mut last, _)) = pending.take()
            && !stopped
        {
            // The last frame stands until the end of the stream (the declared duration
            // when it is plausible, else one frame past the last picture).
            let past_last = stats.last_time + frame_dt;
            let declared_ok = info.duration >= past_last && info.duration <= past_last + interval;
            last.end = if declared_ok { info.duration } else { past_last }.max(last.start + frame_dt);
            sink(last);
        }
        Ok(stats)
    }
}
