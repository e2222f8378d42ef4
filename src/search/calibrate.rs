//! `search::calibrate`: the cut-off that tells a credible match from the best of
//! nothing. A cosine means different things for different models, queries and
//! libraries, so no fixed number works; CLIP's own use answers the question instead:
//! zero-shot classification. A frame is a credible match for a text query when the
//! query describes it about as well as the best label of a vocabulary of everyday
//! things does (the package's `files.labels`, else the built-in list in `labels.txt`):
//!
//! ```text
//! credible(q, f)  <=>  L * (cos(q, f) - max_label cos(label, f)) >= -MARGIN
//! ```
//!
//! with `L` the model's logit scale (its trained temperature: scoring.logit_scale, or
//! logit_scale). In a softmax between the query and the frame's best label, the query
//! keeps a probability of at least sigmoid(-MARGIN) = 0.12. A frame of a yellow circle is
//! no credible match for "a yellow star" (the label "a yellow circle" describes it far
//! better, about 9 logits on the tiny model), while the frame of a yellow star is.
//! Per model through its vocabulary and temperature, per library because only its
//! own frames are tested; the labels are embedded once per model and cached in the store.
//!
//! Image queries (an image, a frame) have no sentence to compete: a frame is credible
//! when it is a near duplicate (cosine >= 0.95) or when the query picture's best label is
//! among the frame's three best labels (the same kind of content).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use super::SearchError;
use super::prompts::TemplateSet;
use crate::catalog::Catalog;
use crate::embed::Embedder;
use crate::simd::dot;

/// In logits: how far below the frame's best label a query may score and still count.
pub const MARGIN: f32 = 2.0;
/// An image query's cosine at or above which a frame is a near duplicate.
pub const NEAR_DUPLICATE: f32 = 0.95;
/// How many of a frame's best labels an image query's best label must be among.
const IMAGE_TOP_LABELS: usize = 3;

/// The built-in vocabulary for models without one.
const DEFAULT_LABELS: &str = include_str!("labels.txt");

/// A label vocabulary embedded by one model.
#[derive(Debug)]
pub struct Vocabulary {
    /// The labels, in row order.
    pub labels: Vec<String>,
    dim: usize,
    /// `labels.len()` rows of `dim`, unit length.
    vectors: Vec<f32>,
}

impl Vocabulary {
    /// Builds from labels and their vectors (rows in label order).
    pub fn new(labels: Vec<String>, dim: usize, vectors: Vec<f32>) -> Self {
        debug_assert_eq!(labels.len() * dim, vectors.len());
        Self { labels, dim, vectors }
    }

    fn rows(&self) -> impl Iterator<Item = &[f32]> {
        self.vectors.chunks_exact(self.dim.max(1))
    }

    /// The cosine of each label with `v`.
    pub fn scores(&self, v: &[f32]) -> Vec<f32> {
        self.rows().map(|r| dot(r, v)).collect()
    }

    /// The best label's index and cosine.
    pub fn best(&self, v: &[f32]) -> (usize, f32) {
        self.rows()
            .map(|r| dot(r, v))
            .enumerate()
            .fold((0, f32::MIN), |b, (i, s)| if s > b.1 { (i, s) } else { b })
    }

    /// Indices of the `n` best labels, best first.
    pub fn top(&self, v: &[f32], n: usize) -> Vec<usize> {
        let s = self.scores(v);
        let mut idx: Vec<usize> = (0..s.len()).collect();
        idx.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
        idx.truncate(n);
        idx
    }
}

/// How a query is judged.
#[derive(Clone, Debug)]
pub enum Judge {
    /// A text query (or a text and image query): the text part's vector.
    Text(Vec<f32>),
    /// An image query: the picture's best label.
    Image { best_label: usize },
    /// A few-shot probe (see `probe`).
    Probe(super::probe::Probe),
}

/// The cut-off of one query.
#[derive(Clone, Debug)]
pub struct Calibration {
    pub vocab: Arc<Vocabulary>,
    pub logit_scale: f32,
    pub judge: Judge,
}

impl Calibration {
    /// Whether a frame (its vector) is a credible match: `score` is the query's score
    /// for it and `penalty` what negative terms took off that score.
    pub fn credible(&self, frame: &[f32], score: f32, penalty: f32) -> bool {
        match &self.judge {
            Judge::Text(q) => {
                let (_, best) = self.vocab.best(frame);
                self.logit_scale * (dot(q, frame) - penalty - best) >= -MARGIN
            }
            Judge::Image { best_label } => {
                score >= NEAR_DUPLICATE || self.vocab.top(frame, IMAGE_TOP_LABELS).contains(best_label)
            }
            Judge::Probe(p) => p.credible(frame),
        }
    }
}

/// The labels a model is judged against: the package's, else the built-in list.
pub fn labels_of(model: &Embedder) -> Vec<String> {
    match model.labels() {
        Some(l) => l.to_vec(),
        None => crate::embed::parse_labels(DEFAULT_LABELS),
    }
}

