//! Shared by the benchmark programs: their arguments, timing with medians, the machine's
//! description, memory, shot-structured vectors, and the reports they write.
//!
//! Each bench includes this file as a module of its own (`#[path = "util.rs"] mod util;`)
//! and uses part of it: hence the `allow(dead_code)`.

#![allow(dead_code)]

use std::collections::HashSet;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use vidseek::Rng;

/// The bench's own arguments: `cargo bench` passes `--bench` before them. `--help` (or
/// `-h`) prints `usage` and exits, so every bench can be checked to start in a moment.
pub fn args(usage: &str) -> Vec<String> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{usage}");
        std::process::exit(0);
    }
    args
}

/// Argument `i` parsed, or `default` when it is absent or does not parse.
pub fn arg_or<T: FromStr>(args: &[String], i: usize, default: T) -> T {
    args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

/// Runs `f` `warmup` times untimed, then `reps` times; returns the sorted durations.
pub fn time_runs(warmup: usize, reps: usize, mut f: impl FnMut()) -> Vec<Duration> {
    for _ in 0..warmup {
        f();
    }
    let mut out: Vec<Duration> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    out.sort();
    out
}

pub fn median(d: &[Duration]) -> Duration {
    Duration::from_secs_f64(vidseek::median(
        &d.iter().map(Duration::as_secs_f64).collect::<Vec<_>>(),
    ))
}

pub fn percentile(d: &[Duration], p: f64) -> Duration {
    let i = ((d.len() as f64 - 1.0) * p).round() as usize;
    d[i.min(d.len() - 1)]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// "Intel(R) Xeon(R) Processor @ 2.50GHz, 2 cores, 23 GiB".
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| kb / 1024 / 1024)
        .unwrap_or(0);
    format!("{cpu}, {cores} cores, {mem} GiB")
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Writes `benches/results/<name>.json`.
pub fn write_report(name: &str, report: &serde_json::Value) {
    let dir = root().join("benches/results");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(report).unwrap() + "\n").unwrap();
    eprintln!("wrote {}", path.display());
}

/// A ViT-B/32 package for speed runs: $VIDSEEK_VITB32, else target/vit-b32-random
/// (made by `python3 models/export_clip.py --random-init --out target/vit-b32-random`).
pub fn vit_b32_dir() -> Option<PathBuf> {
    let p = std::env::var_os("VIDSEEK_VITB32")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/vit-b32-random"));
    if p.join("model.json").is_file() {
        Some(p)
    } else {
        eprintln!(
            "no ViT-B/32 package at {} (make one: python3 models/export_clip.py --random-init --out target/vit-b32-random); skipping it",
            p.display()
        );
        None
    }
}

/// Resident memory of this process (VmRSS), bytes.
pub fn rss_bytes() -> u64 {
    status_bytes("VmRSS:")
}

/// The part of the resident memory that is file pages mapped into the process (page
/// cache shared with the kernel, reclaimable: the index's memory-mapped exact vectors).
pub fn rss_file_bytes() -> u64 {
    status_bytes("RssFile:")
}

fn status_bytes(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// Scales `v` to unit length.
pub fn unit(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= n);
}

/// Frames of one shot, as video gives them: the shot's direction plus a slow random walk
/// (neighbouring frames are near-duplicates).
pub fn shot_vectors(rng: &mut Rng, dim: usize, frames: usize) -> Vec<Vec<f32>> {
    let mut centre: Vec<f32> = (0..dim).map(|_| rng.normal() as f32).collect();
    unit(&mut centre);
    let mut walk = vec![0f32; dim];
    (0..frames)
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

/// A query near the data: one of the frames of `all` (`dim` floats each) plus noise.
pub fn query_near(rng: &mut Rng, all: &[f32], dim: usize) -> Vec<f32> {
    let i = rng.below(all.len() / dim);
    let mut q: Vec<f32> = all[i * dim..(i + 1) * dim]
        .iter()
        .map(|x| x + 0.03 * rng.normal() as f32)
        .collect();
    unit(&mut q);
    q
}

/// The ids of the 10 frames of `all` nearest `q` by brute force (ids are 1-based
/// insertion order, as the store gives them).
pub fn true_top10(all: &[f32], dim: usize, q: &[f32]) -> HashSet<i64> {
    let mut exact: Vec<(usize, f32)> = all
        .chunks_exact(dim)
        .enumerate()
        .map(|(j, v)| (j, v.iter().zip(q).map(|(a, b)| a * b).sum()))
        .collect();
    exact.select_nth_unstable_by(9, |a, b| b.1.total_cmp(&a.1));
    exact[..10].iter().map(|(j, _)| *j as i64 + 1).collect()
}
