//! Searches of the derived indexes (nearest frames, text matches) and their state.

use super::{Catalog, CatalogError};
use crate::types::{FrameId, VideoId};

impl Catalog {
    /// Nearest live frames to a unit vector: (frame id, cosine), best first.
    pub fn nearest(&self, query: &[f32], k: usize, ef: usize) -> Vec<(FrameId, f32)> {
        self.vectors
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .search(query, k, ef, None)
    }

    /// [`Catalog::nearest`] for a query embedded with `model`; refused when the index
    /// holds another model's vectors (a switch completed after the query was embedded:
    /// embed it again with the active model).
    /// `filter` restricts the frames during the graph search (None: all).
    pub fn nearest_for(
        &self,
        model: &str,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: Option<&dyn Fn(FrameId) -> bool>,
    ) -> Result<Vec<(FrameId, f32)>, CatalogError> {
        let v = self.vectors.read().unwrap_or_else(|e| e.into_inner());
        if v.model() != model || v.dim() != query.len() {
            return Err(CatalogError::ModelMismatch {
                indexed: v.model().to_string(),
                given: model.to_string(),
            });
        }
        Ok(v.search(query, k, ef, filter))
    }

    /// Points in the vector index (live frames and tombstones).
    pub fn vector_points(&self) -> usize {
        self.vectors.read().unwrap_or_else(|e| e.into_inner()).points()
    }

    /// Points in the vector index that are deleted frames.
    pub fn vector_tombstones(&self) -> usize {
        self.vectors.read().unwrap_or_else(|e| e.into_inner()).tombstones()
    }

    /// False while the saved vector graph is still loading (searches are exact scans
    /// meanwhile: correct, slower on a large library).
    pub fn vectors_ready(&self) -> bool {
        self.vectors.read().unwrap_or_else(|e| e.into_inner()).ready()
    }

    /// Waits until the vector graph is loaded (benchmarks, tools that want ANN speed).
    pub fn wait_vectors_ready(&self) {
        while !self.vectors_ready() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The best `limit` text matches (subtitles, titles, file names) of a structured
    /// lexical query, only in `videos` when given.
    pub fn text_search(
        &self,
        query: &crate::index::LexicalQuery,
        videos: Option<&[VideoId]>,
        limit: usize,
    ) -> Result<Vec<crate::index::TextHit>, CatalogError> {
        Ok(self.text.search(query, videos, limit)?)
    }
}
