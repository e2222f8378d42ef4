//! `cargo bench --bench query [-- FRAMES]`: search on a large library.
//!
//! Builds a library of FRAMES frames (default 1,000,000) in a real store, in the shape
//! video gives: shots of 200 frames whose vectors drift a little from frame to frame
//! around the shot's direction (neighbouring frames are near-duplicates). The vector
//! index is then built by the product's own path (catalog open = rebuild from SQLite).
//! Reports: store write and index build time, resident memory per frame, recall@10 of
//! the HNSW index against brute force on in-distribution queries, and p50/p99 latency of
//! the full search path (text encoding with the ViT-B/32 text tower at true length,
//! ANN, store lookups, segments), single-threaded.

#[path = "util.rs"]
mod util;

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use vidseek::Rng;
use vidseek::{Access, Catalog, NewFrame, NewVideo};
use vidseek::{Device, EmbedOptions, Embedder};
use vidseek::{SearchRequest, search};

const SHOT: usize = 200;

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

fn unit(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= n);
}

/// Frame `i` of shot `s`: the shot's direction plus a slow random walk.
fn shot_vectors(rng: &mut Rng, dim: usize) -> Vec<Vec<f32>> {
    let mut centre: Vec<f32> = (0..dim).map(|_| rng.normal() as f32).collect();
    unit(&mut centre);
    let mut walk = vec![0f32; dim];
    (0..SHOT)
        .map(|_| {
            for w in walk.iter_mut() {
                *w = 0.97 * *w + 0.02 * rng.normal() as f32;
            }
            let mut v: Vec<f32> = centre.iter().zip(&walk).map(|(c, w)| c + w).collect();
            unit(&mut v);
            v
        })
        .collect()
}

fn main() {
    let frames: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let model_dir = util::vit_b32_dir().unwrap_or_else(|| util::root().join("models/tiny-clip"));
    let model = Arc::new(
        Embedder::load(
            &model_dir,
            &EmbedOptions {
                device: Device::Cpu,
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let dim = model.dim();
    eprintln!(
        "query bench: {frames} frames of {dim} dimensions, text tower of {}",
        model.model_name()
    );
    let data = util::root().join("target/bench-query-data");
    let _ = std::fs::remove_dir_all(&data);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // 1. The store: one video per shot.
    let mut rng = Rng::new(7);
    let mut all: Vec<f32> = Vec::with_capacity(frames * dim);
    let t = Instant::now();
    rt.block_on(async {
        // Written through the catalog to the store only, as a bulk load: the index is
        // built from the store when the library is next opened.
        let store = Catalog::open(&data, model.model_name(), dim, Access::Write)
            .await
            .unwrap();
        for s in 0..frames / SHOT {
            let vecs = shot_vectors(&mut rng, dim);
            for v in &vecs {
                all.extend_from_slice(v);
            }
            let v = NewVideo {
                path: format!("/bench/shot-{s:07}.mp4"),
                duration: SHOT as f64,
                frames: vecs
                    .into_iter()
                    .enumerate()
                    .map(|(i, vector)| NewFrame {
                        start: i as f64,
                        end: i as f64 + 1.0,
                        peak: i as f64,
                        shot: false,
                        vector,
                        extra_vectors: Vec::new(),
                        thumbnail: Vec::new(),
                    })
                    .collect(),
                ..NewVideo::default()
            };
            store.add_videos_unindexed(std::slice::from_ref(&v)).await.unwrap();
        }
        store.close().await;
    });
    let store_secs = t.elapsed().as_secs_f64();
    let n = all.len() / dim;

    // 2. The index, built from the store as the product does on first open.
    let rss0 = rss_bytes();
    let t = Instant::now();
    let catalog = rt
        .block_on(Catalog::open(&data, model.model_name(), dim, Access::Write))
        .unwrap();
    let build_secs = t.elapsed().as_secs_f64();
    let rss1 = rss_bytes();

    // 3. Recall@10 against brute force, queries near the data (a frame plus noise).
    let queries = 200;
    let mut qrng = Rng::new(99);
    let mut recall = 0.0;
    let ef = 100 + 64; // what search uses for k = 10 (100 candidates)
    let mut ann_times = Vec::new();
    for _ in 0..queries {
        let i = qrng.below(n);
        let mut q: Vec<f32> = all[i * dim..(i + 1) * dim]
            .iter()
            .map(|x| x + 0.03 * qrng.normal() as f32)
            .collect();
        unit(&mut q);
        let t = Instant::now();
        let got = catalog.nearest(&q, 10, ef);
        ann_times.push(t.elapsed());
        let mut exact: Vec<(usize, f32)> = all
            .chunks_exact(dim)
            .enumerate()
            .map(|(j, v)| (j, v.iter().zip(&q).map(|(a, b)| a * b).sum()))
            .collect();
        exact.select_nth_unstable_by(9, |a, b| b.1.total_cmp(&a.1));
        // Frame ids are 1-based insertion order.
        let truth: std::collections::HashSet<i64> = exact[..10].iter().map(|(j, _)| *j as i64 + 1).collect();
        recall += got.iter().filter(|(id, _)| truth.contains(id)).count() as f64 / 10.0;
    }
    recall /= queries as f64;
    ann_times.sort();

    // 4. Latency of the whole search path with text queries.
    let words = [
        "red", "blue", "dog", "beach", "car", "night", "crowd", "river", "snow", "kitchen",
    ];
    let mut lat = Vec::new();
    for i in 0..220 {
        let q = format!(
            "a {} {} at the {}",
            words[i % 10],
            words[(i * 3 + 1) % 10],
            words[(i * 7 + 2) % 10]
        );
        let t = Instant::now();
        let r = rt
            .block_on(search(&catalog, model.clone(), &SearchRequest::new(q, 10)))
            .unwrap();
        let d = t.elapsed();
        if i >= 20 {
            lat.push(d);
        }
        assert!(!r.results.is_empty());
    }
    lat.sort();
    let report = json!({
        "machine": util::machine(),
        "frames": n,
        "dim": dim,
        "text_model": model.model_name(),
        "store_write_seconds": store_secs,
        "index_build_seconds": build_secs,
        "index_resident_bytes_per_frame": (rss1.saturating_sub(rss0)) as f64 / n as f64,
        "recall_at_10": recall,
        "ann_ms": {"p50": util::ms(util::percentile(&ann_times, 0.5)), "p99": util::ms(util::percentile(&ann_times, 0.99))},
        "search_ms": {"p50": util::ms(util::percentile(&lat, 0.5)), "p99": util::ms(util::percentile(&lat, 0.99))},
    });
    println!("machine: {}", util::machine());
    println!(
        "| frames | dim | store write (s) | index build (s) | RSS/frame (bytes) | recall@10 | ANN p50/p99 (ms) | full search p50/p99 (ms) |\n|---|---|---|---|---|---|---|---|\n| {} | {} | {:.0} | {:.0} | {:.0} | {:.4} | {:.2} / {:.2} | {:.2} / {:.2} |",
        n,
        dim,
        store_secs,
        build_secs,
        report["index_resident_bytes_per_frame"].as_f64().unwrap(),
        recall,
        report["ann_ms"]["p50"].as_f64().unwrap(),
        report["ann_ms"]["p99"].as_f64().unwrap(),
        report["search_ms"]["p50"].as_f64().unwrap(),
        report["search_ms"]["p99"].as_f64().unwrap(),
    );
    util::write_report(&format!("query-{n}"), &report);
}
