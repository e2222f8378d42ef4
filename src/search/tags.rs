//! `search::tags`: zero-shot tags on every moment (the CLIP paper's zero-shot
//! classifier, run over the library). The library has a label vocabulary (`vidseek
//! labels set FILE`; by default the model package's labels, else the built-in list of
//! everyday video concepts), each label embedded through the prompt ensemble. A frame
//! gets a label when
//!
//! 1. its probability passes [`MIN_SOFTMAX`] in the softmax over the vocabulary with
//!    the model's logit scale (for sigmoid-scored models: the label's own sigmoid passes
//!    [`MIN_SIGMOID`]), and
//! 2. the label is a credible description of the frame against the model's cut-off
//!    vocabulary (`calibrate`): a frame that none of the labels describes (an empty
//!    background with a vocabulary of objects) gets no tag at all.
//!
//! Saved probes (`search --like ... --save-tag NAME`) are tags too: a frame gets NAME
//! when the probe finds it credible. Tags are stored per frame (a moment's tags are its
//! frames' tags; consecutive tagged frames make one moment) and recomputed from the
//! stored embeddings, never by decoding, whenever the vocabulary, the probes or the
//! model change: each video records the stamp of what its tags were computed with.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};

use serde::Serialize;

use super::calibrate::{self, MARGIN, Vocabulary};
use super::probe::{self, Probe};
use super::prompts::{self, Templates};
use super::{SearchError, Segment};
use crate::catalog::{Catalog, FrameTag, SavedProbe, Span, TaggedFrame};
use crate::embed::{Embedder, Link};

/// Softmax probability a label must reach (CLIP-scored models).
pub const MIN_SOFTMAX: f32 = 0.25;
/// Sigmoid probability a label must reach (SigLIP-scored models).
pub const MIN_SIGMOID: f32 = 0.1;
/// Most labels in a vocabulary, and the longest label.
pub const MAX_LABELS: usize = 2000;
pub const MAX_LABEL_CHARS: usize = 200;
/// Changes when the tagging rule changes (old tags are recomputed).
const RULE: &str = "tags-1";
const SETTING: &str = "tag_labels";

/// One label's use in the library.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TagCount {
    pub label: String,
    /// Runs of consecutive tagged frames.
    pub moments: usize,
    pub videos: usize,
}

/// The library's label vocabulary, and whether it was set (false: the default).
pub async fn labels(catalog: &Catalog, model: &Embedder) -> Result<(Vec<String>, bool), SearchError> {
    Ok(match catalog.setting(SETTING).await? {
        Some(text) if !text.trim().is_empty() => (crate::embed::parse_labels(&text), true),
        _ => (calibrate::labels_of(model), false),
    })
}

/// Checks a vocabulary (one label a line, as a file holds it).
pub fn check_labels(text: &str) -> Result<Vec<String>, SearchError> {
    // PostgreSQL text cannot hold a NUL character (SQLite can): refused on both alike.
    if text.contains('\0') {
        return Err(SearchError::BadLabels(
            "a label contains a NUL character (U+0000): remove it".into(),
        ));
    }
    let labels = crate::embed::parse_labels(text);
    if labels.is_empty() {
        return Err(SearchError::BadLabels(
            "the label vocabulary is empty: write one label a line, e.g. `a dog`".into(),
        ));
    }
    // Counted as given, repeats included (the API's limit is on the list it receives).
    let given = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .count();
    if labels.len().max(given) > MAX_LABELS {
        return Err(SearchError::BadLabels(format!(
            "{} labels; a vocabulary holds at most {MAX_LABELS}",
            labels.len().max(given)
        )));
    }
    if let Some(l) = labels.iter().find(|l| l.chars().count() > MAX_LABEL_CHARS) {
        return Err(SearchError::BadLabels(format!(
            "the label {:?}... is longer than {MAX_LABEL_CHARS} characters",
            l.chars().take(40).collect::<String>()
        )));
    }
    if let Some(l) = labels.iter().find(|l| l.contains(['{', '}'])) {
        return Err(SearchError::BadLabels(format!(
            "the label {l:?} holds a brace: labels are names (templates are set with --templates)"
        )));
    }
    Ok(labels)
}

