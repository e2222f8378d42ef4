//! `cargo bench --bench hnsw [-- FRAMES [M:EF_C ...]]`: the vector index's graph
//! parameters, side by side on the same vectors.
//!
//! FRAMES (default 100,000) shot-structured 512-d vectors as in the query bench (shots of
//! 200 frames drifting around the shot's direction), inserted in batches of 20,000 as
//! the catalog does. For each M:EF_C (default 16:100 24:100 24:160 32:100): build time,
//! resident memory per frame after the build (glibc's free pages returned first),
//! self-recall (each frame found by its own vector at ef 64, what the catalog checks),
//! and recall@10 against brute force plus ANN p50 at search beams 164 and 256.

#[path = "util.rs"]
mod util;

use std::collections::HashSet;
use std::time::Instant;

use serde_json::json;
use vidseek::{HnswParams, Rng, VectorBackend, VectorIndex};

const SHOT: usize = 200;

const USAGE: &str = "cargo bench --bench hnsw [-- FRAMES [M:EF_C ...]]";

/// The vectors, the queries near them with their true top 10, and the sample the
/// self-recall is measured on: the same for every configuration.
struct Data {
    n: usize,
    dim: usize,
    all: Vec<f32>,
    queries: Vec<Vec<f32>>,
    truth: Vec<HashSet<i64>>,
    sample: Vec<(i64, Vec<f32>)>,
}

impl Data {
    fn new(frames: usize, dim: usize) -> Data {
        let mut rng = Rng::new(7);
        let mut all: Vec<f32> = Vec::with_capacity(frames * dim);
        while all.len() < frames * dim {
            for v in util::shot_vectors(&mut rng, dim, SHOT) {
                all.extend_from_slice(&v);
            }
        }
        all.truncate(frames * dim);
        let n = frames;
        // Queries near the data (a frame plus noise) and their true top 10.
        let mut qrng = Rng::new(99);
        let queries: Vec<Vec<f32>> = (0..200).map(|_| util::query_near(&mut qrng, &all, dim)).collect();
        let truth = queries.iter().map(|q| util::true_top10(&all, dim, q)).collect();
        let step = (n / 200).max(1);
        let sample: Vec<(i64, Vec<f32>)> = (0..n)
            .step_by(step)
            .map(|j| (j as i64 + 1, all[j * dim..(j + 1) * dim].to_vec()))
            .collect();
        Data {
            n,
            dim,
            all,
            queries,
            truth,
            sample,
        }
    }
}

/// Builds the graph with `m` and `ef_c` in batches of 20,000 as the catalog does, and
/// measures it: its row of the report and of the printed table.
fn measure(d: &Data, m: usize, ef_c: usize) -> (serde_json::Value, String) {
    let (n, dim) = (d.n, d.dim);
    let dir = tempfile::tempdir().unwrap();
    vidseek::trim_heap();
    let rss0 = util::rss_bytes();
    let t = Instant::now();
    let mut idx = VectorIndex::create_with(
        "bench",
        dim,
        n,
        Some(dir.path()),
        HnswParams {
            max_connections: m,
            ef_construction: ef_c,
        },
    );
    for start in (0..n).step_by(20_000) {
        let end = (start + 20_000).min(n);
        let items: Vec<(i64, &[f32])> = (start..end)
            .map(|j| (j as i64 + 1, &d.all[j * dim..(j + 1) * dim]))
            .collect();
        idx.insert(&items).unwrap();
    }
    let build = t.elapsed().as_secs_f64();
    vidseek::trim_heap();
    let rss = util::rss_bytes().saturating_sub(rss0) as f64 / n as f64;
    let self_recall = idx.self_recall(&d.sample, 64);
    let mut row = json!({"m": m, "ef_construction": ef_c, "build_seconds": build, "resident_bytes_per_frame": rss, "self_recall": self_recall});
    let mut cells = Vec::new();
    for ef in [164usize, 256] {
        let mut recall = 0.0;
        let mut times = Vec::new();
        for (q, t) in d.queries.iter().zip(&d.truth) {
            let s = Instant::now();
            let got = idx.search(q, 10, ef, None);
            times.push(s.elapsed());
            recall += got.iter().filter(|(id, _)| t.contains(id)).count() as f64 / 10.0;
        }
        recall /= d.queries.len() as f64;
        times.sort();
        let p50 = util::ms(util::percentile(&times, 0.5));
        row[format!("ef_{ef}")] = json!({"recall_at_10": recall, "ann_p50_ms": p50});
        cells.push(format!("{recall:.4} | {p50:.2}"));
    }
    let line = format!(
        "| {m} | {ef_c} | {build:.1} | {rss:.0} | {self_recall:.3} | {} |",
        cells.join(" | ")
    );
    (row, line)
}

fn main() {
    let args = util::args(USAGE);
    let frames: usize = util::arg_or(&args, 0, 100_000);
    let mut configs: Vec<(usize, usize)> = args
        .iter()
        .skip(1)
        .filter_map(|a| {
            let (m, e) = a.split_once(':')?;
            Some((m.parse().ok()?, e.parse().ok()?))
        })
        .collect();
    if configs.is_empty() {
        configs = vec![(16, 100), (24, 100), (24, 160), (32, 100)];
    }
    let d = Data::new(frames, 512);
    let (n, dim) = (d.n, d.dim);

    println!("machine: {}\n{n} frames, {dim} dimensions\n", util::machine());
    let kernels = dot_kernels(&d.all[..256 * dim], dim);
    println!(
        "| M | ef_c | build (s) | RSS/frame (B) | self-recall | recall@10 ef 164 | ANN p50 ef 164 (ms) | recall@10 ef 256 | ANN p50 ef 256 (ms) |\n|---|---|---|---|---|---|---|---|---|"
    );
    let mut rows = Vec::new();
    for (m, ef_c) in configs {
        let (row, line) = measure(&d, m, ef_c);
        println!("{line}");
        rows.push(row);
    }
    util::write_report(
        &format!("hnsw-{n}"),
        &json!({"machine": util::machine(), "frames": n, "dim": dim, "dot_i8_ns": kernels, "configs": rows}),
    );
}

/// Each int8 dot kernel the CPU runs, side by side on the same 256 quantised vectors
/// (in cache: the kernels' arithmetic, not memory): nanoseconds per dot product, the
/// median of 7 rounds of every pair. The graph uses the first (or `VIDSEEK_DOT_I8`).
fn dot_kernels(vectors: &[f32], dim: usize) -> serde_json::Value {
    let q: Vec<Vec<i8>> = vectors.chunks_exact(dim).map(vidseek::quantise).collect();
    let mut out = serde_json::Map::new();
    let mut cells = Vec::new();
    for (name, k) in vidseek::dot_i8_kernels() {
        let mut rounds: Vec<f64> = (0..7)
            .map(|_| {
                let t = Instant::now();
                let mut sum = 0i64;
                for a in &q {
                    for b in &q {
                        sum += k(std::hint::black_box(a), b) as i64;
                    }
                }
                std::hint::black_box(sum);
                t.elapsed().as_secs_f64() * 1e9 / (q.len() * q.len()) as f64
            })
            .collect();
        rounds.sort_by(f64::total_cmp);
        out.insert(name.into(), json!(rounds[3]));
        cells.push(format!("{name} {:.1} ns", rounds[3]));
    }
    println!("int8 dot product, {dim}-d, in cache: {}\n", cells.join(", "));
    serde_json::Value::Object(out)
}
