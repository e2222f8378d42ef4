//! Opening a video: the input, the facts of its video stream ([`VideoInfo`]: display
//! size after rotation and pixel aspect ratio, frame rate, duration), its decoder,
//! seeking, and the container's keyframe index.
//!
//! Decodes no pictures: what is done with the decoder is the sampler's business
//! (`sample`, `spans`, `frames_at`).

use std::path::Path;

use ffmpeg::media::Type;
use ffmpeg_next as ffmpeg;

use super::hwaccel::attach_cuda;
use super::{DecodeError, init, readable};

/// Stream facts of a video file.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct VideoInfo {
    /// Seconds.
    pub duration: f64,
    /// Average frame rate.
    pub fps: f64,
    /// Display size (after rotation and pixel aspect ratio).
    pub width: u32,
    /// Display height.
    pub height: u32,
    /// FFmpeg's codec name.
    pub codec: String,
    /// Clockwise rotation applied for display: 0, 90, 180 or 270.
    pub rotation: u32,
    /// Subtitle streams in the container.
    pub subtitle_streams: usize,
    /// Audio streams in the container.
    pub audio_streams: usize,
    /// The container's title tag, when set.
    pub title: Option<String>,
}

/// An open input at its start, with the facts of its video stream.
pub(super) struct Opened {
    pub(super) input: ffmpeg::format::context::Input,
    pub(super) index: usize,
    pub(super) time_base: f64,
    pub(super) start: i64,
    /// Pictures a decoder holds back for reordering (B pictures): a keyframe is shown
    /// up to this many frames after its decoding time.
    pub(super) video_delay: u32,
    pub(super) info: VideoInfo,
}

