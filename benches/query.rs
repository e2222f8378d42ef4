//! `cargo bench --bench query [-- FRAMES]`: search on a large library.
//!
//! Builds a library of FRAMES frames (default 1,000,000) in a real store, in the shape
//! video gives: shots of 200 frames whose vectors drift a little from frame to frame
//! around the shot's direction (neighbouring frames are near-duplicates). The vector
//! index is then built by the product's own path (catalog open = rebuild from SQLite).
//! Reports: store write and index build time, resident memory per frame, recall@10 of
//! the HNSW index against brute force on in-distribution queries, and p50/p99 latency of
//! the full search path (text encoding with the ViT-B/32 text tower at true length,
//! ANN, store lookups, segments), single-threaded; then the library is reopened with its
//! saved index (time, memory), a 1-hour video (3,600 embedded frames) is added and
//! removed again (time, including the index checkpoint).

#[path = "util.rs"]
mod util;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::runtime::Runtime;
use vidseek::Rng;
use vidseek::{Access, Catalog, NewFrame, NewVideo};
use vidseek::{Device, EmbedOptions, Embedder};
use vidseek::{SearchRequest, search};

// The binary's allocator (src/main.rs), so that memory and times are the product's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SHOT: usize = 200;

const USAGE: &str = "cargo bench --bench query [-- FRAMES]";

/// One frame of a shot: its start time (seconds) and vector.
fn frame(i: usize, vector: Vec<f32>) -> NewFrame {
    NewFrame {
        start: i as f64,
        end: i as f64 + 1.0,
        peak: i as f64,
        shot: false,
        vector,
        extra_vectors: Vec::new(),
        thumbnail: Vec::new(),
    }
}

