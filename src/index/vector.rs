//! `index::vector`: the approximate nearest-neighbour index over frame vectors (with
//! `index::compact`, the compact copy of the graph that searches walk, the only importers
//! of hnsw_rs). Points are frame ids; scores are cosine similarities (the vectors are
//! L2-normalised).
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

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use hnsw_rs::hnswio::HnswIo;
use hnsw_rs::prelude::{AnnT, Distance, Hnsw};

use super::compact::CompactGraph;
use crate::simd::dot_i8;
use serde::{Deserialize, Serialize};

use super::IndexError;

/// How the graph is built: neighbours per node (M; twice as many on the bottom layer)
/// and the build beam width. The default was chosen by `cargo bench --bench hnsw`
/// (recall@10, self-recall, build time and memory on shot-structured vectors; README).
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
const META_FILE: &str = "vectors.json";
/// 2: int8 graph + exact float32 file (format 1, float32 in the graph, is rebuilt).
const FORMAT: u32 = 2;
/// A checkpoint leaves the dump as it is while at most this many points (and 1% of the
/// graph) were added since it: about an hour of video, added again from the store on
/// the next open in a few seconds, against rewriting a graph of a million points.
const DEFER_POINTS: usize = 4096;

/// What `vectors.json` says about the dump beside it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct VectorMeta {
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
    /// that scores the same is the graph that was saved, even below [`MIN_SELF_RECALL`]
    /// (hnsw_rs' parallel insertion can leave a few points unreachable, and a rebuild
    /// with the same parameters would not do better).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_recall: Option<f64>,
}

/// The int8 form of a unit vector as the graph holds it: `round(x / s)` per value with
/// `s = max|x| / 127`, followed by the 4 bytes of `s` (so the distance needs no side table).
pub fn quantise(v: &[f32]) -> Vec<i8> {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let s = if max > 0.0 { max / 127.0 } else { 1.0 };
    let mut q: Vec<i8> = v.iter().map(|x| (x / s).round().clamp(-127.0, 127.0) as i8).collect();
    q.extend(s.to_le_bytes().map(|b| b as i8));
    q
}

fn scale_of(tail: &[i8]) -> f32 {
    f32::from_le_bytes([tail[0] as u8, tail[1] as u8, tail[2] as u8, tail[3] as u8])
}

/// `1 - cosine` of two [`quantise`]d vectors, from an integer dot product.
#[derive(Clone, Copy, Debug, Default)]
pub struct DistQ8;

impl Distance<i8> for DistQ8 {
    fn eval(&self, a: &[i8], b: &[i8]) -> f32 {
        let n = a.len().min(b.len()).saturating_sub(4);
        let d = dot_i8(&a[..n], &b[..n]) as f32 * scale_of(&a[n..]) * scale_of(&b[n..]);
        (1.0 - d).max(0.0)
    }
}

/// The exact float32 vectors, one slot per point in insertion (= frame id) order: in a
/// file of the data folder when the index may write there, else (a read-only folder, an
/// index not yet saved anywhere) the slots beyond the file's are kept in memory.
struct Exact {
    dim: usize,
    /// Frame id of each slot, increasing.
    ids: Vec<i64>,
    /// The file and its name in `dir`, when there is one.
    file: Option<(File, PathBuf)>,
    /// Slots in the file.
    file_slots: usize,
    /// Whether slots may be appended to the file (false: kept in `tail`).
    writable: bool,
    tail: Vec<f32>,
    /// The file's first slots memory-mapped, for rescoring without a read per vector
    /// (slots appended since are read from the file until the next checkpoint maps them).
    map: Option<memmap2::Mmap>,
}

/// A new (or emptied) file open for reading and writing.
fn create_rw(p: &Path) -> std::io::Result<File> {
    File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(p)
}

