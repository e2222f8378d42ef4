//! `GraphSlot`: the graph, or the graph a background thread is loading from a dump, and
//! the load's check (the dump's self-recall), with the rebuild from the exact vectors
//! when a dump does not load. Deciding what a dump is (`vectors.json`) is `persist`'s.

use std::path::Path;

use hnsw_rs::hnswio::HnswIo;
use hnsw_rs::prelude::Distance;

use super::IndexError;
use super::exact::Exact;
use super::graph::{Graph, HnswParams, Ready, build_graph};
use super::quant::{DistQ8, quantise};

/// The graph, or the graph a background thread is loading from a dump. Until it is
/// there, searches are exact scans of the exact file (correct, slower), so a library
/// opens in the time it takes to read its metadata; writes wait for it.
pub(super) struct GraphSlot {
    /// Set once by the loader: the graph, or why none could be made.
    pub(super) slot: std::sync::Arc<std::sync::OnceLock<Result<Ready, String>>>,
    /// The loading thread (None: made here, or already joined).
    loader: Option<std::thread::JoinHandle<()>>,
    /// Set by the loader when the dump was damaged and the graph built again: the next
    /// checkpoint must write a new dump, or every open would rebuild it.
    pub(super) rebuilt: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl GraphSlot {
    pub(super) fn ready(graph: Graph) -> Self {
        Self {
            slot: std::sync::Arc::new(std::sync::OnceLock::from(Ok(Ready::new(graph)))),
            loader: None,
            rebuilt: Default::default(),
        }
    }

    /// Starts `load` on its own thread; `load` is told where to report a rebuild.
    pub(super) fn loading(
        load: impl FnOnce(&std::sync::atomic::AtomicBool) -> Result<Ready, String> + Send + 'static,
    ) -> Self {
        let slot = std::sync::Arc::new(std::sync::OnceLock::new());
        let rebuilt = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (to, flag) = (slot.clone(), rebuilt.clone());
        let loader = std::thread::Builder::new().name("vidseek-graph".into()).spawn(move || {
            let graph = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| load(&flag)))
                .unwrap_or_else(|_| Err("the graph loader panicked".into()));
            let _ = to.set(graph);
            crate::util::trim_heap(); // the loader's read buffers
        });
        let loader = match loader {
            Ok(h) => Some(h),
            Err(e) => {
                let _ = slot.set(Err(format!("cannot start the graph loader: {e}")));
                None
            }
        };
        Self { slot, loader, rebuilt }
    }

    /// The graph when it is there and no loader holds it (without waiting).
    pub(super) fn get_if_ready_mut(&mut self) -> Option<&mut Ready> {
        if self.loader.as_ref().is_some_and(|h| !h.is_finished()) {
            return None;
        }
        std::sync::Arc::get_mut(&mut self.slot)
            .and_then(|s| s.get_mut())
            .and_then(|g| g.as_mut().ok())
    }

    /// The graph when it is there.
    pub(super) fn get(&self) -> Option<&Ready> {
        self.slot.get().and_then(|g| g.as_ref().ok())
    }

    /// The graph, waiting for the loader; an error when none could be made.
    pub(super) fn get_mut(&mut self, dir: Option<&Path>) -> Result<&mut Ready, IndexError> {
        if let Some(h) = self.loader.take() {
            let _ = h.join();
        }
        let reason = match std::sync::Arc::get_mut(&mut self.slot).and_then(|s| s.get_mut()) {
            Some(Ok(g)) => return Ok(g),
            Some(Err(e)) => e.clone(),
            None => "the graph loader ended without a graph".into(),
        };
        Err(IndexError::Corrupt {
            dir: dir.map(Path::to_path_buf).unwrap_or_default(),
            reason,
        })
    }
}

/// Self-recall of a loaded graph below this: it is built again from the exact vectors.
pub(crate) const MIN_SELF_RECALL: f64 = 0.98;

/// The self-recall a loaded graph must reach: what it had when saved, less two points
/// of the 200 (the copy it was measured on may have been refreshed piecemeal, the load's
/// is whole; a dump that lost points falls much further), at most [`MIN_SELF_RECALL`]
/// and at least 0.9 (a graph below that was built again before it was saved);
/// [`MIN_SELF_RECALL`] for dumps that did not record it.
pub(super) fn recall_floor(saved: Option<f64>) -> f64 {
    saved.map_or(MIN_SELF_RECALL, |r| (r - 0.01).clamp(0.9, MIN_SELF_RECALL))
}

