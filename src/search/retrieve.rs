//! `search::retrieve`: the two retrievers. Visual: frames near the query vector, among
//! the videos the filters allow (a filtered graph search, or an exact scan when the
//! allowed frames are few). Lexical: subtitle cues, titles and file names matching the
//! query's words and phrases, in the allowed videos.

use std::collections::HashSet;
use std::sync::Arc;

use super::SearchError;
use super::query::{Filters, Lexical, VideoFacts};
use crate::catalog::{Catalog, Directory, Frame, Listed};
use crate::index::{LexicalQuery, TextHit};
use crate::types::TextKind;

/// Allowed frames at or below which the visual retriever scans them exactly instead of
/// searching the graph with a filter.
pub const EXACT_SCAN_MAX: i64 = 20_000;

/// Which videos may answer.
#[derive(Clone, Debug)]
pub struct Scope {
    pub directory: Arc<Directory>,
    /// Allowed video ids, sorted (None: every video).
    pub videos: Option<Vec<i64>>,
    /// Allowed frames (a `tag:` filter), None: every frame of the allowed videos.
    pub frames: Option<Arc<HashSet<i64>>>,
}

impl Scope {
    /// The videos the filters accept.
    pub fn new(directory: Arc<Directory>, filters: &Filters) -> Self {
        if filters.is_empty() {
            return Self {
                directory,
                videos: None,
                frames: None,
            };
        }
        let mut ids: Vec<i64> = directory
            .iter()
            .filter(|v| {
                filters.accepts(VideoFacts {
                    id: v.id,
                    path: &v.path,
                    mtime_ns: v.mtime_ns,
                    duration: v.duration,
                })
            })
            .map(|v| v.id)
            .collect();
        ids.sort_unstable();
        Self {
            directory,
            videos: Some(ids),
            frames: None,
        }
    }

    /// Whether no video may answer.
    pub fn is_empty(&self) -> bool {
        self.videos.as_ref().is_some_and(|v| v.is_empty())
    }

    pub fn allows(&self, video: i64) -> bool {
        self.videos.as_ref().is_none_or(|v| v.binary_search(&video).is_ok())
    }

    fn listed(&self) -> Vec<&Listed> {
        match &self.videos {
            Some(ids) => ids.iter().filter_map(|id| self.directory.get(*id)).collect(),
            None => self.directory.iter().collect(),
        }
    }

    /// Frames of the allowed videos.
    pub fn frames(&self) -> i64 {
        self.listed().iter().map(|v| v.frames).sum()
    }
}

/// The `n` frames nearest to `query` (a unit vector of `model`) in the scope, with
/// their cosines, best first.
pub async fn visual(
    catalog: &Catalog,
    model: &str,
    query: &[f32],
    scope: &Scope,
    n: usize,
) -> Result<Vec<(Frame, f32)>, SearchError> {
    if let Some(frames) = &scope.frames
        && frames.len() as i64 <= EXACT_SCAN_MAX
    {
        // Few allowed frames (a tag filter): scored exactly.
        let ids: Vec<i64> = frames.iter().copied().collect();
        let vectors: std::collections::HashMap<i64, Vec<f32>> =
            catalog.vectors_by_ids(model, &ids).await?.into_iter().collect();
        let mut out: Vec<(Frame, f32)> = catalog
            .frames_by_ids(&ids)
            .await?
            .into_iter()
            .filter(|f| scope.allows(f.video_id))
            .filter_map(|f| {
                let s = crate::simd::dot(query, vectors.get(&f.id)?);
                Some((f, s))
            })
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out.truncate(n);
        return Ok(out);
    }
    let allowed = scope.frames();
    if scope.videos.is_some() && scope.frames.is_none() && allowed <= EXACT_SCAN_MAX {
        let mut out = Vec::with_capacity(allowed as usize);
        for v in scope.listed() {
            if v.frames > 0 {
                out.extend(catalog.frame_scores(v.id, model, query).await?);
            }
        }
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out.truncate(n);
        return Ok(out);
    }
    // A filter that keeps a small share of the graph needs a wider search to find `n`.
    let total = scope.directory.iter().map(|v| v.frames).sum::<i64>().max(1);
    let share = (allowed as f64 / total as f64).clamp(0.01, 1.0);
    // Beam n + 284 (384 for the usual 100 candidates): recall@10 0.97 at 1M frames in
    // `cargo bench --bench query`, 1.4 ms per graph search (beam 320 gave 0.953-0.965,
    // 256 gave 0.937-0.954 over builds of the graph: hnsw_rs' parallel insertion makes
    // each build a little different, and 0.95 is the floor).
    let ef = (((n + 284) as f64) / share.sqrt()) as usize;
    let scope_of = crate::catalog::VectorScope {
        videos: scope.videos.as_deref(),
        frames: scope.frames.as_deref(),
    };
    let ef = if scope_of.is_all() { ef } else { ef.min(20_000) };
    let hits = catalog.nearest_for(model, query, n, ef, scope_of).await?;
    let score_of: std::collections::HashMap<i64, f32> = hits.iter().copied().collect();
    let mut out: Vec<(Frame, f32)> = catalog
        .frames_by_ids(&hits.iter().map(|h| h.0).collect::<Vec<_>>())
        .await?
        .into_iter()
        .map(|f| {
            let s = score_of[&f.id];
            (f, s)
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(out)
}

/// The best `limit` lexical matches in the scope, only texts of `kind` when given
/// (nothing when the clause has no word that is not a stop word and no phrase).
pub fn lexical(
    catalog: &Catalog,
    lex: &Lexical,
    scope: &Scope,
    kind: Option<TextKind>,
    limit: usize,
) -> Result<Vec<TextHit>, SearchError> {
    if lex.is_empty() {
        return Ok(Vec::new());
    }
    let q = LexicalQuery {
        words: lex.words.clone(),
        phrases: lex.phrases.clone(),
        not: lex.not.clone(),
        kind,
    };
    Ok(catalog.text_search(&q, scope.videos.as_deref(), limit)?)
}
