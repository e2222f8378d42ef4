//! The pictures at given times of a video, as [`sample`](super::sample::sample) gave
//! them: for re-embedding stored frames with another model without sampling again.
//!
//! No shot detection or thumbnails; one decoder reads the file from the start.

use std::path::Path;

use ffmpeg::codec::discard::Discard;
use ffmpeg_next as ffmpeg;

use super::convert::ToRgb;
use super::open::{Opened, frame_dt, open, open_decoder};
use super::{DecodeError, failed_at};
use crate::image::RgbImage;

/// The pictures shown at `times` (seconds, ascending; the presentation times of frames
/// sampled earlier), scaled so the shorter display side is `short_side` and rotated for
/// display, as [`sample`](super::sample::sample) would give them. Used to re-embed stored
/// frames with another model without sampling again. A time past the last picture gets
/// the last one.
pub fn frames_at(path: &Path, times: &[f64], short_side: u32, threads: usize) -> Result<Vec<RgbImage>, DecodeError> {
    let mut opened = open(path)?;
    let (mut decoder, _) = open_decoder(path, &opened, threads, false)?;
    let Opened {
        ref mut input,
        index,
        time_base,
        start,
        ref info,
        ..
    } = opened;
    let mut picker = Picker {
        path,
        times,
        start,
        time_base,
        frame_dt: frame_dt(info.fps),
        to_rgb: ToRgb::new(info, short_side),
        out: Vec::with_capacity(times.len()),
        last: None,
    };
    let mut frame = ffmpeg::frame::Video::empty();
    let mut skipping = false;
    'packets: for (s, packet) in input.packets() {
        if s.index() != index {
            continue;
        }
        decoder.send_packet(&packet).map_err(failed_at(path, "decoding"))?;
        while decoder.receive_frame(&mut frame).is_ok() {
            picker.take(&frame)?;
            if picker.done() {
                break 'packets;
            }
            // Only reference frames while the next wanted time is far away.
            let far = picker.far_from_next(&frame);
            if far != skipping {
                skipping = far;
                decoder.skip_frame(if far { Discard::NonReference } else { Discard::Default });
            }
        }
    }
    if !picker.done() {
        let _ = decoder.send_eof();
        while decoder.receive_frame(&mut frame).is_ok() && !picker.done() {
            picker.take(&frame)?;
        }
    }
    picker.finish()
}

/// Takes the decoded pictures, in presentation order, that are shown at the wanted times.
struct Picker<'a> {
    path: &'a Path,
    times: &'a [f64],
    start: i64,
    time_base: f64,
    frame_dt: f64,
    /// Scales one decoded picture the way `sample` does.
    to_rgb: ToRgb,
    /// One picture per wanted time so far.
    out: Vec<RgbImage>,
    /// The latest picture converted: the one shown at a wanted time no picture starts at.
    last: Option<RgbImage>,
}

impl Picker<'_> {
    /// Seconds from the stream start at which `frame` is shown.
    fn time(&self, frame: &ffmpeg::frame::Video) -> f64 {
        let ts = frame.timestamp().or(frame.pts()).unwrap_or(0);
        ((ts - self.start) as f64 * self.time_base).max(0.0)
    }

    /// Every wanted time has its picture.
    fn done(&self) -> bool {
        self.out.len() == self.times.len()
    }

    /// The next wanted time is more than 2.5 frames after `frame` (not yet done).
    fn far_from_next(&self, frame: &ffmpeg::frame::Video) -> bool {
        self.times[self.out.len()] - self.time(frame) > 2.5 * self.frame_dt
    }

    fn take(&mut self, frame: &ffmpeg::frame::Video) -> Result<(), DecodeError> {
        let t = self.time(frame);
        let (times, eps) = (self.times, 0.25 * self.frame_dt);
        let out = &mut self.out;
        if out.len() < times.len() && times[out.len()] <= t + eps {
            let img = self.to_rgb.convert(self.path, frame)?;
            while out.len() < times.len() && times[out.len()] <= t + eps {
                if times[out.len()] < t - eps {
                    // Passed without a picture at that time: the one before was shown.
                    out.push(self.last.clone().unwrap_or_else(|| img.clone()));
                } else {
                    out.push(img.clone());
                }
            }
            self.last = Some(img);
        } else if out.len() < times.len() && times[out.len()] - t < 3.0 * self.frame_dt {
            // Just before a wanted time: this picture is shown then if none starts at it.
            self.last = Some(self.to_rgb.convert(self.path, frame)?);
        }
        Ok(())
    }

    /// The pictures, once decoding ended: times past the last picture get it (its frame
    /// stood until the end).
    fn finish(self) -> Result<Vec<RgbImage>, DecodeError> {
        let Picker {
            path,
            times,
            mut out,
            last,
            ..
        } = self;
        while out.len() < times.len() {
            match last.clone() {
                Some(img) => out.push(img),
                None => {
                    return Err(DecodeError::NoFrame {
                        path: path.to_path_buf(),
                        reason: "the video stream holds no decodable picture".into(),
                    });
                }
            }
        }
        Ok(out)
    }
}
