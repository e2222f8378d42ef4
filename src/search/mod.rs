//! `search`: the read path. A query comes back as moments in videos.
//!
//! 1. `query`: the text is parsed once into a typed query (terms, phrases, negative
//!    terms, weights, filters, sequences); CLI, API and UI share it. `request` checks the
//!    rest of a `SearchRequest` (`validate`).
//! 2. `vectors`: the query vector: the terms embedded at their true token length (weighted parts
//!    summed), an image or a stored frame embedded or read, combined as a weighted sum
//!    of unit vectors; negative terms embedded too.
//! 3. `retrieve`: the filters become the set of videos that may answer (`Scope`), then
//!    the visual retriever finds the nearest frames among them (a filtered graph search,
//!    or an exact scan when they are few); frames near a negative term are dropped (a
//!    credible match for it) or pushed down (by how much more they resemble it than the
//!    median candidate does). The lexical retriever finds subtitle cues, titles and file
//!    names with the words (never stop words) and phrases.
//! 4. `segments`: frames grow into moments within one logit (`1 / logit_scale`) of their best.
//! 5. `fuse`: visual moments and subtitle cues in one ranking (reciprocal rank fusion
//!    aware of scores); a cue inside a visual moment makes it `both`, narrowed to the cue.
//! 6. The cut-off (`calibrate`): by default only credible matches are returned; the count
//!    of those held back is reported. Title and file-name matches come after the credible
//!    moments, each as its video's best moment for the query (never the whole video).
//! 7. `group`: results per video; a video's score timeline.
//!
//! `engine` runs steps 3 to 6 for one clause (`Engine::moments`); `search` here applies
//! the filters and tags and runs one clause, or `sequence` several. What comes back is
//! `response`'s, what goes wrong `error`'s.

pub mod calibrate;
pub mod eval;
pub mod fuse;
pub mod group;
pub mod params;
pub mod probe;
pub mod prompts;
pub mod query;
pub mod retrieve;
pub mod segments;
pub mod sequence;
pub mod tags;

mod engine;
mod error;
mod request;
mod response;
mod vectors;

use std::sync::Arc;

use self::engine::Engine;
use self::query::{Filters, Query, SourceFilter};
use self::retrieve::Scope;
use self::vectors::QueryVectors;
use crate::catalog::Catalog;
use crate::embed::Embedder;

pub use self::error::SearchError;
pub use self::request::{ImageQuery, MAX_IMAGE_BYTES, MAX_QUERY_CHARS, MinScore, SearchRequest, validate};
pub use self::response::{SearchResponse, Segment, Source};

/// Runs a search.
pub async fn search(
    catalog: &Catalog,
    model: Arc<Embedder>,
    req: &SearchRequest,
) -> Result<SearchResponse, SearchError> {
    let _running = crate::util::priority::searching();
    let parsed = validate(req)?;
    let Some(scope) = scope(catalog, &model, req, &parsed.filters).await? else {
        return Ok(empty(req));
    };
    let mut response = if parsed.steps.len() > 1 {
        sequence::search(catalog, model, req, &parsed, &scope).await?
    } else {
        one_clause(catalog, model, req, &parsed, &scope).await?
    };
    tags::attach(catalog, &mut response.results).await?;
    Ok(response)
}

/// Where a search may look: the videos the query's filters and the request's video
/// accept, and the frames its tag filters allow; None when nothing may answer.
async fn scope(
    catalog: &Catalog,
    model: &Arc<Embedder>,
    req: &SearchRequest,
    filters: &Filters,
) -> Result<Option<Scope>, SearchError> {
    let mut filters = filters.clone();
    if let Some(v) = req.video {
        if catalog.directory().get(v).is_none() {
            return Err(SearchError::NoSuchVideo(v));
        }
        if filters.videos.is_empty() {
            filters.videos.push(v);
        } else {
            // Both the parameter and `video:` restrict: only their common videos.
            filters.videos.retain(|x| *x == v);
            if filters.videos.is_empty() {
                return Ok(None);
            }
        }
    }
    let mut scope = Scope::new(catalog.directory(), &filters);
    if scope.is_empty() {
        return Ok(None);
    }
    // New footage is tagged first (usually nothing to do: the job runner tags).
    if let Err(e) = tags::ensure_light(catalog, model).await {
        tracing::warn!("the tags could not be brought up to date: {e}");
    }
    if let Some(frames) = tags::allowed_frames(catalog, &filters.tags, &filters.not_tags).await? {
        if frames.is_empty() {
            return Ok(None);
        }
        scope.frames = Some(Arc::new(frames));
    }
    Ok(Some(scope))
}

/// A query of one clause (not a sequence) in its scope.
async fn one_clause(
    catalog: &Catalog,
    model: Arc<Embedder>,
    req: &SearchRequest,
    parsed: &Query,
    scope: &Scope,
) -> Result<SearchResponse, SearchError> {
    let engine = Engine::new(catalog, model, req).await?;
    let mut clause = parsed.clause().clone();
    let mut source = parsed.filters.source;
    if clause.terms.is_empty() && req.image.is_none() && req.frame.is_none() && req.like.is_empty() {
        // Only tags: their moments, ranked by how well the labels describe them.
        clause.terms = parsed
            .filters
            .tags
            .iter()
            .map(|t| query::Term {
                text: t.clone(),
                phrase: true,
                weight: None,
            })
            .collect();
        source = Some(SourceFilter::Visual);
    }
    let qv = QueryVectors::build(&engine, &clause, req, true).await?;
    let found = engine.moments(&clause, &qv, scope, source, req.k as usize).await?;
    Ok(SearchResponse {
        query: req.query.trim().to_string(),
        results: found.results,
        withheld: found.withheld,
        cutoff: req.min_score.to_string(),
    })
}

fn empty(req: &SearchRequest) -> SearchResponse {
    SearchResponse {
        query: req.query.trim().to_string(),
        results: Vec::new(),
        withheld: 0,
        cutoff: req.min_score.to_string(),
    }
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

    #[test]
    fn clock_formats_minutes_and_tenths() {
        assert_eq!(clock(0.0), "00:00.0");
        assert_eq!(clock(75.25), "01:15.2");
    }
}