/// Opens `path` at its start and reads the facts of its best video stream.
pub(super) fn open(path: &Path) -> Result<Opened, DecodeError> {
    init();
    readable(path)?;
    let input = ffmpeg::format::input(path).map_err(|e| DecodeError::Format {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let stream = input.streams().best(Type::Video).ok_or_else(|| DecodeError::NoVideo {
        path: path.to_path_buf(),
    })?;
    let index = stream.index();
    let tb = stream.time_base();
    let time_base = tb.numerator() as f64 / tb.denominator().max(1) as f64;
    let start = if stream.start_time() == ffmpeg::ffi::AV_NOPTS_VALUE {
        0
    } else {
        stream.start_time()
    };
    let coded = Coded::of(&stream);
    let (w, h) = (coded.width, coded.height);
    if w < 16 || h < 16 || w > 16384 || h > 16384 {
        return Err(DecodeError::Unsupported {
            path: path.to_path_buf(),
            reason: format!("a {w}x{h} picture is outside the supported 16..16384 pixels per side"),
        });
    }
    let rotation = rotation_of(&stream);
    let (width, height) = coded.display_size(rotation);
    let video_delay = coded.video_delay;
    let info = VideoInfo {
        duration: duration_of(&stream, &input, time_base),
        fps: frame_rate_of(&stream),
        width,
        height,
        codec: coded.codec,
        rotation,
        subtitle_streams: input
            .streams()
            .filter(|s| s.parameters().medium() == Type::Subtitle)
            .count(),
        audio_streams: input
            .streams()
            .filter(|s| s.parameters().medium() == Type::Audio)
            .count(),
        title: input
            .metadata()
            .get("title")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string),
    };
    Ok(Opened {
        info,
        input,
        index,
        time_base,
        start,
        video_delay,
    })
}

/// What a video stream's codec parameters say of its coded pictures.
struct Coded {
    width: u32,
    height: u32,
    /// Sample (pixel) aspect ratio; 0/0 or 0/1 where unknown.
    sar: ffmpeg::ffi::AVRational,
    /// FFmpeg's codec name.
    codec: String,
    /// See [`Opened::video_delay`].
    video_delay: u32,
}

impl Coded {
    fn of(stream: &ffmpeg::format::stream::Stream) -> Self {
        let params = stream.parameters();
        // SAFETY: the parameters of a live stream, read and not kept.
        unsafe {
            let p = params.as_ptr();
            Coded {
                width: (*p).width as u32,
                height: (*p).height as u32,
                sar: (*p).sample_aspect_ratio,
                codec: ffmpeg::codec::Id::from((*p).codec_id).name().to_string(),
                video_delay: (*p).video_delay.max(0) as u32,
            }
        }
    }

    /// Display width and height: non-square pixels stretched, then rotated clockwise
    /// by `rotation` degrees.
    fn display_size(&self, rotation: u32) -> (u32, u32) {
        let (w, h, sar) = (self.width, self.height, self.sar);
        let display_w = if sar.num > 0 && sar.den > 0 && sar.num != sar.den {
            ((w as f64 * sar.num as f64 / sar.den as f64).round() as u32).max(1)
        } else {
            w
        };
        if rotation % 180 == 90 {
            (h, display_w)
        } else {
            (display_w, h)
        }
    }
}

/// Average frame rate (the stream's base rate where the average is unknown; 0: neither).
fn frame_rate_of(stream: &ffmpeg::format::stream::Stream) -> f64 {
    let avg = stream.avg_frame_rate();
    if avg.denominator() > 0 && avg.numerator() > 0 {
        avg.numerator() as f64 / avg.denominator() as f64
    } else {
        let r = stream.rate();
        if r.denominator() > 0 {
            r.numerator() as f64 / r.denominator() as f64
        } else {
            0.0
        }
    }
}

/// Seconds: the stream's duration, else the container's, else 0.
fn duration_of(stream: &ffmpeg::format::stream::Stream, input: &ffmpeg::format::context::Input, time_base: f64) -> f64 {
    if stream.duration() > 0 {
        stream.duration() as f64 * time_base
    } else if input.duration() > 0 {
        input.duration() as f64 / ffmpeg::ffi::AV_TIME_BASE as f64
    } else {
        0.0
    }
}

/// Clockwise display rotation from the stream's display matrix.
fn rotation_of(stream: &ffmpeg::format::stream::Stream) -> u32 {
    for sd in stream.side_data() {
        if sd.kind() == ffmpeg::codec::packet::side_data::Type::DisplayMatrix && sd.data().len() >= 36 {
            // av_display_rotation_get: counter-clockwise degrees.
            let ccw = unsafe { ffmpeg::ffi::av_display_rotation_get(sd.data().as_ptr() as *const i32) };
            if ccw.is_nan() {
                return 0;
            }
            let cw = (-ccw.round() as i64).rem_euclid(360);
            return (((cw + 45) / 90 * 90) % 360) as u32;
        }
    }
    0
}

/// Reads the stream facts without decoding pictures.
pub fn probe(path: &Path) -> Result<VideoInfo, DecodeError> {
    Ok(open(path)?.info)
}

/// Seconds per frame at `fps` (25 fps where the stream does not say).
pub(super) fn frame_dt(fps: f64) -> f64 {
    if fps > 0.0 { 1.0 / fps } else { 1.0 / 25.0 }
}

/// Seeks the input to the last keyframe at or before `ts` (the video stream's own
/// timestamps); false when the demuxer cannot.
pub(super) fn seek(opened: &mut Opened, ts: i64) -> bool {
    // SAFETY: the input is open; the timestamps are the stream's own.
    unsafe { ffmpeg::ffi::avformat_seek_file(opened.input.as_mut_ptr(), opened.index as i32, i64::MIN, ts, ts, 0) >= 0 }
}

/// The demuxer's index entries flagged as keyframes for the stream: their raw timestamps
/// (the index's own, stream time base), ascending and distinct (empty when the container
/// has no index).
pub(super) fn keyframe_index(stream: &ffmpeg::format::stream::Stream) -> Vec<i64> {
    // SAFETY: the stream of the open input is live; its entries are read, not kept.
    let mut keys: Vec<i64> = unsafe {
        let st = stream.as_ptr();
        let n = ffmpeg::ffi::avformat_index_get_entries_count(st);
        (0..n)
            .filter_map(|i| {
                let e = ffmpeg::ffi::avformat_index_get_entry(st as *mut _, i);
                // flags are the low 2 bits of the bitfield; AVINDEX_KEYFRAME = 1.
                (!e.is_null() && ((*e)._bitfield_1.get(0, 2) & 1) == 1).then(|| (*e).timestamp)
            })
            .collect()
    };
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The video decoder of an open input: `threads` frame threads (0: FFmpeg's choice), on
/// the GPU (NVDEC) when `hwaccel` and the machine allow it. Also says how it decodes:
/// "software", "cuda", or "software (REASON)".
pub(super) fn open_decoder(
    path: &Path,
    opened: &Opened,
    threads: usize,
    hwaccel: bool,
) -> Result<(ffmpeg::decoder::Video, String), DecodeError> {
    let stream = opened.input.stream(opened.index).expect("stream index from open()");
    let mut ctx =
        ffmpeg::codec::context::Context::from_parameters(stream.parameters()).map_err(|e| DecodeError::Format {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let mut how = "software".to_string();
    if hwaccel {
        match attach_cuda(&mut ctx) {
            Ok(()) => how = "cuda".into(),
            Err(reason) => {
                tracing::info!("{}: decoding in software: {reason}", path.display());
                how = format!("software ({reason})");
            }
        }
    }
    ctx.set_threading(ffmpeg::codec::threading::Config {
        kind: ffmpeg::codec::threading::Type::Frame,
        count: threads,
        ..Default::default()
    });
    let decoder = ctx.decoder().video().map_err(|e| DecodeError::Format {
        path: path.to_path_buf(),
        reason: format!("no decoder for {} ({e})", opened.info.codec),
    })?;
    Ok((decoder, how))
}
