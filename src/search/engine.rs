//! `search::engine`: one clause's moments (`Engine::moments`): the visual and lexical
//! candidates in the scope, negative terms applied, fused into one ranking, the cut-off,
//! then title and file-name matches. The vectors it searches with come from `vectors`;
//! the whole query (filters, tags, sequences) is `search::search`'s.

use std::collections::{HashMap, HashSet};
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
use crate::types::TextKind;

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
        let only = source.and_then(SourceFilter::text_kind);
        let visual = if source != Some(SourceFilter::Text) && only.is_none() {
            self.visual(qv, scope, k).await?
        } else {
            VisualHits::default()
        };
        // Tags are about the pictures: a tag filter keeps visual moments only.
        let lexical = if source != Some(SourceFilter::Visual) && scope.frames.is_none() {
            lexical_hits(self.catalog, clause, scope, only, k)?
        } else {
            LexicalHits::default()
        };
        let fused = Rrf::default().fuse(
            RankedList::visual(visual.moments, self.logit_scale),
            RankedList::lexical(lexical.cues, &lexical.bm25),
        );

        let mut cutoff = self.cutoff(qv, visual.penalty, visual.vectors, &fused, k).await?;
        let mut frame_scores = FrameScores::default();
        let mut found = self.keep(fused, qv, scope, &mut cutoff, &mut frame_scores, k).await?;
        self.add_names(lexical.names, qv, scope, &mut frame_scores, &mut found.results, k)
            .await?;
        Ok(found)
    }

    /// The visual candidates: the nearest frames in the scope (and around the liked
    /// frames), negative terms applied, grown into moments.
    async fn visual(&self, qv: &QueryVectors, scope: &Scope, k: usize) -> Result<VisualHits, SearchError> {
        let mut hits = VisualHits::default();
        let n = (k * 10).clamp(100, 2000);
        let mut scored = retrieve::visual(self.catalog, &self.name, &qv.combined, scope, n).await?;
        if !qv.seeds.is_empty() {
            self.around_seeds(qv, scope, n, &mut scored, &mut hits.vectors).await?;
        }
        if !qv.negatives.is_empty() && !scored.is_empty() {
            self.apply_negatives(&qv.negatives, &mut scored, &mut hits).await?;
        }
        hits.moments = segments::from_frames(scored, 1.0 / self.logit_scale);
        Ok(hits)
    }

    /// Around each liked frame too, scored along the probe's direction: the frames found
    /// there join `scored` (best first again), their vectors `vectors`.
    async fn around_seeds(
        &self,
        qv: &QueryVectors,
        scope: &Scope,
        n: usize,
        scored: &mut Vec<(Frame, f32)>,
        vectors: &mut HashMap<i64, Vec<f32>>,
    ) -> Result<(), SearchError> {
        let catalog = self.catalog;
        let have: HashSet<i64> = scored.iter().map(|(f, _)| f.id).collect();
        let mut more: Vec<Frame> = Vec::new();
        for seed in &qv.seeds {
            let around = retrieve::visual(catalog, &self.name, seed, scope, (n / qv.seeds.len()).max(50)).await?;
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
        Ok(())
    }

    /// Negative terms: a frame that is a credible match for one is dropped; the others
    /// lose, per term, its weight times how much more they resemble it than the median
    /// candidate does (`hits.penalty`, taken off their scores here).
    async fn apply_negatives(
        &self,
        negatives: &[(Vec<f32>, f32)],
        scored: &mut Vec<(Frame, f32)>,
        hits: &mut VisualHits,
    ) -> Result<(), SearchError> {
        let (vectors, penalty) = (&mut hits.vectors, &mut hits.penalty);
        let ids: Vec<i64> = scored.iter().map(|(f, _)| f.id).collect();
        vectors.extend(self.catalog.vectors_by_ids(&self.name, &ids).await?);
        let mut dropped = HashSet::new();
        for (nv, w) in negatives {
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
        Ok(())
    }

    /// The cut-off of this search for the fused ranking. It needs the vectors of the
    /// moments it judges: read them at once (those the visual candidates read are kept).
    async fn cutoff(
        &self,
        qv: &QueryVectors,
        penalty: HashMap<i64, f32>,
        vectors: HashMap<i64, Vec<f32>>,
        fused: &[Segment],
        k: usize,
    ) -> Result<CutOff, SearchError> {
        let mut cutoff = CutOff {
            min_score: self.min_score,
            calibration: self.calibration(qv),
            checks: (4 * k).max(64),
            checked: 0,
            penalty,
            vectors,
        };
        if cutoff.calibration.is_some() {
            let want: Vec<i64> = fused
                .iter()
                .filter(|s| s.source == Source::Visual)
                .filter_map(|s| s.frame_id)
                .filter(|id| !cutoff.vectors.contains_key(id))
                .take(cutoff.checks)
                .collect();
            cutoff
                .vectors
                .extend(self.catalog.vectors_by_ids(&self.name, &want).await?);
        }
        Ok(cutoff)
    }

    /// What `auto` judges credibility with: the probe of liked frames, else the text,
    /// else the picture's best label; None for any other cut-off.
    fn calibration(&self, qv: &QueryVectors) -> Option<Calibration> {
        match self.min_score {
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
        }
    }

    /// The fused ranking walked best first up to `k` moments: moments of removed videos
    /// and of the frames searched by are skipped, a cue gets the picture of its best
    /// frame, visual moments face the cut-off (those it holds back are counted).
    async fn keep(
        &self,
        fused: Vec<Segment>,
        qv: &QueryVectors,
        scope: &Scope,
        cutoff: &mut CutOff,
        frame_scores: &mut FrameScores,
        k: usize,
    ) -> Result<Found, SearchError> {
        let dir = &scope.directory;
        let mut results: Vec<Segment> = Vec::with_capacity(k);
        let mut withheld = 0;
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
                self.picture_of_cue(&mut seg, qv, frame_scores).await?;
            } else if !cutoff.passes(&seg) {
                withheld += 1;
                continue;
            }
            results.push(seg);
        }
        Ok(Found { results, withheld })
    }

    /// A cue with no visual moment around it: its best frame gives the picture (and the
    /// score: 0 when the cue has no frame).
    async fn picture_of_cue(
        &self,
        seg: &mut Segment,
        qv: &QueryVectors,
        frame_scores: &mut FrameScores,
    ) -> Result<(), SearchError> {
        let frames = frame_scores
            .of(self.catalog, &self.name, seg.video_id, &qv.combined)
            .await?;
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
        Ok(())
    }

    /// Title and file-name matches: after the credible moments, each as the video's
    /// best moment for the query; a video already in the results is marked `both`.
    async fn add_names(
        &self,
        names: Vec<(i64, String)>,
        qv: &QueryVectors,
        scope: &Scope,
        frame_scores: &mut FrameScores,
        results: &mut Vec<Segment>,
        k: usize,
    ) -> Result<(), SearchError> {
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
            let Some(v) = scope.directory.get(video) else { continue };
            let frames = frame_scores
                .of(self.catalog, &self.name, video, &qv.combined)
                .await?
                .clone();
            let best = segments::from_frames(frames, 1.0 / self.logit_scale)
                .into_iter()
                .max_by(|a, b| a.score.total_cmp(&b.score));
            let mut seg = best.unwrap_or_else(|| Segment::new(video, Source::Text));
            seg.source = Source::Text;
            seg.text = Some(text);
            seg.path = v.path.clone();
            results.push(seg);
        }
        Ok(())
    }
}

