//! `index::vector`: the approximate nearest-neighbour index over frame vectors (the only
//! importer of hnsw_rs). Points are frame ids; scores are cosine similarities (the
//! vectors are L2-normalised, the distance is 1 - dot).
//!
//! Persisted next to the database as `<base>.hnsw.graph` / `<base>.hnsw.data` plus
//! `vectors.json`, which records the store generation it matches, the model, the
//! dimension, the highest frame id it holds and a fingerprint of both files. A
//! missing, foreign or damaged dump is reported as such so the caller rebuilds it from
//! the store. hnsw_rs cannot delete points: deleted frames stay in the graph as
//! tombstones that the caller filters at query time, and a rebuild drops them.

use std::fs::File;
use std::path::{Path, PathBuf};

use hnsw_rs::hnswio::HnswIo;
use hnsw_rs::prelude::{AnnT, DistDot, Hnsw};
use serde::{Deserialize, Serialize};

use super::IndexError;

/// Neighbours per node (M) and build beam width.
const MAX_CONNECTIONS: usize = 24;
const EF_CONSTRUCTION: usize = 200;
/// hnsw_rs dumps only indexes made with its maximum layer count.
const MAX_LAYERS: usize = 16;
const META_FILE: &str = "vectors.json";
const FORMAT: u32 = 1;

/// What `vectors.json` says about the dump beside it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct VectorMeta {
    pub format: u32,
    /// Store generation the index reflects.
    pub generation: u64,
    pub model: String,
    pub dim: usize,
    /// Points in the graph (live frames plus tombstones).
    pub points: usize,
    /// Highest frame id in the graph: frames above it are not indexed yet.
    pub max_frame_id: i64,
    /// File basename of the dump (empty when `points` is 0).
    pub basename: String,
    pub fingerprint: String,
}

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
    fn model(&self) -> &str;
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
    /// Makes its content durable in `dir` at `generation`.
    fn checkpoint(&mut self, dir: &Path, generation: u64) -> Result<(), IndexError>;
    /// An empty backend of the same kind for `model`/`dim` (a rebuild or a switch).
    fn empty_like(&self, model: &str, dim: usize, capacity: usize) -> Box<dyn VectorBackend>;

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
        self.ids()
            .into_iter()
            .filter(|id| !self.deleted.contains(&(*id as usize)))
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
    fn checkpoint(&mut self, dir: &Path, generation: u64) -> Result<(), IndexError> {
        self.save(dir, generation)
    }
    fn empty_like(&self, model: &str, dim: usize, capacity: usize) -> Box<dyn VectorBackend> {
        Box::new(VectorIndex::new(model, dim, capacity))
    }
}

/// The in-memory HNSW graph with its bookkeeping (the default [`VectorBackend`]).
pub struct VectorIndex {
    hnsw: Hnsw<'static, f32, DistDot>,
    /// Points whose frames are deleted (hnsw_rs cannot remove points): searches skip
    /// them, a rebuild drops them.
    deleted: std::collections::HashSet<usize>,
    pub model: String,
    pub dim: usize,
    pub points: usize,
    pub max_frame_id: i64,
    pub generation: u64,
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

impl VectorIndex {
    /// An empty index sized for about `capacity` points.
    pub fn new(model: &str, dim: usize, capacity: usize) -> Self {
        // (hnsw_rs' modify_level_scale prints to stdout, so the default layer scale is
        // kept; unreachable points are caught by the self-recall check instead.)
        let hnsw = Hnsw::new(
            MAX_CONNECTIONS,
            capacity.max(1024),
            MAX_LAYERS,
            EF_CONSTRUCTION,
            DistDot {},
        );
        Self {
            hnsw,
            deleted: Default::default(),
            model: model.to_string(),
            dim,
            points: 0,
            max_frame_id: 0,
            generation: 0,
        }
    }

    /// Adds frames (id, unit vector). Large batches are inserted in parallel.
    pub fn insert(&mut self, items: &[(i64, &[f32])]) -> Result<(), IndexError> {
        for (_, v) in items {
            if v.len() != self.dim {
                return Err(IndexError::Dimension {
                    expected: self.dim,
                    got: v.len(),
                });
            }
        }
        if items.len() >= 256 {
            let data: Vec<(&[f32], usize)> = items.iter().map(|(id, v)| (*v, *id as usize)).collect();
            self.hnsw.parallel_insert_slice(&data);
        } else {
            for (id, v) in items {
                self.hnsw.insert_slice((v, *id as usize));
            }
        }
        self.points += items.len();
        if let Some(m) = items.iter().map(|(id, _)| *id).max() {
            self.max_frame_id = self.max_frame_id.max(m);
        }
        Ok(())
    }