/// The text tower in fp32, and with int8 weights when the package has one
/// (models/quantize_text.py): measured in a phase of its own after the fp32 one.
fn load_models(model_dir: &Path) -> (Arc<Embedder>, Option<Arc<Embedder>>) {
    let model = Arc::new(
        Embedder::load(
            model_dir,
            &EmbedOptions {
                device: Device::Cpu,
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let model_int8 = Embedder::load(
        model_dir,
        &EmbedOptions {
            device: Device::Cpu,
            text_int8: true,
            ..Default::default()
        },
    )
    .ok()
    .map(Arc::new);
    (model, model_int8)
}

/// The data folder, and whether an earlier run's store is kept (no store write).
/// QUERY_BENCH_REUSE=1 keeps a store an earlier run wrote (same seed, same frames) and
/// rebuilds only the indexes: the store write is then not measured.
/// QUERY_BENCH_REUSE=index keeps the saved vector index too: the "build" is then a load
/// (the search numbers are measured as usual).
fn data_folder() -> (PathBuf, bool) {
    let data = util::root().join("target/bench-query-data");
    let reuse = std::env::var_os("QUERY_BENCH_REUSE").is_some() && data.join("vidseek.db").exists();
    let reuse_index = std::env::var("QUERY_BENCH_REUSE").is_ok_and(|v| v == "index");
    if reuse && !reuse_index {
        let _ = std::fs::remove_dir_all(data.join("vectors"));
    } else if !reuse {
        let _ = std::fs::remove_dir_all(&data);
    }
    (data, reuse)
}

/// The store: one video per shot, written through the catalog to the store only, as a
/// bulk load (the index is built from the store when the library is next opened). Every
/// frame's vector, in order (also when the store is reused), and the seconds the write
/// took.
fn write_store(
    rt: &Runtime,
    data: &Path,
    model: &Embedder,
    frames: usize,
    reuse: bool,
    rng: &mut Rng,
) -> (Vec<f32>, f64) {
    let dim = model.dim();
    let mut all: Vec<f32> = Vec::with_capacity(frames * dim);
    let t = Instant::now();
    rt.block_on(async {
        let store = if reuse {
            None
        } else {
            Some(
                Catalog::open(data, model.model_name(), dim, Access::Write)
                    .await
                    .unwrap(),
            )
        };
        for s in 0..frames / SHOT {
            let vecs = util::shot_vectors(rng, dim, SHOT);
            for v in &vecs {
                all.extend_from_slice(v);
            }
            let Some(store) = &store else { continue };
            let v = NewVideo {
                path: format!("/bench/shot-{s:07}.mp4"),
                duration: SHOT as f64,
                frames: vecs.into_iter().enumerate().map(|(i, v)| frame(i, v)).collect(),
                ..NewVideo::default()
            };
            store.add_videos_unindexed(std::slice::from_ref(&v)).await.unwrap();
        }
        if let Some(store) = store {
            store.close().await;
        }
    });
    (all, t.elapsed().as_secs_f64())
}

/// Recall@10 of the vector index against brute force, with its latency.
struct Ann {
    /// The product's setting (the first of `CONFIGS`).
    recall: f64,
    times: Vec<Duration>,
    /// Every setting: candidates, beam, recall@10, p50 and p99.
    sweep: Vec<serde_json::Value>,
}

/// (candidates asked for, beam); the first is the product's: `n` = 100 candidates (the
/// segments' pool) with its beam n + 284, exactly rescored, the best 10 kept. The
/// product's setting runs again last: the first pass pays for touching the graph's and
/// the exact file's pages first.
const CONFIGS: [(usize, usize); 9] = [
    (100, 384),
    (10, 384),
    (100, 128),
    (100, 192),
    (100, 256),
    (100, 320),
    (100, 512),
    (200, 512),
    (100, 384),
];

/// Queries near the data (a frame plus noise). The queries and their brute-force truth
/// first; then each configuration in its own pass over all of them, so none finds the
/// graph pages another just walked in the CPU caches (run per query, side by side, the
/// later ones looked up to 2x faster). Each pass starts with 20 uncounted queries of
/// its own.
fn ann_recall(catalog: &Catalog, all: &[f32], dim: usize) -> Ann {
    let queries = 200;
    let mut qrng = Rng::new(99);
    let warm = 20;
    let qs: Vec<(Vec<f32>, HashSet<i64>)> = (0..warm + queries)
        .map(|_| {
            let q = util::query_near(&mut qrng, all, dim);
            let truth = util::true_top10(all, dim, &q);
            (q, truth)
        })
        .collect();
    let mut recalls = vec![0.0f64; CONFIGS.len()];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); CONFIGS.len()];
    for (c, &(want, ef)) in CONFIGS.iter().enumerate() {
        for (qi, (q, truth)) in qs.iter().enumerate() {
            let t = Instant::now();
            let mut got = catalog.nearest(q, want, ef);
            got.truncate(10);
            if qi < warm {
                continue;
            }
            times[c].push(t.elapsed());
            recalls[c] += got.iter().filter(|(id, _)| truth.contains(id)).count() as f64 / 10.0;
        }
    }
    for (r, t) in recalls.iter_mut().zip(&mut times) {
        *r /= queries as f64;
        t.sort();
    }
    let sweep = CONFIGS
        .iter()
        .zip(recalls.iter().zip(&times))
        .map(|(&(want, ef), (r, t))| {
            json!({"candidates": want, "beam": ef, "recall_at_10": r,
                   "p50_ms": util::ms(util::percentile(t, 0.5)), "p99_ms": util::ms(util::percentile(t, 0.99))})
        })
        .collect();
    Ann {
        recall: recalls[0],
        times: times[0].clone(),
        sweep,
    }
}

const WORDS: [&str; 10] = [
    "red", "blue", "dog", "beach", "car", "night", "crowd", "river", "snow", "kitchen",
];

/// Query `i` of the latency phases: "a {word} {word} at the {word}".
fn sentence(i: usize) -> String {
    format!(
        "a {} {} at the {}",
        WORDS[i % 10],
        WORDS[(i * 3 + 1) % 10],
        WORDS[(i * 7 + 2) % 10]
    )
}

/// One latency phase with one text tower: (full search, text tower alone) per query,
/// sorted, the first 20 uncounted.
fn search_phase(rt: &Runtime, catalog: &Catalog, m: &Arc<Embedder>, suffix: &str) -> (Vec<Duration>, Vec<Duration>) {
    let (mut lat, mut text) = (Vec::new(), Vec::new());
    for i in 0..220 {
        let q = format!("{}{suffix}", sentence(i));
        let t = Instant::now();
        let r = rt
            .block_on(search(catalog, m.clone(), &SearchRequest::new(q.clone(), 10)))
            .unwrap();
        let d = t.elapsed();
        assert!(!r.results.is_empty());
        // The tower alone, on another query of the same form (no cache could answer).
        let q = format!("{q} seen from afar");
        let t = Instant::now();
        m.embed_texts(&[q.as_str()]).unwrap();
        let e = t.elapsed();
        if i >= 20 {
            lat.push(d);
            text.push(e);
        }
    }
    lat.sort();
    text.sort();
    (lat, text)
}

/// Latency of the whole search path with text queries.
struct Searches {
    lat: Vec<Duration>,
    text_fp32: Vec<Duration>,
    lat_int8: Vec<Duration>,
    text_int8: Vec<Duration>,
    /// Cosine of the int8 tower's vectors to the fp32 ones, sorted (empty without one).
    cos_int8: Vec<f32>,
}

/// Each text tower in a phase of its own: interleaved, one session's spinning pool
/// threads (ONNX Runtime keeps them busy a while after a run) took the cores the
/// other's run needed (the fp32 tower alone measured 12 ms here against 8-9 ms in a
/// process of its own). A library has one model; the phases run back to back, the fp32
/// one first.
fn time_searches(
    rt: &Runtime,
    catalog: &Catalog,
    model: &Arc<Embedder>,
    model_int8: Option<&Arc<Embedder>>,
) -> Searches {
    eprintln!("query bench: timing the full search path (fp32 text tower, then int8)");
    let (lat, text_fp32) = search_phase(rt, catalog, model, "");
    let (lat_int8, text_int8) = match model_int8 {
        Some(m8) => search_phase(rt, catalog, m8, " at dusk"),
        None => (Vec::new(), Vec::new()),
    };
    // Quality of the int8 tower: cosine to fp32 on the same sentences (untimed).
    let mut cos_int8: Vec<f32> = Vec::new();
    if let Some(m8) = model_int8 {
        for i in 0..200 {
            let q = format!("{} seen from afar", sentence(i));
            let a = model.embed_texts(&[q.as_str()]).unwrap();
            let b = m8.embed_texts(&[q.as_str()]).unwrap();
            cos_int8.push(a.row(0).iter().zip(b.row(0)).map(|(x, y)| x * y).sum());
        }
    }
    cos_int8.sort_by(f32::total_cmp);
    Searches {
        lat,
        text_fp32,
        lat_int8,
        text_int8,
        cos_int8,
    }
}

/// The library reopened with its saved index, and one video added and removed.
struct Reopened {
    reopen_secs: f64,
    graph_ready_secs: f64,
    /// Whether the first search came while the graph was still loading (an exact scan).
    loading: bool,
    scan_ms: f64,
    add_secs: f64,
    remove_secs: f64,
}

/// Reopens the library with the saved index (no rebuild), searches at once, then adds
/// one 1-hour video (3,600 frames, already embedded) and removes it again, each with
/// the index checkpoint. `n`: the frames the index must hold at least. The library is
/// returned open: its resident memory is measured after.
fn reopen_add_and_remove(
    rt: &Runtime,
    data: &Path,
    model: &Arc<Embedder>,
    n: usize,
    rng: &mut Rng,
) -> (Catalog, Reopened) {
    let t = Instant::now();
    let catalog = rt
        .block_on(Catalog::open(data, model.model_name(), model.dim(), Access::Write))
        .unwrap();
    let reopen_secs = t.elapsed().as_secs_f64();
    // Searchable at once: until the saved graph has loaded (in the background), a search
    // is an exact scan of the float32 file.
    let loading = !catalog.vectors_ready();
    let t_scan = Instant::now();
    let r = rt
        .block_on(search(
            &catalog,
            model.clone(),
            &SearchRequest::new("a red car at the beach", 10),
        ))
        .unwrap();
    let scan_ms = t_scan.elapsed().as_secs_f64() * 1e3;
    assert!(!r.results.is_empty());
    catalog.wait_vectors_ready();
    let graph_ready_secs = t.elapsed().as_secs_f64();
    // (A reused index also holds the tombstones of earlier runs' added and removed
    // hour: points, not live frames.)
    let points = catalog.vector_points();
    assert!(points >= n, "the saved index was loaded, not rebuilt short");
    let mut hour = Vec::new();
    while hour.len() < 3600 {
        hour.extend(util::shot_vectors(rng, model.dim(), SHOT));
    }
    hour.truncate(3600);
    let video = NewVideo {
        path: "/bench/one-hour.mp4".into(),
        duration: 3600.0,
        frames: hour.into_iter().enumerate().map(|(i, v)| frame(i, v)).collect(),
        ..NewVideo::default()
    };
    let t = Instant::now();
    let added = rt.block_on(catalog.add_video(&video)).unwrap();
    rt.block_on(catalog.save_vectors()).unwrap();
    let add_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    assert!(rt.block_on(catalog.remove_video(added)).unwrap());
    rt.block_on(catalog.save_vectors()).unwrap();
    let remove_secs = t.elapsed().as_secs_f64();
    assert_eq!(
        catalog.vector_points(),
        points + 3600,
        "removal left a tombstone, no rebuild"
    );
    let reopened = Reopened {
        reopen_secs,
        graph_ready_secs,
        loading,
        scan_ms,
        add_secs,
        remove_secs,
    };
    (catalog, reopened)
}

/// Bytes of the vector index's files in `data/vectors` whose names end with one of `ends`.
fn vector_file_bytes(data: &Path, ends: &[&str]) -> u64 {
    std::fs::read_dir(data.join("vectors"))
        .unwrap()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            ends.iter().any(|end| name.ends_with(end))
        })
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// What was measured, for the report and the printed summary.
struct Measured {
    n: usize,
    dim: usize,
    reuse: bool,
    store_secs: f64,
    build_secs: f64,
    /// Resident memory the index build added.
    build_rss: u64,
    ann: Ann,
    searches: Searches,
    /// Resident pages of the memory-mapped exact file after the searches.
    mapped_after_searches: u64,
    reopened: Reopened,
    /// Resident memory the reopened library holds.
    reopen_rss: u64,
}

