//! The library: videos and their frames, indexing a path, uploads, prunes.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{media_url, thumb_url};
use crate::catalog::{Frame, Video, VideoStatus};

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VideoStatusDto {
    Indexed,
    Failed,
}

/// A video of the library.
#[derive(Serialize, ToSchema)]
pub struct VideoDto {
    pub id: i64,
    pub path: String,
    pub size: i64,
    pub duration: Option<f64>,
    pub fps: Option<f64>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub codec: Option<String>,
    pub rotation: Option<i64>,
    pub status: VideoStatusDto,
    /// Why it could not be (re-)indexed.
    pub error: Option<String>,
    pub frame_count: i64,
    /// Unix seconds.
    pub indexed_at: i64,
    /// Its file, seekable.
    pub media: String,
}

impl From<Video> for VideoDto {
    fn from(v: Video) -> Self {
        Self {
            media: media_url(v.id),
            id: v.id,
            path: v.path,
            size: v.size,
            duration: v.duration,
            fps: v.fps,
            width: v.width,
            height: v.height,
            codec: v.codec,
            rotation: v.rotation,
            status: match v.status {
                VideoStatus::Indexed => VideoStatusDto::Indexed,
                VideoStatus::Failed => VideoStatusDto::Failed,
            },
            error: v.error,
            frame_count: v.frame_count,
            indexed_at: v.indexed_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Videos {
    pub videos: Vec<VideoDto>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VideoParams {
    /// When given, each frame carries its similarity to this query (for timelines).
    #[param(max_length = 1000)]
    pub q: Option<String>,
}

/// A stored frame: the vector at `peak` stands for [start, end).
#[derive(Serialize, ToSchema)]
pub struct FrameDto {
    pub id: i64,
    pub start: f64,
    pub end: f64,
    pub peak: f64,
    /// Sampled at a shot change.
    pub shot: bool,
    pub thumbnail: String,
    /// Cosine with the `q` given.
    pub score: Option<f32>,
}

impl FrameDto {
    /// A stored frame with its score for the query asked, if any.
    pub fn new(f: Frame, score: Option<f32>) -> Self {
        Self {
            thumbnail: thumb_url(f.id),
            score,
            id: f.id,
            start: f.start,
            end: f.end,
            peak: f.peak,
            shot: f.shot,
        }
    }
}

/// `GET /api/videos/{id}`.
#[derive(Serialize, ToSchema)]
pub struct VideoDetail {
    pub video: VideoDto,
    pub media: String,
    pub frames: Vec<FrameDto>,
}

/// `POST /api/index`.
#[derive(Deserialize, ToSchema)]
pub struct IndexBody {
    /// A file or folder inside a library root.
    #[schema(min_length = 1, pattern = r"\S")]
    pub path: String,
}

/// A video a prune removed.
#[derive(Serialize, ToSchema)]
pub struct Removed {
    pub id: i64,
    pub path: String,
}

/// `POST /api/prune`.
#[derive(Serialize, ToSchema)]
pub struct Pruned {
    pub removed: Vec<Removed>,
}

/// `POST /api/upload`: a multipart form with one file.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The video file.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// A line of on-screen text (OCR): when it shows, where, what it says.
#[derive(Serialize, ToSchema)]
pub struct ScreenTextDto {
    /// Seconds.
    pub start: f64,
    pub end: f64,
    /// The reading.
    pub text: String,
    /// Corners (top-left, top-right, bottom-right, bottom-left) as fractions of the frame.
    pub quad: Option<[[f32; 2]; 4]>,
}

/// `GET /api/videos/{id}/text`.
#[derive(Serialize, ToSchema)]
pub struct ScreenText {
    pub video_id: i64,
    pub texts: Vec<ScreenTextDto>,
}

/// A recognised word and when it was said (seconds).
#[derive(Serialize, ToSchema)]
pub struct TranscriptWord {
    pub start: f64,
    pub end: f64,
    pub word: String,
}

/// A segment of recognised speech.
#[derive(Serialize, ToSchema)]
pub struct TranscriptSegment {
    /// Seconds.
    pub start: f64,
    pub end: f64,
    pub text: String,
    pub words: Vec<TranscriptWord>,
}

/// `GET /api/videos/{id}/transcript` (format=json).
#[derive(Serialize, ToSchema)]
pub struct Transcript {
    pub video_id: i64,
    pub segments: Vec<TranscriptSegment>,
}

/// How `GET /api/videos/{id}/transcript` answers.
#[derive(Clone, Copy, Default, serde::Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TranscriptFormat {
    /// Segments with word times.
    #[default]
    Json,
    /// SubRip subtitles.
    Srt,
    /// WebVTT (a `<track>` reads it).
    Vtt,
}

/// The query of `GET /api/videos/{id}/transcript`.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TranscriptParams {
    /// json (default), srt or vtt.
    #[serde(default)]
    pub format: TranscriptFormat,
}