    /// The `k` nearest live frames to the unit vector `query`: (frame id, cosine), best
    /// first. Deleted frames are skipped during the graph search, so they never crowd
    /// out live ones.
    /// [`VectorIndex::search`] among the ids `filter` accepts, applied during the graph
    /// search (hnsw_rs' filtered search keeps walking through rejected points).
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
        let hits = if self.deleted.is_empty() && filter.is_none() {
            self.hnsw.search(query, k, ef.max(k))
        } else {
            let accept = |id: &usize| !self.deleted.contains(id) && filter.is_none_or(|f| f(*id as i64));
            self.hnsw.search_filter(query, k, ef.max(k), Some(&accept))
        };
        hits.into_iter().map(|n| (n.d_id as i64, 1.0 - n.distance)).collect()
    }

    /// Marks frames as deleted (ids the graph does not hold are ignored).
    pub fn delete(&mut self, ids: &[i64]) {
        self.deleted.extend(
            ids.iter()
                .filter(|id| **id > 0 && **id <= self.max_frame_id)
                .map(|id| *id as usize),
        );
    }

    /// Every frame id in the graph, deleted ones included.
    pub fn ids(&self) -> Vec<i64> {
        if self.points == 0 {
            return Vec::new(); // hnsw_rs' point iterator panics on an empty graph
        }
        self.hnsw
            .get_point_indexation()
            .into_iter()
            .map(|p| p.get_origin_id() as i64)
            .collect()
    }

    /// Points that are live frames.
    pub fn live(&self) -> usize {
        self.points.saturating_sub(self.deleted.len())
    }

    /// Writes the dump and `vectors.json` into `dir`, replacing the previous dump.
    pub fn save(&mut self, dir: &Path, generation: u64) -> Result<(), IndexError> {
        std::fs::create_dir_all(dir).map_err(|e| IndexError::io(dir, e))?;
        let old = read_meta(dir).ok();
        let basename = if self.points > 0 {
            let base = format!("vectors-g{generation}");
            // hnsw_rs picks another name when files of this one exist; use what it returns.
            self.hnsw.file_dump(dir, &base).map_err(|e| IndexError::Dump {
                dir: dir.to_path_buf(),
                reason: e.to_string(),
            })?
        } else {
            String::new()
        };
        let meta = VectorMeta {
            format: FORMAT,
            generation,
            model: self.model.clone(),
            dim: self.dim,
            points: self.points,
            max_frame_id: self.max_frame_id,
            fingerprint: if basename.is_empty() {
                String::new()
            } else {
                fingerprint(dir, &basename)?
            },
            basename,
        };
        let tmp = dir.join(format!("{META_FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(&meta).expect("meta serialises"))
            .map_err(|e| IndexError::io(&tmp, e))?;
        std::fs::rename(&tmp, dir.join(META_FILE)).map_err(|e| IndexError::io(dir, e))?;
        if let Some(old) = old
            && !old.basename.is_empty()
            && old.basename != meta.basename
        {
            for ext in ["hnsw.graph", "hnsw.data"] {
                let _ = std::fs::remove_file(dir.join(format!("{}.{ext}", old.basename)));
            }
        }
        self.generation = generation;
        Ok(())
    }

    /// Loads the dump in `dir`. `Ok(None)` when there is none; an error when it is
    /// damaged, for another model or another dimension (the caller rebuilds then).
    pub fn load(dir: &Path, model: &str, dim: usize) -> Result<Option<Self>, IndexError> {
        if !dir.join(META_FILE).exists() {
            return Ok(None);
        }
        let meta = read_meta(dir)?;
        if meta.format != FORMAT || meta.model != model || meta.dim != dim {
            return Err(IndexError::Stale(format!(
                "the vector index was built for {} (dim {}), the store uses {model} (dim {dim})",
                meta.model, meta.dim
            )));
        }
        if meta.points == 0 {
            let mut idx = Self::new(model, dim, 1024);
            idx.generation = meta.generation;
            idx.max_frame_id = meta.max_frame_id;
            return Ok(Some(idx));
        }
        let fp = fingerprint(dir, &meta.basename)?;
        if fp != meta.fingerprint {
            return Err(IndexError::Corrupt {
                dir: dir.to_path_buf(),
                reason: "the dump files do not match vectors.json (changed or truncated)".into(),
            });
        }
        let (d, base) = (dir.to_path_buf(), meta.basename.clone());
        let loaded = std::panic::catch_unwind(move || {
            // The loaded graph borrows its loader: keep the (small) loader for the process.
            let io: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(&d, &base)));
            io.load_hnsw::<f32, DistDot>()
        });
        let hnsw = match loaded {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => {
                return Err(IndexError::Corrupt {
                    dir: dir.to_path_buf(),
                    reason: e.to_string(),
                });
            }
            Err(_) => {
                return Err(IndexError::Corrupt {
                    dir: dir.to_path_buf(),
                    reason: "hnsw_rs could not read the dump".into(),
                });
            }
        };
        if hnsw.get_nb_point() != meta.points {
            return Err(IndexError::Corrupt {
                dir: dir.to_path_buf(),
                reason: format!(
                    "{} points in the dump, {} in vectors.json",
                    hnsw.get_nb_point(),
                    meta.points
                ),
            });
        }
        Ok(Some(Self {
            hnsw,
            deleted: Default::default(),
            model: meta.model,
            dim: meta.dim,
            points: meta.points,
            max_frame_id: meta.max_frame_id,
            generation: meta.generation,
        }))
    }
}

