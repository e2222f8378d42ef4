//! `cargo bench --bench serve`: load on `GET /api/search` of a running `vidseek serve`.
//!
//! A library of 100,000 frames made from real tiny-model embeddings (500 rendered
//! scenes, each the start of a 200-frame shot that drifts slowly, as video does), served
//! by the release binary. `wrk` (Debian package) drives it with 1, 10 and 50
//! connections, with distinct queries of the synthetic domain (no repeats a cache could answer); then again at 50
//! connections while an indexing job runs in the same server. Reports requests/s and
//! p50/p99 latency. Needs `wrk` and a release build (`cargo build --release`).

#[path = "util.rs"]
mod util;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use vidseek::{Access, Catalog, NewFrame, NewVideo};
use vidseek::{Device, EmbedOptions, Embedder};
use vidseek::{Rng, Scene, VideoSpec};

const USAGE: &str = "cargo bench --bench serve";

const FRAMES: usize = 100_000;
const SHOT: usize = 200;

fn build_library(data: &Path) {
    let model = Embedder::load(
        &util::root().join("models/tiny-clip"),
        &EmbedOptions {
            device: Device::Cpu,
            ..Default::default()
        },
    )
    .unwrap();
    let mut rng = Rng::new(5);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Written through the catalog to the store only, as a bulk load: the index is
        // built from the store when the library is next opened.
        let store = Catalog::open(data, model.model_name(), model.dim(), Access::Write)
            .await
            .unwrap();
        for s in 0..FRAMES / SHOT {
            let img = vidseek::render(&Scene::random(&mut rng, 0.1), 398, 224, &mut rng);
            let base = model.embed_images(&[img]).unwrap().row(0).to_vec();
            let mut walk = vec![0f32; base.len()];
            let frames = (0..SHOT)
                .map(|i| {
                    for w in walk.iter_mut() {
                        *w = 0.97 * *w + 0.01 * rng.normal() as f32;
                    }
                    let mut v: Vec<f32> = base.iter().zip(&walk).map(|(b, w)| b + w).collect();
                    util::unit(&mut v);
                    NewFrame {
                        start: i as f64,
                        end: i as f64 + 1.0,
                        peak: i as f64,
                        shot: false,
                        vector: v,
                        extra_vectors: Vec::new(),
                        thumbnail: Vec::new(),
                    }
                })
                .collect();
            let v = NewVideo {
                path: format!("/bench/scene-{s:05}.mp4"),
                duration: SHOT as f64,
                frames,
                ..NewVideo::default()
            };
            store.add_videos_unindexed(std::slice::from_ref(&v)).await.unwrap();
        }
        store.close().await;
    });
}

struct Wrk {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: String,
}

fn ms_of(s: &str) -> f64 {
    let s = s.trim();
    if let Some(v) = s.strip_suffix("us") {
        v.parse::<f64>().unwrap_or(f64::NAN) / 1000.0
    } else if let Some(v) = s.strip_suffix("ms") {
        v.parse().unwrap_or(f64::NAN)
    } else if let Some(v) = s.strip_suffix('s') {
        v.parse::<f64>().unwrap_or(f64::NAN) * 1000.0
    } else {
        f64::NAN
    }
}