fn report(m: &Measured, model: &Embedder, data: &Path) -> serde_json::Value {
    let Measured {
        n,
        dim,
        reuse,
        store_secs,
        build_secs,
        mapped_after_searches,
        ..
    } = *m;
    let (recall, ann_times, sweep) = (m.ann.recall, &m.ann.times, &m.ann.sweep);
    let Searches {
        lat,
        text_fp32,
        lat_int8,
        text_int8,
        cos_int8,
    } = &m.searches;
    let Reopened {
        reopen_secs,
        graph_ready_secs,
        loading,
        scan_ms,
        add_secs,
        remove_secs,
    } = m.reopened;
    let dump_bytes = vector_file_bytes(data, &[".hnsw.graph", ".hnsw.data", ".ids"]);
    let exact_bytes = vector_file_bytes(data, &[".exact"]);
    json!({
        "machine": util::machine(),
        "frames": n,
        "dim": dim,
        "text_model": model.model_name(),
        "store_write_seconds": (!reuse).then_some(store_secs),
        "index_build_seconds": build_secs,
        "index_resident_bytes_per_frame": m.build_rss as f64 / n as f64,
        "mapped_file_resident_bytes_per_frame_after_searches": mapped_after_searches as f64 / n as f64,
        "recall_at_10": recall,
        "ann_setting": "100 candidates (search's pool for k = 10), beam 384, exact rescoring, best 10",
        "ann_sweep": sweep,
        "ann_ms": {"p50": util::ms(util::percentile(ann_times, 0.5)), "p99": util::ms(util::percentile(ann_times, 0.99))},
        "search_ms": {"p50": util::ms(util::percentile(lat, 0.5)), "p99": util::ms(util::percentile(lat, 0.99))},
        "text_embed_ms_p50_fp32": util::ms(util::percentile(text_fp32, 0.5)),
        "search_phases": "each text tower in a phase of its own (fp32, then int8), the tower alone timed in the same phase",
        "search_ms_int8_text_tower": (!lat_int8.is_empty()).then(|| json!({"p50": util::ms(util::percentile(lat_int8, 0.5)), "p99": util::ms(util::percentile(lat_int8, 0.99)),
            "cosine_to_fp32_min": cos_int8.first(), "cosine_to_fp32_median": cos_int8.get(cos_int8.len() / 2),
            "text_embed_ms_p50": {"fp32": util::ms(util::percentile(text_fp32, 0.5)), "int8": util::ms(util::percentile(text_int8, 0.5))}})),
        "reopen_seconds": reopen_secs,
        "reopen_graph_ready_seconds": graph_ready_secs,
        "first_search_while_loading_ms": loading.then_some(scan_ms),
        "reopen_resident_bytes_per_frame": m.reopen_rss as f64 / n as f64,
        "add_one_hour_video_seconds": add_secs,
        "remove_video_seconds": remove_secs,
        "dump_bytes_per_frame": dump_bytes as f64 / n as f64,
        "exact_file_bytes_per_frame": exact_bytes as f64 / n as f64,
        "sqlite_cache_note": "included in the RSS numbers: SQLite's default page cache of 2 MiB per connection, 9 connections, at most about 19 bytes per frame here",
    })
}

