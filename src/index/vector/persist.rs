//! Saving and loading a [`VectorIndex`]: the hnsw_rs dump, the frame ids of the exact
//! file's slots, and `vectors.json` ([`VectorMeta`]) that ties them to a store generation
//! and a model, with a fingerprint that catches a damaged dump before hnsw_rs reads it.
//! When a checkpoint rewrites the graph, and when it leaves the dump as it is, is decided
//! here; loading the graph itself is `loader`'s (in the background).

use std::fs::File;
use std::path::{Path, PathBuf};

use hnsw_rs::prelude::AnnT;
use serde::{Deserialize, Serialize};

use super::exact::Exact;
use super::loader::{GraphSlot, graph_self_recall, load_graph, recall_floor};
use super::tombstones::Tombstones;
use super::{IndexError, VectorIndex};

const META_FILE: &str = "vectors.json";
/// 2: int8 graph + exact float32 file (format 1, float32 in the graph, is rebuilt).
const FORMAT: u32 = 2;
/// A checkpoint leaves the dump as it is while at most this many points (and 1% of the
/// graph) were added since it: about an hour of video, added again from the store on
/// the next open in a few seconds, against rewriting a graph of a million points.
const DEFER_POINTS: usize = 4096;

/// What `vectors.json` says about the dump beside it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(super) struct VectorMeta {
    pub format: u32,
    /// Store generation the index reflects.
    pub generation: u64,
    pub model: String,
    pub dim: usize,
    /// Points in the graph (live frames plus tombstones), = slots of the exact file.
    pub points: usize,
    /// Highest frame id in the graph: frames above it are not indexed yet.
    pub max_frame_id: i64,
    /// File basename of the dump (empty when `points` is 0).
    pub basename: String,
    /// File name of the exact vectors (its first `points` slots are this dump's).
    #[serde(default)]
    pub exact: String,
    pub fingerprint: String,
    /// The points deleted at `generation`, as runs of consecutive frame ids `[first,
    /// last]` (a video's frames have consecutive ids: about one run per deleted video).
    /// Absent in dumps written before they were kept: the opener compares the dump's
    /// ids with the store's then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Vec<[i64; 2]>>,
    /// The graph's self-recall when it was dumped (the check a load repeats: the same
    /// sample, the same walk). A loaded graph that scores below it lost something; one
    /// that scores the same is the graph that was saved, even below
    /// [`MIN_SELF_RECALL`](super::MIN_SELF_RECALL) (hnsw_rs' parallel insertion can leave
    /// a few points unreachable, and a rebuild with the same parameters would not do
    /// better).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_recall: Option<f64>,
}

/// What a checkpoint does with the dump already in its folder.
#[derive(Clone, Copy, PartialEq)]
enum Checkpoint {
    /// Nothing was added since it: it stands.
    Unchanged,
    /// A few points were added since it: it stands, and they are added again from the
    /// store on the next open.
    Deferred,
    /// A new dump is written.
    Rewrite,
}

impl VectorIndex {
    /// Writes the dump and `vectors.json` into `dir`, replacing the previous dump. The
    /// graph is rewritten only when points were added since the last dump in this
    /// folder; deletions need no dump (the store knows them: an open marks them again).
    pub fn save(&mut self, dir: &Path, generation: u64) -> Result<(), IndexError> {
        std::fs::create_dir_all(dir).map_err(|e| IndexError::io(dir, e))?;
        let old = read_meta(dir).ok();
        let plan = self.checkpoint_plan(dir, old.as_ref());
        let meta = if let Some(old) = old.clone().filter(|_| plan != Checkpoint::Rewrite) {
            // The dump stands; the tombstones are the current ones. Those of points the
            // dump lacks are harmless: the opener marks only the points it holds, and the
            // store no longer has those frames to add.
            VectorMeta {
                generation,
                deleted: Some(self.deleted.runs()),
                ..old
            }
        } else {
            self.write_dump(dir, generation)?
        };
        write_meta(dir, &meta)?;
        remove_unused(dir, old.as_ref(), &meta);
        self.dir = Some(dir.to_path_buf());
        if plan != Checkpoint::Deferred {
            self.saved_points = self.points;
            self.graph.rebuilt.store(false, std::sync::atomic::Ordering::Release);
        }
        self.generation = generation;
        Ok(())
    }

    /// Whether a checkpoint into `dir`, whose `vectors.json` says `old`, must write a
    /// new dump.
    fn checkpoint_plan(&self, dir: &Path, old: Option<&VectorMeta>) -> Checkpoint {
        let same_dir = self.dir.as_deref() == Some(dir);
        let ours = same_dir
            && old.is_some_and(|m| {
                m.format == FORMAT && m.model == self.model && m.points == self.saved_points && !m.basename.is_empty()
            });
        // A graph built again from a damaged dump (known once loaded) is always written.
        let rebuilt = self.graph.get().is_some() && self.graph.rebuilt.load(std::sync::atomic::Ordering::Acquire);
        let added = self.points.saturating_sub(self.saved_points);
        // A few frames more than a large dump: rewriting the whole graph is not worth
        // it; the next open adds them from the store (as after a crash).
        let deferred = ours && !rebuilt && added > 0 && added <= DEFER_POINTS.min(self.points / 100);
        let unchanged = same_dir
            && !rebuilt
            && self.points == self.saved_points
            && old.is_some_and(|m| m.points == self.points && m.format == FORMAT && m.model == self.model);
        if unchanged {
            Checkpoint::Unchanged
        } else if deferred {
            Checkpoint::Deferred
        } else {
            Checkpoint::Rewrite
        }
    }