impl Drop for Exact {
    fn drop(&mut self) {
        // A build that never reached a checkpoint leaves nothing behind.
        if let Some((_, p)) = &self.file
            && p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("building-"))
        {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Exact {
    /// An empty store; `dir`: where its file goes (a temporary name until a checkpoint).
    fn new(dim: usize, dir: Option<&Path>) -> Self {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let file = dir.and_then(|d| {
            std::fs::create_dir_all(d).ok()?;
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = d.join(format!("building-{}-{n}.exact", std::process::id()));
            let f = create_rw(&p).ok()?;
            Some((f, p))
        });
        Self {
            dim,
            ids: Vec::new(),
            writable: file.is_some(),
            file,
            file_slots: 0,
            tail: Vec::new(),
            map: None,
        }
    }

    fn row_bytes(&self) -> u64 {
        self.dim as u64 * 4
    }

    /// Maps the file's slots (on little-endian machines, the file's byte order; else
    /// vectors are read).
    fn map_file(&mut self) {
        self.map = None;
        let Some((f, p)) = self.file.as_ref() else { return };
        if cfg!(target_endian = "big") || self.file_slots == 0 {
            return;
        }
        // SAFETY: the file is this index's own, in its data folder: slots are only
        // appended, and an open cuts off only slots past the last checkpoint, which a
        // map made from that checkpoint never covers. (A file shortened by someone else
        // while mapped would fault: the same hazard as any memory-mapped database.)
        let len = self.file_slots * self.dim * 4;
        match unsafe { memmap2::MmapOptions::new().len(len).map(f) } {
            Ok(m) => self.map = Some(m),
            Err(e) => tracing::warn!("{}: not memory-mapped ({e}); vectors are read instead", p.display()),
        }
    }

    /// Slots covered by the map.
    fn mapped_slots(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len() / (self.dim * 4).max(1))
    }

    /// Slot `slot`'s vector in place, when it lies in the mapped part of the file.
    fn mapped(&self, slot: usize) -> Option<&[f32]> {
        if slot >= self.mapped_slots() {
            return None;
        }
        let m = self.map.as_ref()?;
        let bytes = &m[slot * self.dim * 4..(slot + 1) * self.dim * 4];
        // SAFETY: the map starts page-aligned and rows are `dim` f32s, so `bytes` is
        // aligned for f32 and holds exactly `dim` of them, little-endian like this
        // machine (checked when mapping); every bit pattern is a valid f32.
        Some(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), self.dim) })
    }

    /// `f` of frame `id`'s exact vector (None: not held, or the file cannot be read):
    /// in place when it is mapped or in memory, else read from the file.
    fn with<R>(&self, id: i64, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
        let slot = self.slot(id)?;
        if let Some(v) = self.mapped(slot) {
            return Some(f(v));
        }
        if slot >= self.file_slots {
            let at = (slot - self.file_slots) * self.dim;
            return Some(f(&self.tail[at..at + self.dim]));
        }
        let (file, p) = self.file.as_ref()?;
        let mut buf = vec![0u8; self.dim * 4];
        if let Err(e) = file.read_exact_at(&mut buf, slot as u64 * self.row_bytes()) {
            tracing::warn!("{}: {e}", p.display());
            return None;
        }
        let v: Vec<f32> = buf
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Some(f(&v))
    }

    fn append(&mut self, items: &[(i64, &[f32])]) -> Result<(), IndexError> {
        if let Some(last) = self.ids.last()
            && items.first().is_some_and(|(id, _)| id <= last)
        {
            return Err(IndexError::Stale(format!(
                "frame {} offered after frame {last}: the vector index takes frames in id order",
                items[0].0
            )));
        }
        if self.writable
            && let Some((f, p)) = &self.file
        {
            let mut buf = Vec::with_capacity(items.len() * self.dim * 4);
            for (_, v) in items {
                for x in *v {
                    buf.extend_from_slice(&x.to_le_bytes());
                }
            }
            f.write_all_at(&buf, self.file_slots as u64 * self.row_bytes())
                .map_err(|e| IndexError::io(p, e))?;
            self.file_slots += items.len();
        } else {
            for (_, v) in items {
                self.tail.extend_from_slice(v);
            }
        }
        self.ids.extend(items.iter().map(|(id, _)| *id));
        Ok(())
    }

    fn slot(&self, id: i64) -> Option<usize> {
        self.ids.binary_search(&id).ok()
    }

    /// The exact vector of frame `id` (None: not held, or the file cannot be read).
    fn get(&self, id: i64) -> Option<Vec<f32>> {
        self.with(id, <[f32]>::to_vec)
    }

    /// The exact vectors of frames `ids` (absent ones skipped), consecutive slots read
    /// together (a video's frames lie side by side).
    fn get_many(&self, ids: &[i64]) -> Vec<(i64, Vec<f32>)> {
        let mut slots: Vec<(usize, i64)> = ids.iter().filter_map(|id| Some((self.slot(*id)?, *id))).collect();
        slots.sort_unstable();
        slots.dedup();
        let mut out = Vec::with_capacity(slots.len());
        let mut i = 0;
        while i < slots.len() {
            let mut j = i + 1;
            while j < slots.len() && slots[j].0 == slots[j - 1].0 + 1 && slots[j].0 < self.file_slots && j - i < 4096 {
                j += 1;
            }
            let (first, n) = (slots[i].0, j - i);
            if first < self.file_slots && n > 1 {
                let Some((f, p)) = self.file.as_ref() else { break };
                let mut buf = vec![0u8; n * self.dim * 4];
                if let Err(e) = f.read_exact_at(&mut buf, first as u64 * self.row_bytes()) {
                    tracing::warn!("{}: {e}", p.display());
                    return out;
                }
                for (k, row) in buf.chunks_exact(self.dim * 4).enumerate() {
                    let v = row
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect();
                    out.push((slots[i + k].1, v));
                }
            } else if let Some(v) = self.get(slots[i].1) {
                out.push((slots[i].1, v));
                j = i + 1;
            }
            i = j;
        }
        out
    }

    /// The `k` best slots for `query` by exact cosine among the frames `accept` keeps:
    /// a sequential pass over every vector (searches while the graph is still being
    /// loaded; the file is read in blocks of a few MB).
    fn scan(&self, query: &[f32], k: usize, accept: &dyn Fn(i64) -> bool) -> Vec<(i64, f32)> {
        let mut best: Vec<(i64, f32)> = Vec::with_capacity(4 * k + 1);
        let keep = |id: i64, v: &[f32], best: &mut Vec<(i64, f32)>| {
            if accept(id) {
                best.push((id, crate::simd::dot(query, v)));
                if best.len() > 4 * k {
                    best.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1));
                    best.truncate(k);
                }
            }
        };
        if k == 0 {
            return best;
        }
        const BLOCK: usize = 4096;
        let mut rows = vec![0f32; BLOCK * self.dim];
        let mut slot = 0;
        while slot < self.file_slots {
            let Some((f, p)) = self.file.as_ref() else { break };
            let n = (self.file_slots - slot).min(BLOCK);
            let buf = &mut rows[..n * self.dim];
            // SAFETY: f32 has no invalid bit patterns and the byte view covers exactly
            // `buf`; the file holds little-endian f32, this machine's order (checked below).
            let bytes = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), buf.len() * 4) };
            if let Err(e) = f.read_exact_at(bytes, slot as u64 * self.row_bytes()) {
                tracing::warn!("{}: {e}", p.display());
                break;
            }
            if cfg!(target_endian = "big") {
                for x in buf.iter_mut() {
                    *x = f32::from_bits(x.to_bits().swap_bytes());
                }
            }
            for (i, v) in buf.chunks_exact(self.dim).enumerate() {
                keep(self.ids[slot + i], v, &mut best);
            }
            slot += n;
        }
        for (i, v) in self.tail.chunks_exact(self.dim).enumerate() {
            keep(self.ids[self.file_slots + i], v, &mut best);
        }
        best.sort_by(|a, b| b.1.total_cmp(&a.1));
        best.truncate(k);
        best
    }

    /// Makes every slot durable in `dir` under `name` (a file of another folder, or
    /// slots held in memory, are copied into a new file first). Returns the file name.
    fn persist(&mut self, dir: &Path, name: &str) -> Result<String, IndexError> {
        let in_dir = self.writable && self.file.as_ref().is_some_and(|(_, p)| p.parent() == Some(dir));
        if !in_dir {
            let p = dir.join(format!("building-{}-copy.exact", std::process::id()));
            let f = create_rw(&p).map_err(|e| IndexError::io(&p, e))?;
            let mut at = 0u64;
            if let Some((old, _)) = &self.file {
                let mut buf = vec![0u8; 1 << 20];
                let end = self.file_slots as u64 * self.row_bytes();
                while at < end {
                    let n = ((end - at) as usize).min(buf.len());
                    old.read_exact_at(&mut buf[..n], at)
                        .map_err(|e| IndexError::io(&p, e))?;
                    f.write_all_at(&buf[..n], at).map_err(|e| IndexError::io(&p, e))?;
                    at += n as u64;
                }
            }
            let mut buf = Vec::with_capacity(self.tail.len() * 4);
            for x in &self.tail {
                buf.extend_from_slice(&x.to_le_bytes());
            }
            f.write_all_at(&buf, at).map_err(|e| IndexError::io(&p, e))?;
            self.file = Some((f, p));
            self.file_slots = self.ids.len();
            self.tail = Vec::new();
            self.writable = true;
            self.map = None;
        }
        let (f, p) = self.file.as_mut().expect("a file now");
        f.sync_data().map_err(|e| IndexError::io(p, e))?;
        let is_named = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| !n.starts_with("building-"));
        if !is_named {
            let target = dir.join(name);
            std::fs::rename(&*p, &target).map_err(|e| IndexError::io(&target, e))?;
            *p = target;
        }
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if self.mapped_slots() < self.file_slots {
            self.map_file();
        }
        Ok(name)
    }

    /// The exact file `name` in `dir` holding (at least) `ids.len()` slots. Slots past
    /// them (written after the last checkpoint) are cut off when `writable`.
    fn open(dir: &Path, name: &str, dim: usize, ids: Vec<i64>, writable: bool) -> Result<Self, IndexError> {
        let p = dir.join(name);
        let corrupt = |reason: String| IndexError::Corrupt {
            dir: dir.to_path_buf(),
            reason,
        };
        let opened = if writable {
            File::options().read(true).write(true).open(&p)
        } else {
            File::open(&p)
        };
        let (f, writable) = match opened {
            Ok(f) => (f, writable),
            Err(e) if writable && e.kind() != std::io::ErrorKind::NotFound => (
                File::open(&p).map_err(|e| corrupt(format!("{}: {e}", p.display())))?,
                false,
            ),
            Err(e) => return Err(corrupt(format!("{}: {e}", p.display()))),
        };
        let need = ids.len() as u64 * dim as u64 * 4;
        let len = f.metadata().map_err(|e| IndexError::io(&p, e))?.len();
        if len < need {
            return Err(corrupt(format!("{}: {len} bytes, {need} expected", p.display())));
        }
        if writable && len > need {
            f.set_len(need).map_err(|e| IndexError::io(&p, e))?;
        }
        let mut exact = Self {
            dim,
            file_slots: ids.len(),
            ids,
            file: Some((f, p)),
            writable,
            tail: Vec::new(),
            map: None,
        };
        exact.map_file();
        Ok(exact)
    }
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

