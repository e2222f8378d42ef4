//! Sequences: `A >> B` finds a moment that looks like A followed, in the same video and
//! within the gap (`>>30s` or the default [`DEFAULT_GAP`](super::query::DEFAULT_GAP)), by
//! one that looks like B.
//!
//! Each step is searched on its own in the same scope, with the same cut-off (under
//! `auto`, every step must be a credible match). A chain starts at a moment of the first
//! step; each next step takes the best moment of that video that starts after the
//! previous one's peak and no later than the gap after its end. A chain scores the mean
//! of its steps' scores and spans from the first moment's start to the last one's end;
//! overlapping chains of one video keep the best.

use std::sync::Arc;

use super::engine::Engine;
use super::query::Query;
use super::retrieve::Scope;
use super::vectors::QueryVectors;
use super::{SearchError, SearchRequest, SearchResponse, Segment, Source};
use crate::catalog::Catalog;
use crate::embed::Embedder;

/// Moments each step contributes at most.
const PER_STEP: usize = 500;

/// Runs a sequence query (more than one step).
pub(crate) async fn search(
    catalog: &Catalog,
    model: Arc<Embedder>,
    req: &SearchRequest,
    parsed: &Query,
    scope: &Scope,
) -> Result<SearchResponse, SearchError> {
    let engine = Engine::new(catalog, model, req).await?;
    let mut steps: Vec<Vec<Segment>> = Vec::with_capacity(parsed.steps.len());
    let mut withheld = 0;
    for (i, clause) in parsed.steps.iter().enumerate() {
        // A picture (or frame, or examples) of the request describes the first step.
        let qv = QueryVectors::build(&engine, clause, req, i == 0).await?;
        let found = engine
            .moments(clause, &qv, scope, parsed.filters.source, PER_STEP)
            .await?;
        if i == 0 {
            withheld = found.withheld;
        }
        steps.push(found.results);
    }
    let chains = chain(&steps, &parsed.gaps);
    let results = best_apart(chains, req.k as usize);
    Ok(SearchResponse {
        query: req.query.trim().to_string(),
        results,
        withheld,
        cutoff: req.min_score.to_string(),
    })
}

/// Every chain through the steps, one per moment of the first step that has one.
fn chain(steps: &[Vec<Segment>], gaps: &[f64]) -> Vec<Segment> {
    let Some((first, rest)) = steps.split_first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    'start: for a in first {
        let mut last = a.clone();
        let mut total = a.score;
        for (i, step) in rest.iter().enumerate() {
            let gap = gaps.get(i).copied().unwrap_or(super::query::DEFAULT_GAP);
            let next = step
                .iter()
                .filter(|b| b.video_id == a.video_id && b.start > last.peak && b.start <= last.end + gap)
                .max_by(|x, y| x.score.total_cmp(&y.score));
            match next {
                Some(b) => {
                    total += b.score;
                    last = b.clone();
                }
                None => continue 'start,
            }
        }
        let mut seg = a.clone();
        seg.end = last.end.max(a.end);
        seg.score = total / steps.len() as f32;
        seg.source = if steps
            .iter()
            .flatten()
            .any(|s| s.video_id == a.video_id && s.source != Source::Visual)
        {
            Source::Both
        } else {
            Source::Visual
        };
        seg.text = None;
        out.push(seg);
    }
    out
}

/// The best `k` chains, best first, no two of one video overlapping.
fn best_apart(mut chains: Vec<Segment>, k: usize) -> Vec<Segment> {
    chains.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Segment> = Vec::new();
    for c in chains {
        if kept.len() >= k {
            break;
        }
        if kept
            .iter()
            .any(|o| o.video_id == c.video_id && o.start < c.end && c.start < o.end)
        {
            continue;
        }
        kept.push(c);
    }
    for (i, s) in kept.iter_mut().enumerate() {
        s.rank_score = 1.0 / (i as f64 + 1.0);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moment(video: i64, start: f64, end: f64, score: f32) -> Segment {
        Segment {
            start,
            end,
            peak: (start + end) / 2.0,
            score,
            ..Segment::new(video, Source::Visual)
        }
    }

    #[test]
    fn a_chain_needs_the_next_step_after_the_first_within_the_gap() {
        let a = vec![moment(1, 0.0, 2.0, 0.5), moment(2, 10.0, 12.0, 0.6)];
        // Video 1: B follows at 3 s (inside a 5 s gap). Video 2: B comes before A only.
        let b = vec![moment(1, 3.0, 4.0, 0.3), moment(2, 0.0, 1.0, 0.9)];
        let got = chain(&[a.clone(), b.clone()], &[5.0]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].video_id, 1);
        assert_eq!((got[0].start, got[0].end), (0.0, 4.0));
        assert!((got[0].score - 0.4).abs() < 1e-6);
        // A gap too short for the 1 s wait: no chain.
        assert!(chain(&[a, b], &[0.5]).is_empty());
    }

    #[test]
    fn overlapping_chains_of_a_video_keep_the_best() {
        let kept = best_apart(
            vec![
                moment(1, 0.0, 4.0, 0.2),
                moment(1, 1.0, 5.0, 0.4),
                moment(1, 6.0, 8.0, 0.1),
            ],
            10,
        );
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].start, 1.0);
        assert_eq!(kept[1].start, 6.0);
    }
}
