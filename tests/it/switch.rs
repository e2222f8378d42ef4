//! Switching a library to another model without downtime: the library is re-embedded
//! into a second vector set while search keeps answering with the first, then switches
//! at once; a run killed at any moment resumes and loses nothing. The new model is the
//! M-CLIP replica (240 px, fixed batch 1, external weights), so the pictures really are
//! decoded again at another geometry, and both its towers end in one fixed random
//! rotation (tests/fixtures/make_replicas.py): it ranks like the tiny model, but a tiny
//! vector scores about 0 against its text, so a scene is found after a switch only if
//! its frames really were re-embedded with the new model, and a search during a switch
//! gives exactly the old model's answer only if it reads the old vector set alone.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vidseek::ImportOptions;
use vidseek::{Colour, Scene, Shape, VideoSpec};

use crate::common::assert::overlaps;
use crate::common::cli::{self, index_json};
use crate::common::models::{self, replicas};
use crate::common::server::Server;

const NEW: &str = "XLM-Roberta-Large-Vit-B-16Plus";

/// A library of `n` videos, each three scenes; returns (path, caption, start, end) of
/// the first scene of each.
fn library(dir: &Path, n: usize, seconds: f64) -> Vec<(PathBuf, String, f64, f64)> {
    std::fs::create_dir_all(dir).unwrap();
    let shapes = [Shape::Circle, Shape::Square, Shape::Triangle, Shape::Star];
    let colours = [
        Colour::Red,
        Colour::Green,
        Colour::Blue,
        Colour::Yellow,
        Colour::Orange,
        Colour::Purple,
    ];
    let mut out = Vec::new();
    for i in 0..n {
        let scene = Scene::new(
            colours[i % 6],
            shapes[(i / 6 + i) % 4],
            if i % 2 == 0 { Colour::White } else { Colour::Black },
        );
        // The first scene is the one searched for; after it, a scene a second, so that
        // each video has a dozen frames to re-embed.
        let mut scenes = vec![
            (scene.clone(), seconds / 3.0),
            (Scene::empty(colours[(i + 3) % 6]), 1.0),
        ];
        // (Empty scenes: no shape caption can match them.)
        let mut k = 0;
        while scenes.iter().map(|s| s.1).sum::<f64>() < seconds {
            scenes.push((Scene::empty(colours[(i + k + 1) % 6]), 1.0));
            k += 1;
        }
        let mut spec = VideoSpec::new(scenes);
        spec.width = 320;
        spec.height = 180;
        spec.seed = i as u64 + 5;
        let p = dir.join(format!("v{i:02}.mp4"));
        let spans = spec.write(&p).unwrap();
        out.push((p, spans[0].scene.caption(), spans[0].start, spans[0].end));
    }
    out
}

fn new_model(tmp: &Path) -> PathBuf {
    let (dir, _) = replicas();
    let pkg = tmp.join("mclip");
    vidseek::import_model(&dir.join(NEW), &pkg, &ImportOptions::default()).unwrap();
    pkg
}

/// Bad packages are refused before anything starts.
fn assert_bad_packages_are_refused(s: &Server, tmp: &Path) {
    // A folder that is not there: 404 naming it; one that holds no model package: 400.
    let nope = tmp.join("nope");
    let r = s.post_json("/api/model", &json!({"dir": nope.display().to_string()}));
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.text().contains(&nope.display().to_string()), "{}", r.text());
    std::fs::create_dir_all(&nope).unwrap();
    let r = s.post_json("/api/model", &json!({"dir": nope.display().to_string()}));
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["code"], "bad_model");
    let r = s.post_json(
        "/api/model",
        &json!({"dir": models::tiny_model_dir().display().to_string()}),
    );
    assert_eq!(r.status, 409, "{}", r.text());
}

/// The top hit of a search for `caption` through the API (no cut-off).
fn top_hit(s: &Server, caption: &str) -> Result<Value, String> {
    let r = s.get(&format!(
        "/api/search?q={}&k=1&min_score=-1",
        caption.replace(' ', "%20")
    ));
    if r.status != 200 {
        return Err(format!("{} {}", r.status, r.text()));
    }
    Ok(r.json()["results"][0].clone())
}

