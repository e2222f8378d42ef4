//! `search`: the read path. A sentence comes back as moments in videos.
//!
//! 1. The query is embedded at its true token length.
//! 2. Vector candidates: the nearest frames in the HNSW index (deleted frames dropped).
//! 3. Segments: within each video, the best candidate frame seeds a segment that grows
//!    over neighbouring frames (in stored order) scoring within one logit of it
//!    (`1 / logit_scale` in cosine), so a scene that matches comes back as one span with
//!    its start, end and best moment (peak); score = the best frame's cosine.
//! 4. Text candidates: tantivy matches of subtitle cues (with their times), titles and
//!    file names, as segments too.
//! 5. Fusion: reciprocal rank fusion of the two lists (k = 60); a text match that
//!    overlaps a visual segment of the same video makes it `both`, narrowed to the cue.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::catalog::{Catalog, CatalogError};
use crate::embed::{EmbedError, Embedder};
use crate::catalog::{Frame, StoreError};

/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 1000;
/// Most results one query may ask for.
pub const MAX_K: usize = 1000;
const RRF_K: f64 = 60.0;

/// Errors of a search. The first four are the caller's fault (400).
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("the query is empty: type what you are looking for, e.g. \"a dog catching a frisbee\"")]
    EmptyQuery,
    #[error("the query has {0} characters; the limit is {MAX_QUERY_CHARS}: shorten it")]
    QueryTooLong(usize),
    #[error("k must be between 1 and {MAX_K} (got {0})")]
    BadK(i64),
    #[error("min_score must be a number between -1 and 1 (got {0})")]
    BadMinScore(f32),
    #[error("video {0} does not exist")]
    NoSuchVideo(i64),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("embedding the query failed: {0}")]
    Model(#[from] EmbedError),
    /// A worker thread panicked (a bug; logged).
    #[error("internal error: {0}")]
    Panicked(String),
}

impl From<StoreError> for SearchError {
    fn from(e: StoreError) -> Self {
        SearchError::Catalog(e.into())
    }
}

impl crate::error::Classified for SearchError {
    fn fault(&self) -> crate::error::Fault {
        use crate::error::Fault;
        match self {
            SearchError::EmptyQuery | SearchError::QueryTooLong(_) | SearchError::BadK(_) | SearchError::BadMinScore(_) => {
                Fault::BadInput
            }
            SearchError::NoSuchVideo(_) => Fault::NotFound,
            SearchError::Catalog(e) => e.fault(),
            SearchError::Model(e) => e.fault(),
            SearchError::Panicked(_) => Fault::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            SearchError::EmptyQuery => "empty_query",
            SearchError::QueryTooLong(_) => "query_too_long",
            SearchError::BadK(_) => "bad_k",
            SearchError::BadMinScore(_) => "bad_min_score",
            SearchError::NoSuchVideo(_) => "not_found",
            SearchError::Catalog(e) => e.code(),
            SearchError::Model(e) => e.code(),
            SearchError::Panicked(_) => "internal",
        }
    }
}

/// What to look for.
#[derive(Clone, Debug)]
pub struct SearchRequest {
    /// What to look for.
    pub query: String,
    /// Most results.
    pub k: i64,
    /// Only this video.
    pub video: Option<i64>,
    /// Drop segments whose best frame scores below this cosine.
    pub min_score: Option<f32>,
}

impl SearchRequest {
    /// A search for `query` with up to `k` results and no filter.
    pub fn new(query: impl Into<String>, k: i64) -> Self {
        Self {
            query: query.into(),
            k,
            video: None,
            min_score: None,
        }
    }
}

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
    /// Cosine similarity of the query and the best frame of the segment.
    pub score: f32,
    pub source: Source,
    pub frame_id: Option<i64>,
    /// The matching subtitle or title text, for text results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Fused rank score (reciprocal rank fusion).
    pub rank_score: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct SearchResponse {
    pub query: String,
    pub results: Vec<Segment>,
}