pub fn read_meta(dir: &Path) -> Result<VectorMeta, IndexError> {
    let p = dir.join(META_FILE);
    let text = std::fs::read_to_string(&p).map_err(|e| IndexError::io(&p, e))?;
    serde_json::from_str(&text).map_err(|e| IndexError::Corrupt {
        dir: dir.to_path_buf(),
        reason: format!("{META_FILE}: {e}"),
    })
}

/// Sizes of both dump files and their sampled FNV-1a hashes (`util::sampled_hash`):
/// catches truncation and replaced files without reading gigabytes.
fn fingerprint(dir: &Path, basename: &str) -> Result<String, IndexError> {
    let mut out = String::new();
    for ext in ["hnsw.graph", "hnsw.data"] {
        let p: PathBuf = dir.join(format!("{basename}.{ext}"));
        let mut f = File::open(&p).map_err(|e| IndexError::Corrupt {
            dir: dir.to_path_buf(),
            reason: format!("{}: {e}", p.display()),
        })?;
        let (size, h) = crate::util::sampled_hash(&mut f).map_err(|e| IndexError::io(&p, e))?;
        out.push_str(&format!("{size}:{h:016x};"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: u64, dim: usize) -> Vec<f32> {
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut v: Vec<f32> = (0..dim)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((x >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect();
        let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
        v.iter_mut().for_each(|a| *a /= n);
        v
    }

    #[test]
    fn save_load_round_trip_and_self_recall() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = VectorIndex::new("m", 32, 600);
        let data: Vec<(i64, Vec<f32>)> = (1..=600).map(|i| (i, unit(i as u64, 32))).collect();
        let refs: Vec<(i64, &[f32])> = data.iter().map(|(i, v)| (*i, v.as_slice())).collect();
        idx.insert(&refs).unwrap();
        assert!(idx.self_recall(&data, 64) >= 0.99);
        idx.save(dir.path(), 7).unwrap();
        let back = VectorIndex::load(dir.path(), "m", 32).unwrap().unwrap();
        assert_eq!((back.points, back.max_frame_id, back.generation), (600, 600, 7));
        assert_eq!(back.search(&data[10].1, 1, 64, None)[0].0, data[10].0);
        // Another model or dimension is stale, not silently used.
        assert!(matches!(
            VectorIndex::load(dir.path(), "other", 32),
            Err(IndexError::Stale(_))
        ));
        // A damaged dump is detected before hnsw_rs reads it.
        let meta = read_meta(dir.path()).unwrap();
        let data_file = dir.path().join(format!("{}.hnsw.data", meta.basename));
        let len = std::fs::metadata(&data_file).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&data_file)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
        assert!(matches!(
            VectorIndex::load(dir.path(), "m", 32),
            Err(IndexError::Corrupt { .. })
        ));
    }

    #[test]
    fn empty_index_saves_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = VectorIndex::new("m", 8, 10);
        idx.save(dir.path(), 3).unwrap();
        let back = VectorIndex::load(dir.path(), "m", 8).unwrap().unwrap();
        assert_eq!(back.points, 0);
        assert!(back.search(&[0.0; 8], 5, 10, None).is_empty());
    }
}