/// The visual candidates of a clause: its moments, what negative terms took off each
/// frame's score, and the frame vectors read on the way (the cut-off reuses them).
#[derive(Default)]
struct VisualHits {
    moments: Vec<Segment>,
    penalty: HashMap<i64, f32>,
    vectors: HashMap<i64, Vec<f32>>,
}

/// One clause's lexical candidates: cues (subtitles, on-screen text: with times) are
/// fused; titles and file names wait. `only`: one kind of timed text alone
/// (`source:ocr`, `source:speech`, `source:subtitle`), asked of the text index as a
/// required term, so other texts matching the same words cannot crowd it out of the best
/// `(k * 3).clamp(20, 300)`.
fn lexical_hits(
    catalog: &Catalog,
    clause: &Clause,
    scope: &Scope,
    only: Option<TextKind>,
    k: usize,
) -> Result<LexicalHits, SearchError> {
    let mut hits = LexicalHits::default();
    let lexical = clause.lexical();
    let kind = only;
    for hit in retrieve::lexical(catalog, &lexical, scope, kind, (k * 3).clamp(20, 300))? {
        let d = hit.doc;
        match (d.start, d.end) {
            (Some(s), Some(e)) if matches!(d.kind, TextKind::Subtitle | TextKind::Ocr | TextKind::Speech) => {
                hits.cues.push(Segment {
                    start: s,
                    end: e.max(s),
                    peak: s,
                    score: f32::NAN,
                    text: Some(d.text),
                    quad: d.quad,
                    ..Segment::new(d.video_id, Source::Text)
                });
                hits.bm25.push(hit.score);
            }
            // A title or file name answers only when it holds every word of
            // the query ("circle.mp4" does not answer "a yellow circle").
            _ if !names_all(&d.text, &lexical.words) => {}
            _ => {
                if !hits.names.iter().any(|(v, _)| *v == d.video_id) {
                    hits.names.push((d.video_id, d.text));
                }
            }
        }
    }
    Ok(hits)
}