/// The dump's graph (on the loader thread), checked: of up to 200 evenly spread points,
/// at least the share `floor` must find themselves (the graph's self-recall when it was
/// saved, at most [`MIN_SELF_RECALL`]). A dump that does not load, or loses points, is
/// replaced by a graph built from the exact vectors (`reader`); searches are exact scans
/// meanwhile. `rebuilt` is set when it had to be built again.
pub(super) fn load_graph(
    dir: &Path,
    base: &str,
    points: usize,
    floor: f64,
    reader: &Exact,
    rebuilt: &std::sync::atomic::AtomicBool,
) -> Result<Ready, String> {
    let t = std::time::Instant::now();
    let loaded = std::panic::catch_unwind(|| {
        // The loaded graph borrows its loader: keep the (small) loader for the process.
        let io: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(dir, base)));
        io.load_hnsw::<i8, DistQ8>()
    });
    let problem = match loaded {
        Ok(Ok(g)) if g.get_nb_point() == points => {
            // Checked by the walk searches use (the compact copy's).
            let g = Ready::new(g);
            let recall = graph_self_recall(&g, reader);
            tracing::debug!(
                "vector graph of {points} points loaded in {:.1} s, self-recall {recall:.3}",
                t.elapsed().as_secs_f64()
            );
            if recall >= floor {
                return Ok(g);
            }
            format!("self-recall {recall:.3} after loading, {floor:.3} when saved")
        }
        Ok(Ok(g)) => format!("{} points in the dump, {points} in vectors.json", g.get_nb_point()),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "hnsw_rs could not read the dump".into(),
    };
    tracing::warn!(
        "the vector graph in {} is damaged ({problem}); building it again from the exact vectors",
        dir.display()
    );
    let graph = build_graph(reader, HnswParams::default())?;
    rebuilt.store(true, std::sync::atomic::Ordering::Release);
    Ok(Ready::new(graph))
}

