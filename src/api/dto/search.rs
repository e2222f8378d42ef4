//! Searching: `GET` and `POST /api/search` (parameters, the picture form, the answer)
//! and `POST /api/eval` (known moments in, the report out).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{min_score_schema, thumb_url};

/// The query string of `GET` and `POST /api/search`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQueryString {
    /// What to look for, in the query language (docs/guide.md): words, "quoted
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
    /// Where the matching words are on screen, when they were read by OCR: corners
    /// (top-left, top-right, bottom-right, bottom-left) as fractions of the frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quad: Option<[[f32; 2]; 4]>,
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
            quad: s.quad,
            rank_score: s.rank_score,
            tags: s.tags,
        }
    }
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

impl From<TruthDto> for crate::search::eval::Truth {
    fn from(t: TruthDto) -> Self {
        Self {
            query: t.query,
            path: t.path,
            start: t.start,
            end: t.end,
        }
    }
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

/// `POST /api/eval`: R@k, mAP, the median peak error and the misses (the rule: docs/guide.md).
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
