//! `search`: the read path. A query comes back as moments in videos.
//!
//! 1. `query`: the text is parsed once into a typed query (terms, phrases, negative
//!    terms, weights, filters, sequences); CLI, API and UI share it.
//! 2. The query vector: the terms embedded at their true token length (weighted parts
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

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use self::calibrate::{Calibration, Judge, MARGIN};
use self::fuse::{Fusion, RankedList, Rrf};
use self::query::{Clause, Query, QueryError, SourceFilter};
use self::retrieve::Scope;
use crate::catalog::{Catalog, CatalogError, Frame, StoreError};
use crate::embed::{EmbedError, Embedder};
use crate::simd::dot;

/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 1000;
/// Most results one query may ask for.
pub const MAX_K: usize = 1000;
/// Largest image a query may upload.
pub const MAX_IMAGE_BYTES: usize = 32 * 1024 * 1024;
/// Largest weight of an image against the text of a query.
pub const MAX_IMAGE_WEIGHT: f32 = 10.0;

/// Errors of a search.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("the query is empty: type what you are looking for, e.g. \"a dog catching a frisbee\"")]
    EmptyQuery,
    #[error("the query has {0} characters; the limit is {MAX_QUERY_CHARS}: shorten it")]
    QueryTooLong(usize),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(
        "the query has only negative terms or filters: say what to look for too (e.g. `a dog -cat path:holiday`), \
         or search by an image or a frame"
    )]
    NothingToLookFor,
    #[error("k must be between 1 and {MAX_K} (got {0})")]
    BadK(i64),
    #[error("min_score must be auto, off or a number between -1 and 1 (got {0})")]
    BadMinScore(String),
    #[error("the image weight must be a number above 0 and at most {MAX_IMAGE_WEIGHT} (got {0})")]
    BadImageWeight(f32),
    #[error("the prompt templates cannot be used: {0}")]
    BadTemplates(String),
    #[error("{0}")]
    BadProbe(String),
    #[error("{0}")]
    BadLabels(String),
    #[error("the query image {name} cannot be used: {reason}")]
    BadImage { name: String, reason: String },
    #[error("video {0} does not exist")]
    NoSuchVideo(i64),
    #[error("frame {0} does not exist (frame ids are in every search result); search again")]
    NoSuchFrame(i64),
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
            SearchError::EmptyQuery
            | SearchError::QueryTooLong(_)
            | SearchError::Query(_)
            | SearchError::NothingToLookFor
            | SearchError::BadK(_)
            | SearchError::BadMinScore(_)
            | SearchError::BadImageWeight(_)
            | SearchError::BadTemplates(_)
            | SearchError::BadProbe(_)
            | SearchError::BadLabels(_)
            | SearchError::BadImage { .. } => Fault::BadInput,
            SearchError::NoSuchVideo(_) | SearchError::NoSuchFrame(_) => Fault::NotFound,
            SearchError::Catalog(e) => e.fault(),
            SearchError::Model(e) => e.fault(),
            SearchError::Panicked(_) => Fault::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            SearchError::EmptyQuery => "empty_query",
            SearchError::QueryTooLong(_) => "query_too_long",
            SearchError::Query(_) => "bad_query",
            SearchError::NothingToLookFor => "nothing_to_look_for",
            SearchError::BadK(_) => "bad_k",
            SearchError::BadMinScore(_) => "bad_min_score",
            SearchError::BadImageWeight(_) => "bad_image_weight",
            SearchError::BadImage { .. } => "bad_image",
            SearchError::BadTemplates(_) => "bad_templates",
            SearchError::BadProbe(_) => "bad_probe",
            SearchError::BadLabels(_) => "bad_labels",
            SearchError::NoSuchVideo(_) | SearchError::NoSuchFrame(_) => "not_found",
            SearchError::Catalog(e) => e.code(),
            SearchError::Model(e) => e.code(),
            SearchError::Panicked(_) => "internal",
        }
    }
}

/// Which results are returned.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum MinScore {
    /// Only credible matches (see `calibrate`).
    #[default]
    Auto,
    /// Everything, best first.
    Off,
    /// Moments whose best frame scores at least this cosine.
    Value(f32),
}