type Key = (String, u64, u64);
static CACHE: LazyLock<Mutex<HashMap<Key, Arc<Vocabulary>>>> = LazyLock::new(Default::default);

/// The model's cut-off vocabulary, embedded through the template set the query uses.
pub async fn vocabulary(
    catalog: &Catalog,
    model: &Arc<Embedder>,
    set: Option<&TemplateSet>,
) -> Result<Arc<Vocabulary>, SearchError> {
    embed_labels(catalog, model, labels_of(model), set).await
}

/// Labels embedded by a model (through the ensemble of `set` when given): from memory,
/// else from the store's cache, else embedded now (and cached in the store when the
/// folder is writable).
pub async fn embed_labels(
    catalog: &Catalog,
    model: &Arc<Embedder>,
    labels: Vec<String>,
    set: Option<&TemplateSet>,
) -> Result<Arc<Vocabulary>, SearchError> {
    let hash = labels.iter().fold(crate::util::hash::FNV_OFFSET, |h, l| {
        crate::util::hash::fnv1a(crate::util::hash::fnv1a(h, l.as_bytes()), b"\n")
    });
    let set_hash = set.map_or(0, |s| s.hash);
    let key = (model.model_name().to_string(), hash, set_hash);
    if let Some(v) = CACHE.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(v.clone());
    }
    // In the store, an ensemble is kept under the label and the set's identity.
    let stored = |l: &str| match set {
        None => l.to_string(),
        Some(s) => format!("{l}\u{1f}ensemble:{:016x}", s.hash),
    };
    let name = model.model_name().to_string();
    let keys: Vec<String> = labels.iter().map(|l| stored(l)).collect();
    let mut known: HashMap<String, Vec<f32>> = catalog.text_vectors(&name, &keys).await?.into_iter().collect();
    let missing: Vec<String> = labels
        .iter()
        .filter(|l| !known.contains_key(&stored(l)))
        .cloned()
        .collect();
    if !missing.is_empty() {
        if missing.len() > 50 {
            tracing::info!(
                "embedding {} labels{} (once per model; cached in the library)",
                missing.len(),
                set.map(|s| format!(" through {} templates", s.templates.len()))
                    .unwrap_or_default()
            );
        }
        let mut items = Vec::with_capacity(missing.len());
        // In pieces, so that a large ensemble does not hold one huge batch.
        for chunk in missing.chunks(64) {
            let emb = super::prompts::embed(model, set, chunk, true).await?;
            items.extend(chunk.iter().map(|l| stored(l)).zip(emb));
        }
        if let Err(e) = catalog.put_text_vectors(&name, &items).await {
            tracing::debug!("the label vectors were not cached ({e}); they are embedded again next time");
        }
        known.extend(items);
    }
    let dim = model.dim();
    let mut vectors = Vec::with_capacity(labels.len() * dim);
    for k in &keys {
        vectors.extend_from_slice(&known[k]);
    }
    let v = Arc::new(Vocabulary::new(labels, dim, vectors));
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() > 32 {
        cache.clear();
    }
    cache.insert(key, v.clone());
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn a_query_must_describe_the_frame_about_as_well_as_its_best_label() {
        // Four labels on four axes; frames near two of them.
        let vocab = Arc::new(Vocabulary::new(
            vec![
                "a yellow circle".into(),
                "a yellow star".into(),
                "a yellow square".into(),
                "a yellow triangle".into(),
            ],
            4,
            [
                [1.0, 0.0, 0.0, 0.0],
                [0.0, 1.0, 0.0, 0.0],
                [0.0, 0.0, 1.0, 0.0],
                [0.0, 0.0, 0.0, 1.0],
            ]
            .concat(),
        ));
        let circle_frame = unit(&[1.0, 0.0, 0.3, 0.2]);
        let star_frame = unit(&[0.2, 1.0, 0.0, 0.0]);
        let star_query = unit(&[0.0, 1.0, 0.0, 0.0]);
        let cal = Calibration {
            vocab: vocab.clone(),
            logit_scale: 30.0,
            judge: Judge::Text(star_query.clone()),
        };
        assert!(cal.credible(&star_frame, dot(&star_query, &star_frame), 0.0));
        assert!(!cal.credible(&circle_frame, dot(&star_query, &circle_frame), 0.0));
        // A pushed-down score (a negative term) counts as pushed down.
        assert!(!cal.credible(&star_frame, dot(&star_query, &star_frame) - 0.5, 0.5));
        // Image queries: same best label, or a near duplicate.
        let img = Calibration {
            vocab,
            logit_scale: 30.0,
            judge: Judge::Image { best_label: 1 },
        };
        assert!(img.credible(&star_frame, 0.5, 0.0));
        assert!(img.credible(&circle_frame, 0.97, 0.0));
        assert!(!img.credible(&circle_frame, 0.5, 0.0));
    }
}
