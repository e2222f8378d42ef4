//! Indexing and searching real encoded videos of the synthetic domain through the
//! `vidseek` binary: decode -> embed -> SQLite + HNSW + tantivy -> segments.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use vidseek::{Codec, Colour, Scene, SceneSpan, Shape, VideoSpec};

use crate::common::{self, stderr, stdout};

/// Runs the binary against a data folder with the bundled model on the CPU.
pub fn vs(data: &Path, args: &[&str]) -> std::process::Output {
    let mut full = vec!["--data", data.to_str().unwrap(), "--device", "cpu"];
    full.extend_from_slice(args);
    let model = common::tiny_model_dir();
    common::vidseek(&full, &[("VIDSEEK_MODEL", model.to_str().unwrap())], None)
}

pub fn index_json(data: &Path, paths: &[&Path]) -> (bool, Value) {
    index_json_with(data, paths, &[])
}

pub fn index_json_with(data: &Path, paths: &[&Path], extra: &[&str]) -> (bool, Value) {
    let mut args = vec!["index", "--json"];
    args.extend_from_slice(extra);
    let strs: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    args.extend(strs.iter().map(String::as_str));
    let out = vs(data, &args);
    let v = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {} / {}", stdout(&out), stderr(&out)));
    (out.status.success(), v)
}

