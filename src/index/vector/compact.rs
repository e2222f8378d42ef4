//! A compact, read-only copy of hnsw_rs' graph that searches walk instead of hnsw_rs'
//! own structure (which stays the graph: it is built, grown and saved by hnsw_rs).
//!
//! hnsw_rs keeps each neighbour as an `Arc` to a point whose vector is a heap `Vec` of
//! its own, and its search allocates two `Arc`s and a hash-map entry per point it
//! visits: each neighbour looked at costs two or three dependent cache misses before its
//! distance. At a million frames a search is bound by them (perf: hnsw_rs'
//! `search_layer`). Here a node's bottom-layer neighbours are one run of `u32`s, the
//! visited set is a bit per node, the heaps hold plain integers, and the vectors of all
//! unvisited neighbours of a node are prefetched together before any distance is taken,
//! so their misses overlap. The upper layers are descended greedily to a local minimum
//! on each layer (hnsw_rs moves at most one step per layer), which starts the bottom
//! search nearer the query. The vectors themselves are not copied: the copy points into
//! the graph's points, which hnsw_rs never moves or frees while the graph lives.
//!
//! A node is hnsw_rs' `PointId` (top layer, rank in that layer's table) packed into a
//! `u32`. After an insertion only the new points and the points they list are read
//! again ([`CompactGraph::refresh`]): hnsw_rs changes no other point's neighbours when it adds
//! one, except a reverse edge it later drops again from the new point's own list (that
//! edge is then missing here until the next full copy: at the next open or rebuild, or
//! after a large insertion, which is not refreshed point by point but copied whole).

use hnsw_rs::prelude::{Distance, Neighbour, PointId};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::graph::Graph;
use super::quant::DistQ8;

const RANK_BITS: u32 = 28;
const RANK_MASK: u32 = (1 << RANK_BITS) - 1;

fn node(p: PointId) -> u32 {
    (p.0 as u32) << RANK_BITS | (p.1 as u32 & RANK_MASK)
}

fn split(n: u32) -> (usize, usize) {
    ((n >> RANK_BITS) as usize, (n & RANK_MASK) as usize)
}

/// A heap entry: the distance's bits (distances are >= 0, so their bits order as the
/// floats do) above the node.
fn key(d: f32, n: u32) -> u64 {
    (d.max(0.0).to_bits() as u64) << 32 | n as u64
}

fn key_dist(k: u64) -> f32 {
    f32::from_bits((k >> 32) as u32)
}

/// The points whose top layer is one level.
#[derive(Default)]
struct Level {
    /// Each point's int8 vector in the graph (owned by hnsw_rs' point).
    data: Vec<*const i8>,
    /// The caller's id of each point (the frame id).
    origin: Vec<usize>,
    /// Bottom-layer neighbours: `stride` slots per point, the first `count` used.
    bottom: Vec<u32>,
    count: Vec<u16>,
    /// For points above the bottom layer: their neighbours on layers 1..=level.
    upper: Vec<Vec<Vec<u32>>>,
}

/// The nodes a search has visited: a bit per node, the levels' nodes side by side.
struct Visited {
    /// Bit of each level's first node.
    base: Vec<usize>,
    bits: Vec<u64>,
}

impl Visited {
    fn new(levels: &[Level]) -> Self {
        let mut base = Vec::with_capacity(levels.len());
        let mut total = 0;
        for l in levels {
            base.push(total);
            total += l.origin.len();
        }
        Self {
            base,
            bits: vec![0u64; total.div_ceil(64)],
        }
    }

    /// Marks node `n` visited; whether it was not yet.
    #[inline(always)]
    fn mark(&mut self, n: u32) -> bool {
        let (l, r) = split(n);
        let i = self.base[l] + r;
        let (w, b) = (i / 64, 1u64 << (i % 64));
        let new = self.bits[w] & b == 0;
        self.bits[w] |= b;
        new
    }
}

pub(super) struct CompactGraph {
    /// Bytes per vector (the values and their scale).
    vlen: usize,
    /// Bottom-layer neighbours per point at most (2M).
    stride: usize,
    levels: Vec<Level>,
    /// The node searches start from (a point of the top layer).
    entry: Option<u32>,
}

// SAFETY: the raw pointers point into vectors owned by the graph this copy is kept
// beside (see `Ready` in graph.rs); they are only read, and hnsw_rs never moves or
// frees a point's vector while its graph lives.
unsafe impl Send for CompactGraph {}
unsafe impl Sync for CompactGraph {}