/// Sets the library's vocabulary (`None`: back to the default); the tags follow on the
/// next [`ensure`].
pub async fn set_labels(catalog: &Catalog, text: Option<&str>) -> Result<Vec<String>, SearchError> {
    match text {
        Some(t) => {
            let labels = check_labels(t)?;
            catalog.set_setting(SETTING, &labels.join("\n")).await?;
            invalidate(catalog);
            Ok(labels)
        }
        None => {
            catalog.set_setting(SETTING, "").await?;
            invalidate(catalog);
            Ok(Vec::new())
        }
    }
}

/// What tags a frame.
pub struct Tagger {
    vocab: Arc<Vocabulary>,
    judge: Arc<Vocabulary>,
    scale: f32,
    bias: Option<f32>,
    probes: Vec<(String, Probe)>,
    /// What the tags were computed with (model, vocabulary, templates, probes, rule).
    pub stamp: String,
}

impl Tagger {
    /// A tagger of a vocabulary judged against `judge` (the model's cut-off
    /// vocabulary), with the model's logit scale and, for sigmoid models, its bias.
    pub fn new(vocab: Arc<Vocabulary>, judge: Arc<Vocabulary>, scale: f32, bias: Option<f32>) -> Self {
        Self {
            vocab,
            judge,
            scale,
            bias,
            probes: Vec::new(),
            stamp: String::new(),
        }
    }

    /// The labels of one frame's vector: (label, probability), best first.
    pub fn tags_of(&self, x: &[f32]) -> Vec<(String, f32)> {
        let scores = self.vocab.scores(x);
        // The library's vocabulary is by default the model's own: one pass serves both.
        let judge_best = if Arc::ptr_eq(&self.vocab, &self.judge) {
            scores.iter().copied().fold(f32::MIN, f32::max)
        } else {
            self.judge.best(x).1
        };
        let credible = |s: f32| self.scale * (s - judge_best) >= -MARGIN;
        let mut out: Vec<(String, f32)> = match self.bias {
            Some(bias) => scores
                .iter()
                .enumerate()
                .map(|(i, s)| (i, *s, 1.0 / (1.0 + (-(self.scale * s + bias)).exp())))
                .filter(|(_, s, p)| *p >= MIN_SIGMOID && credible(*s))
                .map(|(i, _, p)| (self.vocab.labels[i].clone(), p))
                .collect(),
            None => {
                let top = scores.iter().copied().fold(f32::MIN, f32::max);
                let z: f32 = scores.iter().map(|s| (self.scale * (s - top)).exp()).sum();
                scores
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (i, *s, (self.scale * (s - top)).exp() / z))
                    .filter(|(_, s, p)| *p >= MIN_SOFTMAX && credible(*s))
                    .map(|(i, _, p)| (self.vocab.labels[i].clone(), p))
                    .collect()
            }
        };
        for (name, p) in &self.probes {
            if p.credible(x) {
                out.push((name.clone(), p.prob(x)));
            }
        }
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
    }
}

/// The tagger of the library's vocabulary, probes and model (cached while they stay).
pub async fn tagger(catalog: &Catalog, model: &Arc<Embedder>) -> Result<Arc<Tagger>, SearchError> {
    static CACHE: LazyLock<Mutex<HashMap<String, Arc<Tagger>>>> = LazyLock::new(Default::default);
    let (labels, saved) = inputs(catalog, model).await?;
    let set = prompts::resolve(&Templates::Auto, model);
    let mut h = crate::util::hash::fnv1a(crate::util::hash::FNV_OFFSET, RULE.as_bytes());
    for l in &labels {
        h = crate::util::hash::fnv1a(crate::util::hash::fnv1a(h, l.as_bytes()), b"\n");
    }
    h = crate::util::hash::fnv1a(h, &set.as_ref().map_or(0, |s| s.hash).to_le_bytes());
    for p in &saved {
        h = crate::util::hash::fnv1a(h, format!("{p:?}").as_bytes());
    }
    let stamp = format!("{}:{h:016x}", model.model_name());
    if let Some(t) = CACHE.lock().unwrap_or_else(|e| e.into_inner()).get(&stamp) {
        return Ok(t.clone());
    }
    let vocab = calibrate::embed_labels(catalog, model, labels, set.as_deref()).await?;
    let judge = calibrate::vocabulary(catalog, model, set.as_deref()).await?;
    let scoring = model.manifest().scoring();
    let mut probes = Vec::new();
    for p in &saved {
        match train_saved(catalog, model, p).await {
            Ok(probe) => probes.push((p.name.clone(), probe)),
            Err(e) => tracing::warn!("the saved probe {:?} is skipped: {e}", p.name),
        }
    }
    let t = Arc::new(Tagger {
        vocab,
        judge,
        scale: super::engine::logit_scale(model),
        bias: (scoring.link == Link::Sigmoid).then(|| scoring.logit_bias.unwrap_or(0.0)),
        probes,
        stamp: stamp.clone(),
    });
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() > 16 {
        cache.clear();
    }
    cache.insert(stamp, t.clone());
    Ok(t)
}

