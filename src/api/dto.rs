//! What the HTTP API takes and returns. Every type here derives its OpenAPI schema
//! (utoipa), so `/api/openapi.json` is generated from the same types the handlers
//! serialise: the document cannot drift from the routes. Domain types are converted
//! here; URLs (media, thumbnails) are built here from ids.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::catalog::{self, Consistency, Counts, FileState, Job, JobFile, JobKind, JobState, Video, VideoStatus};

/// An error: `code` is stable and machine-readable, `message` says what was being done
/// and what to change.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub message: String,
    pub code: String,
}

/// `GET /api/health`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub version: String,
    /// The model searches use.
    pub model: String,
    pub dim: usize,
    /// "CPU" or "CUDA".
    pub provider: String,
    pub counts: CountsDto,
    /// Points in the vector index (live frames and tombstones).
    pub vector_points: usize,
    /// False while the saved vector graph is still loading after start-up: searches
    /// are exact scans meanwhile (correct, slower on a large library).
    pub vectors_ready: bool,
    pub libraries: Vec<String>,
    pub watch: bool,
    /// With `deep=true`: whether the store and both indexes agree.
    pub consistency: Option<ConsistencyDto>,
}

#[derive(Serialize, ToSchema)]
pub struct CountsDto {
    pub videos: i64,
    pub indexed: i64,
    pub failed: i64,
    pub frames: i64,
    pub texts: i64,
}

