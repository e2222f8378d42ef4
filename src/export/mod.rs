//! `export`: taking moments out of vidseek. `clip` cuts a span of a video into a file
//! (MP4, WebM or a GIF preview) through the `ffmpeg` command-line tool, a child
//! process, as `synth` encodes; `timeline` writes a list of moments as an
//! OpenTimelineIO file or a CMX 3600 EDL for editing tools.
//!
//! Reads stream facts and keyframes through `decode` (the only ffmpeg-next importer);
//! knows nothing of the store, search or HTTP. Why the CLI and not ffmpeg-next for the
//! cut: its transcoder (accurate seeking, audio resampled to the encoder's frame size,
//! subtitles converted to what the container holds, two-pass GIF palettes, muxing with
//! `+faststart`) is several hundred lines of encode plumbing vidseek would copy, and a
//! child process is killed cleanly when a client goes away.

pub mod clip;
pub mod timeline;

use std::path::PathBuf;

pub use clip::{ClipFormat, ClipRequest, Limits, Plan, parse_time};
pub use timeline::{Moment, edl, otio, timeline_clips};

use crate::decode::DecodeError;

/// Errors of exporting a clip or a timeline. Each names the video or value and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A start or end time that does not fit the video.
    #[error("{0}")]
    Span(String),
    /// A span longer than the limit allows.
    #[error("the span is {seconds:.1} s; {what} is at most {limit:.1} s: ask for a shorter span")]
    TooLong {
        seconds: f64,
        limit: f64,
        what: &'static str,
    },
    /// A format other than mp4, webm, gif or webp.
    #[error("unknown clip format {0:?}: use mp4, webm, gif or webp")]
    Format(String),
    /// A stream copy into a container that cannot hold the source's codec.
    #[error("{0}")]
    Copy(String),
    /// The source cannot be read (a missing file is `not found`).
    #[error(transparent)]
    Source(#[from] DecodeError),
    /// The `ffmpeg` command-line tool is missing or failed.
    #[error("cutting {} with the ffmpeg CLI failed: {reason}", path.display())]
    Ffmpeg { path: PathBuf, reason: String },
}

impl crate::error::Classified for ExportError {
    fn fault(&self) -> crate::error::Fault {
        use crate::error::Fault;
        match self {
            ExportError::Span(_) | ExportError::TooLong { .. } | ExportError::Format(_) | ExportError::Copy(_) => {
                Fault::BadInput
            }
            ExportError::Source(e) => e.fault(),
            ExportError::Ffmpeg { .. } => Fault::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ExportError::Span(_) => "bad_span",
            ExportError::TooLong { .. } => "span_too_long",
            ExportError::Format(_) => "bad_format",
            ExportError::Copy(_) => "cannot_copy",
            ExportError::Source(e) => e.code(),
            _ => self.fault().code(),
        }
    }
}