/// Checks a request; returns the trimmed query.
pub fn validate(req: &SearchRequest) -> Result<String, SearchError> {
    let q = req.query.trim();
    if q.is_empty() {
        return Err(SearchError::EmptyQuery);
    }
    let n = q.chars().count();
    if n > MAX_QUERY_CHARS {
        return Err(SearchError::QueryTooLong(n));
    }
    if req.k < 1 || req.k > MAX_K as i64 {
        return Err(SearchError::BadK(req.k));
    }
    if let Some(m) = req.min_score
        && !(m.is_finite() && (-1.0..=1.0).contains(&m))
    {
        return Err(SearchError::BadMinScore(m));
    }
    Ok(q.to_string())
}

/// Runs a search.
pub async fn search(
    catalog: &Catalog,
    model: Arc<Embedder>,
    req: &SearchRequest,
) -> Result<SearchResponse, SearchError> {
    let query = validate(req)?;
    let k = req.k as usize;
    let q = query.clone();
    let q_for_log = query.clone();
    let m = model.clone();
    // Inference is CPU work: off the async executor.
    let qv = tokio::task::spawn_blocking(move || m.embed_texts(&[q.as_str()]))
        .await
        .map_err(|e| {
            tracing::error!("the query embedding task failed for {q_for_log:?}: {e}");
            SearchError::Panicked(format!("the query embedding task failed: {e}"))
        })??;
    let qv = qv.row(0).to_vec();
    let delta = 1.0 / model.manifest().logit_scale.unwrap_or(100.0).max(1.0);
    // Vector candidates (exact over one video when filtered).
    let mut scored: Vec<(Frame, f32)> = Vec::new();
    if let Some(video) = req.video {
        if catalog.video(video).await?.is_none() {
            return Err(SearchError::NoSuchVideo(video));
        }
        scored = catalog.frame_scores(video, model.model_name(), &qv).await?;
    } else {
        let n = (k * 10).clamp(100, 2000);
        let hits = catalog.nearest_for(model.model_name(), &qv, n, n + 64)?;
        let score_of: HashMap<i64, f32> = hits.iter().copied().collect();
        for f in catalog
            .frames_by_ids(&hits.iter().map(|h| h.0).collect::<Vec<_>>())
            .await?
        {
            let s = score_of[&f.id];
            scored.push((f, s));
        }
    }
    let mut visual = segments_from_frames(scored, delta);
    visual.sort_by(|a, b| b.score.total_cmp(&a.score));

    // Text candidates.
    let mut text_segs = Vec::new();
    for hit in catalog.text_search(&query, (k * 3).clamp(20, 300))? {
        let d = hit.doc;
        if req.video.is_some_and(|v| v != d.video_id) {
            continue;
        }
        let (start, end) = match (d.start, d.end) {
            (Some(s), Some(e)) => (s, e.max(s)),
            _ => (0.0, 0.0),
        };
        text_segs.push(Segment {
            video_id: d.video_id,
            path: String::new(),
            start,
            end,
            peak: start,
            score: f32::NAN,
            source: Source::Text,
            frame_id: None,
            text: Some(d.text),
            rank_score: 0.0,
        });
    }

    // Best first: resolve paths (and, for text-only hits, the best frame) only until k
    // results are final, so a query costs a few store reads, not one per candidate.
    let mut results = Vec::with_capacity(k);
    let mut paths: HashMap<i64, Option<(String, f64)>> = HashMap::new();
    for mut seg in fuse(visual, text_segs) {
        if results.len() >= k {
            break;
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = paths.entry(seg.video_id) {
            let v = catalog.video(seg.video_id).await?;
            slot.insert(v.map(|v| (v.path, v.duration.unwrap_or(0.0))));
        }
        let Some((path, duration)) = &paths[&seg.video_id] else {
            continue; // removed since the index was read
        };
        seg.path = path.clone();
        if seg.source == Source::Text {
            if seg.end <= seg.start {
                // A title or file-name match stands for the whole video.
                seg.end = *duration;
            }
            if let Some((fid, s, peak)) = best_frame_in(catalog, model.model_name(), seg.video_id, seg.start, seg.end, &qv).await? {
                seg.score = s;
                seg.frame_id = Some(fid);
                if seg.peak < seg.start || seg.peak >= seg.end.max(seg.start + 1e-9) {
                    seg.peak = peak;
                }
            }
        }
        if req.min_score.is_some_and(|m| !seg.score.is_nan() && seg.score < m) {
            continue;
        }
        if seg.score.is_nan() {
            seg.score = 0.0;
        }
        results.push(seg);
    }
    Ok(SearchResponse { query, results })
}


/// Groups scored frames into segments per video: the best unclaimed frame seeds a
/// segment that grows over frames adjacent in stored order (one missing frame is
/// bridged) whose score is within `delta` of the seed's.
pub fn segments_from_frames(scored: Vec<(Frame, f32)>, delta: f32) -> Vec<Segment> {
    let mut by_video: HashMap<i64, Vec<(Frame, f32)>> = HashMap::new();
    for (f, s) in scored {
        by_video.entry(f.video_id).or_default().push((f, s));
    }
    let mut out = Vec::new();
    for (video_id, mut frames) in by_video {
        frames.sort_by_key(|(f, _)| f.seq);
        let mut claimed = vec![false; frames.len()];
        let mut order: Vec<usize> = (0..frames.len()).collect();
        order.sort_by(|&a, &b| frames[b].1.total_cmp(&frames[a].1));
        for seed in order {
            if claimed[seed] {
                continue;
            }
            let floor = frames[seed].1 - delta;
            let (mut lo, mut hi) = (seed, seed);
            while lo > 0
                && !claimed[lo - 1]
                && frames[lo - 1].1 >= floor
                && frames[lo].0.seq - frames[lo - 1].0.seq <= 2
            {
                lo -= 1;
            }
            while hi + 1 < frames.len()
                && !claimed[hi + 1]
                && frames[hi + 1].1 >= floor
                && frames[hi + 1].0.seq - frames[hi].0.seq <= 2
            {
                hi += 1;
            }
            for c in claimed.iter_mut().take(hi + 1).skip(lo) {
                *c = true;
            }
            let (peak, score) = (&frames[seed].0, frames[seed].1);
            out.push(Segment {
                video_id,
                path: String::new(),
                start: frames[lo].0.start,
                end: frames[hi].0.end,
                peak: peak.peak,
                score,
                source: Source::Visual,
                frame_id: Some(peak.id),
                text: None,
                rank_score: 0.0,
            });
        }
    }
    out
}

/// Reciprocal rank fusion of visual segments (best first) and text segments (best
/// first). Overlapping pairs of the same video merge into one `both` segment over the
/// time both agree on (the cue's moment within the visual span): a line of dialogue is
/// exact, while the visual span of a query the pictures barely answer can cover a whole
/// video.
fn fuse(visual: Vec<Segment>, text: Vec<Segment>) -> Vec<Segment> {
    let mut out: Vec<Segment> = visual;
    for (rank, s) in out.iter_mut().enumerate() {
        s.rank_score = 1.0 / (RRF_K + rank as f64 + 1.0);
    }
    for (rank, t) in text.into_iter().enumerate() {
        let rrf = 1.0 / (RRF_K + rank as f64 + 1.0);
        let overlap = out.iter_mut().find(|v| {
            v.video_id == t.video_id
                && v.source != Source::Text
                && t.end > t.start
                && t.start < v.end
                && v.start < t.end
        });
        match overlap {
            Some(v) => {
                v.rank_score += rrf;
                if v.source == Source::Visual {
                    v.start = v.start.max(t.start);
                    v.end = v.end.min(t.end);
                    if v.peak < v.start || v.peak >= v.end {
                        v.peak = v.start;
                    }
                }
                v.source = Source::Both;
                if v.text.is_none() {
                    v.text = t.text;
                }
            }
            None => out.push(Segment { rank_score: rrf, ..t }),
        }
    }
    let precedence = |s: &Segment| match s.source {
        Source::Both => 0,
        Source::Text => 1,
        Source::Visual => 2,
    };
    out.sort_by(|a, b| {
        b.rank_score
            .total_cmp(&a.rank_score)
            .then(precedence(a).cmp(&precedence(b)))
            .then(b.score.total_cmp(&a.score))
    });
    out
}

/// The best-scoring stored frame of `video` inside [start, end): (id, cosine, peak).
async fn best_frame_in(
    catalog: &Catalog,
    model: &str,
    video: i64,
    start: f64,
    end: f64,
    qv: &[f32],
) -> Result<Option<(i64, f32, f64)>, SearchError> {
    let mut best: Option<(i64, f32, f64)> = None;
    for (f, s) in catalog.frame_scores(video, model, qv).await? {
        if f.end > start && f.start < end.max(start + 1e-9) && best.is_none_or(|b| s > b.1) {
            best = Some((f.id, s, f.peak));
        }
    }
    Ok(best)
}

/// `mm:ss.s`
pub fn clock(t: f64) -> String {
    let t = t.max(0.0);
    let m = (t / 60.0).floor();
    format!("{:02}:{:04.1}", m as u64, t - m * 60.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(id: i64, seq: i64, video: i64) -> Frame {
        Frame {
            id,
            video_id: video,
            seq,
            start: seq as f64,
            end: seq as f64 + 1.0,
            peak: seq as f64,
            shot: false,
        }
    }

    #[test]
    fn adjacent_frames_close_to_the_best_merge_into_one_segment() {
        let scored = vec![
            (frame(1, 0, 7), 0.10),
            (frame(2, 1, 7), 0.30),
            (frame(3, 2, 7), 0.31),
            (frame(4, 3, 7), 0.29),
            (frame(5, 4, 7), 0.12),
            (frame(6, 9, 7), 0.30), // far away: its own segment
        ];
        let mut segs = segments_from_frames(scored, 0.05);
        segs.sort_by(|a, b| b.score.total_cmp(&a.score));
        assert_eq!(
            (segs[0].start, segs[0].end, segs[0].peak, segs[0].frame_id),
            (1.0, 4.0, 2.0, Some(3))
        );
        assert_eq!((segs[1].start, segs[1].end), (9.0, 10.0));
    }

    #[test]
    fn a_cue_inside_a_wide_visual_segment_narrows_it_to_the_cue() {
        let wide = segments_from_frames((0..8).map(|i| (frame(i + 1, i, 7), 0.05)).collect(), 0.05);
        assert_eq!((wide[0].start, wide[0].end), (0.0, 8.0));
        let cue = Segment {
            video_id: 7,
            path: String::new(),
            start: 4.0,
            end: 6.5,
            peak: 4.0,
            score: 0.0,
            source: Source::Text,
            frame_id: None,
            text: Some("the lighthouse keeper".into()),
            rank_score: 0.0,
        };
        let other_video = Segment {
            video_id: 8,
            ..cue.clone()
        };
        let fused = fuse(wide, vec![cue, other_video]);
        assert_eq!(fused.len(), 2);
        let both = &fused[0];
        assert_eq!(both.source, Source::Both);
        assert_eq!((both.start, both.end, both.peak), (4.0, 6.5, 4.0));
        assert_eq!(both.text.as_deref(), Some("the lighthouse keeper"));
        assert_eq!((fused[1].video_id, fused[1].source), (8, Source::Text));
    }

    #[test]
    fn validation_rejects_bad_requests() {
        assert!(matches!(
            validate(&SearchRequest::new("   ", 5)),
            Err(SearchError::EmptyQuery)
        ));
        assert!(matches!(
            validate(&SearchRequest::new("x".repeat(1001), 5)),
            Err(SearchError::QueryTooLong(1001))
        ));
        assert!(matches!(
            validate(&SearchRequest::new("ok", 0)),
            Err(SearchError::BadK(0))
        ));
        assert!(matches!(
            validate(&SearchRequest::new("ok", 1001)),
            Err(SearchError::BadK(1001))
        ));
        assert_eq!(
            validate(&SearchRequest::new("  a red circle. ", 5)).unwrap(),
            "a red circle."
        );
    }

    #[test]
    fn clock_formats_minutes_and_tenths() {
        assert_eq!(clock(0.0), "00:00.0");
        assert_eq!(clock(75.25), "01:15.2");
    }
}