impl std::str::FromStr for MinScore {
    type Err = SearchError;
    fn from_str(s: &str) -> Result<Self, SearchError> {
        // Exactly the documented forms (the API's schema says the same).
        match s {
            "auto" => Ok(MinScore::Auto),
            "off" => Ok(MinScore::Off),
            t => match t.parse::<f32>() {
                Ok(x) if x.is_finite() && (-1.0..=1.0).contains(&x) => Ok(MinScore::Value(x)),
                _ => Err(SearchError::BadMinScore(s.to_string())),
            },
        }
    }
}

impl std::fmt::Display for MinScore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MinScore::Auto => f.write_str("auto"),
            MinScore::Off => f.write_str("off"),
            MinScore::Value(x) => write!(f, "{x}"),
        }
    }
}

/// A picture to search by.
#[derive(Clone, Debug)]
pub enum ImageQuery {
    /// A file on this machine (the CLI).
    File(PathBuf),
    /// Uploaded bytes (the API), with a name for messages.
    Bytes { name: String, bytes: Vec<u8> },
}

/// What to look for.
#[derive(Clone, Debug)]
pub struct SearchRequest {
    /// The query, in the query language (`search::query`); may be empty with an image
    /// or a frame.
    pub query: String,
    /// Most results.
    pub k: i64,
    /// Only this video (the same as `video:ID`).
    pub video: Option<i64>,
    /// The cut-off.
    pub min_score: MinScore,
    /// Search by a picture (combined with the text when there is one).
    pub image: Option<ImageQuery>,
    /// Search by a stored frame ("more like this").
    pub frame: Option<i64>,
    /// The weight of the picture against the text's 1.
    pub image_weight: f32,
    /// Prompt templates for short queries.
    pub templates: prompts::Templates,
    /// Only moments with these tags (the same as `tag:LABEL`).
    pub tags: Vec<String>,
    /// Few-shot: frames the results should look like ("more like these"; see `probe`).
    pub like: Vec<i64>,
    /// Frames the results should not look like.
    pub unlike: Vec<i64>,
}

