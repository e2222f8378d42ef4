//! `decode`: the only module that imports ffmpeg-next (Debian's FFmpeg 5.1 libraries).
//!
//! Owns: opening media files, stream facts, sampling video frames with exact time
//! ranges at the geometry the caller asks for, JPEG thumbnails, subtitle cues (embedded
//! streams and sidecar files). Knows nothing of models or storage.
//!
//! Where to look: `open` (the input, its stream facts, its decoder), `sample` (the
//! public sampling entry point and its options) driving `spans` (decoding stretches
//! between keyframes) and `sampler` (which pictures are kept), with `signature` (shot
//! changes), `convert` (scaling to RGB), `thumbnail` (JPEG) and `hwaccel` (NVDEC) as
//! their tools; `frames_at` re-decodes chosen times; `subtitles` reads cues; `cut`
//! reads what cutting a span needs (start times, the exact rate, keyframes).

mod audio;
mod convert;
mod cut;
mod frames_at;
mod hwaccel;
mod open;
mod sample;
mod sampler;
mod signature;
mod spans;
mod subtitles;
mod thumbnail;

use std::path::{Path, PathBuf};
use std::sync::Once;

pub use audio::{AUDIO_RATE, AudioTrack, audio};
pub use cut::{CutFacts, cut_facts, keyframe_at_or_before};
pub use frames_at::frames_at;
pub use open::{VideoInfo, probe};
pub use sample::{SampleOptions, SampleReason, SampledFrame, sample};
pub use subtitles::{embedded_subtitles, sidecar_files, subtitle_file};

use ffmpeg::media::Type;
use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;

use crate::image::RgbImage;
use convert::to_rgb;

/// Errors of decoding. A file that cannot be decoded is the user's problem (that file
/// fails, nothing else); the message says which file and why.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The file does not exist or cannot be read.
    #[error("{}: cannot open ({reason})", path.display())]
    Open { path: PathBuf, reason: String },
    /// FFmpeg could not read the container or has no decoder for the stream.
    #[error("{}: not a readable image or video ({reason})", path.display())]
    Format { path: PathBuf, reason: String },
    /// There is no audio stream in the file.
    #[error("{}: has no audio stream (nothing to transcribe)", path.display())]
    NoAudio { path: PathBuf },
    /// An audio stream that cannot be decoded.
    #[error("{}: audio: {reason}", path.display())]
    Audio { path: PathBuf, reason: String },
    /// There is no picture stream in the file.
    #[error("{}: has no video stream", path.display())]
    NoVideo { path: PathBuf },
    /// The stream ended before a picture was decoded.
    #[error("{}: no picture could be decoded ({reason})", path.display())]
    NoFrame { path: PathBuf, reason: String },
    /// Pixel format conversion failed.
    #[error("{}: cannot convert pixels ({reason})", path.display())]
    Convert { path: PathBuf, reason: String },
    /// The stream is of a kind vidseek does not index (e.g. an extreme resolution).
    #[error("{}: unsupported video: {reason}", path.display())]
    Unsupported { path: PathBuf, reason: String },
    /// Decoding failed part-way.
    #[error("{}: decoding failed ({reason}); the file may be damaged", path.display())]
    Decode { path: PathBuf, reason: String },
    /// The stream ends long before its declared duration.
    #[error(
        "{}: truncated: pictures stop at {decoded:.1} s of a declared {declared:.1} s (the file was cut short; re-copy it)",
        path.display()
    )]
    Truncated { path: PathBuf, decoded: f64, declared: f64 },
}

impl crate::error::Classified for DecodeError {
    /// Every decode failure is caused by the file itself.
    fn fault(&self) -> crate::error::Fault {
        match self {
            DecodeError::Open { .. } => crate::error::Fault::NotFound,
            _ => crate::error::Fault::BadInput,
        }
    }

    fn code(&self) -> &'static str {
        "bad_media"
    }
}

static INIT: Once = Once::new();

/// Initialises FFmpeg once and keeps its logging quiet (errors come back as values).
pub fn init() {
    INIT.call_once(|| {
        let _ = ffmpeg::init();
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Fatal);
    });
}

/// Versions of the FFmpeg libraries this process uses, as `(library, "major.minor.micro")`.
pub fn library_versions() -> Vec<(&'static str, String)> {
    init();
    let v = |n: u32| format!("{}.{}.{}", n >> 16, (n >> 8) & 0xff, n & 0xff);
    vec![
        ("libavutil", v(ffmpeg::util::version())),
        ("libavcodec", v(ffmpeg::codec::version())),
        ("libavformat", v(ffmpeg::format::version())),
        ("libswscale", v(ffmpeg::software::scaling::version())),
    ]
}

/// Decodes the first picture of an image file (PNG, JPEG, BMP, WebP, ...) or a video to
/// packed RGB at its own size. An alpha channel is dropped, as PIL's `convert("RGB")` does.
pub fn image(path: &Path) -> Result<RgbImage, DecodeError> {
    init();
    readable(path)?;
    let format_err = |e: ffmpeg::Error| DecodeError::Format {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut input = ffmpeg::format::input(path).map_err(format_err)?;
    let stream = input.streams().best(Type::Video).ok_or_else(|| DecodeError::NoVideo {
        path: path.to_path_buf(),
    })?;
    let index = stream.index();
    let ctx = ffmpeg::codec::context::Context::from_parameters(stream.parameters()).map_err(format_err)?;
    let mut decoder = ctx.decoder().video().map_err(format_err)?;
    let mut frame = ffmpeg::frame::Video::empty();
    let mut got = false;
    for (s, packet) in input.packets() {
        if s.index() != index {
            continue;
        }
        decoder.send_packet(&packet).map_err(format_err)?;
        if decoder.receive_frame(&mut frame).is_ok() {
            got = true;
            break;
        }
    }
    if !got {
        let _ = decoder.send_eof();
        got = decoder.receive_frame(&mut frame).is_ok();
    }
    if !got {
        return Err(DecodeError::NoFrame {
            path: path.to_path_buf(),
            reason: "end of stream".into(),
        });
    }
    to_rgb(&frame, frame.width(), frame.height(), scaling::Flags::BICUBIC).map_err(|e| DecodeError::Convert {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Ok when `path` can be opened for reading: a missing or unreadable file is told apart
/// from one FFmpeg cannot read.
fn readable(path: &Path) -> Result<(), DecodeError> {
    match std::fs::File::open(path) {
        Ok(_) => Ok(()),
        Err(e) => Err(DecodeError::Open {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

/// Turns an FFmpeg error while `what` into the file's decode error.
fn failed_at<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(ffmpeg::Error) -> DecodeError + 'a {
    move |e| DecodeError::Decode {
        path: path.to_path_buf(),
        reason: format!("{what}: {e}"),
    }
}