/// The lexical candidates of a clause: subtitle cues with their BM25 scores (fused with
/// the visual moments), and the videos whose title or file name holds the query's words.
#[derive(Default)]
struct LexicalHits {
    cues: Vec<Segment>,
    bm25: Vec<f32>,
    names: Vec<(i64, String)>,
}

/// The cut-off as the fused ranking is walked: a number, or `auto` judging at most
/// `checks` visual moments by `calibration` (frames read into `vectors`, negative terms'
/// `penalty` given back before judging).
struct CutOff {
    min_score: MinScore,
    calibration: Option<Calibration>,
    checks: usize,
    checked: usize,
    penalty: HashMap<i64, f32>,
    vectors: HashMap<i64, Vec<f32>>,
}

impl CutOff {
    /// Whether a visual or `both` moment passes.
    fn passes(&mut self, seg: &Segment) -> bool {
        match self.min_score {
            MinScore::Value(m) if seg.score < m => false,
            // Words of the query said in the moment: credible by themselves.
            MinScore::Auto if seg.source == Source::Visual => {
                self.checked += 1;
                let cal = self.calibration.as_ref().expect("auto has a calibration");
                self.checked <= self.checks
                    && seg
                        .frame_id
                        .and_then(|id| self.vectors.get(&id).map(|v| (id, v)))
                        .is_some_and(|(id, v)| {
                            cal.credible(v, seg.score, self.penalty.get(&id).copied().unwrap_or(0.0))
                        })
            }
            _ => true,
        }
    }
}

/// Whether `text` (a title or a file path) contains every one of `words` as a word.
fn names_all(text: &str, words: &[(String, f32)]) -> bool {
    let tokens: HashSet<String> = text
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

    /// `source:ocr` in a library whose subtitles match the query's word far more often
    /// (and better: shorter cues) than its one line of on-screen text: the line is
    /// still found, as the kind is asked of the text index, not filtered after its cut.
    /// (A word under `MISREAD_MIN_CHARS` letters: no misread match lifts the line.)
    #[test]
    fn source_ocr_finds_on_screen_text_that_subtitles_outnumber() {
        use crate::catalog::{Access, NewText, NewVideo};
        let tmp = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let catalog = rt.block_on(Catalog::open(tmp.path(), "m", 4, Access::Write)).unwrap();
        let cue = |kind, i: usize, text: String| NewText {
            kind,
            start: Some(i as f64),
            end: Some(i as f64 + 1.0),
            text,
            quad: (kind == TextKind::Ocr).then_some([[0.1, 0.1], [0.5, 0.1], [0.5, 0.2], [0.1, 0.2]]),
            words: None,
        };
        let mut texts: Vec<NewText> = (0..400)
            .map(|i| cue(TextKind::Subtitle, i, format!("plan {i}")))
            .collect();
        let line = "the quarterly plan for the coming year";
        texts.push(cue(TextKind::Ocr, 400, line.into()));
        let video = NewVideo {
            path: "/v/talk.mp4".into(),
            duration: 401.0,
            texts,
            ..NewVideo::default()
        };
        rt.block_on(catalog.add_video(&video)).unwrap();
        let scope = Scope::new(catalog.directory(), &Default::default());
        let query = super::super::query::parse("plan").unwrap();
        let k = 10;
        let ocr = lexical_hits(&catalog, query.clause(), &scope, Some(TextKind::Ocr), k).unwrap();
        let texts: Vec<_> = ocr.cues.iter().map(|c| c.text.as_deref().unwrap_or("")).collect();
        assert_eq!(texts, [line], "source:ocr must find the one on-screen line");
        assert!(ocr.cues[0].quad.is_some());
        // Without the filter the subtitles fill the cut (the line is crowded out).
        let all = lexical_hits(&catalog, query.clause(), &scope, None, k).unwrap();
        assert_eq!(all.cues.len(), 30);
        assert!(all.cues.iter().all(|c| c.quad.is_none()), "{:?}", all.cues[0].text);
    }

    #[test]
    fn a_name_answers_only_with_every_word() {
        let w = |ws: &[&str]| ws.iter().map(|w| (w.to_string(), 1.0)).collect::<Vec<_>>();
        assert!(names_all("/v/circle.mp4", &w(&["circle"])));
        assert!(!names_all("/v/circle.mp4", &w(&["yellow", "circle"])));
        assert!(names_all("/v/Yellow-Circle (2).mp4", &w(&["yellow", "circle"])));
        assert!(!names_all("/v/circles.mp4", &w(&["circle"])));
    }
}
