//! Searches through [`VectorIndex`]: deletions, exact scores, the exact file across a
//! reload; and the helpers the other test modules of `vector` share.

use std::path::Path;

use super::persist::read_meta;
use super::*;

pub(super) fn unit(seed: u64, dim: usize) -> Vec<f32> {
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

/// Frame `i` of `clusters` groups of near-duplicates (as a library's shots are).
pub(super) fn clustered(i: i64, clusters: u64, dim: usize) -> Vec<f32> {
    let c = unit(1_000_000 + (i as u64 % clusters), dim);
    let n = unit(i as u64, dim);
    let mut v: Vec<f32> = c.iter().zip(&n).map(|(a, b)| a + 0.6 * b).collect();
    let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    v.iter_mut().for_each(|a| *a /= norm);
    v
}

pub(super) fn wait_ready(idx: &VectorIndex) {
    while !idx.ready() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
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