impl From<Counts> for CountsDto {
    fn from(c: Counts) -> Self {
        Self {
            videos: c.videos,
            indexed: c.indexed,
            failed: c.failed,
            frames: c.frames,
            texts: c.texts,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ConsistencyDto {
    pub frames: i64,
    pub texts: i64,
    pub vector_live: usize,
    pub vector_tombstones: usize,
    pub frames_not_in_vector_index: Vec<i64>,
    pub vector_points_not_in_store: Vec<i64>,
    pub frames_checked: usize,
    pub frames_unreachable: Vec<i64>,
    pub text_docs: u64,
    pub agree: bool,
}

impl From<Consistency> for ConsistencyDto {
    fn from(c: Consistency) -> Self {
        Self {
            frames: c.frames,
            texts: c.texts,
            vector_live: c.vector_live,
            vector_tombstones: c.vector_tombstones,
            frames_not_in_vector_index: c.frames_not_in_vector_index,
            vector_points_not_in_store: c.vector_points_not_in_store,
            frames_checked: c.frames_checked,
            frames_unreachable: c.frames_unreachable,
            text_docs: c.text_docs,
            agree: c.agree,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HealthParams {
    /// Also check that the store and both indexes agree (a lookup per frame, up to 5,000).
    pub deep: Option<bool>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// What to look for, in the query language (see the README): words, "quoted
    /// phrases", -negatives, weights (beach^2), filters (path: ext: after: before:
    /// longer: shorter: video: source:) and sequences (A >> B). May be empty with `frame`.
    #[param(max_length = 1000)]
    #[serde(default)]
    pub q: String,
    /// Most results.
    #[param(minimum = 1, maximum = 1000)]
    pub k: Option<i64>,
    /// Only this video.
    pub video: Option<i64>,
    /// The cut-off: `auto` (only credible matches, the default), `off` (everything,
    /// best first) or a cosine between -1 and 1.
    #[param(schema_with = min_score_schema)]
    pub min_score: Option<String>,
    /// More like this frame (a `frame_id` of any result).
    pub frame: Option<i64>,
    /// The weight of the picture (frame or image) against the text's 1.
    #[param(exclusive_minimum = 0.0, maximum = 10.0)]
    pub image_weight: Option<f32>,
    /// "video": also group the results per video, best video first.
    pub group: Option<GroupBy>,
    /// Prompt templates for a short query: `auto` (the model's, the default), `none`
    /// (as written), or templates separated by `|`, each with `{}` once.
    #[param(max_length = 500)]
    pub templates: Option<String>,
    /// Only moments with this zero-shot tag (the same as `tag:"LABEL"` in q).
    #[param(max_length = 200)]
    pub tag: Option<String>,
    /// More like these frames (comma-separated frame ids of results, at most 50): a
    /// few-shot probe.
    #[param(pattern = "^[0-9]{1,18}(,[0-9]{1,18}){0,49}$")]
    pub like: Option<String>,
    /// ... and unlike these (comma-separated frame ids, at most 50).
    #[param(pattern = "^[0-9]{1,18}(,[0-9]{1,18}){0,49}$")]
    pub unlike: Option<String>,
}

/// `POST /api/search` body: the picture to search by (multipart/form-data, one `image`
/// file field); the other parameters are those of `GET /api/search`, in the query.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SearchForm {
    /// The picture (JPEG, PNG, WebP, ...).
    #[schema(value_type = String, format = Binary)]
    pub image: Vec<u8>,
}

#[derive(Deserialize, Serialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    None,
    Video,
}

/// Where a result came from.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceDto {
    Visual,
    Text,
    Both,
}

/// A moment in a video.
#[derive(Serialize, ToSchema)]
pub struct SegmentDto {
    pub video_id: i64,
    pub path: String,
    /// Seconds.
    pub start: f64,
    pub end: f64,
    /// The best moment inside it.
    pub peak: f64,
    /// Cosine similarity of the query and the segment's best frame.
    pub score: f32,
    pub source: SourceDto,
    /// The best frame (its thumbnail: `thumbnail`).
    pub frame_id: Option<i64>,
    pub thumbnail: Option<String>,
    /// The matching subtitle or title, for text results.
    pub text: Option<String>,
    /// Fused rank score.
    pub rank_score: f64,
    /// The moment's zero-shot tags, most probable first.
    pub tags: Vec<String>,
}

impl From<crate::search::Segment> for SegmentDto {
    fn from(s: crate::search::Segment) -> Self {
        Self {
            video_id: s.video_id,
            path: s.path,
            start: s.start,
            end: s.end,
            peak: s.peak,
            score: s.score,
            source: match s.source {
                crate::search::Source::Visual => SourceDto::Visual,
                crate::search::Source::Text => SourceDto::Text,
                crate::search::Source::Both => SourceDto::Both,
            },
            thumbnail: s.frame_id.map(thumb_url),
            frame_id: s.frame_id,
            text: s.text,
            rank_score: s.rank_score,
            tags: s.tags,
        }
    }
}

pub fn thumb_url(frame: i64) -> String {
    format!("/thumbs/{frame}")
}

pub fn media_url(video: i64) -> String {
    format!("/media/{video}")
}

/// The results of one video.
#[derive(Serialize, ToSchema)]
pub struct GroupDto {
    pub video_id: i64,
    pub path: String,
    pub best_score: f32,
    pub segments: Vec<SegmentDto>,
}

/// `GET /api/search`.
#[derive(Serialize, ToSchema)]
pub struct SearchResponse {
    pub query: String,
    pub results: Vec<SegmentDto>,
    /// With `group=video`: the results per video.
    pub groups: Option<Vec<GroupDto>>,
    /// Weaker matches the cut-off held back (ask again with `min_score=off` to see them).
    pub withheld: usize,
    /// The cut-off used: `auto`, `off` or the number.
    pub cutoff: String,
}

impl SearchResponse {
    /// The API's form of a search's answer.
    pub fn new(res: crate::search::SearchResponse, group: bool) -> Self {
        let groups = group.then(|| {
            crate::search::group::by_video(&res.results)
                .into_iter()
                .map(|g| GroupDto {
                    video_id: g.video_id,
                    path: g.path,
                    best_score: g.best_score,
                    segments: g.segments.into_iter().map(Into::into).collect(),
                })
                .collect()
        });
        Self {
            query: res.query,
            results: res.results.into_iter().map(Into::into).collect(),
            groups,
            withheld: res.withheld,
            cutoff: res.cutoff,
        }
    }
}

/// `POST /api/eval` body: known moments.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TruthDto {
    #[schema(min_length = 1, max_length = 1000)]
    pub query: String,
    /// The file (its path, or its tail after a `/`).
    #[schema(min_length = 1)]
    pub path: String,
    /// Seconds.
    #[schema(minimum = 0.0)]
    pub start: f64,
    pub end: f64,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EvalParams {
    /// The cut-off the searches use (`off` by default: ranking quality).
    #[param(schema_with = min_score_schema)]
    pub min_score: Option<String>,
    /// Prompt templates, as for `GET /api/search`.
    #[param(max_length = 500)]
    pub templates: Option<String>,
}

/// The library's label vocabulary for zero-shot tags.
#[derive(Serialize, ToSchema)]
pub struct Labels {
    pub labels: Vec<String>,
    /// True when the library uses the default vocabulary (the model's, else built in).
    pub default: bool,
}

/// `PUT /api/labels`: the new vocabulary.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelsBody {
    /// One label each (1 to 2000, each at most 200 characters, no braces).
    #[schema(min_items = 1, max_items = 2000)]
    pub labels: Vec<String>,
}

/// One label's use in the library.
#[derive(Serialize, ToSchema)]
pub struct TagDto {
    pub label: String,
    /// Moments (runs of consecutive tagged frames).
    pub moments: usize,
    pub videos: usize,
}

/// Every tag in use, most moments first.
#[derive(Serialize, ToSchema)]
pub struct Tags {
    pub tags: Vec<TagDto>,
}

/// A few-shot probe saved as a named tag.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeDto {
    /// The tag's name.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// The text the probe starts from (may be empty).
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub q: String,
    /// Frame ids the tag's moments look like.
    #[schema(min_items = 1, max_items = 200)]
    pub like: Vec<i64>,
    /// Frame ids they do not.
    #[serde(default)]
    pub unlike: Vec<i64>,
}

/// Saved probes.
#[derive(Serialize, ToSchema)]
pub struct Probes {
    pub probes: Vec<ProbeDto>,
}

/// `min_score`: `auto`, `off`, or a cosine in [-1, 1].
fn min_score_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    Schema::OneOf(
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["auto", "off"])),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .minimum(Some(-1.0))
                    .maximum(Some(1.0)),
            )
            .description(Some(
                "auto (only credible matches), off (everything), or a cosine between -1 and 1",
            ))
            .build(),
    )
}

