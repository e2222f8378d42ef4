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
/// display, as [`sample`] would give them. Used to re-embed stored frames with another
/// model without sampling again. A time past the last picture gets the last one.
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
    let frame_dt = frame_dt(info.fps);
    let mut to_rgb = ToRgb::new(info, short_side);
    let mut out: Vec<RgbImage> = Vec::with_capacity(times.len());
    let mut last: Option<RgbImage> = None;
    let mut frame = ffmpeg::frame::Video::empty();
    let mut skipping = false;
    // Scales one decoded picture the way `sample` does.
    let mut convert = |frame: &ffmpeg::frame::Video| to_rgb.convert(path, frame);
    let mut take = |frame: &ffmpeg::frame::Video,
                    out: &mut Vec<RgbImage>,
                    last: &mut Option<RgbImage>|
     -> Result<(), DecodeError> {
        let ts = frame.timestamp().or(frame.pts()).unwrap_or(0);
        let t = ((ts - start) as f64 * time_base).max(0.0);
        let eps = 0.25 * frame_dt;
        if out.len() < times.len() && times[out.len()] <= t + eps {
            let img = convert(frame)?;
            while out.len() < times.len() && times[out.len()] <= t + eps {
                if times[out.len()] < t - eps {
                    // Passed without a picture at that time: the one before was shown.
                    out.push(last.clone().unwrap_or_else(|| img.clone()));
                } else {
                    out.push(img.clone());
                }
            }
            *last = Some(img);
        } else if out.len() < times.len() && times[out.len()] - t < 3.0 * frame_dt {
            // Just before a wanted time: this picture is shown then if none starts at it.
            *last = Some(convert(frame)?);
        }
        Ok(())
    };
    'packets: for (s, packet) in input.packets() {
        if s.index() != index {
            continue;
        }
        decoder.send_packet(&packet).map_err(failed_at(path, "decoding"))?;
        while decoder.receive_frame(&mut frame).is_ok() {
            take(&frame, &mut out, &mut last)?;
            if out.len() == times.len() {
                break 'packets;
            }
            let ts = frame.timestamp().or(frame.pts()).unwrap_or(0);
            let t = ((ts - start) as f64 * time_base).max(0.0);
            // Only reference frames while the next wanted time is far away.
            let far = times[out.len()] - t > 2.5 * frame_dt;
            if far != skipping {
                skipping = far;
                decoder.skip_frame(if far { Discard::NonReference } else { Discard::Default });
            }
        }
    }
    if out.len() < times.len() {
        let _ = decoder.send_eof();
        while decoder.receive_frame(&mut frame).is_ok() && out.len() < times.len() {
            take(&frame, &mut out, &mut last)?;
        }
    }
    // Times past the last picture (its frame stood until the end).
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
