//! `search::fuse`: one ranking from the retrievers' lists. [`Fusion`] is the seam;
//! [`Rrf`] (reciprocal rank fusion, aware of scores) is the implementation.

use super::{Segment, Source};

/// One retriever's results, best first, with how strongly each one matched (1 for the
/// list's best; see [`Rrf`]).
#[derive(Clone, Debug, Default)]
pub struct RankedList {
    pub segments: Vec<Segment>,
    /// Parallel to `segments`, each in [0, 1].
    pub strength: Vec<f64>,
    /// The list's weight in the fusion.
    pub weight: f64,
}

impl RankedList {
    /// A visual list: strength e^(L (s - best)), the best segment's likelihood ratio to
    /// the list's best under the model's logit scale `L` (one logit below: 0.37).
    pub fn visual(mut segments: Vec<Segment>, logit_scale: f32) -> Self {
        segments.sort_by(|a, b| b.score.total_cmp(&a.score));
        let best = segments.first().map(|s| s.score).unwrap_or(0.0);
        let strength = segments
            .iter()
            .map(|s| ((logit_scale * (s.score - best)) as f64).exp().clamp(0.0, 1.0))
            .collect();
        Self {
            segments,
            strength,
            weight: 1.0,
        }
    }

    /// A lexical list with its BM25 scores (best first): strength relative to the best.
    pub fn lexical(segments: Vec<Segment>, bm25: &[f32]) -> Self {
        let best = bm25.first().copied().unwrap_or(1.0).max(f32::MIN_POSITIVE);
        Self {
            strength: bm25.iter().map(|s| (*s / best).clamp(0.0, 1.0) as f64).collect(),
            segments,
            weight: 1.0,
        }
    }
}

/// Combines a visual and a lexical list into one ranking.
pub trait Fusion: Send + Sync {
    fn fuse(&self, visual: RankedList, lexical: RankedList) -> Vec<Segment>;
}

/// Reciprocal rank fusion (Cormack et al. 2009) with `k` = 60, aware of scores: an
/// entry at rank r of a list of weight w adds w (0.5 + 0.5 strength) / (k + r), so the
/// runner-up of a list that barely matched counts less than that of one that matched
/// well. A lexical hit that overlaps a visual segment of the same video merges with it
/// into one `both` segment over the time both agree on (the cue's moment inside the
/// visual span).
#[derive(Clone, Copy, Debug)]
pub struct Rrf {
    pub k: f64,
}

impl Default for Rrf {
    fn default() -> Self {
        Self { k: 60.0 }
    }
}

impl Rrf {
    fn contribution(&self, list: &RankedList, rank: usize) -> f64 {
        let strength = list.strength.get(rank).copied().unwrap_or(1.0);
        list.weight * (0.5 + 0.5 * strength) / (self.k + rank as f64 + 1.0)
    }
}

impl Fusion for Rrf {
    fn fuse(&self, visual: RankedList, lexical: RankedList) -> Vec<Segment> {
        let mut out: Vec<Segment> = Vec::with_capacity(visual.segments.len() + lexical.segments.len());
        for (rank, s) in visual.segments.iter().enumerate() {
            out.push(Segment {
                rank_score: self.contribution(&visual, rank),
                ..s.clone()
            });
        }
        for (rank, t) in lexical.segments.iter().enumerate() {
            let rrf = self.contribution(&lexical, rank);
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
                        v.text = t.text.clone();
                        v.quad = t.quad;
                    }
                }
                None => out.push(Segment {
                    rank_score: rrf,
                    ..t.clone()
                }),
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
}

#[cfg(test)]
mod tests {
    use super::super::segments::{from_frames, tests::frame};
    use super::*;

    #[test]
    fn a_cue_inside_a_wide_visual_segment_narrows_it_to_the_cue() {
        let wide = from_frames((0..8).map(|i| (frame(i + 1, i, 7), 0.05)).collect(), 0.05);
        assert_eq!((wide[0].start, wide[0].end), (0.0, 8.0));
        let cue = Segment {
            start: 4.0,
            end: 6.5,
            peak: 4.0,
            text: Some("the lighthouse keeper".into()),
            ..Segment::new(7, Source::Text)
        };
        let other_video = Segment {
            video_id: 8,
            ..cue.clone()
        };
        let fused = Rrf::default().fuse(
            RankedList::visual(wide, 30.0),
            RankedList::lexical(vec![cue, other_video], &[2.0, 2.0]),
        );
        assert_eq!(fused.len(), 2);
        let both = &fused[0];
        assert_eq!(both.source, Source::Both);
        assert_eq!((both.start, both.end, both.peak), (4.0, 6.5, 4.0));
        assert_eq!(both.text.as_deref(), Some("the lighthouse keeper"));
        assert_eq!((fused[1].video_id, fused[1].source), (8, Source::Text));
    }

    #[test]
    fn a_weak_runner_up_counts_less_than_a_strong_one() {
        let seg = |v, score| Segment {
            score,
            ..Segment::new(v, Source::Visual)
        };
        let strong = RankedList::visual(vec![seg(1, 0.30), seg(2, 0.30)], 30.0);
        let weak = RankedList::visual(vec![seg(1, 0.30), seg(2, 0.10)], 30.0);
        let rrf = Rrf::default();
        assert!(rrf.contribution(&strong, 1) > rrf.contribution(&weak, 1));
        assert_eq!(rrf.contribution(&strong, 0), rrf.contribution(&weak, 0));
    }
}
