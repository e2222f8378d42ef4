//! `search::group`: results per video, and a video's score timeline for a query.

use std::collections::HashMap;
use std::sync::Arc;

use super::{SearchError, Segment, query};
use crate::catalog::{Catalog, Frame};
use crate::embed::Embedder;

/// The results of one video, best first.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub video_id: i64,
    pub path: String,
    pub best_score: f32,
    pub segments: Vec<Segment>,
}

/// Results grouped per video, videos in the order of their best result.
pub fn by_video(results: &[Segment]) -> Vec<Group> {
    let mut order: Vec<i64> = Vec::new();
    let mut groups: HashMap<i64, Vec<Segment>> = HashMap::new();
    for s in results {
        if !groups.contains_key(&s.video_id) {
            order.push(s.video_id);
        }
        groups.entry(s.video_id).or_default().push(s.clone());
    }
    order
        .into_iter()
        .map(|id| {
            let segments = groups.remove(&id).unwrap_or_default();
            Group {
                video_id: id,
                path: segments[0].path.clone(),
                best_score: segments.iter().map(|s| s.score).fold(f32::MIN, f32::max),
                segments,
            }
        })
        .collect()
}

/// Every stored frame of `video` with its score for `q` (parsed by the query language;
/// its first clause's terms embedded as a search embeds them), in order.
pub async fn timeline(
    catalog: &Catalog,
    model: Arc<Embedder>,
    video: i64,
    q: &str,
) -> Result<Vec<(Frame, f32)>, SearchError> {
    let parsed = query::parse(q)?;
    let clause = parsed.steps.first().cloned().unwrap_or_default();
    let parts = clause.visual_parts();
    if parts.is_empty() {
        return Err(SearchError::NothingToLookFor);
    }
    let set = super::prompts::resolve(&super::prompts::Templates::Auto, &model);
    let v = super::vectors::embed_parts(&model, set.as_deref(), &parts).await?;
    Ok(catalog.frame_scores(video, model.model_name(), &v).await?)
}

#[cfg(test)]
mod tests {
    use super::super::Source;
    use super::*;

    #[test]
    fn groups_keep_the_order_of_each_video_s_best_result() {
        let seg = |v: i64, score: f32| Segment {
            path: format!("/{v}.mp4"),
            score,
            ..Segment::new(v, Source::Visual)
        };
        let g = by_video(&[seg(2, 0.9), seg(1, 0.8), seg(2, 0.7)]);
        assert_eq!(
            g.iter().map(|g| (g.video_id, g.segments.len())).collect::<Vec<_>>(),
            vec![(2, 2), (1, 1)]
        );
        assert_eq!(g[0].best_score, 0.9);
    }
}
