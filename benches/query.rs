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
//!
//! `-- FRAMES --vectors pgvector` runs the same on the pgvector backend (the store in a
//! PostgreSQL server the bench starts, `pgserver.rs`), `-- FRAMES --store postgres` the
//! embedded HNSW on that same kind of store: run both for a side-by-side comparison.
//! The pgvector run also reports the server's memory (Pss) and the table's bytes on
//! disk, and both report recall@10 and ANN latency with a filter that leaves 1% of the
//! library (every 100th shot's video).

#[path = "pgserver.rs"]
mod pgserver;
#[path = "util.rs"]
mod util;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::runtime::Runtime;
use vidseek::Rng;
use vidseek::{Access, Catalog, NewFrame, NewVideo, VectorChoice, VectorScope};
use vidseek::{Device, EmbedOptions, Embedder};
use vidseek::{SearchRequest, search};

// The binary's allocator (src/main.rs), so that memory and times are the product's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SHOT: usize = 200;

const USAGE: &str = "cargo bench --bench query [-- FRAMES [--vectors hnsw|pgvector] [--store sqlite|postgres]]";

/// Where the bench's library lives: the vector backend, and the PostgreSQL server
/// holding the store (None: SQLite in the data folder).
struct Backend {
    vectors: VectorChoice,
    pg: Option<pgserver::PgServer>,
}

impl Backend {
    fn from_args(args: &[String]) -> Self {
        let value = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1))
                .cloned()
        };
        let vectors: VectorChoice = value("--vectors").map_or(VectorChoice::Hnsw, |v| v.parse().unwrap());
        let postgres = vectors == VectorChoice::Pgvector || value("--store").is_some_and(|s| s == "postgres");
        let pg = postgres.then(|| pgserver::PgServer::start(&util::root().join("target/bench-query-pg")));
        Self { vectors, pg }
    }

    fn database(&self) -> Option<String> {
        self.pg.as_ref().map(|p| p.url())
    }

    fn name(&self) -> String {
        match (&self.vectors, &self.pg) {
            (VectorChoice::Hnsw, None) => "hnsw".into(),
            (VectorChoice::Hnsw, Some(_)) => "hnsw-postgres".into(),
            (VectorChoice::Pgvector, _) => "pgvector".into(),
        }
    }

    /// Opens the library; `choose`: name the backend (else follow the library).
    async fn open(&self, data: &Path, model: &str, dim: usize, choose: bool) -> Catalog {
        let db = self.database();
        let vectors = choose.then_some(self.vectors);
        Catalog::open_with(data, db.as_deref(), vectors, model, dim, Access::Write)
            .await
            .unwrap()
    }
}

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
fn data_folder(b: &Backend) -> (PathBuf, bool) {
    let data = util::root().join("target/bench-query-data");
    // (A PostgreSQL store is made afresh with its server: no reuse.)
    let reuse = b.pg.is_none() && std::env::var_os("QUERY_BENCH_REUSE").is_some() && data.join("vidseek.db").exists();
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
    b: &Backend,
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
            // The backend is not named yet: the store alone, as a library that existed
            // before its backend was chosen (the build below is then the backend's).
            Some(b.open(data, model.model_name(), dim, false).await)
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
    /// The product's setting with a filter leaving 1% of the library.
    recall_filtered: f64,
    times_filtered: Vec<Duration>,
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
fn ann_recall(rt: &Runtime, catalog: &Catalog, all: &[f32], dim: usize) -> Ann {
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
            let mut got = rt.block_on(catalog.nearest(q, want, ef)).unwrap();
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
    let (recall_filtered, times_filtered) = ann_filtered(rt, catalog, all, dim, &qs[..], warm);
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
        recall_filtered,
        times_filtered,
        sweep,
    }
}

