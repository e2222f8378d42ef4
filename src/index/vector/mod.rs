//! `index::vector`: the approximate nearest-neighbour index over frame vectors (its
//! modules, listed below, are the only importers of hnsw_rs). Points are frame ids;
//! scores are cosine similarities (the vectors are L2-normalised).
//!
//! The graph holds each vector quantised to int8 with its own scale (`dim` bytes plus 4,
//! a quarter of float32), compared by an int8 dot product; the exact float32 vectors lie
//! in an append-only file beside it (`<name>.exact`, slot order = insertion order, which
//! is frame-id order) and are read back, by positional reads, only to rescore the
//! graph's candidates and to hand search the vectors of its moments. Searches therefore
//! rank by exact cosines, while the graph in memory is small and fast to build.
//!
//! Persisted next to the database as `<base>.hnsw.graph` / `<base>.hnsw.data` (the
//! graph and its int8 vectors), `<base>.ids` (the frame id of each slot of the exact
//! file) plus `vectors.json`, which records the store generation it matches, the model,
//! the dimension, the highest frame id it holds, the exact file and its slot count, and a
//! fingerprint of the dump. A missing, foreign or damaged dump is reported as such so the
//! caller rebuilds it from the store. hnsw_rs cannot delete points: deleted frames stay
//! in the graph as tombstones that the caller filters at query time, and a rebuild drops
//! them.
//!
//! The parts: [`VectorIndex`] here (insertion, search: graph candidates rescored by
//! exact cosines); `backend` the [`VectorBackend`] trait the catalog holds it by;
//! `quant` the int8 form and its distance; `exact` the float32 vectors' file;
//! `tombstones` the deleted frames; `graph` hnsw_rs' graph beside its compact copy
//! (`compact`) that searches walk; `loader` the background load of a dump and its
//! self-recall check; `persist` the dump and `vectors.json`.

mod backend;
mod compact;
mod exact;
mod graph;
mod loader;
mod persist;
mod quant;
mod tombstones;

use std::path::{Path, PathBuf};

use super::IndexError;
use exact::Exact;
use graph::{add_to_graph, new_graph};
use loader::GraphSlot;
use tombstones::Tombstones;

pub use backend::VectorBackend;
pub use graph::HnswParams;
pub(crate) use loader::MIN_SELF_RECALL;
pub use quant::quantise;

/// The in-memory HNSW graph over int8 vectors, the exact vectors beside it, and its
/// bookkeeping (the default [`VectorBackend`]).
pub struct VectorIndex {
    graph: GraphSlot,
    exact: Exact,
    /// The folder its files go to (None: memory only until a checkpoint names one).
    dir: Option<PathBuf>,
    /// Points whose frames are deleted (hnsw_rs cannot remove points): searches skip
    /// them, a rebuild drops them.
    deleted: Tombstones,
    /// The model whose vectors it holds, and their dimension.
    pub model: String,
    /// Values per vector.
    pub dim: usize,
    /// Points in the graph, live and deleted.
    pub points: usize,
    /// The highest frame id it holds.
    pub max_frame_id: i64,
    /// The store generation it was last saved at.
    pub generation: u64,
    /// Points in the last dump (a checkpoint rewrites the graph only when enough changed).
    saved_points: usize,
    /// Loaded with the tombstones its dump kept at `generation`.
    deletions_known: bool,
}

impl std::fmt::Debug for VectorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorIndex")
            .field("model", &self.model)
            .field("dim", &self.dim)
            .field("points", &self.points)
            .field("max_frame_id", &self.max_frame_id)
            .field("generation", &self.generation)
            .finish()
    }
}

/// Candidates taken from the graph per result wanted, before exact rescoring.
fn candidates(k: usize, ef: usize) -> usize {
    (2 * k + 10).min(ef.max(k)).max(k)
}

impl VectorIndex {
    /// An empty index whose exact vectors are written into `dir` as they come (a
    /// folder it will be saved in; None: memory).
    pub fn create(model: &str, dim: usize, capacity: usize, dir: Option<&Path>) -> Self {
        Self::create_with(model, dim, capacity, dir, HnswParams::default())
    }

    /// [`VectorIndex::create`] with other graph parameters (benchmarks).
    pub fn create_with(model: &str, dim: usize, capacity: usize, dir: Option<&Path>, p: HnswParams) -> Self {
        Self {
            graph: GraphSlot::ready(new_graph(capacity, p)),
            exact: Exact::new(dim, dir),
            dir: dir.map(Path::to_path_buf),
            deleted: Default::default(),
            model: model.to_string(),
            dim,
            points: 0,
            max_frame_id: 0,
            generation: 0,
            saved_points: 0,
            deletions_known: false,
        }
    }