fn wrk(port: u16, conns: usize, secs: u64, script: &Path, offset: u64) -> Wrk {
    let out = Command::new("wrk")
        .args([
            "-t",
            &conns.min(2).to_string(),
            "-c",
            &conns.to_string(),
            "-d",
            &format!("{secs}s"),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}"))
        .arg("--")
        .arg(offset.to_string())
        .output()
        .expect("wrk is installed (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let find = |prefix: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .map(|l| l.trim().to_string())
    };
    let rps = find("Requests/sec:")
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(f64::NAN);
    let p50 = find("50%")
        .map(|l| ms_of(l.split_whitespace().nth(1).unwrap_or("")))
        .unwrap_or(f64::NAN);
    let p99 = find("99%")
        .map(|l| ms_of(l.split_whitespace().nth(1).unwrap_or("")))
        .unwrap_or(f64::NAN);
    let errors = text
        .lines()
        .filter(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
        .collect::<Vec<_>>()
        .join("; ");
    Wrk {
        rps,
        p50_ms: p50,
        p99_ms: p99,
        errors,
    }
}

/// The release binary to measure: VIDSEEK_BIN (another build, an A/B against an older
/// commit), else target/release/vidseek.
fn release_binary() -> PathBuf {
    let bin = std::env::var_os("VIDSEEK_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| util::root().join("target/release/vidseek"));
    assert!(bin.exists(), "build the release binary first: cargo build --release");
    bin
}

/// The library's data folder (built once, kept between runs) and the footage folder for
/// the indexing-while-searching run, under `work`.
fn prepare(work: &Path) -> (PathBuf, PathBuf) {
    let data = work.join("data");
    if !data.join("vidseek.db").exists() {
        let _ = std::fs::remove_dir_all(work);
        eprintln!("serve bench: building a {FRAMES}-frame library");
        build_library(&data);
    }
    let lib = work.join("incoming");
    if !lib.exists() {
        std::fs::create_dir_all(&lib).unwrap();
        let mut rng = Rng::new(11);
        for i in 0..6 {
            let scenes = (0..10).map(|_| (Scene::random(&mut rng, 0.1), 6.0)).collect();
            VideoSpec {
                width: 1280,
                height: 720,
                seed: i,
                ..VideoSpec::new(scenes)
            }
            .write(&lib.join(format!("in-{i}.mp4")))
            .unwrap();
        }
    }
    (data, lib)
}

/// A running `vidseek serve` and its start-up times.
struct Served {
    child: Child,
    port: u16,
    /// Seconds until it listened.
    listening: f64,
    /// Seconds until its vector graph was ready.
    startup: f64,
}

/// Starts the server and waits for its vector graph: searches are exact scans until the
/// graph is loaded (or built from the store on the first start), so the graph is
/// measured, as a library that has been open a while.
fn serve(bin: &Path, data: &Path, lib: &Path) -> Served {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin)
        .args([
            "--data",
            data.to_str().unwrap(),
            "--device",
            "cpu",
            "--model",
            util::root().join("models/tiny-clip").to_str().unwrap(),
        ])
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--library",
            lib.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(600), "server did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    let listening = t0.elapsed().as_secs_f64();
    while curl(&[&format!("http://127.0.0.1:{port}/api/health")])["vectors_ready"] != true {
        assert!(t0.elapsed() < Duration::from_secs(900), "the vector graph did not load");
        std::thread::sleep(Duration::from_millis(200));
    }
    Served {
        child,
        port,
        listening,
        startup: t0.elapsed().as_secs_f64(),
    }
}

/// The JSON `curl -s ARGS` prints (null when it is none).
fn curl(args: &[&str]) -> serde_json::Value {
    let out = Command::new("curl").arg("-s").args(args).output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// Distinct queries (no repeats a cache could answer): 8 colours x 4 shapes x 8
/// backgrounds x 8 phrasings x 8 sizes x 8 places x 4 speeds = 524,288 sentences; each
/// wrk thread takes every other one, each run starts 40,000 further on (wrk's argument).
const QUERIES_LUA: &str = r#"local colours = {"red", "green", "blue", "yellow", "purple", "orange", "white", "black"}
local shapes = {"circle", "square", "triangle", "star"}
local forms = {"a %s %s %s on a %s background", "%s %s %s in front of %s", "an image of a %s %s %s over %s",
  "the %s %s %s on %s", "a photo of a %s %s %s against %s", "%s %s %s, %s behind it", "a %s %s %s and a %s backdrop",
  "there is a %s %s %s on %s"}
local sizes = {"small", "large", "bright", "dark", "pale", "tiny", "big", "faded"}
local places = {"", " in the middle", " on the left", " on the right", " at the top", " at the bottom", " in the corner", " near the edge"}
local speeds = {"", " moving slowly", " standing still", " drifting"}
local counter = 0
setup = function(thread)
  thread:set("id", counter)
  counter = counter + 1
end
local base = 0
init = function(args)
  base = tonumber(args[1] or "0")
end
local i = 0
local function pick(t, n) return t[(n % #t) + 1] end
request = function()
  local n = base + i * 2 + (id or 0)
  i = i + 1
  local c = pick(colours, n)
  n = math.floor(n / 8)
  local sh = pick(shapes, n)
  n = math.floor(n / 4)
  local bg = pick(colours, n + 3)
  n = math.floor(n / 8)
  local form = pick(forms, n)
  n = math.floor(n / 8)
  local size = pick(sizes, n)
  n = math.floor(n / 8)
  local place = pick(places, n)
  n = math.floor(n / 8)
  local speed = pick(speeds, n)
  local q = string.format(form, size, c, sh, bg) .. place .. speed
  q = q:gsub(" ", "%%20"):gsub(",", "%%2C")
  return wrk.format("GET", "/api/search?k=10&q=" .. q)
end
"#;

/// Forgets the footage an earlier run indexed (the data folder is kept between runs),
/// then starts a job indexing the six 60 s 720p videos in `lib`: the job.
fn start_indexing(port: u16, lib: &Path) -> serde_json::Value {
    let listed = curl(&[&format!("http://127.0.0.1:{port}/api/videos")]);
    let videos = listed["videos"]
        .as_array()
        .or(listed.as_array())
        .cloned()
        .unwrap_or_default();
    for v in videos {
        if v["path"].as_str().is_some_and(|p| p.starts_with(lib.to_str().unwrap())) {
            curl(&[
                "-X",
                "DELETE",
                &format!("http://127.0.0.1:{port}/api/videos/{}", v["id"]),
            ]);
        }
    }
    let body = json!({"path": lib}).to_string();
    curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-d",
        &body,
        &format!("http://127.0.0.1:{port}/api/index"),
    ])
}

/// A run's row of the report.
fn row(w: &Wrk, connections: usize, indexing: bool) -> serde_json::Value {
    json!({"connections": connections, "requests_per_s": w.rps, "p50_ms": w.p50_ms, "p99_ms": w.p99_ms, "errors": w.errors, "indexing": indexing})
}

/// Idle at 1, 10 and 50 connections; at 50 while a job indexes in the same server; idle
/// at 50 again after the busy run (idle, busy, idle: the ratio uses the mean of the two
/// idle runs around it, so drift of the machine does not pass for the job's cost).
fn runs(port: u16, lib: &Path, script: &Path) -> Vec<serde_json::Value> {
    let _ = wrk(port, 10, 3, script, 0); // warm-up
    let mut rows = Vec::new();
    for (run, c) in [1usize, 10, 50].into_iter().enumerate() {
        let w = wrk(port, c, 15, script, 40_000 * (run as u64 + 1));
        rows.push(row(&w, c, false));
    }
    let job = start_indexing(port, lib);
    std::thread::sleep(Duration::from_secs(2));
    let w = wrk(port, 50, 15, script, 160_000);
    let state = curl(&[&format!("http://127.0.0.1:{port}/api/jobs/{}", job["id"])]);
    let mut busy = row(&w, 50, true);
    busy["job_state_after"] = state["state"].clone();
    busy["job_frames_done"] = state["frames_done"].clone();
    rows.push(busy);
    let w = wrk(port, 50, 15, script, 200_000);
    let mut after = row(&w, 50, false);
    after["after_busy"] = json!(true);
    rows.push(after);
    rows
}

fn main() {
    util::args(USAGE);
    let bin = release_binary();
    let work = util::root().join("target/bench-serve");
    let (data, lib) = prepare(&work);
    let Served {
        mut child,
        port,
        listening,
        startup,
    } = serve(&bin, &data, &lib);
    let script = work.join("queries.lua");
    std::fs::write(&script, QUERIES_LUA).unwrap();
    let rows = runs(port, &lib, &script);
    let _ = child.kill();
    let _ = child.wait();

    println!(
        "machine: {}\nlibrary: {FRAMES} frames, tiny model; server listening after {listening:.1} s, vector graph ready after {startup:.1} s\n",
        util::machine()
    );
    println!("| connections | indexing | requests/s | p50 (ms) | p99 (ms) |\n|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.0} | {:.1} | {:.1} |",
            r["connections"],
            r["indexing"],
            r["requests_per_s"].as_f64().unwrap(),
            r["p50_ms"].as_f64().unwrap(),
            r["p99_ms"].as_f64().unwrap()
        );
    }
    let idle = (rows[2]["p99_ms"].as_f64().unwrap() + rows[4]["p99_ms"].as_f64().unwrap()) / 2.0;
    let busy = rows[3]["p99_ms"].as_f64().unwrap();
    println!(
        "\np99 while indexing / idle (mean of the idle runs before and after) at 50 connections: {:.2}x (job {} after the run)",
        busy / idle,
        rows[3]["job_state_after"]
    );
    util::write_report(
        "serve",
        &json!({"machine": util::machine(), "frames": FRAMES, "listening_seconds": listening, "startup_seconds": startup, "runs": rows, "p99_busy_over_idle": busy / idle}),
    );
}