/// How long a search trusts the vocabulary and probes it read (changes made through
/// this process are seen at once; another process's `labels set` within this time).
const INPUTS_TTL: std::time::Duration = std::time::Duration::from_secs(2);

type Inputs = (Vec<String>, Vec<SavedProbe>);
static INPUTS: LazyLock<Mutex<HashMap<std::path::PathBuf, (std::time::Instant, Inputs)>>> =
    LazyLock::new(Default::default);
/// Per data folder: the directory and stamp of the last check that left a search nothing
/// to tag: every video tagged, or more than [`INLINE_VIDEOS`] untagged, which are the job
/// runner's (the directory is replaced on every change, so holding it names the state;
/// without the memo every search listed the untagged videos: 4.5 ms at 5,000 videos).
type Tagged = (Arc<crate::catalog::Directory>, String);
static TAGGED: LazyLock<Mutex<HashMap<std::path::PathBuf, Tagged>>> = LazyLock::new(Default::default);

/// Forgets what searches cached about the vocabulary, the probes and the tagged videos.
fn invalidate(catalog: &Catalog) {
    INPUTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&catalog.data_dir);
    TAGGED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&catalog.data_dir);
}

/// The vocabulary and the saved probes (read at most every `INPUTS_TTL`).
async fn inputs(catalog: &Catalog, model: &Embedder) -> Result<Inputs, SearchError> {
    if let Some((at, i)) = INPUTS.lock().unwrap_or_else(|e| e.into_inner()).get(&catalog.data_dir)
        && at.elapsed() < INPUTS_TTL
    {
        return Ok(i.clone());
    }
    let (labels, _) = labels(catalog, model).await?;
    let saved = catalog.probes().await?;
    let i = (labels, saved);
    INPUTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(catalog.data_dir.clone(), (std::time::Instant::now(), i.clone()));
    Ok(i)
}

/// Trains a probe from its examples (frame ids) and text.
pub async fn train_probe(
    catalog: &Catalog,
    model: &Arc<Embedder>,
    likes: &[i64],
    unlikes: &[i64],
    text: Option<Vec<f32>>,
) -> Result<Probe, SearchError> {
    probe::check(likes, unlikes)?;
    if likes.is_empty() {
        return Err(SearchError::BadProbe(
            "a probe needs at least one liked frame (like=ID,...)".into(),
        ));
    }
    let name = model.model_name();
    let read = |ids: Vec<(i64, Vec<f32>)>, want: &[i64]| -> Result<Vec<Vec<f32>>, SearchError> {
        let have: HashMap<i64, Vec<f32>> = ids.into_iter().collect();
        want.iter()
            .map(|id| have.get(id).cloned().ok_or(SearchError::NoSuchFrame(*id)))
            .collect()
    };
    let pos = read(catalog.vectors_by_ids(name, likes).await?, likes)?;
    let neg = read(catalog.vectors_by_ids(name, unlikes).await?, unlikes)?;
    let mut background = catalog.sample_frames(name, probe::BACKGROUND).await?;
    background.retain(|(id, _)| !likes.contains(id) && !unlikes.contains(id));
    let background: Vec<Vec<f32>> = background.into_iter().map(|(_, v)| v).collect();
    let scale = super::engine::logit_scale(model);
    let started = std::time::Instant::now();
    let p = tokio::task::spawn_blocking(move || probe::train(&pos, &neg, &background, text.as_deref(), scale))
        .await
        .map_err(|e| SearchError::Panicked(format!("training the probe failed: {e}")))?;
    tracing::debug!("probe trained in {:.1} ms", started.elapsed().as_secs_f64() * 1e3);
    Ok(p)
}