    /// Adds frames (id, unit vector), in increasing id order (the store's order). Large
    /// batches are inserted into the graph in parallel.
    pub fn insert(&mut self, items: &[(i64, &[f32])]) -> Result<(), IndexError> {
        for (_, v) in items {
            if v.len() != self.dim {
                return Err(IndexError::Dimension {
                    expected: self.dim,
                    got: v.len(),
                });
            }
        }
        if items.windows(2).any(|w| w[0].0 >= w[1].0) {
            let mut sorted = items.to_vec();
            sorted.sort_by_key(|(id, _)| *id);
            sorted.dedup_by_key(|(id, _)| *id);
            return self.insert(&sorted);
        }
        // Nothing changes when there is no graph; the exact file refuses ids out of order.
        let graph = self.graph.get_mut(self.dir.as_deref())?;
        self.exact.append(items)?;
        add_to_graph(&graph.hnsw, items);
        graph.grown(items.len());
        self.points += items.len();
        if let Some(m) = items.iter().map(|(id, _)| *id).max() {
            self.max_frame_id = self.max_frame_id.max(m);
        }
        Ok(())
    }

    /// The `k` nearest live frames to the unit vector `query` accepted by `filter`
    /// (None: all): (frame id, cosine), best first. The graph proposes about `2k`
    /// candidates by int8 distance; their exact vectors give the cosines and the order.
    /// Deleted and rejected frames are skipped during the graph search (the filtered
    /// search keeps walking through them), so they never crowd out others.
    pub fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: Option<&dyn Fn(i64) -> bool>,
    ) -> Vec<(i64, f32)> {
        if self.live() == 0 || k == 0 || query.len() != self.dim {
            return Vec::new();
        }
        let Some(graph) = self.graph.get() else {
            // The graph is still loading: every vector, exactly.
            let accept = |id: i64| !self.deleted.contains(id) && filter.is_none_or(|f| f(id));
            return self.exact.scan(query, k, &accept);
        };
        let q = quantise(query);
        let want = candidates(k, ef);
        let ef = ef.max(want);
        // Searches walk the compact copy; it holds every point of the graph (refreshed
        // on each insertion), else hnsw_rs' own search answers.
        let copy_whole = graph.compact.len() == self.points;
        let filtered = || -> Vec<(usize, f32)> {
            let accept = |id: usize| !self.deleted.contains(id as i64) && filter.is_none_or(|f| f(id as i64));
            if copy_whole {
                return graph.compact.search(&q, want, ef, Some(&accept));
            }
            let accept = |id: &usize| accept(*id);
            graph
                .hnsw
                .search_filter(&q, want, ef, Some(&accept))
                .into_iter()
                .map(|n| (n.d_id, n.distance))
                .collect()
        };
        let unfiltered = |want: usize| -> Vec<(usize, f32)> {
            if copy_whole {
                graph.compact.search(&q, want, ef, None)
            } else {
                graph
                    .hnsw
                    .search(&q, want, ef)
                    .into_iter()
                    .map(|n| (n.d_id, n.distance))
                    .collect()
            }
        };
        let hits = if filter.is_some() {
            filtered()
        } else if self.deleted.is_empty() {
            unfiltered(want)
        } else {
            // Tombstones only: hnsw_rs' filtered search gives up its early stop and walks
            // much further (3x the time per search at 100k frames). The unfiltered beam
            // usually holds enough live points; it is filtered after, and the filtered
            // search runs only when it does not (a query near a deleted video).
            let mut beam = unfiltered(ef);
            beam.retain(|(id, _)| !self.deleted.contains(*id as i64));
            if beam.len() >= want.min(self.live()) {
                beam.truncate(want);
                beam
            } else {
                filtered()
            }
        };
        let mut out: Vec<(i64, f32)> = hits
            .into_iter()
            .map(|(id, distance)| {
                let id = id as i64;
                let s = self
                    .exact
                    .with(id, |v| crate::simd::dot(query, v))
                    .unwrap_or(1.0 - distance);
                (id, s)
            })
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out.truncate(k);
        out
    }

    /// Marks frames as deleted (ids the graph does not hold are ignored).
    pub fn delete(&mut self, ids: &[i64]) {
        for &id in ids {
            if self.exact.slot(id).is_some() {
                self.deleted.insert(id);
            }
        }
    }

    /// Points that are live frames.
    pub fn live(&self) -> usize {
        self.points.saturating_sub(self.deleted.len())
    }
}

#[cfg(test)]
mod tests;