impl SearchRequest {
    /// A search for `query` with up to `k` results, the calibrated cut-off, no filter.
    pub fn new(query: impl Into<String>, k: i64) -> Self {
        Self {
            query: query.into(),
            k,
            video: None,
            min_score: MinScore::Auto,
            image: None,
            frame: None,
            image_weight: 1.0,
            templates: prompts::Templates::Auto,
            tags: Vec::new(),
            like: Vec::new(),
            unlike: Vec::new(),
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
    /// Cosine similarity of the query and the best frame of the segment (less what
    /// negative terms took off).
    pub score: f32,
    pub source: Source,
    pub frame_id: Option<i64>,
    /// The matching subtitle, title or file name, for text results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
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

/// Checks a request; returns the parsed query.
pub fn validate(req: &SearchRequest) -> Result<Query, SearchError> {
    // The limit is on what was sent, blanks included.
    let n = req.query.chars().count();
    let q = req.query.trim();
    if n > MAX_QUERY_CHARS {
        return Err(SearchError::QueryTooLong(n));
    }
    if req.k < 1 || req.k > MAX_K as i64 {
        return Err(SearchError::BadK(req.k));
    }
    if let MinScore::Value(m) = req.min_score
        && !(m.is_finite() && (-1.0..=1.0).contains(&m))
    {
        return Err(SearchError::BadMinScore(m.to_string()));
    }
    if !(req.image_weight.is_finite() && req.image_weight > 0.0 && req.image_weight <= MAX_IMAGE_WEIGHT) {
        return Err(SearchError::BadImageWeight(req.image_weight));
    }
    let mut parsed = query::parse(q)?;
    parsed
        .filters
        .tags
        .extend(req.tags.iter().map(|t| t.trim().to_string()));
    if let Some(t) = parsed
        .filters
        .tags
        .iter()
        .chain(&parsed.filters.not_tags)
        .find(|t| t.is_empty() || t.chars().count() > tags::MAX_LABEL_CHARS)
    {
        return Err(SearchError::BadLabels(format!(
            "a tag filter needs a label of 1 to {} characters (got {:?})",
            tags::MAX_LABEL_CHARS,
            t.chars().take(40).collect::<String>()
        )));
    }
    probe::check(&req.like, &req.unlike)?;
    let by_picture = req.image.is_some() || req.frame.is_some() || !req.like.is_empty();
    if !parsed.has_terms() && !by_picture && parsed.filters.tags.is_empty() {
        return Err(if q.is_empty() {
            SearchError::EmptyQuery
        } else {
            SearchError::NothingToLookFor
        });
    }
    if parsed.steps.len() > 1 && parsed.steps.iter().any(|c| c.terms.is_empty()) {
        return Err(SearchError::NothingToLookFor);
    }
    Ok(parsed)
}

/// The model's logit scale (its trained temperature).
pub(crate) fn logit_scale(model: &Embedder) -> f32 {
    model.manifest().scoring().logit_scale.max(1.0)
}

fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Embeds texts without blocking the async executor (the rows of concurrent searches
/// share the text tower's runs).
async fn embed_texts(model: &Arc<Embedder>, texts: Vec<String>) -> Result<Vec<Vec<f32>>, SearchError> {
    if texts.is_empty() {
        return Ok(Vec::new());
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let emb = model.embed_texts_async(&refs).await?;
    Ok(emb.rows().map(<[f32]>::to_vec).collect())
}

/// The unit vector of weighted text parts: the normalised sum of their embeddings
/// (short ones through the template ensemble of `set`).
pub(crate) async fn embed_parts(
    model: &Arc<Embedder>,
    set: Option<&prompts::TemplateSet>,
    parts: &[(String, f32)],
) -> Result<Vec<f32>, SearchError> {
    let rows = prompts::embed(
        model,
        set,
        &parts.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>(),
        false,
    )
    .await?;
    Ok(weighted_sum(
        parts.iter().map(|(_, w)| *w).zip(rows.iter().map(Vec::as_slice)),
        model.dim(),
    ))
}

fn weighted_sum<'a>(items: impl Iterator<Item = (f32, &'a [f32])>, dim: usize) -> Vec<f32> {
    let mut v = vec![0.0; dim];
    for (w, row) in items {
        v.iter_mut().zip(row).for_each(|(a, b)| *a += w * b);
    }
    normalize(&mut v);
    v
}

/// The vectors one clause (and the request's picture or examples) searches with.
pub(crate) struct QueryVectors {
    /// What the visual retriever searches with.
    pub combined: Vec<f32>,
    /// The text part alone (None for a picture-only query).
    pub text: Option<Vec<f32>>,
    /// The picture part alone.
    pub picture: Option<Vec<f32>>,
    /// Negative terms: (unit vector, weight).
    pub negatives: Vec<(Vec<f32>, f32)>,
    /// The frames searched by (a "more like this" frame, the liked frames): their own
    /// moments are left out of the results.
    pub sources: Vec<Frame>,
    /// The few-shot probe of the liked and unliked frames.
    pub probe: Option<probe::Probe>,
    /// The liked frames' vectors: the retriever also searches around each.
    pub seeds: Vec<Vec<f32>>,
}

impl QueryVectors {
    /// The vectors of `clause`; the request's picture, frame and examples belong to the
    /// first step of a query (`first`).
    pub(crate) async fn build(
        engine: &Engine<'_>,
        clause: &Clause,
        req: &SearchRequest,
        first: bool,
    ) -> Result<Self, SearchError> {
        let (catalog, model) = (engine.catalog, &engine.model);
        let dim = model.dim();
        let parts = clause.visual_parts();
        let mut texts: Vec<String> = parts.iter().map(|(t, _)| t.clone()).collect();
        texts.extend(clause.negatives.iter().map(|t| t.text.clone()));
        let rows = prompts::embed(model, engine.templates.as_deref(), &texts, false).await?;
        let text = (!parts.is_empty())
            .then(|| weighted_sum(parts.iter().map(|(_, w)| *w).zip(rows.iter().map(Vec::as_slice)), dim));
        let negatives = clause
            .negatives
            .iter()
            .zip(rows.iter().skip(parts.len()))
            .map(|(t, v)| (v.clone(), t.weight()))
            .collect();
        let mut pictures: Vec<Vec<f32>> = Vec::new();
        let mut sources = Vec::new();
        if first && let Some(img) = &req.image {
            pictures.push(embed_image(model, img).await?);
        }
        if first && let Some(id) = req.frame {
            let v = catalog
                .vectors_by_ids(model.model_name(), &[id])
                .await?
                .into_iter()
                .next()
                .ok_or(SearchError::NoSuchFrame(id))?;
            pictures.push(v.1);
            sources.extend(catalog.frames_by_ids(&[id]).await?);
        }
        let picture = (!pictures.is_empty()).then(|| weighted_sum(pictures.iter().map(|p| (1.0, p.as_slice())), dim));
        let mut combined = match (&text, &picture) {
            (Some(t), Some(p)) => {
                weighted_sum([(1.0, t.as_slice()), (req.image_weight, p.as_slice())].into_iter(), dim)
            }
            (Some(t), None) => t.clone(),
            (None, Some(p)) => p.clone(),
            (None, None) if first && !req.like.is_empty() => Vec::new(),
            (None, None) => return Err(SearchError::NothingToLookFor),
        };
        let (mut probe, mut seeds) = (None, Vec::new());
        if first && !req.like.is_empty() {
            // The probe starts from what the query says (text and picture) when it says anything.
            let init = (!combined.is_empty()).then(|| combined.clone());
            let p = tags::train_probe(catalog, model, &req.like, &req.unlike, init).await?;
            combined = p.direction();
            seeds = catalog
                .vectors_by_ids(model.model_name(), &req.like)
                .await?
                .into_iter()
                .map(|(_, v)| v)
                .collect();
            // The examples are not news, and the rejected ones are not wanted.
            sources.extend(catalog.frames_by_ids(&req.like).await?);
            sources.extend(catalog.frames_by_ids(&req.unlike).await?);
            probe = Some(p);
        }
        Ok(Self {
            combined,
            text,
            picture,
            negatives,
            sources,
            probe,
            seeds,
        })
    }
}

/// Decodes and embeds a query picture (still images decoded exactly as for indexing).
async fn embed_image(model: &Arc<Embedder>, img: &ImageQuery) -> Result<Vec<f32>, SearchError> {
    let (name, path, temp) = match img {
        ImageQuery::File(p) => (p.display().to_string(), p.clone(), None),
        ImageQuery::Bytes { name, bytes } => {
            if bytes.is_empty() {
                return Err(SearchError::BadImage {
                    name: name.clone(),
                    reason: "it is empty".into(),
                });
            }
            if bytes.len() > MAX_IMAGE_BYTES {
                return Err(SearchError::BadImage {
                    name: name.clone(),
                    reason: format!("it has {} bytes; the limit is {MAX_IMAGE_BYTES}", bytes.len()),
                });
            }
            // The name's extension helps FFmpeg pick the format; the content decides.
            let ext: String = std::path::Path::new(name)
                .extension()
                .and_then(|e| e.to_str())
                .filter(|e| e.len() <= 5 && e.chars().all(|c| c.is_ascii_alphanumeric()))
                .map(|e| format!(".{}", e.to_ascii_lowercase()))
                .unwrap_or_default();
            let f = tempfile::Builder::new()
                .prefix("vidseek-query-")
                .suffix(&ext)
                .tempfile()
                .map_err(|e| {
                    SearchError::Panicked(format!("cannot write the uploaded image to a temporary file: {e}"))
                })?;
            std::fs::write(f.path(), bytes).map_err(|e| {
                SearchError::Panicked(format!("cannot write the uploaded image to a temporary file: {e}"))
            })?;
            (name.clone(), f.path().to_path_buf(), Some(f))
        }
    };
    let m = model.clone();
    let n = name.clone();
    let v = tokio::task::spawn_blocking(move || {
        let _keep = temp;
        let picture = crate::decode::image(&path).map_err(|e| SearchError::BadImage {
            name: n,
            reason: format!(
                "{e}; use a JPEG, PNG, WebP or another picture FFmpeg reads (a video file: search its frames with --frame)"
            ),
        })?;
        let emb = m.embed_images(&[picture])?;
        Ok::<_, SearchError>(emb.row(0).to_vec())
    })
    .await
    .map_err(|e| SearchError::Panicked(format!("embedding the query image {name} failed: {e}")))??;
    Ok(v)
}

/// Runs a search.
pub async fn search(
    catalog: &Catalog,
    model: Arc<Embedder>,
    req: &SearchRequest,
) -> Result<SearchResponse, SearchError> {
    let _running = crate::util::priority::searching();
    let parsed = validate(req)?;
    let mut filters = parsed.filters.clone();
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
                return Ok(empty(req));
            }
        }
    }
    let mut scope = Scope::new(catalog.directory(), &filters);
    if scope.is_empty() {
        return Ok(empty(req));
    }
    // New footage is tagged first (usually nothing to do: the job runner tags).
    if let Err(e) = tags::ensure_light(catalog, &model).await {
        tracing::warn!("the tags could not be brought up to date: {e}");
    }
    if let Some(frames) = tags::allowed_frames(catalog, &filters.tags, &filters.not_tags).await? {
        if frames.is_empty() {
            return Ok(empty(req));
        }
        scope.frames = Some(Arc::new(frames));
    }
    let mut response = if parsed.steps.len() > 1 {
        sequence::search(catalog, model, req, &parsed, &scope).await?
    } else {
        let engine = Engine::new(catalog, model, req).await?;
        let mut clause = parsed.clause().clone();
        let mut source = filters.source;
        if clause.terms.is_empty() && req.image.is_none() && req.frame.is_none() && req.like.is_empty() {
            // Only tags: their moments, ranked by how well the labels describe them.
            clause.terms = filters
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
        let found = engine.moments(&clause, &qv, &scope, source, req.k as usize).await?;
        SearchResponse {
            query: req.query.trim().to_string(),
            results: found.results,
            withheld: found.withheld,
            cutoff: req.min_score.to_string(),
        }
    };
    tags::attach(catalog, &mut response.results).await?;
    Ok(response)
}

fn empty(req: &SearchRequest) -> SearchResponse {
    SearchResponse {
        query: req.query.trim().to_string(),
        results: Vec::new(),
        withheld: 0,
        cutoff: req.min_score.to_string(),
    }
}

/// Moments found for one clause.
pub(crate) struct Found {
    pub results: Vec<Segment>,
    pub withheld: usize,
}

/// One search's model, vocabulary and cut-off.
pub(crate) struct Engine<'a> {
    pub catalog: &'a Catalog,
    pub model: Arc<Embedder>,
    pub name: String,
    pub logit_scale: f32,
    pub vocab: Arc<calibrate::Vocabulary>,
    pub min_score: MinScore,
    /// The prompt templates short queries are embedded through.
    pub templates: Option<Arc<prompts::TemplateSet>>,
}

