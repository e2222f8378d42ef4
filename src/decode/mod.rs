//! `decode`: the only module that imports ffmpeg-next (Debian's FFmpeg 5.1 libraries).
//!
//! Owns: opening media files, stream facts, sampling video frames with exact time
//! ranges at the geometry the caller asks for, JPEG thumbnails, subtitle cues (embedded
//! streams and sidecar files). Knows nothing of models or storage.

mod subtitles;
mod video;

use std::path::{Path, PathBuf};
use std::sync::Once;

pub use subtitles::{embedded_subtitles, sidecar_files, subtitle_file};
pub use video::{SampleOptions, SampleReason, SampledFrame, VideoInfo, frames_at, probe, sample};

use ffmpeg::format::Pixel;
use ffmpeg::media::Type;
use ffmpeg::software::scaling;
use ffmpeg_next as ffmpeg;

use crate::image::RgbImage;

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
    if let Err(e) = std::fs::File::open(path) {
        return Err(DecodeError::Open {
            path: path.to_path_buf(),
            reason: e.to_string(),
        });
    }
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

/// Converts (and scales) a decoded frame to packed RGB in one swscale pass.
fn to_rgb(
    frame: &ffmpeg::frame::Video,
    width: u32,
    height: u32,
    flags: scaling::Flags,
) -> Result<RgbImage, ffmpeg::Error> {
    let mut sws = scaling::Context::get(
        frame.format(),
        frame.width(),
        frame.height(),
        Pixel::RGB24,
        width,
        height,
        flags,
    )?;
    let mut rgb = ffmpeg::frame::Video::empty();
    sws.run(frame, &mut rgb)?;
    Ok(packed_rgb(&rgb))
}

/// Copies an RGB24 frame into a tightly packed buffer (frames have padded rows).
pub(crate) fn packed_rgb(rgb: &ffmpeg::frame::Video) -> RgbImage {
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let stride = rgb.stride(0);
    let src = rgb.data(0);
    let mut data = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        data.extend_from_slice(&src[y * stride..y * stride + w * 3]);
    }
    RgbImage {
        width: w as u32,
        height: h as u32,
        data,
    }
}
