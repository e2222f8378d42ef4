//! The deleted frames a graph still holds (hnsw_rs cannot remove points): a bit set of
//! frame ids, and its runs as `vectors.json` keeps them.

/// Deleted frame ids: a bit per id up to the largest (frame ids are the store's dense
/// row ids; a lookup per visited point in a filtered graph search, so no hashing).
#[derive(Default)]
pub(super) struct Tombstones {
    bits: Vec<u64>,
    len: usize,
}

impl Tombstones {
    pub(super) fn contains(&self, id: i64) -> bool {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.bits.get(i / 64))
            .is_some_and(|w| w >> (id % 64) & 1 == 1)
    }
    pub(super) fn insert(&mut self, id: i64) {
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
    pub(super) fn len(&self) -> usize {
        self.len
    }
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The deleted ids as runs of consecutive ids `[first, last]`, in order.
    pub(super) fn runs(&self) -> Vec<[i64; 2]> {
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