impl<'a> Engine<'a> {
    pub(crate) async fn new(
        catalog: &'a Catalog,
        model: Arc<Embedder>,
        req: &SearchRequest,
    ) -> Result<Self, SearchError> {
        let templates = prompts::resolve(&req.templates, &model);
        let vocab = calibrate::vocabulary(catalog, &model, templates.as_deref()).await?;
        Ok(Self {
            templates,
            catalog,
            name: model.model_name().to_string(),
            logit_scale: logit_scale(&model),
            model,
            vocab,
            min_score: req.min_score,
        })
    }

    /// The best `k` moments for a clause in the scope, the cut-off applied.
    pub(crate) async fn moments(
        &self,
        clause: &Clause,
        qv: &QueryVectors,
        scope: &Scope,
        source: Option<SourceFilter>,
        k: usize,
    ) -> Result<Found, SearchError> {
        let catalog = self.catalog;
        let delta = 1.0 / self.logit_scale;
        // Visual candidates, negative terms applied.
        let mut penalty: HashMap<i64, f32> = HashMap::new();
        let mut vectors: HashMap<i64, Vec<f32>> = HashMap::new();
        let mut visual = Vec::new();
        if source != Some(SourceFilter::Text) {
            let n = (k * 10).clamp(100, 2000);
            let mut scored = retrieve::visual(catalog, &self.name, &qv.combined, scope, n).await?;
            if !qv.seeds.is_empty() {
                // Around each liked frame too, scored along the probe's direction.
                let have: std::collections::HashSet<i64> = scored.iter().map(|(f, _)| f.id).collect();
                let mut more: Vec<Frame> = Vec::new();
                for seed in &qv.seeds {
                    let around =
                        retrieve::visual(catalog, &self.name, seed, scope, (n / qv.seeds.len()).max(50)).await?;
                    more.extend(around.into_iter().map(|(f, _)| f).filter(|f| !have.contains(&f.id)));
                }
                more.sort_by_key(|f| f.id);
                more.dedup_by_key(|f| f.id);
                let ids: Vec<i64> = more.iter().map(|f| f.id).collect();
                let vs: HashMap<i64, Vec<f32>> = catalog.vectors_by_ids(&self.name, &ids).await?.into_iter().collect();
                for f in more {
                    if let Some(v) = vs.get(&f.id) {
                        scored.push((f, dot(&qv.combined, v)));
                    }
                }
                vectors.extend(vs);
                scored.sort_by(|a, b| b.1.total_cmp(&a.1));
            }
            if !qv.negatives.is_empty() && !scored.is_empty() {
                let ids: Vec<i64> = scored.iter().map(|(f, _)| f.id).collect();
                vectors.extend(catalog.vectors_by_ids(&self.name, &ids).await?);
                let mut dropped = std::collections::HashSet::new();
                for (nv, w) in &qv.negatives {
                    let s: Vec<f32> = ids
                        .iter()
                        .map(|id| vectors.get(id).map_or(0.0, |v| dot(nv, v)))
                        .collect();
                    let mut sorted = s.clone();
                    sorted.sort_by(f32::total_cmp);
                    let median = sorted[sorted.len() / 2];
                    for (id, sn) in ids.iter().zip(&s) {
                        let Some(v) = vectors.get(id) else { continue };
                        // A credible match for the negative term: out.
                        if self.logit_scale * (sn - self.vocab.best(v).1) >= -MARGIN {
                            dropped.insert(*id);
                        }
                        *penalty.entry(*id).or_default() += w * (sn - median).max(0.0);
                    }
                }
                scored.retain(|(f, _)| !dropped.contains(&f.id));
                for (f, s) in scored.iter_mut() {
                    *s -= penalty.get(&f.id).copied().unwrap_or(0.0);
                }
            }
            visual = segments::from_frames(scored, delta);
        }
        // Lexical candidates: cues (with times) are fused; titles and file names wait.
        let mut cues = Vec::new();
        let mut bm25 = Vec::new();
        let mut names: Vec<(i64, String)> = Vec::new();
        // Tags are about the pictures: a tag filter keeps visual moments only.
        if source != Some(SourceFilter::Visual) && scope.frames.is_none() {
            let lexical = clause.lexical();
            for hit in retrieve::lexical(catalog, &lexical, scope, (k * 3).clamp(20, 300))? {
                let d = hit.doc;
                match (d.start, d.end) {
                    (Some(s), Some(e)) if d.kind == "subtitle" => {
                        cues.push(Segment {
                            start: s,
                            end: e.max(s),
                            peak: s,
                            score: f32::NAN,
                            text: Some(d.text),
                            ..Segment::new(d.video_id, Source::Text)
                        });
                        bm25.push(hit.score);
                    }
                    // A title or file name answers only when it holds every word of
                    // the query ("circle.mp4" does not answer "a yellow circle").
                    _ if !names_all(&d.text, &lexical.words) => {}
                    _ => {
                        if !names.iter().any(|(v, _)| *v == d.video_id) {
                            names.push((d.video_id, d.text));
                        }
                    }
                }
            }
        }
        let fused = Rrf::default().fuse(
            RankedList::visual(visual, self.logit_scale),
            RankedList::lexical(cues, &bm25),
        );

        // The cut-off needs the vectors of the moments it judges: read them at once.
        let calibration = match self.min_score {
            MinScore::Auto => Some(Calibration {
                vocab: self.vocab.clone(),
                logit_scale: self.logit_scale,
                judge: match (&qv.text, &qv.picture) {
                    _ if qv.probe.is_some() => Judge::Probe(qv.probe.clone().expect("checked")),
                    (Some(t), _) => Judge::Text(t.clone()),
                    (None, Some(p)) => {
                        let best_label = self.vocab.best(p).0;
                        tracing::debug!("picture query: its best label is {:?}", self.vocab.labels[best_label]);
                        Judge::Image { best_label }
                    }
                    (None, None) => unreachable!("a query vector has a part"),
                },
            }),
            _ => None,
        };
        let checks = (4 * k).max(64);
        if calibration.is_some() {
            let want: Vec<i64> = fused
                .iter()
                .filter(|s| s.source == Source::Visual)
                .filter_map(|s| s.frame_id)
                .filter(|id| !vectors.contains_key(id))
                .take(checks)
                .collect();
            vectors.extend(catalog.vectors_by_ids(&self.name, &want).await?);
        }

        let dir = &scope.directory;
        let mut frame_scores = FrameScores::default();
        let mut results: Vec<Segment> = Vec::with_capacity(k);
        let mut withheld = 0;
        let mut checked = 0;
        for mut seg in fused {
            if results.len() >= k {
                break;
            }
            let Some(v) = dir.get(seg.video_id) else {
                continue; // removed since the index was read
            };
            if qv.sources.iter().any(|f| {
                seg.video_id == f.video_id && (seg.frame_id == Some(f.id) || (seg.start <= f.peak && f.peak < seg.end))
            }) {
                continue; // the frames searched by are not news
            }
            seg.path = v.path.clone();
            if seg.source == Source::Text {
                // A cue with no visual moment around it: its best frame gives the picture.
                let frames = frame_scores.of(catalog, &self.name, seg.video_id, &qv.combined).await?;
                if let Some((fid, s, peak)) = best_frame_in(frames, seg.start, seg.end) {
                    seg.score = s;
                    seg.frame_id = Some(fid);
                    if seg.peak < seg.start || seg.peak >= seg.end.max(seg.start + 1e-9) {
                        seg.peak = peak;
                    }
                }
                if seg.score.is_nan() {
                    seg.score = 0.0;
                }
            } else {
                match self.min_score {
                    MinScore::Value(m) if seg.score < m => {
                        withheld += 1;
                        continue;
                    }
                    // Words of the query said in the moment: credible by themselves.
                    MinScore::Auto if seg.source == Source::Visual => {
                        checked += 1;
                        let cal = calibration.as_ref().expect("auto has a calibration");
                        let credible = checked <= checks
                            && seg
                                .frame_id
                                .and_then(|id| vectors.get(&id).map(|v| (id, v)))
                                .is_some_and(|(id, v)| {
                                    cal.credible(v, seg.score, penalty.get(&id).copied().unwrap_or(0.0))
                                });
                        if !credible {
                            withheld += 1;
                            continue;
                        }
                    }
                    _ => {}
                }
            }
            results.push(seg);
        }
        // Title and file-name matches: after the credible moments, each as the video's
        // best moment for the query; a video already in the results is marked `both`.
        for (video, text) in names {
            if results.len() >= k {
                break;
            }
            if let Some(r) = results.iter_mut().find(|r| r.video_id == video) {
                if r.source == Source::Visual {
                    r.source = Source::Both;
                    r.text = Some(text);
                }
                continue;
            }
            let Some(v) = dir.get(video) else { continue };
            let frames = frame_scores.of(catalog, &self.name, video, &qv.combined).await?.clone();
            let best = segments::from_frames(frames, delta)
                .into_iter()
                .max_by(|a, b| a.score.total_cmp(&b.score));
            let mut seg = best.unwrap_or_else(|| Segment::new(video, Source::Text));
            seg.source = Source::Text;
            seg.text = Some(text);
            seg.path = v.path.clone();
            results.push(seg);
        }
        Ok(Found { results, withheld })
    }
}