/// Hints the CPU to fetch `bytes` at `p` into its caches (a hint: no fault, no effect
/// on the result).
#[inline(always)]
fn prefetch(p: *const i8, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let mut o = 0;
        while o < bytes {
            // SAFETY: a prefetch never faults, whatever the address.
            #[allow(unused_unsafe)]
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.wrapping_add(o));
            }
            o += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, bytes);
}

impl CompactGraph {
    /// A copy of the whole graph.
    pub(super) fn copy(graph: &Graph) -> Self {
        let mut f = Self {
            vlen: 0,
            stride: 2 * graph.get_max_nb_connection() as usize,
            levels: Vec::new(),
            entry: None,
        };
        f.refresh(graph);
        f
    }

    /// Bottom-layer neighbours per point at most.
    pub(super) fn stride(&self) -> usize {
        self.stride
    }

    /// Points in the copy.
    pub(super) fn len(&self) -> usize {
        self.levels.iter().map(|l| l.origin.len()).sum()
    }

    /// Takes in the points the graph gained since the copy was made or last refreshed,
    /// and reads again the neighbours of the points they list.
    pub(super) fn refresh(&mut self, graph: &Graph) {
        let pi = graph.get_point_indexation();
        let top = pi.get_max_level_observed() as usize;
        if pi.get_nb_point() == 0 {
            return;
        }
        while self.levels.len() <= top {
            self.levels.push(Level::default());
        }
        let old: Vec<usize> = self.levels.iter().map(|l| l.origin.len()).collect();
        // A first copy takes exactly the room it needs (a million points: 200 MB).
        for (l, lv) in self.levels.iter_mut().enumerate() {
            if lv.origin.is_empty() {
                let n = pi.get_layer_nb_point(l);
                lv.data.reserve_exact(n);
                lv.origin.reserve_exact(n);
                lv.count.reserve_exact(n);
                lv.bottom.reserve_exact(n * self.stride);
                if l > 0 {
                    lv.upper.reserve_exact(n);
                }
            }
        }
        let mut touched: Vec<Vec<usize>> = vec![Vec::new(); self.levels.len()];
        for (l, &from) in old.iter().enumerate() {
            for (i, p) in pi.get_layer_iterator(l).enumerate().skip(from) {
                let nb = p.get_neighborhood_id();
                for n in nb.iter().flatten() {
                    let (nl, nr) = (n.p_id.0 as usize, n.p_id.1 as usize);
                    if nl < old.len() && nr < old[nl] {
                        touched[nl].push(nr);
                    }
                }
                self.put(l, i, p.get_v(), p.get_origin_id(), &nb);
            }
        }
        for (l, mut ranks) in touched.into_iter().enumerate() {
            if ranks.is_empty() {
                continue;
            }
            ranks.sort_unstable();
            ranks.dedup();
            let mut it = pi.get_layer_iterator(l);
            let mut at = 0;
            for r in ranks {
                let Some(p) = it.nth(r - at) else { break };
                at = r + 1;
                let nb = p.get_neighborhood_id();
                self.put(l, r, p.get_v(), p.get_origin_id(), &nb);
            }
        }
        self.entry = self
            .levels
            .get(top)
            .filter(|l| !l.origin.is_empty())
            .map(|_| (top as u32) << RANK_BITS);
    }

    /// Writes point `rank` of `level` (appending it when it is the next one).
    fn put(&mut self, level: usize, rank: usize, v: &[i8], origin: usize, nb: &[Vec<Neighbour>]) {
        self.vlen = v.len();
        let stride = self.stride;
        let lv = &mut self.levels[level];
        if rank == lv.origin.len() {
            lv.data.push(std::ptr::null());
            lv.origin.push(0);
            lv.count.push(0);
            lv.bottom.resize(lv.bottom.len() + stride, 0);
            if level > 0 {
                lv.upper.push(Vec::new());
            }
        }
        lv.data[rank] = v.as_ptr();
        lv.origin[rank] = origin;
        let bottom: Vec<u32> = nb
            .first()
            .map(|b| b.iter().map(|n| node(n.p_id)).collect())
            .unwrap_or_default();
        let k = bottom.len().min(stride);
        lv.bottom[rank * stride..rank * stride + k].copy_from_slice(&bottom[..k]);
        lv.count[rank] = k as u16;
        if level > 0 {
            lv.upper[rank] = (1..=level)
                .map(|layer| {
                    nb.get(layer)
                        .map(|n| n.iter().map(|n| node(n.p_id)).collect())
                        .unwrap_or_default()
                })
                .collect();
        }
    }

    /// The vector of node `n`, or None for a node the copy does not hold.
    #[inline(always)]
    fn vector(&self, n: u32) -> Option<*const i8> {
        let (l, r) = split(n);
        self.levels.get(l)?.data.get(r).copied()
    }