/// Recall@10 and latency of the product's setting (100 candidates, beam 384 widened for
/// the filter's share as search does) with a filter that leaves every 100th shot's
/// video (1% of the frames); the truth is brute force over those frames.
fn ann_filtered(
    rt: &Runtime,
    catalog: &Catalog,
    all: &[f32],
    dim: usize,
    qs: &[(Vec<f32>, HashSet<i64>)],
    warm: usize,
) -> (f64, Vec<Duration>) {
    let dir = catalog.directory();
    let mut listed: Vec<_> = dir.iter().filter(|v| v.frames > 0).collect();
    listed.sort_by_key(|v| v.id);
    let kept: Vec<_> = listed.iter().step_by(100).collect();
    let mut videos: Vec<i64> = kept.iter().map(|v| v.id).collect();
    videos.sort_unstable();
    // Frame ids are 1-based in store order, which is the order of `all`.
    let frames: Vec<i64> = kept
        .iter()
        .flat_map(|v| v.first_frame..v.first_frame + v.frames)
        .collect();
    let share = frames.len() as f64 / (all.len() / dim) as f64;
    let ef = ((384.0 / share.sqrt()) as usize).min(20_000);
    let (mut recall, mut times) = (0.0, Vec::new());
    for (qi, (q, _)) in qs.iter().enumerate() {
        let mut scored: Vec<(i64, f32)> = frames
            .iter()
            .map(|&id| {
                let i = (id - 1) as usize;
                (id, q.iter().zip(&all[i * dim..(i + 1) * dim]).map(|(a, b)| a * b).sum())
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        let truth: HashSet<i64> = scored.iter().take(10).map(|(id, _)| *id).collect();
        let scope = VectorScope {
            videos: Some(&videos),
            frames: None,
        };
        let t = Instant::now();
        let mut got = rt
            .block_on(catalog.nearest_for(&catalog.model(), q, 100, ef, scope))
            .unwrap();
        got.truncate(10);
        if qi < warm {
            continue;
        }
        times.push(t.elapsed());
        recall += got.iter().filter(|(id, _)| truth.contains(id)).count() as f64 / 10.0;
    }
    times.sort();
    (recall / (qs.len() - warm) as f64, times)
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
    b: &Backend,
    rt: &Runtime,
    data: &Path,
    model: &Arc<Embedder>,
    n: usize,
    rng: &mut Rng,
) -> (Catalog, Reopened) {
    let t = Instant::now();
    let catalog = rt.block_on(b.open(data, model.model_name(), model.dim(), false));
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
    if b.vectors == VectorChoice::Hnsw {
        assert_eq!(
            catalog.vector_points(),
            points + 3600,
            "removal left a tombstone, no rebuild"
        );
    }
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
    let Ok(files) = std::fs::read_dir(data.join("vectors")) else {
        return 0;
    };
    files
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
    backend: String,
    /// The PostgreSQL server's memory (Pss) after the searches, and the bytes on disk
    /// of the vector table with its indexes and of the store's `embeddings` (pgvector).
    pg_pss: Option<u64>,
    pg_table_bytes: Option<u64>,
    pg_embeddings_bytes: Option<u64>,
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
    let per = |b: Option<u64>| b.map(|b| b as f64 / n as f64);
    json!({
        "machine": util::machine(),
        "backend": m.backend,
        "postgres_pss_bytes_per_frame": per(m.pg_pss),
        "vector_table_disk_bytes_per_frame": per(m.pg_table_bytes),
        "store_embeddings_disk_bytes_per_frame": per(m.pg_embeddings_bytes),
        "recall_at_10_filtered_1pct": m.ann.recall_filtered,
        "ann_ms_filtered_1pct": {"p50": util::ms(util::percentile(&m.ann.times_filtered, 0.5)), "p99": util::ms(util::percentile(&m.ann.times_filtered, 0.99))},
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
    println!("machine: {}; backend: {}", util::machine(), m.backend);
    println!(
        "1% filter: recall@10 {:.4}, ANN p50/p99 {:.2} / {:.2} ms; postgres Pss {:?} B/frame, vector table on disk {:?} B/frame",
        m.ann.recall_filtered,
        util::ms(util::percentile(&m.ann.times_filtered, 0.5)),
        util::ms(util::percentile(&m.ann.times_filtered, 0.99)),
        report["postgres_pss_bytes_per_frame"].as_f64().map(|x| x.round()),
        report["vector_table_disk_bytes_per_frame"].as_f64().map(|x| x.round()),
    );
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
    let args = util::args(USAGE);
    let frames: usize = util::arg_or(&args, 0, 1_000_000);
    let backend = Backend::from_args(&args);
    let model_dir = util::vit_b32_dir().unwrap_or_else(|| util::root().join("models/tiny-clip"));
    let (model, model_int8) = load_models(&model_dir);
    let dim = model.dim();
    eprintln!(
        "query bench: {frames} frames of {dim} dimensions, text tower of {}",
        model.model_name()
    );
    let (data, reuse) = data_folder(&backend);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // 1. The store: one video per shot.
    let mut rng = Rng::new(7);
    let (all, store_secs) = write_store(&backend, &rt, &data, &model, frames, reuse, &mut rng);
    let n = all.len() / dim;

    // 2. The index, built from the store as the product does on first open.
    let rss0 = util::rss_bytes();
    let t = Instant::now();
    let catalog = rt.block_on(backend.open(&data, model.model_name(), dim, true));
    // (With a saved index, until its graph has loaded.)
    catalog.wait_vectors_ready();
    let build_secs = t.elapsed().as_secs_f64();
    let build_rss = util::rss_bytes().saturating_sub(rss0);

    // 3. Recall@10 against brute force, queries near the data (a frame plus noise).
    //    The headline is what search does; other requests and beams run on the same
    //    queries (one pass over all of them per setting).
    let ann = ann_recall(&rt, &catalog, &all, dim);

    // 4. Latency of the whole search path with text queries.
    let searches = time_searches(&rt, &catalog, &model, model_int8.as_ref());
    // Of the resident memory after the searches: pages of the memory-mapped exact file
    // (page cache, shared and reclaimable; the candidates' vectors read in place).
    let mapped_after_searches = util::rss_file_bytes();
    let pg_pss = backend.pg.as_ref().map(|p| p.pss_bytes());
    let (pg_table_bytes, pg_embeddings_bytes) = match (&backend.pg, backend.vectors) {
        (Some(p), VectorChoice::Pgvector) => {
            let q = |sql: &str| p.sql("bench", sql).parse::<u64>().ok();
            (
                q(
                    "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c WHERE c.relname LIKE 'frame\\_vectors\\_%' AND c.relkind = 'r'",
                ),
                q("SELECT pg_total_relation_size('embeddings')"),
            )
        }
        _ => (None, None),
    };

    // 5. Reopening the library with the saved index (no rebuild), then adding one
    //    1-hour video (3,600 frames, already embedded) and removing a video.
    rt.block_on(catalog.close());
    drop(catalog);
    let rss_closed = util::rss_bytes();
    let (_reopened_catalog, reopened) = reopen_add_and_remove(&backend, &rt, &data, &model, n, &mut rng);
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
        backend: backend.name(),
        pg_pss,
        pg_table_bytes,
        pg_embeddings_bytes,
    };
    let report = report(&m, &model, &data);
    print_summary(&m, &report);
    let suffix = if backend.name() == "hnsw" {
        String::new()
    } else {
        format!("-{}", backend.name())
    };
    util::write_report(&format!("query-{n}{suffix}"), &report);
}