/// A result as a miss shows it.
#[derive(Serialize, ToSchema)]
pub struct SeenDto {
    pub path: String,
    pub start: f64,
    pub end: f64,
    pub score: f32,
}

/// A truth moment not found first.
#[derive(Serialize, ToSchema)]
pub struct MissDto {
    pub query: String,
    pub path: String,
    pub start: f64,
    pub end: f64,
    /// Its rank when within the first 10.
    pub rank: Option<usize>,
    /// What came first.
    pub first: Option<SeenDto>,
    /// Whether that is another moment of the same query's truth.
    pub first_is_truth: bool,
}

/// `POST /api/eval`: R@k, mAP, the median peak error and the misses (the rule: README).
#[derive(Serialize, ToSchema)]
pub struct EvalReport {
    pub queries: usize,
    pub moments: usize,
    pub recall_at_1: f64,
    pub recall_at_5: f64,
    pub recall_at_10: f64,
    pub map: f64,
    /// Seconds.
    pub median_peak_error: Option<f64>,
    pub cutoff: String,
    /// The prompt templates: auto, none or "N templates".
    pub templates: String,
    pub misses: Vec<MissDto>,
}

impl From<crate::search::eval::Report> for EvalReport {
    fn from(r: crate::search::eval::Report) -> Self {
        Self {
            queries: r.queries,
            moments: r.moments,
            recall_at_1: r.recall_at_1,
            recall_at_5: r.recall_at_5,
            recall_at_10: r.recall_at_10,
            map: r.map,
            median_peak_error: r.median_peak_error,
            cutoff: r.cutoff,
            templates: r.templates,
            misses: r
                .misses
                .into_iter()
                .map(|m| MissDto {
                    query: m.query,
                    path: m.path,
                    start: m.start,
                    end: m.end,
                    rank: m.rank,
                    first: m.first.map(|f| SeenDto {
                        path: f.path,
                        start: f.start,
                        end: f.end,
                        score: f.score,
                    }),
                    first_is_truth: m.first_is_truth,
                })
                .collect(),
        }
    }
}

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
    pub path: String,
}