/// Deleted frame ids: a bit per id up to the largest (frame ids are the store's dense
/// row ids; a lookup per visited point in a filtered graph search, so no hashing).
#[derive(Default)]
struct Tombstones {
    bits: Vec<u64>,
    len: usize,
}

impl Tombstones {
    fn contains(&self, id: i64) -> bool {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.bits.get(i / 64))
            .is_some_and(|w| w >> (id % 64) & 1 == 1)
    }
    fn insert(&mut self, id: i64) {
        let Ok(i) = usize::try_from(id) else { return };
        if self.bits.len() <= i / 64 {
            self.bits.resize(i / 64 + 1, 0);
        }
        let bit = 1u64 << (i % 64);
        if self.bits[i / 64] & bit == 0 {
            self.bits[i / 64] |= bit;
            self.len += 1;
        }
    }
    fn len(&self) -> usize {
        self.len
    }
    fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The deleted ids as runs of consecutive ids `[first, last]`, in order.
    fn runs(&self) -> Vec<[i64; 2]> {
        let mut runs: Vec<[i64; 2]> = Vec::new();
        for (w, &word) in self.bits.iter().enumerate() {
            let mut rest = word;
            while rest != 0 {
                let id = (w * 64 + rest.trailing_zeros() as usize) as i64;
                rest &= rest - 1;
                match runs.last_mut() {
                    Some(r) if r[1] + 1 == id => r[1] = id,
                    _ => runs.push([id, id]),
                }
            }
        }
        runs
    }
}

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