/// Whether two answers are the same moment with the same score (the same vectors).
fn same_answer(a: &Value, b: &Value) -> bool {
    a["frame_id"] == b["frame_id"]
        && a["start"] == b["start"]
        && a["end"] == b["end"]
        && (a["score"].as_f64().unwrap() - b["score"].as_f64().unwrap()).abs() < 1e-5
}

/// Searches on a thread of their own until stopped, each for one of the scenes in turn:
/// (searches, searches made while a switch was under way, failures and misses). A
/// search made entirely while the old model was active (it still was once the answer
/// came) must give exactly the answer it gave before the switch began: the old vector
/// set alone, none of the new model's vectors half-way in.
struct Searches {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<(usize, usize, Vec<String>)>>,
    thread: std::thread::JoinHandle<()>,
}

impl Searches {
    fn start(s: &Arc<Server>, truth: &[(PathBuf, String, f64, f64)]) -> Searches {
        let before: Vec<Value> = truth.iter().map(|t| top_hit(s, &t.1).unwrap()).collect();
        let old = s.get("/api/model").json()["active"]["name"].clone();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new((0usize, 0usize, Vec::<String>::new())));
        let thread = {
            let (s, stop, seen, truth) = (s.clone(), stop.clone(), seen.clone(), truth.to_vec());
            std::thread::spawn(move || {
                let mut k = 0;
                while !stop.load(Ordering::Relaxed) {
                    let i = k % truth.len();
                    let (path, caption, start, end) = &truth[i];
                    k += 1;
                    let during = !s.get("/api/model").json()["switch"].is_null();
                    let hit = top_hit(&s, caption);
                    let still_old = s.get("/api/model").json()["active"]["name"] == old;
                    let mut g = seen.lock().unwrap();
                    let hit = match hit {
                        Ok(hit) => hit,
                        Err(e) => {
                            g.2.push(e);
                            continue;
                        }
                    };
                    if hit["path"] != path.display().to_string() || !overlaps(&hit, *start, *end) {
                        g.2.push(format!("{caption:?}: {hit}"));
                    }
                    if during && still_old && !same_answer(&hit, &before[i]) {
                        g.2.push(format!(
                            "{caption:?} during the switch: {hit}, not the old set's answer {}",
                            before[i]
                        ));
                    }
                    g.0 += 1;
                    g.1 += (during && still_old) as usize;
                }
            })
        };
        Searches { stop, seen, thread }
    }

    fn stop(self) -> (usize, usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        self.seen.lock().unwrap().clone()
    }
}

/// Adds `late.mp4` (a white star on green, 0-4 s) to `lib` and posts its index job.
fn add_late_file(s: &Server, lib: &Path) -> (PathBuf, i64) {
    let late = lib.join("late.mp4");
    let mut spec = VideoSpec::new(vec![(Scene::new(Colour::White, Shape::Star, Colour::Green), 4.0)]);
    spec.width = 320;
    spec.height = 180;
    spec.write(&late).unwrap();
    let r = s.post_json("/api/index", &json!({"path": late.display().to_string()}));
    assert_eq!(r.status, 202);
    (late, r.json()["id"].as_i64().unwrap())
}