/// Whether `text` (a title or a file path) contains every one of `words` as a word.
fn names_all(text: &str, words: &[(String, f32)]) -> bool {
    let tokens: std::collections::HashSet<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect();
    words.iter().all(|(w, _)| {
        let w = w.to_lowercase();
        tokens.contains(&w)
            || w.split(|c: char| !c.is_alphanumeric())
                .filter(|t| !t.is_empty())
                .all(|t| tokens.contains(t))
    })
}

/// Each video's stored frames scored for the query, read once per search (cue hits and
/// name matches of one video share the read).
#[derive(Default)]
struct FrameScores(HashMap<i64, Vec<(Frame, f32)>>);

impl FrameScores {
    async fn of(
        &mut self,
        catalog: &Catalog,
        model: &str,
        video: i64,
        qv: &[f32],
    ) -> Result<&Vec<(Frame, f32)>, SearchError> {
        if !self.0.contains_key(&video) {
            let frames = catalog.frame_scores(video, model, qv).await?;
            self.0.insert(video, frames);
        }
        Ok(&self.0[&video])
    }
}

/// The best-scoring frame among `frames` inside [start, end): (id, cosine, peak).
fn best_frame_in(frames: &[(Frame, f32)], start: f64, end: f64) -> Option<(i64, f32, f64)> {
    frames
        .iter()
        .filter(|(f, _)| f.end > start && f.start < end.max(start + 1e-9))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(f, s)| (f.id, *s, f.peak))
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
        assert!(matches!(
            validate(&SearchRequest::new("-cat path:x", 5)),
            Err(SearchError::NothingToLookFor)
        ));
        assert!(matches!(
            validate(&SearchRequest::new("a \"star", 5)),
            Err(SearchError::Query(_))
        ));
        let mut by_frame = SearchRequest::new("path:x", 5);
        by_frame.frame = Some(3);
        assert!(validate(&by_frame).is_ok(), "filters with a frame are a query");
        by_frame.image_weight = 0.0;
        assert!(matches!(validate(&by_frame), Err(SearchError::BadImageWeight(_))));
        assert_eq!(
            validate(&SearchRequest::new("  a red circle. ", 5))
                .unwrap()
                .clause()
                .sentence(),
            "a red circle."
        );
    }

    #[test]
    fn a_name_answers_only_with_every_word() {
        let w = |ws: &[&str]| ws.iter().map(|w| (w.to_string(), 1.0)).collect::<Vec<_>>();
        assert!(names_all("/v/circle.mp4", &w(&["circle"])));
        assert!(!names_all("/v/circle.mp4", &w(&["yellow", "circle"])));
        assert!(names_all("/v/Yellow-Circle (2).mp4", &w(&["yellow", "circle"])));
        assert!(!names_all("/v/circles.mp4", &w(&["circle"])));
    }

    #[test]
    fn min_score_forms() {
        assert_eq!("auto".parse::<MinScore>().unwrap(), MinScore::Auto);
        assert_eq!("off".parse::<MinScore>().unwrap(), MinScore::Off);
        assert!("".parse::<MinScore>().is_err(), "empty is not auto");
        assert!("OFF".parse::<MinScore>().is_err());
        assert_eq!("0.25".parse::<MinScore>().unwrap(), MinScore::Value(0.25));
        assert!("2".parse::<MinScore>().is_err());
        assert!("high".parse::<MinScore>().is_err());
    }

    #[test]
    fn clock_formats_minutes_and_tenths() {
        assert_eq!(clock(0.0), "00:00.0");
        assert_eq!(clock(75.25), "01:15.2");
    }
}