/// Share of up to 200 evenly spread points of `reader` that `graph` finds as their own
/// nearest neighbours (a wide beam: this looks for points the graph lost).
pub(super) fn graph_self_recall(graph: &Ready, reader: &Exact) -> f64 {
    let n = reader.ids.len();
    if n < 50 {
        return 1.0;
    }
    let ids: Vec<i64> = (0..200).map(|i| reader.ids[i * (n - 1) / 199]).collect();
    let sample = reader.get_many(&ids);
    if sample.is_empty() {
        return 0.0;
    }
    let found = sample
        .iter()
        .filter(|(id, v)| {
            let q = quantise(v);
            let own = DistQ8.eval(&q, &q);
            graph
                .compact
                .search(&q, 3, 512, None)
                .iter()
                .any(|(d, dist)| *d as i64 == *id || *dist <= own + 1e-6)
        })
        .count();
    found as f64 / sample.len() as f64
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::index::vector::VectorBackend;
    use crate::index::vector::VectorIndex;
    use crate::index::vector::persist::read_meta;
    use crate::index::vector::tests::{unit, wait_ready};

    #[test]
    fn a_loading_index_answers_by_exact_scan_and_then_by_its_graph() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<(i64, Vec<f32>)> = (1..=5000).map(|i| (i * 2, unit(i as u64, 48))).collect();
        let refs: Vec<(i64, &[f32])> = data.iter().map(|(i, v)| (*i, v.as_slice())).collect();
        let mut idx = VectorIndex::create("m", 48, 5000, Some(dir.path()));
        idx.insert(&refs).unwrap();
        idx.save(dir.path(), 1).unwrap();
        let mut back = VectorIndex::load(dir.path(), "m", 48, true).unwrap().unwrap();
        back.delete(&[data[3].0]);
        // The scan searches used while the graph loads: the exact best, filters and
        // deletions applied.
        let q = unit(77_777, 48);
        let mut truth: Vec<(i64, f32)> = data.iter().map(|(i, v)| (*i, crate::simd::dot(&q, v))).collect();
        truth.retain(|(i, _)| *i != data[3].0 && i % 3 != 0);
        truth.sort_by(|a, b| b.1.total_cmp(&a.1));
        let accept = |id: i64| id != data[3].0 && id % 3 != 0;
        let scanned = back.exact.scan(&q, 10, &accept);
        assert_eq!(scanned, truth[..10].to_vec());
        assert!(back.exact.scan(&data[3].1, 1, &accept)[0].0 != data[3].0);
        // Once loaded, the graph answers (and a write waits for it rather than failing).
        wait_ready(&back);
        assert_eq!(back.search(&data[40].1, 1, 64, None)[0].0, data[40].0);
        assert!(back.self_recall(&data[4..], 64) >= 0.99);
        back.insert(&[(20_000, unit(900_001, 48).as_slice())]).unwrap();
        assert_eq!(back.search(&unit(900_001, 48), 1, 64, None)[0].0, 20_000);
    }

    #[test]
    fn a_dump_that_does_not_load_is_built_again_from_the_exact_vectors() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<(i64, Vec<f32>)> = (1..=800).map(|i| (i, unit(i as u64 + 5, 32))).collect();
        let refs: Vec<(i64, &[f32])> = data.iter().map(|(i, v)| (*i, v.as_slice())).collect();
        let mut idx = VectorIndex::create("m", 32, 800, Some(dir.path()));
        idx.insert(&refs).unwrap();
        idx.save(dir.path(), 1).unwrap();
        let meta = read_meta(dir.path()).unwrap();
        let ids: Vec<i64> = data.iter().map(|(i, _)| *i).collect();
        let reader = Exact::open(dir.path(), &meta.exact, 32, ids, false).unwrap();
        // The real dump loads and passes its self-check.
        let rebuilt = std::sync::atomic::AtomicBool::new(false);
        let g = load_graph(dir.path(), &meta.basename, 800, MIN_SELF_RECALL, &reader, &rebuilt).unwrap();
        assert_eq!(g.hnsw.get_nb_point(), 800);
        let recall = graph_self_recall(&g, &reader);
        assert!(recall >= MIN_SELF_RECALL);
        assert!(!rebuilt.load(std::sync::atomic::Ordering::Acquire));
        // The dump recorded the self-recall the load found (the same sample and walk).
        assert_eq!(meta.self_recall, Some(recall));
        // A graph scoring below the floor its dump recorded is built again.
        let rebuilt = std::sync::atomic::AtomicBool::new(false);
        load_graph(dir.path(), &meta.basename, 800, recall + 0.001, &reader, &rebuilt).unwrap();
        assert!(rebuilt.load(std::sync::atomic::Ordering::Acquire));
        // The floor: the saved self-recall less 0.01, within [0.9, MIN_SELF_RECALL].
        assert!((recall_floor(Some(0.95)) - 0.94).abs() < 1e-12);
        assert_eq!(recall_floor(Some(1.0)), MIN_SELF_RECALL);
        assert_eq!(recall_floor(Some(0.5)), 0.9);
        assert_eq!(recall_floor(None), MIN_SELF_RECALL);
        // A dump hnsw_rs cannot read (here: files that are not there), or one with
        // another point count: a graph of every exact vector instead, reported.
        for (base, points) in [("no-such-dump", 800), (meta.basename.as_str(), 799)] {
            let rebuilt = std::sync::atomic::AtomicBool::new(false);
            let g = load_graph(dir.path(), base, points, MIN_SELF_RECALL, &reader, &rebuilt).unwrap();
            assert_eq!(g.hnsw.get_nb_point(), 800);
            assert!(graph_self_recall(&g, &reader) >= MIN_SELF_RECALL);
            assert!(rebuilt.load(std::sync::atomic::Ordering::Acquire));
        }
        // The next checkpoint writes the rebuilt graph as a new dump (else every open
        // would rebuild it again), even with nothing else changed.
        let mut back = VectorIndex::load(dir.path(), "m", 32, true).unwrap().unwrap();
        let ids: Vec<i64> = data.iter().map(|(i, _)| *i).collect();
        let reader = Exact::open(dir.path(), &meta.exact, 32, ids, false).unwrap();
        back.graph = GraphSlot::loading(move |rebuilt| {
            load_graph(Path::new("/nonexistent"), "x", 800, MIN_SELF_RECALL, &reader, rebuilt)
        });
        wait_ready(&back);
        back.save(dir.path(), 1).unwrap();
        let after = read_meta(dir.path()).unwrap();
        assert_ne!(after.basename, meta.basename, "the rebuilt graph was not written");
        let again = VectorIndex::load(dir.path(), "m", 32, true).unwrap().unwrap();
        wait_ready(&again);
        assert!(!again.graph.rebuilt.load(std::sync::atomic::Ordering::Acquire));
        assert_eq!(again.search(&data[7].1, 1, 64, None)[0].0, data[7].0);
    }
}
