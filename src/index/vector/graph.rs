//! The graph itself: hnsw_rs' graph over int8 vectors with its build parameters, the
//! compact copy searches walk kept beside it (`Ready`), and the building of a graph from
//! vectors. Loading and saving a graph are `loader`'s and `persist`'s.

use hnsw_rs::prelude::Hnsw;

use super::compact::CompactGraph;
use super::exact::Exact;
use super::quant::{DistQ8, quantise};

/// How the graph is built: neighbours per node (M; twice as many on the bottom layer)
/// and the build beam width. The default was chosen by `cargo bench --bench hnsw`
/// (recall@10, self-recall, build time and memory on shot-structured vectors; docs/benchmarks.md).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HnswParams {
    /// M: neighbours kept per node on the upper layers (2M on the bottom one).
    pub max_connections: usize,
    /// Candidates considered when a node's neighbours are chosen.
    pub ef_construction: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        Self {
            max_connections: 24,
            ef_construction: 160,
        }
    }
}

/// hnsw_rs dumps only indexes made with its maximum layer count.
const MAX_LAYERS: usize = 16;

pub(super) type Graph = Hnsw<'static, i8, DistQ8>;

/// A usable graph: hnsw_rs' own, and the compact copy searches walk (compact.rs). While
/// the copy lacks points a large insertion added, searches use hnsw_rs' own walk until
/// [`VectorBackend::settle`](super::VectorBackend::settle) (or the next small insertion) copies it again.
pub(super) struct Ready {
    pub(super) hnsw: Graph,
    pub(super) compact: CompactGraph,
}

impl Ready {
    pub(super) fn new(hnsw: Graph) -> Self {
        let compact = CompactGraph::copy(&hnsw);
        Self { hnsw, compact }
    }

    /// Points of the graph the copy does not hold yet.
    pub(super) fn behind(&self) -> usize {
        self.hnsw.get_nb_point().saturating_sub(self.compact.len())
    }

    /// Brings the copy up to the graph after `added` points were inserted. Refreshing
    /// reads again about `added` x 2M points (the new points' neighbours), so a batch
    /// that would read about as many as a whole copy leaves it for one copy later
    /// (a catch-up of 20,000-point batches would otherwise re-read most of the graph
    /// per batch).
    pub(super) fn grown(&mut self, added: usize) {
        if added.saturating_mul(self.compact.stride()) >= self.compact.len() / 2 && added >= 1024 {
            // Left behind, for `settle`.
        } else if self.behind() > added {
            // Behind since an earlier large insertion.
            self.compact = CompactGraph::copy(&self.hnsw);
        } else {
            self.compact.refresh(&self.hnsw);
        }
    }
}

/// An empty graph for about `capacity` points.
pub(super) fn new_graph(capacity: usize, p: HnswParams) -> Graph {
    // (hnsw_rs' modify_level_scale prints to stdout, so the default layer scale is
    // kept; unreachable points are caught by the self-recall check instead.)
    Hnsw::new(
        p.max_connections,
        capacity.max(1024),
        MAX_LAYERS,
        p.ef_construction,
        DistQ8,
    )
}

/// Quantises `items` (id, unit vector) into `graph`; large batches in parallel.
pub(super) fn add_to_graph(graph: &Graph, items: &[(i64, &[f32])]) {
    let quantised: Vec<Vec<i8>> = items.iter().map(|(_, v)| quantise(v)).collect();
    if items.len() >= 256 {
        let data: Vec<(&[i8], usize)> = quantised
            .iter()
            .zip(items)
            .map(|(q, (id, _))| (q.as_slice(), *id as usize))
            .collect();
        graph.parallel_insert_slice(&data);
    } else {
        for (q, (id, _)) in quantised.iter().zip(items) {
            graph.insert_slice((q, *id as usize));
        }
    }
}

/// A graph of every vector in `reader`, inserted in batches.
pub(super) fn build_graph(reader: &Exact, p: HnswParams) -> Result<Graph, String> {
    let graph = new_graph(reader.ids.len(), p);
    for ids in reader.ids.chunks(20_000) {
        let rows = reader.get_many(ids);
        if rows.len() != ids.len() {
            return Err("the exact vectors cannot be read".into());
        }
        let items: Vec<(i64, &[f32])> = rows.iter().map(|(id, v)| (*id, v.as_slice())).collect();
        add_to_graph(&graph, &items);
    }
    Ok(graph)
}
