//! `search::response`: what a search answers: moments (`Segment`) in videos, where each
//! came from (`Source`), and the count the cut-off held back (`SearchResponse`).

use serde::Serialize;

/// Where a result came from.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Visual,
    Text,
    Both,
}

/// A moment in a video.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Segment {
    pub video_id: i64,
    pub path: String,
    /// Seconds.
    pub start: f64,
    pub end: f64,
    pub peak: f64,
    /// Cosine similarity of the query and the best frame of the segment (less what
    /// negative terms took off).
    pub score: f32,
    pub source: Source,
    pub frame_id: Option<i64>,
    /// The matching subtitle, title or file name, for text results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Where the matching words are on screen, when they were read by OCR: the four
    /// corners (top-left, top-right, bottom-right, bottom-left) as fractions of the frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quad: Option<crate::types::Quad>,
    /// Fused rank score (reciprocal rank fusion).
    pub rank_score: f64,
    /// The zero-shot tags of the moment's frames, most probable first.
    pub tags: Vec<String>,
}

impl Segment {
    /// An empty moment of `video_id` (fields to be filled).
    pub fn new(video_id: i64, source: Source) -> Self {
        Self {
            video_id,
            path: String::new(),
            start: 0.0,
            end: 0.0,
            peak: 0.0,
            score: 0.0,
            source,
            frame_id: None,
            text: None,
            quad: None,
            rank_score: 0.0,
            tags: Vec::new(),
        }
    }
}

/// The answer to a search.
#[derive(Clone, Debug, Serialize)]
pub struct SearchResponse {
    pub query: String,
    pub results: Vec<Segment>,
    /// Moments the cut-off held back (weaker matches: ask with min_score off to see them).
    pub withheld: usize,
    /// The cut-off used: "auto", "off" or the number.
    pub cutoff: String,
}

impl SearchResponse {
    /// The results as moments to take out (timelines, clips), in rank order: what the
    /// CLI's `--export-otio/--export-edl` and `GET /api/timeline` both write.
    pub fn moments(&self) -> Vec<crate::export::Moment> {
        self.results
            .iter()
            .map(|r| crate::export::Moment {
                video_id: r.video_id,
                path: r.path.clone(),
                start: r.start,
                end: r.end,
                score: r.score,
            })
            .collect()
    }
}
