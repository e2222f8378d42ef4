//! `search::engine`: one clause's moments (`Engine::moments`): the visual and lexical
//! candidates in the scope, negative terms applied, fused into one ranking, the cut-off,
//! then title and file-name matches. The vectors it searches with come from `vectors`;
//! the whole query (filters, tags, sequences) is `search::search`'s.

use std::collections::HashMap;
use std::sync::Arc;

use super::calibrate::{self, Calibration, Judge, MARGIN};
use super::fuse::{Fusion, RankedList, Rrf};
use super::query::{Clause, SourceFilter};
use super::request::{MinScore, SearchRequest};
use super::response::{Segment, Source};
use super::retrieve::{self, Scope};
use super::vectors::QueryVectors;
use super::{SearchError, prompts, segments};
use crate::catalog::{Catalog, Frame};
use crate::embed::Embedder;
use crate::simd::dot;

/// The model's logit scale (its trained temperature).
pub(crate) fn logit_scale(model: &Embedder) -> f32 {
    model.manifest().scoring().logit_scale.max(1.0)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_answers_only_with_every_word() {
        let w = |ws: &[&str]| ws.iter().map(|w| (w.to_string(), 1.0)).collect::<Vec<_>>();
        assert!(names_all("/v/circle.mp4", &w(&["circle"])));
        assert!(!names_all("/v/circle.mp4", &w(&["yellow", "circle"])));
        assert!(names_all("/v/Yellow-Circle (2).mp4", &w(&["yellow", "circle"])));
        assert!(!names_all("/v/circles.mp4", &w(&["circle"])));
    }
}