/// `POST /api/model`.
#[derive(Deserialize, ToSchema)]
pub struct SwitchBody {
    /// A model package folder on the server.
    pub dir: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStateDto {
    Enqueued,
    Processing,
    Succeeded,
    Failed,
    Canceled,
}

impl From<JobState> for JobStateDto {
    fn from(s: JobState) -> Self {
        match s {
            JobState::Enqueued => Self::Enqueued,
            JobState::Processing => Self::Processing,
            JobState::Succeeded => Self::Succeeded,
            JobState::Failed => Self::Failed,
            JobState::Canceled => Self::Canceled,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobKindDto {
    Index,
    Switch,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileStateDto {
    Indexed,
    Unchanged,
    Failed,
}

/// What happened to one file of a job.
#[derive(Serialize, ToSchema)]
pub struct JobFileDto {
    pub path: String,
    pub state: FileStateDto,
    pub error: Option<String>,
    pub frames: i64,
}

impl From<JobFile> for JobFileDto {
    fn from(f: JobFile) -> Self {
        Self {
            path: f.path,
            state: match f.state {
                FileState::Indexed => FileStateDto::Indexed,
                FileState::Unchanged => FileStateDto::Unchanged,
                FileState::Failed => FileStateDto::Failed,
            },
            error: f.error,
            frames: f.frames,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct JobProgress {
    pub files_done: i64,
    pub files_total: i64,
    pub frames_done: i64,
    pub frames_per_second: f64,
}

/// An upload that started a job.
#[derive(Serialize, ToSchema)]
pub struct Uploaded {
    pub path: String,
    pub bytes: u64,
}

/// A job with its progress and per-file outcomes.
#[derive(Serialize, ToSchema)]
pub struct JobDto {
    pub id: i64,
    pub kind: JobKindDto,
    pub state: JobStateDto,
    pub paths: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
    pub progress: JobProgress,
    pub files: Vec<JobFileDto>,
    /// `DELETE /api/jobs/{id}`: whether it was still live when canceled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canceled: Option<bool>,
    /// `POST /api/upload`: where the file was stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uploaded: Option<Uploaded>,
}

impl JobDto {
    pub fn new(job: Job, files: Vec<JobFile>) -> Self {
        let elapsed = match (job.started_at, job.finished_at) {
            (Some(s), Some(f)) => (f - s).max(1),
            (Some(s), None) => (catalog::now() - s).max(1),
            _ => 1,
        };
        let fps = if job.started_at.is_some() {
            job.frames_done as f64 / elapsed as f64
        } else {
            0.0
        };
        Self {
            id: job.id,
            kind: match job.kind {
                JobKind::Index => JobKindDto::Index,
                JobKind::Switch => JobKindDto::Switch,
            },
            state: job.state.into(),
            progress: JobProgress {
                files_done: job.files_done,
                files_total: job.files_total,
                frames_done: job.frames_done,
                frames_per_second: fps,
            },
            paths: job.paths,
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
            error: job.error,
            files: files.into_iter().map(Into::into).collect(),
            canceled: None,
            uploaded: None,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Jobs {
    pub jobs: Vec<JobDto>,
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

/// The model searches use.
#[derive(Serialize, ToSchema)]
pub struct ActiveModel {
    pub name: String,
    pub dim: usize,
    pub image_size: u32,
    /// Its package folder, when the library recorded it.
    pub dir: Option<String>,
    pub provider: String,
    pub layout: Option<String>,
    pub variant: Option<String>,
}

/// A switch to another model under way.
#[derive(Serialize, ToSchema)]
pub struct SwitchDto {
    pub model: String,
    pub dir: String,
    pub job_id: i64,
    pub state: Option<JobStateDto>,
    pub frames_done: i64,
    pub frames_total: i64,
    /// An estimate from the rate so far.
    pub eta_seconds: Option<f64>,
}

impl From<catalog::SwitchStatus> for SwitchDto {
    fn from(s: catalog::SwitchStatus) -> Self {
        Self {
            model: s.model,
            dir: s.dir.display().to_string(),
            job_id: s.job_id,
            state: s.state.map(Into::into),
            frames_done: s.frames_done,
            frames_total: s.frames_total,
            eta_seconds: s.eta_seconds,
        }
    }
}

/// `GET /api/model`.
#[derive(Serialize, ToSchema)]
pub struct ModelDto {
    pub active: ActiveModel,
    pub switch: Option<SwitchDto>,
}

/// `POST /api/upload`: a multipart form with one file.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The video file.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}