    /// Writes a new dump into `dir` (the graph, the frame ids of the exact file's slots,
    /// the exact file made durable there) and returns what `vectors.json` is to say of
    /// it. An empty index writes no files.
    fn write_dump(&mut self, dir: &Path, generation: u64) -> Result<VectorMeta, IndexError> {
        let mut meta = VectorMeta {
            format: FORMAT,
            generation,
            model: self.model.clone(),
            dim: self.dim,
            points: self.points,
            max_frame_id: self.max_frame_id,
            basename: String::new(),
            exact: String::new(),
            fingerprint: String::new(),
            deleted: Some(self.deleted.runs()),
            self_recall: None,
        };
        if self.points == 0 {
            return Ok(meta);
        }
        let base = unused_basename(dir, generation);
        // (hnsw_rs may still pick another name; use what it returns.)
        let graph = self.graph.get_mut(Some(dir))?;
        let basename = graph.hnsw.file_dump(dir, &base).map_err(|e| IndexError::Dump {
            dir: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        // What the load will check the graph against (the copy must hold every
        // point for the same walk; it does after a settle).
        meta.self_recall = (graph.behind() == 0).then(|| graph_self_recall(graph, &self.exact));
        let ids: Vec<u8> = self.exact.ids.iter().flat_map(|id| id.to_le_bytes()).collect();
        let ids_path = dir.join(format!("{basename}.ids"));
        std::fs::write(&ids_path, ids).map_err(|e| IndexError::io(&ids_path, e))?;
        meta.exact = self.exact.persist(dir, &format!("{basename}.exact"))?;
        meta.fingerprint = fingerprint(dir, &basename)?;
        meta.basename = basename;
        Ok(meta)
    }

    /// Loads the dump in `dir`. `Ok(None)` when there is none; an error when it is
    /// damaged, for another model or another dimension (the caller rebuilds then).
    /// `writable`: later additions may be appended to its exact file (the caller holds
    /// the folder's lock); else they are kept in memory.
    pub fn load(dir: &Path, model: &str, dim: usize, writable: bool) -> Result<Option<Self>, IndexError> {
        if !dir.join(META_FILE).exists() {
            return Ok(None);
        }
        let meta = read_meta(dir)?;
        if meta.format != FORMAT || meta.model != model || meta.dim != dim {
            return Err(IndexError::Stale(format!(
                "the vector index was built for {} (dim {}, format {}), the store uses {model} (dim {dim}, format {FORMAT})",
                meta.model, meta.dim, meta.format
            )));
        }
        let corrupt = |reason: String| IndexError::Corrupt {
            dir: dir.to_path_buf(),
            reason,
        };
        if meta.points == 0 {
            let mut idx = Self::create(model, dim, 1024, writable.then_some(dir));
            idx.generation = meta.generation;
            idx.max_frame_id = meta.max_frame_id;
            idx.deletions_known = meta.deleted.is_some();
            return Ok(Some(idx));
        }
        let fp = fingerprint(dir, &meta.basename)?;
        if fp != meta.fingerprint {
            return Err(corrupt(
                "the dump files do not match vectors.json (changed or truncated)".into(),
            ));
        }
        let ids_path = dir.join(format!("{}.ids", meta.basename));
        let raw = std::fs::read(&ids_path).map_err(|e| corrupt(format!("{}: {e}", ids_path.display())))?;
        let ids: Vec<i64> = raw
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect();
        if ids.len() != meta.points || ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err(corrupt(format!(
                "{}: not {} increasing frame ids",
                ids_path.display(),
                meta.points
            )));
        }
        // A second, read-only view of the exact file for the loader: its self-check
        // samples and, should the dump not load, the vectors to build the graph again.
        let reader = Exact::open(dir, &meta.exact, dim, ids.clone(), false)?;
        let exact = Exact::open(dir, &meta.exact, dim, ids, writable)?;
        let (d, base, points) = (dir.to_path_buf(), meta.basename.clone(), meta.points);
        let floor = recall_floor(meta.self_recall);
        let graph = GraphSlot::loading(move |rebuilt| load_graph(&d, &base, points, floor, &reader, rebuilt));
        let mut deleted = Tombstones::default();
        for &[first, last] in meta.deleted.iter().flatten() {
            for id in first..=last.min(meta.max_frame_id) {
                if exact.slot(id).is_some() {
                    deleted.insert(id);
                }
            }
        }
        Ok(Some(Self {
            graph,
            exact,
            dir: writable.then(|| dir.to_path_buf()),
            deleted,
            model: meta.model,
            dim: meta.dim,
            points: meta.points,
            max_frame_id: meta.max_frame_id,
            generation: meta.generation,
            saved_points: meta.points,
            deletions_known: meta.deleted.is_some(),
        }))
    }
}

pub(super) fn read_meta(dir: &Path) -> Result<VectorMeta, IndexError> {
    let p = dir.join(META_FILE);
    let text = std::fs::read_to_string(&p).map_err(|e| IndexError::io(&p, e))?;
    serde_json::from_str(&text).map_err(|e| IndexError::Corrupt {
        dir: dir.to_path_buf(),
        reason: format!("{META_FILE}: {e}"),
    })
}

/// A dump basename no file in `dir` has: a dump is never rewritten in place (a
/// background loader may still be reading it, and hnsw_rs ends the process when a file
/// it reads is cut short). Unused dumps are removed once `vectors.json` names another.
fn unused_basename(dir: &Path, generation: u64) -> String {
    let mut base = format!("vectors-g{generation}");
    for n in 1.. {
        if !dir.join(format!("{base}.hnsw.data")).exists() && !dir.join(format!("{base}.hnsw.graph")).exists() {
            break;
        }
        base = format!("vectors-g{generation}-{n}");
    }
    base
}

/// Replaces `vectors.json` in `dir` with `meta` (written beside it, then renamed).
fn write_meta(dir: &Path, meta: &VectorMeta) -> Result<(), IndexError> {
    let tmp = dir.join(format!("{META_FILE}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(meta).expect("meta serialises"))
        .map_err(|e| IndexError::io(&tmp, e))?;
    std::fs::rename(&tmp, dir.join(META_FILE)).map_err(|e| IndexError::io(dir, e))
}

/// Removes from `dir` the files `meta` (just written) no longer names: the `old` dump's,
/// when it was replaced, and the exact files of older dumps.
fn remove_unused(dir: &Path, old: Option<&VectorMeta>, meta: &VectorMeta) {
    if let Some(old) = old
        && !old.basename.is_empty()
        && old.basename != meta.basename
    {
        for ext in ["hnsw.graph", "hnsw.data", "ids"] {
            let _ = std::fs::remove_file(dir.join(format!("{}.{ext}", old.basename)));
        }
    }
    // Exact files of older dumps, and of builds by processes that ended before a
    // checkpoint (this process's own builds may be under way).
    let mine = format!("building-{}-", std::process::id());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".exact") && name != meta.exact && !name.starts_with(&mine) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Sizes of both dump files and their sampled FNV-1a hashes (`util::hash::sampled_hash`):
/// catches truncation and replaced files without reading gigabytes.
fn fingerprint(dir: &Path, basename: &str) -> Result<String, IndexError> {
    let mut out = String::new();
    for ext in ["hnsw.graph", "hnsw.data", "ids"] {
        let p: PathBuf = dir.join(format!("{basename}.{ext}"));
        let mut f = File::open(&p).map_err(|e| IndexError::Corrupt {
            dir: dir.to_path_buf(),
            reason: format!("{}: {e}", p.display()),
        })?;
        let (size, h) = crate::util::hash::sampled_hash(&mut f).map_err(|e| IndexError::io(&p, e))?;
        out.push_str(&format!("{size}:{h:016x};"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::vector::VectorBackend;
    use crate::index::vector::tests::{unit, wait_ready};

    #[test]
    fn save_load_round_trip_and_self_recall() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = VectorIndex::create("m", 32, 600, None);
        let data: Vec<(i64, Vec<f32>)> = (1..=600).map(|i| (i, unit(i as u64, 32))).collect();
        let refs: Vec<(i64, &[f32])> = data.iter().map(|(i, v)| (*i, v.as_slice())).collect();
        idx.insert(&refs).unwrap();
        assert!(idx.self_recall(&data, 64) >= 0.99);
        idx.save(dir.path(), 7).unwrap();
        let back = VectorIndex::load(dir.path(), "m", 32, true).unwrap().unwrap();
        assert_eq!((back.points, back.max_frame_id, back.generation), (600, 600, 7));
        assert_eq!(back.search(&data[10].1, 1, 64, None)[0].0, data[10].0);
        // (hnsw_rs ends the process when a dump it is reading is cut short: let the
        // background load finish before the file is damaged below.)
        wait_ready(&back);
        // Another model or dimension is stale, not silently used.
        assert!(matches!(
            VectorIndex::load(dir.path(), "other", 32, true),
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
            VectorIndex::load(dir.path(), "m", 32, true),
            Err(IndexError::Corrupt { .. })
        ));
    }

    #[test]
    fn empty_index_saves_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = VectorIndex::create("m", 8, 10, None);
        idx.save(dir.path(), 3).unwrap();
        let back = VectorIndex::load(dir.path(), "m", 8, true).unwrap().unwrap();
        assert_eq!(back.points, 0);
        assert!(back.search(&[0.0; 8], 5, 10, None).is_empty());
    }
}