fn print_summary(m: &Measured, report: &serde_json::Value) {
    let Measured {
        n,
        dim,
        reuse,
        store_secs,
        build_secs,
        mapped_after_searches,
        ..
    } = *m;
    let (recall, sweep) = (m.ann.recall, &m.ann.sweep);
    let Searches {
        text_fp32,
        lat_int8,
        text_int8,
        cos_int8,
        ..
    } = &m.searches;
    let Reopened {
        reopen_secs,
        graph_ready_secs,
        loading,
        scan_ms,
        add_secs,
        remove_secs,
    } = m.reopened;
    println!("machine: {}", util::machine());
    println!(
        "| frames | dim | store write (s) | index build (s) | RSS/frame (bytes) | recall@10 | ANN p50/p99 (ms) | full search p50/p99 (ms) |\n|---|---|---|---|---|---|---|---|\n| {} | {} | {:.0} | {:.0} | {:.0} | {:.4} | {:.2} / {:.2} | {:.2} / {:.2} |",
        n,
        dim,
        if reuse { f64::NAN } else { store_secs },
        build_secs,
        report["index_resident_bytes_per_frame"].as_f64().unwrap(),
        recall,
        report["ann_ms"]["p50"].as_f64().unwrap(),
        report["ann_ms"]["p99"].as_f64().unwrap(),
        report["search_ms"]["p50"].as_f64().unwrap(),
        report["search_ms"]["p99"].as_f64().unwrap(),
    );
    println!("ANN sweep (the same 200 queries, one pass per setting): candidates / beam -> recall@10, p50 / p99 ms");
    for v in sweep {
        println!(
            "  {:>3} / {:>3} -> {:.4}, {:.2} / {:.2}",
            v["candidates"],
            v["beam"],
            v["recall_at_10"].as_f64().unwrap(),
            v["p50_ms"].as_f64().unwrap(),
            v["p99_ms"].as_f64().unwrap()
        );
    }
    println!(
        "fp32 text tower alone (its own phase, as the full search above): p50 {:.2} ms",
        util::ms(util::percentile(text_fp32, 0.5))
    );
    if !lat_int8.is_empty() {
        println!(
            "int8 text tower (a phase of its own): full search p50/p99 {:.2} / {:.2} ms (other queries of the same form); text embedding p50 fp32 {:.2} ms, int8 {:.2} ms; cosine to fp32 min {:.4}",
            util::ms(util::percentile(lat_int8, 0.5)),
            util::ms(util::percentile(lat_int8, 0.99)),
            util::ms(util::percentile(text_fp32, 0.5)),
            util::ms(util::percentile(text_int8, 0.5)),
            cos_int8[0]
        );
    }
    println!(
        "reopen with the saved index {reopen_secs:.2} s (searchable; first search {scan_ms:.0} ms{}), graph loaded at {graph_ready_secs:.2} s; add a 1-hour video (3,600 frames) {add_secs:.2} s; remove it {remove_secs:.2} s; dump {:.0} B/frame, exact file {:.0} B/frame",
        if loading {
            ", an exact scan"
        } else {
            ", the graph was already there"
        },
        report["dump_bytes_per_frame"].as_f64().unwrap(),
        report["exact_file_bytes_per_frame"].as_f64().unwrap()
    );
    println!(
        "resident after the searches, pages of the memory-mapped exact file (page cache): {:.0} B/frame",
        mapped_after_searches as f64 / n as f64
    );
}

