//! `search::vectors`: the vectors a query searches with (`QueryVectors`): its text parts
//! embedded at their true token length and summed by weight, a picture (an uploaded image
//! or a stored frame), the few-shot probe of liked frames, and the negative terms. Not
//! what is done with them (`engine`).

use std::sync::Arc;

use super::engine::Engine;
use super::query::Clause;
use super::request::{ImageQuery, MAX_IMAGE_BYTES, SearchRequest};
use super::{SearchError, probe, prompts, tags};
use crate::catalog::Frame;
use crate::embed::Embedder;

pub(super) fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Embeds texts without blocking the async executor (the rows of concurrent searches
/// share the text tower's runs).
pub(super) async fn embed_texts(model: &Arc<Embedder>, texts: Vec<String>) -> Result<Vec<Vec<f32>>, SearchError> {
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
        let (text, negatives) = embed_clause(engine, clause).await?;
        let mut sources = Vec::new();
        let picture = if first {
            picture(engine, req, &mut sources).await?
        } else {
            None
        };
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

/// The text of a clause (its weighted parts summed; None without terms) and its negative
/// terms (unit vector, weight), embedded in one call.
async fn embed_clause(
    engine: &Engine<'_>,
    clause: &Clause,
) -> Result<(Option<Vec<f32>>, Vec<(Vec<f32>, f32)>), SearchError> {
    let model = &engine.model;
    let parts = clause.visual_parts();
    let mut texts: Vec<String> = parts.iter().map(|(t, _)| t.clone()).collect();
    texts.extend(clause.negatives.iter().map(|t| t.text.clone()));
    let rows = prompts::embed(model, engine.templates.as_deref(), &texts, false).await?;
    let text = (!parts.is_empty()).then(|| {
        weighted_sum(
            parts.iter().map(|(_, w)| *w).zip(rows.iter().map(Vec::as_slice)),
            model.dim(),
        )
    });
    let negatives = clause
        .negatives
        .iter()
        .zip(rows.iter().skip(parts.len()))
        .map(|(t, v)| (v.clone(), t.weight()))
        .collect();
    Ok((text, negatives))
}

/// The request's picture: its image embedded and its stored frame read (the sum of both
/// when it has both; None when neither). The frame joins `sources`.
async fn picture(
    engine: &Engine<'_>,
    req: &SearchRequest,
    sources: &mut Vec<Frame>,
) -> Result<Option<Vec<f32>>, SearchError> {
    let (catalog, model) = (engine.catalog, &engine.model);
    let mut pictures: Vec<Vec<f32>> = Vec::new();
    if let Some(img) = &req.image {
        pictures.push(embed_image(model, img).await?);
    }
    if let Some(id) = req.frame {
        let v = catalog
            .vectors_by_ids(model.model_name(), &[id])
            .await?
            .into_iter()
            .next()
            .ok_or(SearchError::NoSuchFrame(id))?;
        pictures.push(v.1);
        sources.extend(catalog.frames_by_ids(&[id]).await?);
    }
    Ok((!pictures.is_empty()).then(|| weighted_sum(pictures.iter().map(|p| (1.0, p.as_slice())), model.dim())))
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