    #[inline(always)]
    fn dist(&self, q: &[i8], p: *const i8) -> f32 {
        // SAFETY: `p` is the start of a vector of `vlen` bytes owned by the graph (above).
        DistQ8.eval(q, unsafe { std::slice::from_raw_parts(p, self.vlen) })
    }

    /// The `want` nearest points to `q` (a quantised vector) that `accept` takes (None:
    /// all), found with a beam of `ef` on the bottom layer: (caller's id, int8
    /// distance), nearest first. Rejected points are walked through, never returned.
    pub(super) fn search(
        &self,
        q: &[i8],
        want: usize,
        ef: usize,
        accept: Option<&dyn Fn(usize) -> bool>,
    ) -> Vec<(usize, f32)> {
        let Some((cur, best)) = self.descend(q) else {
            return Vec::new();
        };
        let res = self.beam(q, cur, best, ef.max(want).max(1), accept);
        let mut out: Vec<u64> = res.into_vec();
        out.sort_unstable();
        out.truncate(want);
        out.into_iter()
            .map(|k| {
                let (l, r) = split(k as u32);
                (self.levels[l].origin[r], key_dist(k))
            })
            .collect()
    }

    /// The upper layers, from the entry point down: on each, greedy moves to a local
    /// minimum. The node the bottom search starts from and its distance to `q` (None:
    /// an empty copy).
    #[inline]
    fn descend(&self, q: &[i8]) -> Option<(u32, f32)> {
        let mut cur = self.entry?;
        let p = self.vector(cur)?;
        let mut best = self.dist(q, p);
        let top = split(cur).0;
        for layer in (1..=top).rev() {
            loop {
                let (l, r) = split(cur);
                let Some(list) = self.levels[l].upper.get(r).and_then(|u| u.get(layer - 1)) else {
                    break;
                };
                let mut moved = false;
                for &n in list {
                    if let Some(p) = self.vector(n) {
                        let d = self.dist(q, p);
                        if d < best {
                            (best, cur, moved) = (d, n, true);
                        }
                    }
                }
                if !moved {
                    break;
                }
            }
        }
        Some((cur, best))
    }

    /// The bottom layer from node `cur` (at distance `best`): a beam of `ef`, every node
    /// visited once. The heap of the (at most `ef`) nearest nodes `accept` takes, as
    /// [`key`]s.
    #[inline]
    fn beam(
        &self,
        q: &[i8],
        cur: u32,
        best: f32,
        ef: usize,
        accept: Option<&dyn Fn(usize) -> bool>,
    ) -> BinaryHeap<u64> {
        let mut seen = Visited::new(&self.levels);
        seen.mark(cur);
        let taken = |n: u32| {
            accept.is_none_or(|f| {
                let (l, r) = split(n);
                f(self.levels[l].origin[r])
            })
        };
        let mut cand: BinaryHeap<Reverse<u64>> = BinaryHeap::with_capacity(ef * 4);
        let mut res: BinaryHeap<u64> = BinaryHeap::with_capacity(ef + 1);
        cand.push(Reverse(key(best, cur)));
        if taken(cur) {
            res.push(key(best, cur));
        }
        let mut batch: Vec<(u32, *const i8)> = Vec::with_capacity(self.stride);
        while let Some(Reverse(c)) = cand.pop() {
            let worst = res.peek().map_or(f32::INFINITY, |k| key_dist(*k));
            if key_dist(c) > worst && res.len() >= ef {
                break;
            }
            let (l, r) = split(c as u32);
            let lv = &self.levels[l];
            let list = &lv.bottom[r * self.stride..r * self.stride + lv.count[r] as usize];
            batch.clear();
            for &n in list {
                let (nl, nr) = split(n);
                if nl >= self.levels.len() || nr >= self.levels[nl].origin.len() {
                    continue;
                }
                if seen.mark(n) {
                    let p = self.levels[nl].data[nr];
                    prefetch(p, 128);
                    batch.push((n, p));
                }
            }
            for (i, &(n, p)) in batch.iter().enumerate() {
                if let Some(&(_, next)) = batch.get(i + 1) {
                    prefetch(next, self.vlen);
                }
                let d = self.dist(q, p);
                let worst = res.peek().map_or(f32::INFINITY, |k| key_dist(*k));
                if res.len() < ef || d < worst {
                    cand.push(Reverse(key(d, n)));
                    if taken(n) {
                        res.push(key(d, n));
                        if res.len() > ef {
                            res.pop();
                        }
                    }
                }
            }
        }
        res
    }
}

#[cfg(test)]
mod tests;