pub fn search_json(data: &Path, query: &str, k: usize) -> Value {
    let out = vs(data, &["search", query, "-k", &k.to_string(), "--json"]);
    assert!(out.status.success(), "search {query:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn all_files(report: &Value) -> Vec<Value> {
    report["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|j| j["files"].as_array().unwrap().clone())
        .collect()
}

/// 32 scenes in which every (colour, shape) and every (shape, background) pair occurs
/// once, so each query of the two forms has exactly one right answer.
fn unique_scenes() -> Vec<Scene> {
    let mut out = Vec::new();
    for (si, shape) in Shape::ALL.into_iter().enumerate() {
        for (ci, colour) in Colour::ALL.into_iter().enumerate() {
            let bg = Colour::ALL[(ci + si + 1) % 8];
            let mut s = Scene::new(colour, shape, bg);
            // Vary geometry inside the spec.
            s.size = 0.38 + 0.04 * ((ci + si) % 5) as f64;
            s.dx = 0.05 * ((ci % 3) as f64 - 1.0);
            s.dy = 0.05 * ((si % 3) as f64 - 1.0);
            s.rot = if shape == Shape::Circle {
                0.0
            } else {
                [-12.0, 0.0, 9.0][ci % 3]
            };
            s.noise = [0.0, 2.0, 4.0][(ci + 2 * si) % 3];
            out.push(s);
        }
    }
    // Interleave shapes so neighbouring scenes differ in shape and colour.
    let mut mixed = Vec::new();
    for i in 0..8 {
        for s in 0..4 {
            mixed.push(out[s * 8 + (i + 3 * s) % 8].clone());
        }
    }
    mixed
}

struct Rendered {
    path: PathBuf,
    spans: Vec<SceneSpan>,
}

/// Six videos covering the codecs, frame rates and geometries the spec names.
fn render_library(dir: &Path) -> Vec<Rendered> {
    let scenes = unique_scenes();
    let formats: [(Codec, u32, u32, (u32, u32)); 6] = [
        (Codec::H264, 640, 360, (25, 1)),
        (Codec::Vp9, 480, 480, (25, 1)),
        (Codec::Hevc, 360, 640, (25, 1)),
        (Codec::H264, 640, 480, (30000, 1001)),
        (Codec::H264, 360, 640, (30000, 1001)),
        (Codec::Vp9, 640, 360, (25, 1)),
    ];
    let mut out = Vec::new();
    let mut it = scenes.into_iter();
    for (v, (codec, w, h, fps)) in formats.into_iter().enumerate() {
        let n = if v < 2 { 6 } else { 5 };
        let list: Vec<(Scene, f64)> = it
            .by_ref()
            .take(n)
            .enumerate()
            .map(|(i, s)| (s, 2.0 + ((v + i) % 3) as f64))
            .collect();
        let spec = VideoSpec {
            width: w,
            height: h,
            fps,
            codec,
            scenes: list,
            seed: 100 + v as u64,
            extra_args: Vec::new(),
        };
        let path = dir.join(format!("video-{v}.{}", codec.extension()));
        let spans = spec.write(&path).unwrap();
        out.push(Rendered { path, spans });
    }
    assert_eq!(out.iter().map(|r| r.spans.len()).sum::<usize>(), 32);
    out
}

/// The spec's rule: a hit is right when it overlaps the scene by half the shorter of
/// the two, or its peak lies inside the scene.
fn hit_matches(hit: &Value, path: &Path, span: &SceneSpan) -> bool {
    if hit["path"].as_str() != Some(path.to_str().unwrap()) {
        return false;
    }
    let (s, e, p) = (
        hit["start"].as_f64().unwrap(),
        hit["end"].as_f64().unwrap(),
        hit["peak"].as_f64().unwrap(),
    );
    let overlap = (e.min(span.end) - s.max(span.start)).max(0.0);
    let shorter = (e - s).min(span.end - span.start);
    overlap >= 0.5 * shorter || (p >= span.start && p < span.end)
}

#[test]
fn every_scene_is_found_at_its_time_span_across_codecs_and_geometries() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let videos = render_library(&lib);
    let data = tmp.path().join("data");
    // Three files decode side by side into small batches, so batches mix files and a
    // file ends while others' frames are in flight: every hit must still carry the
    // right file and time.
    let (ok, report) = index_json_with(&data, &[&lib], &["--decoders", "3", "--batch", "4"]);
    assert!(ok, "{report}");
    let files = all_files(&report);
    assert_eq!(files.len(), 6);
    assert!(files.iter().all(|f| f["state"] == "indexed"), "{report}");

    let mut queries = 0;
    let mut right = 0;
    let mut timed = 0;
    let mut misses = Vec::new();
    for v in &videos {
        for span in &v.spans {
            let (shape, colour) = span.scene.shape.unwrap();
            for q in [
                format!("a {} {}", colour.name(), shape.name()),
                format!("a {} on a {} background", shape.name(), span.scene.bg.name()),
            ] {
                queries += 1;
                let res = search_json(&data, &q, 5);
                let top = &res["results"][0];
                if hit_matches(top, &v.path, span) {
                    right += 1;
                    // Within one sampling interval (1 s) of the truth.
                    let ds = (top["start"].as_f64().unwrap() - span.start).abs();
                    let de = (top["end"].as_f64().unwrap() - span.end).abs();
                    if ds <= 1.0 && de <= 1.0 {
                        timed += 1;
                    } else {
                        misses.push(format!("{q}: time {top} vs {:.2}-{:.2}", span.start, span.end));
                    }
                } else {
                    misses.push(format!(
                        "{q}: got {top}, want {} {:.2}-{:.2}",
                        v.path.display(),
                        span.start,
                        span.end
                    ));
                }
            }
        }
    }
    assert_eq!(queries, 64);
    let acc = right as f64 / queries as f64;
    assert!(
        acc >= 0.9,
        "top-1 accuracy {acc:.3} ({right}/{queries}); misses:\n{}",
        misses.join("\n")
    );
    assert!(
        timed as f64 >= 0.9 * right as f64,
        "timestamps off:\n{}",
        misses.join("\n")
    );

    // Human output: path  mm:ss.s-mm:ss.s  score  source  frame ID  [tags]
    let out = vs(&data, &["search", "a red circle", "-k", "3"]);
    let line = stdout(&out).lines().next().unwrap_or_default().to_string();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert!(
        line.ends_with("[a red circle]"),
        "the moment's tags close the line: {line}"
    );
    assert!(
        fields.len() >= 6 && fields[1].contains(':') && fields[2].parse::<f32>().is_ok() && fields[3] == "Visual",
        "{line}"
    );
    assert!(line.contains("frame "), "{line}");

    // Listing.
    let out = vs(&data, &["videos", "--json"]);
    let list: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let vids = list["videos"].as_array().unwrap();
    assert_eq!(vids.len(), 6);
    assert!(
        vids.iter()
            .all(|v| v["status"] == "indexed" && v["frame_count"].as_i64().unwrap() >= 5)
    );
    let portrait = vids
        .iter()
        .find(|v| v["path"].as_str().unwrap().ends_with("video-2.mkv"))
        .unwrap();
    assert_eq!(
        (portrait["width"].as_i64(), portrait["height"].as_i64()),
        (Some(360), Some(640))
    );
    assert_eq!(portrait["codec"], "hevc");
}

#[test]
fn sidecar_subtitles_are_found_by_a_word_at_their_time() {
    let tmp = tempfile::tempdir().unwrap();
    let video = tmp.path().join("harbour.mp4");
    VideoSpec::new(vec![
        (Scene::new(Colour::Red, Shape::Circle, Colour::Blue), 3.0),
        (Scene::new(Colour::Green, Shape::Star, Colour::White), 5.0),
    ])
    .write(&video)
    .unwrap();
    std::fs::write(
        tmp.path().join("harbour.srt"),
        "1\n00:00:01,000 --> 00:00:02,500\nGood morning everyone\n\n2\n00:00:04,000 --> 00:00:06,500\nthe lighthouse keeper <i>waves</i>\n",
    )
    .unwrap();
    let data = tmp.path().join("data");
    let (ok, report) = index_json(&data, &[&video]);
    assert!(ok, "{report}");
    let res = search_json(&data, "lighthouse", 5);
    let hit = res["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["source"] != "visual")
        .unwrap_or_else(|| panic!("no text hit: {res}"));
    assert!(hit["path"].as_str().unwrap().ends_with("harbour.mp4"));
    assert!((hit["start"].as_f64().unwrap() - 4.0).abs() < 0.05, "{hit}");
    assert!(
        (hit["end"].as_f64().unwrap() - 6.5).abs() < 0.05 || hit["source"] == "both",
        "{hit}"
    );
    assert!(hit["text"].as_str().unwrap().contains("lighthouse"));
    // The other cue does not answer for this word.
    assert!(
        !res["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["text"].as_str().is_some_and(|t| t.contains("morning")))
    );
    // The file name is searchable too.
    let res = search_json(&data, "harbour", 3);
    assert!(
        res["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["source"] != "visual"),
        "{res}"
    );
}

#[test]
fn reindexing_skips_unchanged_replaces_changed_and_remove_prune_work() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let a = lib.join("a.mp4");
    let b = lib.join("b.webm");
    VideoSpec::new(vec![
        (Scene::new(Colour::Yellow, Shape::Triangle, Colour::Purple), 3.0),
        (Scene::empty(Colour::Black), 2.0),
    ])
    .write(&a)
    .unwrap();
    VideoSpec {
        codec: Codec::Vp9,
        ..VideoSpec::new(vec![(Scene::new(Colour::White, Shape::Square, Colour::Green), 3.0)])
    }
    .write(&b)
    .unwrap();
    let data = tmp.path().join("data");
    let (ok, _) = index_json(&data, &[&lib]);
    assert!(ok);

    // Unchanged: skipped.
    let (ok, report) = index_json(&data, &[&lib]);
    assert!(ok);
    assert!(all_files(&report).iter().all(|f| f["state"] == "unchanged"), "{report}");

    // Changed content at the same path: re-indexed, old frames gone.
    VideoSpec::new(vec![(Scene::new(Colour::Orange, Shape::Star, Colour::Blue), 4.0)])
        .write(&a)
        .unwrap();
    let (ok, report) = index_json(&data, &[&lib]);
    assert!(ok);
    let states: Vec<(String, String)> = all_files(&report)
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        states.contains(&(a.display().to_string(), "indexed".into())),
        "{states:?}"
    );
    assert!(
        states.contains(&(b.display().to_string(), "unchanged".into())),
        "{states:?}"
    );
    let top = &search_json(&data, "a orange star", 1)["results"][0];
    assert_eq!(top["path"], a.display().to_string());
    // Stale frames of the old content would score about 0.64 for it anywhere in the
    // file; the new content scores far below (cut-off off: every moment of `a` is seen).
    let out = vs(
        &data,
        &[
            "search",
            "a yellow triangle",
            "-k",
            "20",
            "--min-score",
            "off",
            "--json",
        ],
    );
    let old: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let of_a: Vec<&Value> = old["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] == a.display().to_string())
        .collect();
    assert!(!of_a.is_empty(), "the new content of a is searchable: {old}");
    assert!(
        of_a.iter().all(|r| r["score"].as_f64().unwrap() < 0.5),
        "old content still answers: {old}"
    );
    let videos: Value = serde_json::from_str(&stdout(&vs(&data, &["videos", "--json"]))).unwrap();
    assert_eq!(videos["videos"].as_array().unwrap().len(), 2, "one row per path");

    // remove by id.
    let id_b = videos["videos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["path"] == b.display().to_string())
        .unwrap()["id"]
        .clone();
    let out = vs(&data, &["remove", &id_b.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let res = search_json(&data, "a white square", 5);
    assert!(
        !res["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["path"] == b.display().to_string())
    );

    // prune after the file is deleted.
    std::fs::remove_file(&a).unwrap();
    let out = vs(&data, &["prune"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 video(s) pruned"), "{}", stdout(&out));
    let videos: Value = serde_json::from_str(&stdout(&vs(&data, &["videos", "--json"]))).unwrap();
    assert!(videos["videos"].as_array().unwrap().is_empty());
    assert!(
        search_json(&data, "a orange star", 5)["results"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn kill_9_during_indexing_is_finished_by_the_next_run_and_store_and_index_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let scenes = unique_scenes();
    for (i, chunk) in scenes.chunks(4).take(6).enumerate() {
        // Long enough (32 s of 720p each) that the run can be caught half-way.
        let spec = VideoSpec {
            width: 1280,
            height: 720,
            seed: i as u64,
            ..VideoSpec::new(chunk.iter().map(|s| (s.clone(), 8.0)).collect())
        };
        spec.write(&lib.join(format!("clip-{i}.mp4"))).unwrap();
    }
    let data = tmp.path().join("data");
    let model = common::tiny_model_dir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vidseek"))
        .args([
            "--data",
            data.to_str().unwrap(),
            "--device",
            "cpu",
            "--model",
            model.to_str().unwrap(),
            "index",
            lib.to_str().unwrap(),
            "--json",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once at least one video is committed and before the job ends.
    let db = data.join("vidseek.db");
    let t0 = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(50));
        if child.try_wait().unwrap().is_some() {
            panic!("indexing finished before it could be killed; make the videos longer");
        }
        if db.exists() && count_indexed(&db) >= 1 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "no video was committed");
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done_before = count_indexed(&db);
    assert!(done_before < 6, "killed too late");

    // The next run (no paths needed: it resumes the interrupted job) finishes the work.
    let out = vs(&data, &["index", lib.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(count_indexed(&db), 6);

    // Store and indexes agree: one row per file, no orphan frames, every frame has a
    // vector, the vector index holds them all at the store's generation.
    let conn = rusqlite_free_counts(&db);
    assert_eq!(conn.videos, 6);
    assert_eq!(conn.orphan_frames, 0);
    assert_eq!(conn.frames_without_vector, 0);
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("vectors/vectors.json")).unwrap()).unwrap();
    assert_eq!(meta["generation"].as_u64().unwrap(), conn.generation);
    assert!(meta["points"].as_u64().unwrap() as i64 >= conn.frames);
    // Every video answers for its own first scene.
    for (i, chunk) in scenes.chunks(4).take(6).enumerate() {
        let (shape, colour) = chunk[0].shape.unwrap();
        let q = format!(
            "a {} {} on a {} background",
            colour.name(),
            shape.name(),
            chunk[0].bg.name()
        );
        let res = search_json(&data, &q, 3);
        assert!(
            res["results"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["path"].as_str().unwrap().ends_with(&format!("clip-{i}.mp4"))),
            "{q}: {res}"
        );
    }
    // The interrupted job is recorded as finished now, not left processing.
    let jobs = job_states(&db);
    assert!(!jobs.iter().any(|s| s == "processing" || s == "enqueued"), "{jobs:?}");
}

fn count_indexed(db: &Path) -> i64 {
    rusqlite_free_counts(db).indexed
}

struct DbCounts {
    videos: i64,
    indexed: i64,
    frames: i64,
    orphan_frames: i64,
    frames_without_vector: i64,
    generation: u64,
}

/// Reads counts through the library's own store (the database is the source of truth).
fn rusqlite_free_counts(db: &Path) -> DbCounts {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let info = vidseek::library_info(db.parent().unwrap()).await.unwrap();
        let (c, extra, g) = (info.counts, info.integrity, info.generation);
        DbCounts {
            videos: c.videos,
            indexed: c.indexed,
            frames: c.frames,
            orphan_frames: extra.orphan_frames,
            frames_without_vector: extra.frames_without_vector,
            generation: g,
        }
    })
}

fn job_states(db: &Path) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let jobs = vidseek::library_info(db.parent().unwrap()).await.unwrap().jobs;
        jobs.into_iter().map(|j| j.state.to_string()).collect()
    })
}

#[test]
fn searching_with_another_model_is_refused_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let video = tmp.path().join("v.mp4");
    VideoSpec::new(vec![(Scene::new(Colour::Red, Shape::Square, Colour::White), 2.0)])
        .write(&video)
        .unwrap();
    let data = tmp.path().join("data");
    assert!(index_json(&data, &[&video]).0);
    // The same graphs under another name: a different model as far as the index knows.
    let other = tmp.path().join("other-model");
    std::fs::create_dir_all(&other).unwrap();
    for f in ["visual.onnx", "textual.onnx", "tokenizer.json", "labels.txt"] {
        std::fs::copy(common::tiny_model_dir().join(f), other.join(f)).unwrap();
    }
    let mut m: Value =
        serde_json::from_str(&std::fs::read_to_string(common::tiny_model_dir().join("model.json")).unwrap()).unwrap();
    m["name"] = "some-other-clip".into();
    m["files"].as_object_mut().unwrap().remove("textual_fused");
    std::fs::write(other.join("model.json"), m.to_string()).unwrap();
    let out = common::vidseek(
        &[
            "--data",
            data.to_str().unwrap(),
            "--device",
            "cpu",
            "--model",
            other.to_str().unwrap(),
            "search",
            "a red square",
        ],
        &[],
        None,
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("tiny-clip") && err.contains("some-other-clip") && err.contains("vidseek model use"),
        "{err}"
    );
    // Indexing with it is refused the same way, and nothing is lost.
    let out = common::vidseek(
        &[
            "--data",
            data.to_str().unwrap(),
            "--device",
            "cpu",
            "--model",
            other.to_str().unwrap(),
            "index",
            video.to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("some-other-clip"));
    assert_eq!(
        search_json(&data, "a red square", 1)["results"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn empty_and_overlong_queries_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = vs(&data, &["search", "   "]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("query is empty"), "{}", stderr(&out));
    let long = "a red circle ".repeat(100);
    let out = vs(&data, &["search", &long]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("limit is 1000"), "{}", stderr(&out));
    let out = vs(&data, &["search", "ok", "-k", "0"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("k must be between"), "{}", stderr(&out));
}

/// A small shape appearing on its own background changes little luma (red on green: 87
/// against 109 levels, over 5% of a 16:9 frame), so shot detection and near-duplicate
/// collapse must see chroma too: the shape's scene gets its own frame and is found.
#[test]
fn a_small_shape_appearing_on_the_same_background_is_a_new_frame() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("appear.mp4");
    let small = |mut s: vidseek::Scene| {
        s.size = 0.35;
        s.noise = 0.0;
        s
    };
    let mut empty = vidseek::Scene::empty(vidseek::Colour::Green);
    empty.noise = 0.0;
    let spans = vidseek::VideoSpec {
        width: 640,
        height: 360,
        ..vidseek::VideoSpec::new(vec![
            (empty, 3.0),
            (
                small(vidseek::Scene::new(
                    vidseek::Colour::Red,
                    vidseek::Shape::Circle,
                    vidseek::Colour::Green,
                )),
                3.0,
            ),
        ])
    }
    .write(&path)
    .unwrap();
    let data = tmp.path().join("data");
    let (ok, report) = index_json(&data, &[&path]);
    assert!(ok, "{report}");
    let res = search_json(&data, "a red circle on a green background", 1);
    let hit = &res["results"][0];
    assert!(
        hit_matches(hit, &path, &spans[1]),
        "the circle's scene {:?}: {res}",
        (spans[1].start, spans[1].end)
    );
}