async fn train_saved(catalog: &Catalog, model: &Arc<Embedder>, p: &SavedProbe) -> Result<Probe, SearchError> {
    let text = if p.query.trim().is_empty() {
        None
    } else {
        let set = prompts::resolve(&Templates::Auto, model);
        prompts::embed(model, set.as_deref(), &[p.query.clone()], false)
            .await?
            .pop()
    };
    train_probe(catalog, model, &p.likes, &p.unlikes, text).await
}

/// Saves a probe as a named tag (its examples and text; retrained for each model).
pub async fn save_probe(catalog: &Catalog, p: SavedProbe) -> Result<(), SearchError> {
    let name = p.name.trim();
    if name.is_empty() || name.chars().count() > MAX_LABEL_CHARS || name.contains(['{', '}', '\n']) {
        return Err(SearchError::BadProbe(format!(
            "a tag name has 1 to {MAX_LABEL_CHARS} characters and no braces or line breaks (got {:?})",
            p.name
        )));
    }
    probe::check(&p.likes, &p.unlikes)?;
    if p.likes.is_empty() {
        return Err(SearchError::BadProbe(
            "a saved probe needs at least one liked frame".into(),
        ));
    }
    catalog
        .put_probe(&SavedProbe {
            name: name.to_string(),
            ..p
        })
        .await?;
    invalidate(catalog);
    Ok(())
}

/// Deletes a saved probe; false when there was none of that name.
pub async fn delete_probe(catalog: &Catalog, name: &str) -> Result<bool, SearchError> {
    let gone = catalog.delete_probe(name).await?;
    invalidate(catalog);
    Ok(gone)
}

/// Videos a search tags itself at most (more are left to the job runner, `vidseek tags`
/// and the label commands, which tag everything).
const INLINE_VIDEOS: usize = 4;

/// Brings every video's tags up to date (from the stored vectors); returns how many
/// videos were tagged. One run at a time per process.
pub async fn ensure(catalog: &Catalog, model: &Arc<Embedder>) -> Result<usize, SearchError> {
    run(catalog, model, false).await
}

/// What a search does: tags the few videos indexed since (a search never waits for
/// another tagging run, nor retags a whole library after a vocabulary or model change:
/// until that is done, the tags are those stored).
pub async fn ensure_light(catalog: &Catalog, model: &Arc<Embedder>) -> Result<usize, SearchError> {
    run(catalog, model, true).await
}