/// Polls `GET /api/model` until the new model is active (240 s after `t0` at most);
/// whether it showed the switch part-way.
fn wait_for_the_new_model(s: &Server, t0: Instant) -> bool {
    let mut progress_seen = false;
    loop {
        let m = s.get("/api/model").json();
        if let Some(done) = m["switch"]["frames_done"].as_i64() {
            progress_seen |= done > 0 && done < m["switch"]["frames_total"].as_i64().unwrap();
        }
        if m["active"]["name"] == NEW {
            return progress_seen;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(240),
            "the switch did not finish: {m}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_switch_keeps_search_answering_then_moves_the_library_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let truth = library(&lib, 8, 12.0);
    let pkg = new_model(tmp.path());
    let s = Arc::new(Server::start(&tmp.path().join("data"), &[&lib], &[], None));
    let r = s.post_json("/api/index", &json!({"path": lib.display().to_string()}));
    let job = r.json()["id"].as_i64().unwrap();
    s.wait_for(180, "indexing", |s| {
        s.get(&format!("/api/jobs/{job}")).json()["state"] == "succeeded"
    });
    assert_eq!(s.get("/api/model").json()["active"]["name"], "tiny-clip-synthetic");
    assert_bad_packages_are_refused(&s, tmp.path());

    // Searches run all through the switch; each must answer with the right moment.
    let searches = Searches::start(&s, &truth);
    let t0 = Instant::now();
    let r = s.post_json("/api/model", &json!({"dir": pkg.display().to_string()}));
    assert_eq!(r.status, 202, "{}", r.text());
    let switch_job = r.json()["id"].as_i64().unwrap();
    // A file added during the switch is indexed for both models.
    let (late, late_job) = add_late_file(&s, &lib);
    let progress_seen = wait_for_the_new_model(&s, t0);
    let switch_time = t0.elapsed();
    s.wait_for(120, "the late file", |s| {
        s.get(&format!("/api/jobs/{late_job}")).json()["state"] == "succeeded"
    });
    let (searches, during, wrong) = searches.stop();
    assert!(wrong.is_empty(), "searches that failed or missed: {wrong:?}");
    assert!(
        during > 0,
        "no search ran while the switch was under way on the old model ({searches} in all, switch took {switch_time:?})"
    );
    assert!(progress_seen, "GET /api/model never showed the switch part-way");
    let j = s.get(&format!("/api/jobs/{switch_job}")).json();
    assert_eq!(j["state"], "succeeded", "{j}");

    // The library is on the new model now: searches find every scene, the late file too.
    let m = s.get("/api/model").json();
    assert!(m["switch"].is_null(), "{m}");
    assert_eq!(m["active"]["image_size"], 240);
    for (path, caption, start, end) in truth.iter().chain(std::iter::once(&(
        late.clone(),
        "a white star on a green background".to_string(),
        0.0,
        4.0,
    ))) {
        let r = s
            .get(&format!(
                "/api/search?q={}&k=1&min_score=-1",
                caption.replace(' ', "%20")
            ))
            .json();
        let hit = &r["results"][0];
        assert!(
            hit["path"] == path.display().to_string() && overlaps(hit, *start, *end),
            "{caption:?}: {hit}"
        );
    }
    let h = s.get("/api/health?deep=true").json();
    assert_eq!(h["model"], NEW);
    assert_eq!(h["consistency"]["agree"], true, "{h}");
}

fn status(data: &Path) -> Value {
    let out = cli::vidseek(
        &["--data", data.to_str().unwrap(), "model", "status", "--json"],
        &[],
        None,
    );
    assert!(out.status.success(), "{}", cli::stderr(&out));
    serde_json::from_str(&cli::stdout(&out)).unwrap()
}

/// `vidseek --data DATA --device cpu ARGS` with no `--model`: the one the library recorded.
fn with_its_model(data: &Path, args: &[&str]) -> Output {
    let mut full = vec!["--data", data.to_str().unwrap(), "--device", "cpu"];
    full.extend_from_slice(args);
    cli::vidseek(&full, &[], None)
}

/// The top hit of a search with the library's own model.
fn search_with_its_model(data: &Path, q: &str) -> Value {
    let out = with_its_model(data, &["search", q, "-k", "1", "--json"]);
    assert!(out.status.success(), "{}", cli::stderr(&out));
    serde_json::from_str::<Value>(&cli::stdout(&out)).unwrap()["results"][0].clone()
}

/// Starts `model use pkg` and kills it (-9) once it has re-embedded some frames; the
/// frames the switch had to re-embed in all.
fn switch_killed_part_way(data: &Path, pkg: &Path) -> i64 {
    let mut child = std::process::Command::new(crate::common::bin())
        .args(cli::data_args(data))
        .args(["--device", "cpu", "model", "use", pkg.to_str().unwrap(), "--json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        let st = status(data);
        if let Some(done) = st["switch"]["frames_done"].as_i64()
            && done > 0
        {
            child.kill().unwrap();
            child.wait().unwrap();
            return st["switch"]["frames_total"].as_i64().unwrap();
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the switch finished before it could be interrupted"
        );
        assert!(t0.elapsed() < Duration::from_secs(120), "the switch never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_switch_killed_part_way_resumes_where_it_stopped_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let truth = library(&lib, 10, 18.0);
    let pkg = new_model(tmp.path());
    let data = tmp.path().join("data");
    let tiny = models::tiny_model_dir();
    let out = with_its_model(
        &data,
        &["--model", tiny.to_str().unwrap(), "index", lib.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", cli::stderr(&out));
    let total = switch_killed_part_way(&data, &pkg);

    // Killed: the library still answers with its old model (no --model: the one it recorded).
    let st = status(&data);
    assert_eq!(st["active"]["name"], "tiny-clip-synthetic", "{st}");
    let done_before = st["switch"]["frames_done"].as_i64().unwrap();
    assert!(done_before > 0 && done_before < total, "{st}");
    let (path, caption, start, end) = &truth[0];
    let hit = &search_with_its_model(&data, caption);
    assert!(
        hit["path"] == path.display().to_string() && overlaps(hit, *start, *end),
        "{hit}"
    );

    // The same command resumes: only what was left is re-embedded.
    let out = with_its_model(&data, &["model", "use", pkg.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", cli::stderr(&out));
    let report: Value = serde_json::from_str(&cli::stdout(&out)).unwrap();
    assert_eq!(report["state"], "succeeded", "{report}");
    let frames = report["frames"].as_i64().unwrap();
    assert!(
        frames < total && frames >= total - done_before,
        "resumed with {frames} of {total} frames ({done_before} were done): {report}"
    );
    assert!(report["not_reembedded"].as_array().unwrap().is_empty(), "{report}");

    // Nothing lost: every video, every frame, on the new model, which the library now remembers.
    let st = status(&data);
    assert_eq!(st["active"]["name"], NEW);
    assert!(st["switch"].is_null());
    let out = cli::vidseek(&["--data", data.to_str().unwrap(), "videos", "--json"], &[], None);
    let videos: Value = serde_json::from_str(&cli::stdout(&out)).unwrap();
    let list = videos["videos"].as_array().unwrap();
    assert_eq!(list.len(), truth.len());
    let frames_now: i64 = list.iter().map(|v| v["frame_count"].as_i64().unwrap()).sum();
    assert_eq!(frames_now, total);
    assert!(list.iter().all(|v| v["status"] == "indexed"), "{videos}");
    for (path, caption, start, end) in &truth {
        let hit = &search_with_its_model(&data, caption);
        assert!(
            hit["path"] == path.display().to_string() && overlaps(hit, *start, *end),
            "{caption:?}: {hit}"
        );
    }
}

#[test]
fn reembed_with_model_moves_the_library_like_model_use() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    let truth = library(&lib, 2, 3.0);
    let data = tmp.path().join("data");
    let (ok, report) = index_json(&data, &[&lib]);
    assert!(ok, "{report}");
    assert_eq!(status(&data)["active"]["name"], "tiny-clip-synthetic");
    let pkg = new_model(tmp.path());
    let out = with_its_model(&data, &["--model", pkg.to_str().unwrap(), "reembed", "--json"]);
    assert!(out.status.success(), "{}", cli::stderr(&out));
    let report: Value = serde_json::from_str(&cli::stdout(&out)).unwrap();
    assert_eq!(report["state"], "succeeded", "{report}");
    assert_eq!(status(&data)["active"]["name"], NEW);
    // Later commands need no --model: the library remembers it, and search answers with it.
    let hit = &search_with_its_model(&data, &truth[0].1);
    assert!(
        hit["path"] == truth[0].0.display().to_string() && overlaps(hit, truth[0].2, truth[0].3),
        "{hit}"
    );
}
