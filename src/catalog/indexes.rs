//! Searches of the derived indexes (nearest frames, text matches) and their state.

use super::vectors::Vectors;
use super::{Catalog, CatalogError, VectorChoice, VectorScope};
use crate::types::{FrameId, VideoId};

impl Catalog {
    /// Nearest live frames to a unit vector of the active model: (frame id, cosine),
    /// best first.
    pub async fn nearest(&self, query: &[f32], k: usize, ef: usize) -> Result<Vec<(FrameId, f32)>, CatalogError> {
        self.nearest_for(&self.model(), query, k, ef, VectorScope::default())
            .await
    }

    /// [`Catalog::nearest`] for a query embedded with `model`; refused when the index
    /// holds another model's vectors (a switch completed after the query was embedded:
    /// embed it again with the active model). `scope` restricts the frames during the
    /// search (the embedded graph walks past the others; pgvector applies them as SQL
    /// predicates inside its index scan). The one place that picks the backend.
    pub async fn nearest_for(
        &self,
        model: &str,
        query: &[f32],
        k: usize,
        ef: usize,
        scope: VectorScope<'_>,
    ) -> Result<Vec<(FrameId, f32)>, CatalogError> {
        let table = {
            let v = self.vectors.read().unwrap_or_else(|e| e.into_inner());
            if v.model() != model || v.dim() != query.len() {
                return Err(CatalogError::ModelMismatch {
                    indexed: v.model().to_string(),
                    given: model.to_string(),
                });
            }
            match &*v {
                Vectors::Embedded(idx) => {
                    if scope.is_all() {
                        return Ok(idx.search(query, k, ef, None));
                    }
                    let dir = self.directory();
                    let filter = |frame: FrameId| {
                        scope.frames.is_none_or(|f| f.contains(&frame))
                            && scope
                                .videos
                                .is_none_or(|vs| dir.video_of(frame).is_some_and(|v| vs.binary_search(&v.id).is_ok()))
                    };
                    return Ok(idx.search(query, k, ef, Some(&filter)));
                }
                Vectors::Pg(t) => t.clone(),
            }
        };
        let frames: Option<Vec<FrameId>> = scope.frames.map(|f| f.iter().copied().collect());
        Ok(self
            .store
            .pg_search(&table, query, k, ef, scope.videos, frames.as_deref())
            .await?)
    }

    /// Points in the vector index (live frames and tombstones; pgvector: its rows,
    /// which are the directory's frames).
    pub fn vector_points(&self) -> usize {
        match &*self.vectors.read().unwrap_or_else(|e| e.into_inner()) {
            Vectors::Embedded(v) => v.points(),
            Vectors::Pg(_) => self.directory().iter().map(|l| l.frames.max(0) as usize).sum(),
        }
    }

    /// Points in the vector index that are deleted frames (pgvector: none kept).
    pub fn vector_tombstones(&self) -> usize {
        match &*self.vectors.read().unwrap_or_else(|e| e.into_inner()) {
            Vectors::Embedded(v) => v.tombstones(),
            Vectors::Pg(_) => 0,
        }
    }

    /// False while the saved vector graph is still loading (searches are exact scans
    /// meanwhile: correct, slower on a large library). pgvector's index is built before
    /// the catalog opens.
    pub fn vectors_ready(&self) -> bool {
        match &*self.vectors.read().unwrap_or_else(|e| e.into_inner()) {
            Vectors::Embedded(v) => v.ready(),
            Vectors::Pg(_) => true,
        }
    }

    /// Which backend holds the vectors.
    pub fn vector_backend(&self) -> VectorChoice {
        match &*self.vectors.read().unwrap_or_else(|e| e.into_inner()) {
            Vectors::Embedded(_) => VectorChoice::Hnsw,
            Vectors::Pg(_) => VectorChoice::Pgvector,
        }
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
