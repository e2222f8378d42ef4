//! The compact copy against hnsw_rs' own search of the same graph, and as insertions
//! grow the graph.

use super::*;
use crate::index::vector::quant::quantise;
use crate::index::vector::tests::{clustered, unit};
use crate::index::vector::{VectorBackend, VectorIndex};

const DIM: usize = 48;

/// An index of 4,400 points in 40 clusters (the points, with it), grown as a library
/// is: large batches (parallel insertion), then small ones (one point at a time), each
/// followed by a refresh of the copy.
fn grown_index() -> (VectorIndex, Vec<(i64, Vec<f32>)>) {
    let mut idx = VectorIndex::create("m", DIM, 5000, None);
    let data: Vec<(i64, Vec<f32>)> = (1..=4400).map(|i| (i, clustered(i, 40, DIM))).collect();
    for chunk in data[..4000].chunks(1000).chain(data[4000..].chunks(10)) {
        let refs: Vec<(i64, &[f32])> = chunk.iter().map(|(i, v)| (*i, v.as_slice())).collect();
        idx.insert(&refs).unwrap();
    }
    (idx, data)
}

/// The `k` nearest of `data` to `q` by exact cosine (among the ids `accept` takes).
fn truth(
    data: &[(i64, Vec<f32>)],
    q: &[f32],
    k: usize,
    accept: impl Fn(i64) -> bool,
) -> std::collections::HashSet<i64> {
    let mut exact: Vec<(i64, f32)> = data
        .iter()
        .filter(|(id, _)| accept(*id))
        .map(|(id, v)| (*id, crate::simd::dot(q, v)))
        .collect();
    exact.sort_by(|a, b| b.1.total_cmp(&a.1));
    exact[..k].iter().map(|(id, _)| *id).collect()
}

#[test]
fn the_copy_holds_every_point_and_reaches_those_small_insertions_added() {
    let (idx, data) = grown_index();
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
    // A fresh full copy holds the same points.
    assert_eq!(CompactGraph::copy(&ready.hnsw).len(), 4400);
}

#[test]
fn the_copy_finds_what_hnsw_rs_finds() {
    let (idx, data) = grown_index();
    let ready = idx.graph.get().unwrap();
    // Recall@10 against brute force, beside hnsw_rs' own search of the same graph.
    let (mut ours, mut theirs) = (0usize, 0usize);
    let queries = 100;
    for qi in 0..queries {
        let base = &data[(qi * 43) % data.len()].1;
        let noise = unit(77_000 + qi as u64, DIM);
        let mut q: Vec<f32> = base.iter().zip(&noise).map(|(a, b)| a + 0.3 * b).collect();
        let norm = q.iter().map(|a| a * a).sum::<f32>().sqrt();
        q.iter_mut().for_each(|a| *a /= norm);
        let truth = truth(&data, &q, 10, |_| true);
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
}

#[test]
fn a_filtered_search_returns_only_accepted_points_and_the_nearest_of_them() {
    let (idx, data) = grown_index();
    let ready = idx.graph.get().unwrap();
    // Only one cluster's points (a fortieth of the graph) are returned, the nearest of
    // them (brute force over the accepted points) among them.
    let accept = |id: usize| id % 40 == 7;
    let q = &data[100].1;
    let hits = ready.compact.search(&quantise(q), 10, 200, Some(&accept));
    assert_eq!(hits.len(), 10);
    assert!(hits.iter().all(|(id, _)| accept(*id)));
    let truth = truth(&data, q, 10, |id| accept(id as usize));
    let got = hits.iter().filter(|(id, _)| truth.contains(&(*id as i64))).count();
    assert!(got >= 8, "filtered recall@10 {got}/10");
}

#[test]
fn a_large_batch_leaves_the_copy_behind_until_settle() {
    let (mut idx, _) = grown_index();
    // A large batch leaves the copy for later: searches use hnsw_rs' walk (and find
    // the new points) until `settle` copies the whole graph again.
    let more: Vec<(i64, Vec<f32>)> = (4401..=5600).map(|i| (i, clustered(i, 40, DIM))).collect();
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
