//! Clips and timelines: `GET /api/videos/{id}/clip` and `GET /api/timeline`.

use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// The query string of `GET /api/videos/{id}/clip`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClipParams {
    /// Seconds from the video's start (as results give them).
    #[param(minimum = 0.0)]
    pub start: f64,
    /// Seconds; after `start`, at most the video's length.
    #[param(minimum = 0.0)]
    pub end: f64,
    /// mp4 (H.264 + AAC, the default), webm (VP9 + Opus), or gif or webp (a small preview).
    pub format: Option<ClipFormatDto>,
    /// Copy the streams from the keyframe at or before `start` instead of re-encoding
    /// (faster, starts earlier: the `X-Clip-Start` header says where).
    pub fast: Option<bool>,
}

/// A clip's container.
#[derive(Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClipFormatDto {
    Mp4,
    Webm,
    Gif,
    Webp,
}

impl From<ClipFormatDto> for crate::export::ClipFormat {
    fn from(f: ClipFormatDto) -> Self {
        match f {
            ClipFormatDto::Mp4 => Self::Mp4,
            ClipFormatDto::Webm => Self::Webm,
            ClipFormatDto::Gif => Self::Gif,
            ClipFormatDto::Webp => Self::Webp,
        }
    }
}

/// The format of `GET /api/timeline` (the search parameters are those of `GET /api/search`).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimelineParams {
    /// otio (OpenTimelineIO JSON) or edl (CMX 3600).
    pub format: TimelineFormat,
}

/// A timeline's file format.
#[derive(Clone, Copy, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TimelineFormat {
    Otio,
    Edl,
}