async fn run(catalog: &Catalog, model: &Arc<Embedder>, light: bool) -> Result<usize, SearchError> {
    static RUNNING: LazyLock<tokio::sync::Mutex<()>> = LazyLock::new(Default::default);
    let tagger = tagger(catalog, model).await?;
    let dir = catalog.directory();
    if light
        && TAGGED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&catalog.data_dir)
            .is_some_and(|(d, s)| Arc::ptr_eq(d, &dir) && *s == tagger.stamp)
    {
        return Ok(0); // nothing changed since a check left a search nothing to tag
    }
    let pending = catalog.videos_to_tag(&tagger.stamp).await?;
    if pending.is_empty() || (light && pending.len() > INLINE_VIDEOS) {
        TAGGED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(catalog.data_dir.clone(), (dir, tagger.stamp.clone()));
        return Ok(0);
    }
    let _one = if light {
        match RUNNING.try_lock() {
            Ok(g) => g,
            Err(_) => return Ok(0),
        }
    } else {
        RUNNING.lock().await
    };
    let todo = catalog.videos_to_tag(&tagger.stamp).await?;
    let name = model.model_name().to_string();
    for &video in &todo {
        let frames = catalog.video_vectors(video, &name).await?;
        let t = tagger.clone();
        let rows = tokio::task::spawn_blocking(move || {
            frames
                .iter()
                .flat_map(|(id, v)| {
                    t.tags_of(v).into_iter().map(move |(label, prob)| FrameTag {
                        frame: *id,
                        label,
                        prob,
                    })
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| SearchError::Panicked(format!("tagging video {video} failed: {e}")))?;
        if let Err(e) = catalog.put_tags(video, &tagger.stamp, &rows).await {
            // A read-only library keeps its old tags.
            tracing::debug!("the tags of video {video} were not stored: {e}");
            return Ok(0);
        }
    }
    if !todo.is_empty() {
        tracing::info!("tagged {} videos", todo.len());
    }
    Ok(todo.len())
}

/// Each label's moments and videos, most moments first.
pub async fn counts(catalog: &Catalog, model: &Arc<Embedder>) -> Result<Vec<TagCount>, SearchError> {
    ensure(catalog, model).await?;
    let rows = catalog.tagged_frames().await?;
    let mut out: Vec<TagCount> = Vec::new();
    let mut last: Option<(&str, i64, i64)> = None;
    let mut videos: HashSet<i64> = HashSet::new();
    for TaggedFrame { label, video, seq } in &rows {
        let same_label = last.is_some_and(|(l, _, _)| l == label);
        if !same_label {
            if let Some(c) = out.last_mut() {
                c.videos = videos.len();
            }
            videos.clear();
            out.push(TagCount {
                label: label.clone(),
                moments: 0,
                videos: 0,
            });
        }
        let continues = last.is_some_and(|(l, v, s)| l == label && v == *video && s + 1 == *seq);
        if !continues {
            out.last_mut().expect("pushed above").moments += 1;
        }
        videos.insert(*video);
        last = Some((label, *video, *seq));
    }
    if let Some(c) = out.last_mut() {
        c.videos = videos.len();
    }
    out.sort_by(|a, b| b.moments.cmp(&a.moments).then_with(|| a.label.cmp(&b.label)));
    Ok(out)
}

/// The frames a query's `tag:` filters allow (None: no tag filter).
pub async fn allowed_frames(
    catalog: &Catalog,
    tags: &[String],
    not_tags: &[String],
) -> Result<Option<HashSet<i64>>, SearchError> {
    if tags.is_empty() && not_tags.is_empty() {
        return Ok(None);
    }
    let mut allowed: Option<HashSet<i64>> = None;
    for t in tags {
        let f: HashSet<i64> = catalog.frames_tagged(t).await?.into_iter().collect();
        allowed = Some(match allowed {
            None => f,
            Some(a) => a.intersection(&f).copied().collect(),
        });
    }
    let mut allowed = match allowed {
        Some(a) => a,
        // Only exclusions: every frame, less the excluded.
        None => catalog.all_frame_ids().await?.into_iter().collect(),
    };
    for t in not_tags {
        for f in catalog.frames_tagged(t).await? {
            allowed.remove(&f);
        }
    }
    Ok(Some(allowed))
}

/// Puts each result's tags on it: the labels of its frames, most probable first.
pub async fn attach(catalog: &Catalog, results: &mut [Segment]) -> Result<(), SearchError> {
    if results.is_empty() {
        return Ok(());
    }
    let spans: Vec<Span> = results
        .iter()
        .map(|r| Span {
            video: r.video_id,
            start: r.start,
            end: r.end.max(r.start + 1e-9),
        })
        .collect();
    let mut best: Vec<Vec<(String, f32)>> = vec![Vec::new(); results.len()];
    for t in catalog.tags_in_spans(&spans).await? {
        let (i, label, p) = (t.span, t.label, t.prob);
        match best[i].iter_mut().find(|(l, _)| *l == label) {
            Some(b) => b.1 = b.1.max(p),
            None => best[i].push((label, p)),
        }
    }
    for (r, mut b) in results.iter_mut().zip(best) {
        b.sort_by(|x, y| y.1.total_cmp(&x.1));
        r.tags = b.into_iter().map(|(l, _)| l).collect();
    }
    Ok(())
}
