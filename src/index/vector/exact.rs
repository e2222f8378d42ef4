//! `Exact`: the float32 frame vectors beside the int8 graph, one slot per point in
//! frame-id order, in an append-only file of the data folder (memory-mapped up to the
//! last checkpoint) or in memory. It serves rescoring, the vectors search hands on, the
//! exact scan while a graph loads, and the rebuild of a graph; it knows nothing of the
//! graph or of `vectors.json`.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::IndexError;

/// The exact float32 vectors, one slot per point in insertion (= frame id) order: in a
/// file of the data folder when the index may write there, else (a read-only folder, an
/// index not yet saved anywhere) the slots beyond the file's are kept in memory.
pub(super) struct Exact {
    dim: usize,
    /// Frame id of each slot, increasing.
    pub(super) ids: Vec<i64>,
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
    pub(super) fn new(dim: usize, dir: Option<&Path>) -> Self {
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
    pub(super) fn mapped_slots(&self) -> usize {
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
    pub(super) fn with<R>(&self, id: i64, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
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

    pub(super) fn append(&mut self, items: &[(i64, &[f32])]) -> Result<(), IndexError> {
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

    pub(super) fn slot(&self, id: i64) -> Option<usize> {
        self.ids.binary_search(&id).ok()
    }

    /// The exact vector of frame `id` (None: not held, or the file cannot be read).
    fn get(&self, id: i64) -> Option<Vec<f32>> {
        self.with(id, <[f32]>::to_vec)
    }

    /// The exact vectors of frames `ids` (absent ones skipped), consecutive slots read
    /// together (a video's frames lie side by side).
    pub(super) fn get_many(&self, ids: &[i64]) -> Vec<(i64, Vec<f32>)> {
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
    pub(super) fn scan(&self, query: &[f32], k: usize, accept: &dyn Fn(i64) -> bool) -> Vec<(i64, f32)> {
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
    pub(super) fn persist(&mut self, dir: &Path, name: &str) -> Result<String, IndexError> {
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
    pub(super) fn open(dir: &Path, name: &str, dim: usize, ids: Vec<i64>, writable: bool) -> Result<Self, IndexError> {
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
