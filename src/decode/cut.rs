//! What cutting a span out of a file needs to know, read without decoding pictures:
//! the video stream's own start time and exact frame rate (timelines' source
//! timecodes), the container's start (the `ffmpeg` CLI seeks relative to it), the other
//! streams, and the keyframe at or before a time (where a stream copy can start).
//!
//! Cuts nothing: `export` runs the cut.

use std::path::Path;

use ffmpeg::media::Type;
use ffmpeg_next as ffmpeg;

use super::DecodeError;
use super::open::{Opened, open, seek};

/// Stream facts for cutting and for timelines.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CutFacts {
    /// Seconds of the video stream (as [`VideoInfo`](super::VideoInfo) says).
    pub duration: f64,
    /// The video stream's frame rate as a fraction (its average, else its base rate;
    /// 25/1 where neither is known).
    pub rate: (i32, i32),
    /// Seconds: the first presentation time of the video stream (its `start_time`).
    /// vidseek's moment times count from here.
    pub stream_start: f64,
    /// Seconds: the container's start (the earliest of its streams), which the `ffmpeg`
    /// CLI's `-ss` counts from.
    pub format_start: f64,
    /// Audio streams.
    pub audio_streams: usize,
    /// The codec of each subtitle stream, in stream order (FFmpeg's names).
    pub subtitle_codecs: Vec<String>,
    /// The video codec (FFmpeg's name).
    pub codec: String,
}

impl CutFacts {
    /// Frames per second.
    pub fn fps(&self) -> f64 {
        self.rate.0 as f64 / self.rate.1.max(1) as f64
    }
}

/// Reads the facts of `path` needed to cut it.
pub fn cut_facts(path: &Path) -> Result<CutFacts, DecodeError> {
    let opened = open(path)?;
    Ok(facts_of(&opened))
}

fn facts_of(opened: &Opened) -> CutFacts {
    let input = &opened.input;
    let stream = input.stream(opened.index).expect("stream index from open()");
    let avg = stream.avg_frame_rate();
    let base = stream.rate();
    let rate = if avg.numerator() > 0 && avg.denominator() > 0 {
        (avg.numerator(), avg.denominator())
    } else if base.numerator() > 0 && base.denominator() > 0 {
        (base.numerator(), base.denominator())
    } else {
        (25, 1)
    };
    // SAFETY: the open input's context, read and not kept.
    let raw_start = unsafe { (*input.as_ptr()).start_time };
    let format_start = if raw_start == ffmpeg::ffi::AV_NOPTS_VALUE {
        0.0
    } else {
        raw_start as f64 / ffmpeg::ffi::AV_TIME_BASE as f64
    };
    let subtitle_codecs = input
        .streams()
        .filter(|s| s.parameters().medium() == Type::Subtitle)
        .map(|s| s.parameters().id().name().to_string())
        .collect();
    CutFacts {
        duration: opened.info.duration,
        rate,
        stream_start: opened.start as f64 * opened.time_base,
        format_start,
        audio_streams: input
            .streams()
            .filter(|s| s.parameters().medium() == Type::Audio)
            .count(),
        subtitle_codecs,
        codec: opened.info.codec.clone(),
    }
}

/// Seconds (from the video stream's start, as moment times are): the presentation time
/// of the keyframe a stream copy starting at `t` must start from, the last at or before
/// `t`. Reads packets from the demuxer's seek point only; decodes nothing.
pub fn keyframe_at_or_before(path: &Path, t: f64) -> Result<f64, DecodeError> {
    let mut opened = open(path)?;
    let (index, tb, start) = (opened.index, opened.time_base, opened.start);
    let target = start + (t.max(0.0) / tb).floor() as i64;
    if !seek(&mut opened, target) {
        seek(&mut opened, i64::MIN);
    }
    let mut best: Option<i64> = None;
    // Reordered pictures: read a few seconds past t before concluding.
    let margin = (5.0 / tb) as i64;
    for (s, packet) in opened.input.packets() {
        if s.index() != index {
            continue;
        }
        let Some(pts) = packet.pts().or(packet.dts()) else {
            continue;
        };
        if pts > target.saturating_add(margin) || (packet.is_key() && pts > target) {
            break;
        }
        if packet.is_key() && pts <= target {
            // Keyframes past the seek point but still at or before t are better.
            best = Some(best.map_or(pts, |b: i64| b.max(pts)));
        }
    }
    Ok(best.map_or(0.0, |pts| ((pts - start) as f64 * tb).max(0.0)))
}