type Graph = Hnsw<'static, i8, DistQ8>;

/// A usable graph: hnsw_rs' own, and the compact copy searches walk (compact.rs). While
/// the copy lacks points a large insertion added, searches use hnsw_rs' own walk until
/// [`VectorBackend::settle`] (or the next small insertion) copies it again.
struct Ready {
    hnsw: Graph,
    compact: CompactGraph,
}

impl Ready {
    fn new(hnsw: Graph) -> Self {
        let compact = CompactGraph::copy(&hnsw);
        Self { hnsw, compact }
    }

    /// Points of the graph the copy does not hold yet.
    fn behind(&self) -> usize {
        self.hnsw.get_nb_point().saturating_sub(self.compact.len())
    }

    /// Brings the copy up to the graph after `added` points were inserted. Refreshing
    /// reads again about `added` x 2M points (the new points' neighbours), so a batch
    /// that would read about as many as a whole copy leaves it for one copy later
    /// (a catch-up of 20,000-point batches would otherwise re-read most of the graph
    /// per batch).
    fn grown(&mut self, added: usize) {
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

/// The graph, or the graph a background thread is loading from a dump. Until it is
/// there, searches are exact scans of the exact file (correct, slower), so a library
/// opens in the time it takes to read its metadata; writes wait for it.
struct GraphSlot {
    /// Set once by the loader: the graph, or why none could be made.
    slot: std::sync::Arc<std::sync::OnceLock<Result<Ready, String>>>,
    /// The loading thread (None: made here, or already joined).
    loader: Option<std::thread::JoinHandle<()>>,
    /// Set by the loader when the dump was damaged and the graph built again: the next
    /// checkpoint must write a new dump, or every open would rebuild it.
    rebuilt: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl GraphSlot {
    fn ready(graph: Graph) -> Self {
        Self {
            slot: std::sync::Arc::new(std::sync::OnceLock::from(Ok(Ready::new(graph)))),
            loader: None,
            rebuilt: Default::default(),
        }
    }

    /// Starts `load` on its own thread; `load` is told where to report a rebuild.
    fn loading(load: impl FnOnce(&std::sync::atomic::AtomicBool) -> Result<Ready, String> + Send + 'static) -> Self {
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
    fn get_if_ready_mut(&mut self) -> Option<&mut Ready> {
        if self.loader.as_ref().is_some_and(|h| !h.is_finished()) {
            return None;
        }
        std::sync::Arc::get_mut(&mut self.slot)
            .and_then(|s| s.get_mut())
            .and_then(|g| g.as_mut().ok())
    }

    /// The graph when it is there.
    fn get(&self) -> Option<&Ready> {
        self.slot.get().and_then(|g| g.as_ref().ok())
    }

    /// The graph, waiting for the loader; an error when none could be made.
    fn get_mut(&mut self, dir: Option<&Path>) -> Result<&mut Ready, IndexError> {
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

    /// Writes the dump and `vectors.json` into `dir`, replacing the previous dump. The
    /// graph is rewritten only when points were added since the last dump in this
    /// folder; deletions need no dump (the store knows them: an open marks them again).
    pub fn save(&mut self, dir: &Path, generation: u64) -> Result<(), IndexError> {
        std::fs::create_dir_all(dir).map_err(|e| IndexError::io(dir, e))?;
        let old = read_meta(dir).ok();
        let same_dir = self.dir.as_deref() == Some(dir);
        let ours = same_dir
            && old.as_ref().is_some_and(|m| {
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
            && old
                .as_ref()
                .is_some_and(|m| m.points == self.points && m.format == FORMAT && m.model == self.model);
        let mut self_recall = None;
        let meta = if let Some(old) = old.clone().filter(|_| unchanged || deferred) {
            // The dump stands; the tombstones are the current ones. Those of points the
            // dump lacks are harmless: the opener marks only the points it holds, and the
            // store no longer has those frames to add.
            VectorMeta {
                generation,
                deleted: Some(self.deleted.runs()),
                ..old
            }
        } else {
            let (basename, exact, fingerprint) = if self.points > 0 {
                // A name no file has: a dump is never rewritten in place (a background
                // loader may still be reading it, and hnsw_rs ends the process when a
                // file it reads is cut short). Unused dumps are removed below.
                let mut base = format!("vectors-g{generation}");
                for n in 1.. {
                    if !dir.join(format!("{base}.hnsw.data")).exists()
                        && !dir.join(format!("{base}.hnsw.graph")).exists()
                    {
                        break;
                    }
                    base = format!("vectors-g{generation}-{n}");
                }
                // (hnsw_rs may still pick another name; use what it returns.)
                let graph = self.graph.get_mut(Some(dir))?;
                let basename = graph.hnsw.file_dump(dir, &base).map_err(|e| IndexError::Dump {
                    dir: dir.to_path_buf(),
                    reason: e.to_string(),
                })?;
                // What the load will check the graph against (the copy must hold every
                // point for the same walk; it does after a settle).
                self_recall = (graph.behind() == 0).then(|| graph_self_recall(graph, &self.exact));
                let ids: Vec<u8> = self.exact.ids.iter().flat_map(|id| id.to_le_bytes()).collect();
                let ids_path = dir.join(format!("{basename}.ids"));
                std::fs::write(&ids_path, ids).map_err(|e| IndexError::io(&ids_path, e))?;
                let exact = self.exact.persist(dir, &format!("{basename}.exact"))?;
                let fp = fingerprint(dir, &basename)?;
                (basename, exact, fp)
            } else {
                (String::new(), String::new(), String::new())
            };
            VectorMeta {
                format: FORMAT,
                generation,
                model: self.model.clone(),
                dim: self.dim,
                points: self.points,
                max_frame_id: self.max_frame_id,
                basename,
                exact,
                fingerprint,
                deleted: Some(self.deleted.runs()),
                self_recall,
            }
        };
        let tmp = dir.join(format!("{META_FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(&meta).expect("meta serialises"))
            .map_err(|e| IndexError::io(&tmp, e))?;
        std::fs::rename(&tmp, dir.join(META_FILE)).map_err(|e| IndexError::io(dir, e))?;
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
        self.dir = Some(dir.to_path_buf());
        if !deferred {
            self.saved_points = self.points;
            self.graph.rebuilt.store(false, std::sync::atomic::Ordering::Release);
        }
        self.generation = generation;
        Ok(())
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

pub fn read_meta(dir: &Path) -> Result<VectorMeta, IndexError> {
    let p = dir.join(META_FILE);
    let text = std::fs::read_to_string(&p).map_err(|e| IndexError::io(&p, e))?;
    serde_json::from_str(&text).map_err(|e| IndexError::Corrupt {
        dir: dir.to_path_buf(),
        reason: format!("{META_FILE}: {e}"),
    })
}

/// Self-recall of a loaded graph below this: it is built again from the exact vectors.
pub const MIN_SELF_RECALL: f64 = 0.98;

/// The self-recall a loaded graph must reach: what it had when saved, less two points
/// of the 200 (the copy it was measured on may have been refreshed piecemeal, the load's
/// is whole; a dump that lost points falls much further), at most [`MIN_SELF_RECALL`]
/// and at least 0.9 (a graph below that was built again before it was saved);
/// [`MIN_SELF_RECALL`] for dumps that did not record it.
fn recall_floor(saved: Option<f64>) -> f64 {
    saved.map_or(MIN_SELF_RECALL, |r| (r - 0.01).clamp(0.9, MIN_SELF_RECALL))
}

/// The dump's graph (on the loader thread), checked: of up to 200 evenly spread points,
/// at least the share `floor` must find themselves (the graph's self-recall when it was
/// saved, at most [`MIN_SELF_RECALL`]). A dump that does not load, or loses points, is
/// replaced by a graph built from the exact vectors (`reader`); searches are exact scans
/// meanwhile. `rebuilt` is set when it had to be built again.
fn load_graph(
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
fn graph_self_recall(graph: &Ready, reader: &Exact) -> f64 {
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

/// An empty graph for about `capacity` points.
fn new_graph(capacity: usize, p: HnswParams) -> Graph {
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
fn add_to_graph(graph: &Graph, items: &[(i64, &[f32])]) {
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
fn build_graph(reader: &Exact, p: HnswParams) -> Result<Graph, String> {
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

    /// Frame `i` of `clusters` groups of near-duplicates (as a library's shots are).
    fn clustered(i: i64, clusters: u64, dim: usize) -> Vec<f32> {
        let c = unit(1_000_000 + (i as u64 % clusters), dim);
        let n = unit(i as u64, dim);
        let mut v: Vec<f32> = c.iter().zip(&n).map(|(a, b)| a + 0.6 * b).collect();
        let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
        v.iter_mut().for_each(|a| *a /= norm);
        v
    }

    #[test]
    fn the_compact_copy_finds_what_hnsw_rs_finds_and_follows_insertions() {
        let dim = 48;
        let mut idx = VectorIndex::create("m", dim, 5000, None);
        let data: Vec<(i64, Vec<f32>)> = (1..=4400).map(|i| (i, clustered(i, 40, dim))).collect();
        // Large batches (parallel insertion), then small ones (one point at a time),
        // each followed by a refresh of the copy.
        for chunk in data[..4000].chunks(1000).chain(data[4000..].chunks(10)) {
            let refs: Vec<(i64, &[f32])> = chunk.iter().map(|(i, v)| (*i, v.as_slice())).collect();
            idx.insert(&refs).unwrap();
        }
        let ready = idx.graph.get().unwrap();
        assert_eq!(ready.compact.len(), 4400);
        // Every point added in the small batches is reachable in the copy: the old
        // points' neighbour lists that now name them were read again.
        let late = &data[4000..];
        let found = late
            .iter()
            .filter(|(id, v)| {
                ready
                    .compact
                    .search(&quantise(v), 3, 64, None)
                    .iter()
                    .any(|(d, _)| *d as i64 == *id)
            })
            .count();
        assert!(
            found as f64 >= 0.98 * late.len() as f64,
            "{found} of {} found themselves",
            late.len()
        );
        // Recall@10 against brute force, beside hnsw_rs' own search of the same graph.
        let (mut ours, mut theirs) = (0usize, 0usize);
        let queries = 100;
        for qi in 0..queries {
            let base = &data[(qi * 43) % data.len()].1;
            let noise = unit(77_000 + qi as u64, dim);
            let mut q: Vec<f32> = base.iter().zip(&noise).map(|(a, b)| a + 0.3 * b).collect();
            let norm = q.iter().map(|a| a * a).sum::<f32>().sqrt();
            q.iter_mut().for_each(|a| *a /= norm);
            let mut exact: Vec<(i64, f32)> = data.iter().map(|(id, v)| (*id, crate::simd::dot(&q, v))).collect();
            exact.sort_by(|a, b| b.1.total_cmp(&a.1));
            let truth: std::collections::HashSet<i64> = exact[..10].iter().map(|(id, _)| *id).collect();
            let qq = quantise(&q);
            ours += ready
                .compact
                .search(&qq, 10, 48, None)
                .iter()
                .filter(|(id, _)| truth.contains(&(*id as i64)))
                .count();
            theirs += ready
                .hnsw
                .search(&qq, 10, 48)
                .iter()
                .filter(|n| truth.contains(&(n.d_id as i64)))
                .count();
        }
        let (ours, theirs) = (
            ours as f64 / (10 * queries) as f64,
            theirs as f64 / (10 * queries) as f64,
        );
        assert!(
            ours >= 0.85 && ours >= theirs - 0.03,
            "recall@10: copy {ours}, hnsw_rs {theirs}"
        );
        // The distances are the graph's int8 ones, nearest first.
        let hits = ready.compact.search(&quantise(&data[5].1), 5, 48, None);
        assert_eq!(hits[0].0, 6);
        assert!(hits.windows(2).all(|w| w[0].1 <= w[1].1));
        // A filter: only one cluster's points (a fortieth of the graph) are returned,
        // the nearest of them (brute force over the accepted points) among them.
        let accept = |id: usize| id % 40 == 7;
        let q = &data[100].1;
        let hits = ready.compact.search(&quantise(q), 10, 200, Some(&accept));
        assert_eq!(hits.len(), 10);
        assert!(hits.iter().all(|(id, _)| accept(*id)));
        let mut exact: Vec<(i64, f32)> = data
            .iter()
            .filter(|(id, _)| accept(*id as usize))
            .map(|(id, v)| (*id, crate::simd::dot(q, v)))
            .collect();
        exact.sort_by(|a, b| b.1.total_cmp(&a.1));
        let truth: std::collections::HashSet<i64> = exact[..10].iter().map(|(id, _)| *id).collect();
        let got = hits.iter().filter(|(id, _)| truth.contains(&(*id as i64))).count();
        assert!(got >= 8, "filtered recall@10 {got}/10");
        // A fresh full copy holds the same points.
        assert_eq!(CompactGraph::copy(&ready.hnsw).len(), 4400);
        // A large batch leaves the copy for later: searches use hnsw_rs' walk (and find
        // the new points) until `settle` copies the whole graph again.
        let more: Vec<(i64, Vec<f32>)> = (4401..=5600).map(|i| (i, clustered(i, 40, dim))).collect();
        let refs: Vec<(i64, &[f32])> = more.iter().map(|(i, v)| (*i, v.as_slice())).collect();
        idx.insert(&refs).unwrap();
        assert_eq!(idx.graph.get().unwrap().behind(), 1200);
        assert_eq!(idx.search(&more[7].1, 1, 64, None)[0].0, 4408);
        idx.settle();
        let ready = idx.graph.get().unwrap();
        assert_eq!(ready.behind(), 0);
        assert_eq!(ready.compact.len(), 5600);
        assert_eq!(ready.compact.search(&quantise(&more[7].1), 1, 64, None)[0].0, 4408);
    }

    #[test]
    fn deleted_frames_are_never_returned_and_their_neighbours_still_are() {
        let mut idx = VectorIndex::create("m", 32, 2000, None);
        // Twenty clusters of 100 near-duplicates (a video's frames are alike).
        let data: Vec<(i64, Vec<f32>)> = (0..2000i64)
            .map(|i| {
                let (c, j) = (i / 100, i % 100);
                let mut v: Vec<f32> = unit(c as u64, 32)
                    .iter()
                    .zip(unit(5000 + i as u64, 32))
                    .map(|(a, b)| a + 0.3 * b)
                    .collect();
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter_mut().for_each(|x| *x /= n);
                (c * 1000 + j + 1, v)
            })
            .collect();
        let refs: Vec<(i64, &[f32])> = data.iter().map(|(i, v)| (*i, v.as_slice())).collect();
        idx.insert(&refs).unwrap();
        // A few frames of cluster 0 (the unfiltered beam, filtered after) and all of
        // cluster 1 (its queries must fall back to the filtered search).
        let gone: Vec<i64> = (1..=10).chain(1001..=1100).collect();
        idx.delete(&gone);
        assert_eq!(idx.live(), 2000 - gone.len());
        let (mut asked, mut found) = (0, 0);
        for (id, v) in data.iter().step_by(7) {
            let hits = idx.search(v, 50, 128, None);
            assert_eq!(hits.len(), 50, "query {id}");
            assert!(
                hits.iter().all(|(h, _)| !gone.contains(h)),
                "query {id} returned a deleted frame"
            );
            if !gone.contains(id) {
                // (The graph is approximate and built in parallel: nearly always.)
                asked += 1;
                found += usize::from(hits.iter().any(|(h, _)| h == id));
            } else if *id > 1000 {
                // Only other clusters' frames are left for a deleted cluster's query.
                assert!(hits.iter().all(|(h, _)| h / 1000 != 1));
            }
        }
        assert!(
            found * 10 >= asked * 9,
            "live queries found their own frame {found} times of {asked}"
        );
        assert!(!idx.deleted.contains(11) && idx.deleted.contains(10) && !idx.deleted.contains(-3));
    }

    #[test]
    fn int8_distance_is_close_to_the_cosine() {
        for i in 0..50u64 {
            let (a, b) = (unit(i, 512), unit(i + 1000, 512));
            // Correlated pairs too (near-duplicates are what the graph must order).
            let c: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + 0.1 * y).collect();
            let n = c.iter().map(|x| x * x).sum::<f32>().sqrt();
            let c: Vec<f32> = c.iter().map(|x| x / n).collect();
            for (x, y) in [(&a, &b), (&a, &c)] {
                let exact = crate::simd::dot(x, y);
                let q = 1.0 - DistQ8.eval(&quantise(x), &quantise(y));
                assert!((exact - q).abs() < 4e-3, "{exact} vs {q}");
            }
        }
    }

    #[test]
    fn scores_are_exact_and_additions_after_a_save_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<(i64, Vec<f32>)> = (1..=900).map(|i| (i * 3, unit(i as u64, 64))).collect();
        let refs: Vec<(i64, &[f32])> = data.iter().map(|(i, v)| (*i, v.as_slice())).collect();
        let mut idx = VectorIndex::create("m", 64, 900, Some(dir.path()));
        idx.insert(&refs[..600]).unwrap();
        idx.save(dir.path(), 1).unwrap();
        // The saved slots are read in place (memory-mapped); later ones from the file.
        assert_eq!(idx.exact.mapped_slots(), 600);
        idx.insert(&refs[600..]).unwrap();
        // The cosine reported is the float32 one, not the int8 estimate, for mapped
        // and appended slots alike.
        for q in [100, 599, 700] {
            let hits = idx.search(&data[q].1, 5, 64, None);
            assert_eq!(hits[0].0, data[q].0);
            assert_eq!(hits[0].1, crate::simd::dot(&data[q].1, &data[q].1));
            for (id, s) in &hits {
                let v = &data.iter().find(|(i, _)| i == id).unwrap().1;
                assert_eq!(*s, crate::simd::dot(&data[q].1, v));
            }
        }
        assert_eq!(
            idx.vectors(&[data[650].0, 5]).unwrap(),
            vec![(data[650].0, data[650].1.clone())]
        );
        // A run of consecutive slots (read at once), across the saved part and the rest.
        let run: Vec<i64> = data[590..620].iter().rev().map(|(i, _)| *i).collect();
        let got = idx.vectors(&run).unwrap();
        assert_eq!(got.len(), 30);
        for (id, v) in got {
            assert_eq!(&v, &data.iter().find(|(i, _)| *i == id).unwrap().1);
        }
        // Reloaded: the dump's 600 points; slots written after it are cut off, and
        // adding them again (as the catalog's catch-up does) gives the same index.
        let mut back = VectorIndex::load(dir.path(), "m", 64, true).unwrap().unwrap();
        assert_eq!((back.points, back.max_frame_id), (600, data[599].0));
        assert_eq!(back.exact.mapped_slots(), 600);
        assert!(back.vectors(&[data[650].0]).unwrap().is_empty());
        back.insert(&refs[600..]).unwrap();
        assert_eq!(back.vectors(&[data[650].0]).unwrap()[0].1, data[650].1);
        assert!(back.self_recall(&data, 64) >= 0.99);
        // Read-only: additions stay in memory, the file is untouched.
        let size = |d: &Path| {
            let m = read_meta(d).unwrap();
            std::fs::metadata(d.join(m.exact)).unwrap().len()
        };
        let before = size(dir.path());
        let mut ro = VectorIndex::load(dir.path(), "m", 64, false).unwrap().unwrap();
        ro.insert(&refs[600..]).unwrap();
        assert_eq!(ro.vectors(&[data[899].0]).unwrap()[0].1, data[899].1);
        assert_eq!(size(dir.path()), before);
        // Out of order is refused (the exact file is in frame-id order).
        assert!(back.insert(&[(2, data[0].1.as_slice())]).is_err());
    }

    fn wait_ready(idx: &VectorIndex) {
        while !idx.ready() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

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