fn main() {
    let frames: usize = util::arg_or(&util::args(USAGE), 0, 1_000_000);
    let model_dir = util::vit_b32_dir().unwrap_or_else(|| util::root().join("models/tiny-clip"));
    let (model, model_int8) = load_models(&model_dir);
    let dim = model.dim();
    eprintln!(
        "query bench: {frames} frames of {dim} dimensions, text tower of {}",
        model.model_name()
    );
    let (data, reuse) = data_folder();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // 1. The store: one video per shot.
    let mut rng = Rng::new(7);
    let (all, store_secs) = write_store(&rt, &data, &model, frames, reuse, &mut rng);
    let n = all.len() / dim;

    // 2. The index, built from the store as the product does on first open.
    let rss0 = util::rss_bytes();
    let t = Instant::now();
    let catalog = rt
        .block_on(Catalog::open(&data, model.model_name(), dim, Access::Write))
        .unwrap();
    // (With a saved index, until its graph has loaded.)
    catalog.wait_vectors_ready();
    let build_secs = t.elapsed().as_secs_f64();
    let build_rss = util::rss_bytes().saturating_sub(rss0);

    // 3. Recall@10 against brute force, queries near the data (a frame plus noise).
    //    The headline is what search does; other requests and beams run on the same
    //    queries (one pass over all of them per setting).
    let ann = ann_recall(&catalog, &all, dim);

    // 4. Latency of the whole search path with text queries.
    let searches = time_searches(&rt, &catalog, &model, model_int8.as_ref());
    // Of the resident memory after the searches: pages of the memory-mapped exact file
    // (page cache, shared and reclaimable; the candidates' vectors read in place).
    let mapped_after_searches = util::rss_file_bytes();

    // 5. Reopening the library with the saved index (no rebuild), then adding one
    //    1-hour video (3,600 frames, already embedded) and removing a video.
    rt.block_on(catalog.close());
    drop(catalog);
    let rss_closed = util::rss_bytes();
    let (_reopened_catalog, reopened) = reopen_add_and_remove(&rt, &data, &model, n, &mut rng);
    let reopen_rss = util::rss_bytes().saturating_sub(rss_closed);

    let m = Measured {
        n,
        dim,
        reuse,
        store_secs,
        build_secs,
        build_rss,
        ann,
        searches,
        mapped_after_searches,
        reopened,
        reopen_rss,
    };
    let report = report(&m, &model, &data);
    print_summary(&m, &report);
    util::write_report(&format!("query-{n}"), &report);
}
