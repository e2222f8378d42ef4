//! The [`VectorBackend`] trait, the seam the catalog holds a vector index by, and its
//! implementation for the default [`VectorIndex`]. Nothing here searches or stores.

use std::path::Path;

use super::IndexError;
use super::VectorIndex;
use super::compact::CompactGraph;

/// What the catalog needs from a vector index: the seam where another backend (a
/// distributed vector database such as Qdrant, with the same frame ids as point ids)
/// replaces the default [`VectorIndex`] (HNSW in memory). A backend must provide:
///
/// - **upsert and delete** by frame id. The store never reuses a frame id, so an id is
///   inserted once and deleted once; a deleted id must never be returned again.
/// - **search with a filter**: the `k` nearest live points to a unit vector (cosine),
///   best first, only among ids the filter accepts (None: all), the filter applied
///   during the search, not by cutting `k` results down.
/// - **checkpoint**: make what it holds durable and record the store `generation` it
///   reflects (for a remote database: the generation as collection metadata).
/// - **catch-up**: report its `high_water` mark, the highest frame id it holds; the
///   catalog feeds it every stored frame above that after a crash or a restart (and
///   deletes the ids the store no longer has).
/// - the model and dimension its vectors are for, and counts for health checks.
pub trait VectorBackend: Send + Sync {
    /// The model whose vectors it holds.
    fn model(&self) -> &str;
    /// Their dimension.
    fn dim(&self) -> usize;
    /// Adds frames (id, unit vector).
    fn upsert(&mut self, items: &[(i64, &[f32])]) -> Result<(), IndexError>;
    /// Removes frames (ids it does not hold are ignored).
    fn delete(&mut self, ids: &[i64]);
    /// The `k` nearest live frames accepted by `filter`: (frame id, cosine), best first.
    /// `ef` is the search breadth (a hint a backend may ignore).
    fn search(&self, query: &[f32], k: usize, ef: usize, filter: Option<&dyn Fn(i64) -> bool>) -> Vec<(i64, f32)>;
    /// Every live frame id it holds (for consistency checks).
    fn live_ids(&self) -> Vec<i64>;
    /// Points stored, live and deleted.
    fn points(&self) -> usize;
    /// Deleted points it still holds (space a compaction would free).
    fn tombstones(&self) -> usize;
    /// The highest frame id it holds.
    fn high_water(&self) -> i64;
    /// The store generation it reflects.
    fn generation(&self) -> u64;
    /// Whether the deletions it holds are all the store's up to its `generation` (a
    /// saved index that kept its tombstones): opened at that generation, it need not be
    /// compared with every stored frame id. False: the caller compares them.
    fn deletions_known(&self) -> bool {
        false
    }
    /// Makes its content durable in `dir` at `generation`.
    fn checkpoint(&mut self, dir: &Path, generation: u64) -> Result<(), IndexError>;
    /// An empty backend of the same kind for `model`/`dim` (a rebuild or a switch).
    fn empty_like(&self, model: &str, dim: usize, capacity: usize) -> Box<dyn VectorBackend>;
    /// The vectors of frames it holds, when it keeps them where reading is cheaper than
    /// the store (None: ask the store). Absent ids are skipped.
    fn vectors(&self, _ids: &[i64]) -> Option<Vec<(i64, Vec<f32>)>> {
        None
    }
    /// False while a saved index is still being loaded in the background (searches are
    /// then exact scans, and the backend checks its own recall once loaded).
    fn ready(&self) -> bool {
        true
    }
    /// Finishes what a run of large insertions left for later (searches are right
    /// before it, only slower). Called after a catch-up and after each added video.
    fn settle(&mut self) {}

    /// Share of `sample` points whose own vector finds them (or an identical vector).
    fn self_recall(&self, sample: &[(i64, Vec<f32>)], ef: usize) -> f64 {
        if sample.is_empty() {
            return 1.0;
        }
        let found = sample
            .iter()
            .filter(|(id, v)| {
                self.search(v, 3, ef, None)
                    .iter()
                    .any(|(hit, score)| hit == id || *score >= 0.99999)
            })
            .count();
        found as f64 / sample.len() as f64
    }
}

impl VectorBackend for VectorIndex {
    fn model(&self) -> &str {
        &self.model
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn upsert(&mut self, items: &[(i64, &[f32])]) -> Result<(), IndexError> {
        self.insert(items)
    }
    fn delete(&mut self, ids: &[i64]) {
        VectorIndex::delete(self, ids)
    }
    fn search(&self, query: &[f32], k: usize, ef: usize, filter: Option<&dyn Fn(i64) -> bool>) -> Vec<(i64, f32)> {
        self.search_filtered(query, k, ef, filter)
    }
    fn live_ids(&self) -> Vec<i64> {
        self.exact
            .ids
            .iter()
            .copied()
            .filter(|id| !self.deleted.contains(*id))
            .collect()
    }
    fn points(&self) -> usize {
        self.points
    }
    fn tombstones(&self) -> usize {
        self.deleted.len()
    }
    fn high_water(&self) -> i64 {
        self.max_frame_id
    }
    fn generation(&self) -> u64 {
        self.generation
    }
    fn deletions_known(&self) -> bool {
        self.deletions_known
    }
    fn checkpoint(&mut self, dir: &Path, generation: u64) -> Result<(), IndexError> {
        self.save(dir, generation)
    }
    fn empty_like(&self, model: &str, dim: usize, capacity: usize) -> Box<dyn VectorBackend> {
        Box::new(VectorIndex::create(model, dim, capacity, self.dir.as_deref()))
    }
    fn vectors(&self, ids: &[i64]) -> Option<Vec<(i64, Vec<f32>)>> {
        let live: Vec<i64> = ids.iter().copied().filter(|id| !self.deleted.contains(*id)).collect();
        Some(self.exact.get_many(&live))
    }
    fn ready(&self) -> bool {
        self.graph.slot.get().is_some()
    }
    fn settle(&mut self) {
        if let Some(r) = self.graph.get_if_ready_mut()
            && r.behind() > 0
        {
            r.compact = CompactGraph::copy(&r.hnsw);
        }
    }
}
