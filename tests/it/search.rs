//! The query language, the calibrated cut-off, picture queries, lexical rules and
//! `vidseek eval`, through the binary and the HTTP API, on one rendered library:
//!
//! - `video-0..3.mp4`: 16 of the 32 colour-shape pairs (those with an even colour +
//!   shape index), each once, 3 s per scene;
//! - `holiday/beach.webm` (file time 2020): video-0's red circle on yellow again (a
//!   near duplicate for "more like this") and a red circle on blue;
//! - `a.mp4` (a stop word as its name): empty backgrounds only;
//! - `circle.mp4` (a query word as its name): an empty background and a scene with
//!   subtitles about a harbour.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{Value, json};
use vidseek::{Codec, Colour, Rng, Scene, SceneSpan, Shape, VideoSpec};

use crate::common::assert::hit_is;
use crate::common::cli::{index_json, stderr, stdout, vs};
use crate::common::server::{Server, multipart, request};

struct Library {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
    /// (path, scene span) of every scene.
    scenes: Vec<(PathBuf, SceneSpan)>,
}

fn present(c: usize, s: usize) -> bool {
    (c + s) % 2 == 0
}

fn background(c: usize, s: usize) -> Colour {
    // Never the shape's colour.
    let mut b = (c + 2 * s + 3) % 8;
    if b == c {
        b = (b + 1) % 8;
    }
    Colour::ALL[b]
}

fn spec(scenes: Vec<Scene>, codec: Codec, seed: u64) -> VideoSpec {
    VideoSpec {
        width: 320,
        height: 240,
        fps: (10, 1),
        codec,
        scenes: scenes.into_iter().map(|s| (s, 3.0)).collect(),
        seed,
        extra_args: Vec::new(),
    }
}

fn library() -> &'static Library {
    static LIB: OnceLock<Library> = OnceLock::new();
    LIB.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("lib");
        std::fs::create_dir_all(root.join("holiday")).unwrap();
        let mut scenes = Vec::new();
        let mut pairs = Vec::new();
        for (si, shape) in Shape::ALL.into_iter().enumerate() {
            for (ci, colour) in Colour::ALL.into_iter().enumerate() {
                if present(ci, si) {
                    pairs.push(Scene::new(colour, shape, background(ci, si)));
                }
            }
        }
        assert_eq!(pairs.len(), 16);
        for v in 0..4 {
            let path = root.join(format!("video-{v}.mp4"));
            let list: Vec<Scene> = (0..4).map(|i| pairs[i * 4 + v].clone()).collect();
            for span in spec(list, Codec::H264, 10 + v as u64).write(&path).unwrap() {
                scenes.push((path.clone(), span));
            }
        }
        let beach = root.join("holiday/beach.webm");
        assert!(pairs[0].same_content(&Scene::new(Colour::Red, Shape::Circle, Colour::Yellow)));
        let list = vec![
            Scene::new(Colour::Red, Shape::Circle, Colour::Yellow),
            Scene::empty(Colour::Black),
            Scene::new(Colour::Red, Shape::Circle, Colour::Blue),
        ];
        for span in spec(list, Codec::Vp9, 20).write(&beach).unwrap() {
            scenes.push((beach.clone(), span));
        }
        let a = root.join("a.mp4");
        spec(vec![Scene::empty(Colour::White), Scene::empty(Colour::Black)], Codec::H264, 21)
            .write(&a)
            .unwrap();
        let circle = root.join("circle.mp4");
        spec(vec![Scene::empty(Colour::Green), Scene::empty(Colour::Black), Scene::empty(Colour::White)], Codec::H264, 22)
            .write(&circle)
            .unwrap();
        std::fs::write(
            root.join("circle.srt"),
            "1\n00:00:01,000 --> 00:00:02,500\nthe harbour at night\n\n2\n00:00:05,000 --> 00:00:06,500\nnight train to the harbour\n",
        )
        .unwrap();
        // The beach video's file time is in 2020.
        let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_591_000_000); // 2020-06-01
        std::fs::File::options().write(true).open(&beach).unwrap().set_modified(t).unwrap();
        let data = tmp.path().join("data");
        let (ok, report) = index_json(&data, &[&root]);
        assert!(ok, "{report}");
        Library {
            _tmp: tmp,
            root,
            data,
            scenes,
        }
    })
}

fn search(args: &[&str]) -> Value {
    let lib = library();
    let mut full = vec!["search", "--json"];
    full.extend_from_slice(args);
    let out = vs(&lib.data, &full);
    assert!(out.status.success(), "search {args:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn results(v: &Value) -> &Vec<Value> {
    v["results"].as_array().unwrap()
}

fn path_of(r: &Value) -> &str {
    r["path"].as_str().unwrap()
}

fn scene_of(c: Colour, s: Shape, bg: Colour) -> (PathBuf, SceneSpan) {
    let want = Scene::new(c, s, bg);
    library()
        .scenes
        .iter()
        .find(|(_, sp)| sp.scene.same_content(&want))
        .cloned()
        .unwrap()
}

#[test]
fn the_cut_off_returns_nothing_for_absent_pairs_and_keeps_present_ones_first() {
    let lib = library();
    let (mut absent_asked, mut absent_empty) = (0, 0);
    let (mut present_asked, mut present_first) = (0, 0);
    let mut failures = Vec::new();
    for (si, shape) in Shape::ALL.into_iter().enumerate() {
        for (ci, colour) in Colour::ALL.into_iter().enumerate() {
            let (c, s) = (colour.name(), shape.name());
            let forms = [format!("a {c} {s}"), format!("{c} {s}")];
            for q in &forms {
                let res = search(&[q.as_str(), "-k", "5"]);
                if present(ci, si) {
                    present_asked += 1;
                    let first = results(&res).first();
                    let right = first.is_some_and(|r| {
                        lib.scenes
                            .iter()
                            .any(|(p, sp)| sp.scene.shape == Some((shape, colour)) && hit_is(r, p, sp))
                    });
                    if right {
                        present_first += 1;
                    } else {
                        failures.push(format!("present {q:?}: {}", first.cloned().unwrap_or_default()));
                    }
                } else if colour == Colour::Red && shape == Shape::Circle {
                    unreachable!("red circle is present");
                } else {
                    absent_asked += 1;
                    if results(&res).is_empty() {
                        absent_empty += 1;
                        assert!(
                            res["withheld"].as_u64().unwrap() > 0,
                            "the held-back count is reported: {res}"
                        );
                    } else {
                        failures.push(format!("absent {q:?}: {}", results(&res)[0]));
                    }
                }
            }
        }
    }
    let absent = absent_empty as f64 / absent_asked as f64;
    let present = present_first as f64 / present_asked as f64;
    eprintln!(
        "cut-off: absent pairs empty {absent_empty}/{absent_asked}, present pairs first {present_first}/{present_asked}"
    );
    assert!(
        absent >= 0.9,
        "absent pairs returned nothing {absent:.3} of the time: {failures:#?}"
    );
    assert!(
        present >= 0.95,
        "present pairs came first {present:.3} of the time: {failures:#?}"
    );
    // Off shows the weaker matches the cut-off held back.
    let off = search(&["a purple circle", "--min-score", "off", "-k", "5"]);
    assert_eq!(results(&off).len(), 5, "{off}");
    assert_eq!(off["cutoff"], "off");
}

#[test]
fn filters_restrict_before_ranking() {
    let lib = library();
    let holiday = lib.root.join("holiday");
    // The purple square is in video-*, but a filtered page of one is never empty.
    let res = search(&["a purple square path:holiday", "--min-score", "off", "-k", "1"]);
    assert_eq!(results(&res).len(), 1, "{res}");
    assert!(
        path_of(&results(&res)[0]).starts_with(holiday.to_str().unwrap()),
        "{res}"
    );
    let res = search(&["a red circle path:holiday/*.webm", "--min-score", "off", "-k", "20"]);
    assert!(!results(&res).is_empty());
    assert!(
        results(&res).iter().all(|r| path_of(r).ends_with("beach.webm")),
        "{res}"
    );
    let res = search(&["a red circle ext:webm", "--min-score", "off", "-k", "20"]);
    assert!(
        !results(&res).is_empty() && results(&res).iter().all(|r| path_of(r).ends_with(".webm")),
        "{res}"
    );
    let res = search(&["a red circle -path:holiday", "--min-score", "off", "-k", "20"]);
    assert!(
        !results(&res).is_empty() && results(&res).iter().all(|r| !path_of(r).contains("holiday")),
        "{res}"
    );
    // File times: only the beach video is from before 2021.
    let res = search(&["a red circle before:2021", "--min-score", "off", "-k", "20"]);
    assert!(
        !results(&res).is_empty() && results(&res).iter().all(|r| path_of(r).ends_with("beach.webm")),
        "{res}"
    );
    let res = search(&["a red circle after:2021-01-01", "--min-score", "off", "-k", "20"]);
    assert!(
        !results(&res).is_empty() && results(&res).iter().all(|r| !path_of(r).ends_with("beach.webm")),
        "{res}"
    );
    // Durations: video-* last 12 s, the others 9 s or 6 s.
    let res = search(&["a red circle longer:10s", "--min-score", "off", "-k", "20"]);
    assert!(
        !results(&res).is_empty() && results(&res).iter().all(|r| path_of(r).contains("video-")),
        "{res}"
    );
    let res = search(&["a red circle shorter:0:10", "--min-score", "off", "-k", "20"]);
    assert!(
        !results(&res).is_empty() && results(&res).iter().all(|r| !path_of(r).contains("video-")),
        "{res}"
    );
    // video:ID.
    let id = results(&res)[0]["video_id"].as_i64().unwrap();
    let res = search(&[&format!("a green star video:{id}"), "--min-score", "off", "-k", "20"]);
    assert!(
        !results(&res).is_empty() && results(&res).iter().all(|r| r["video_id"].as_i64() == Some(id)),
        "{res}"
    );
    // source:text keeps only lexical matches.
    let res = search(&["harbour source:text", "-k", "20"]);
    assert!(
        !results(&res).is_empty() && results(&res).iter().all(|r| r["source"] == "text"),
        "{res}"
    );
    // A filter nothing passes: an empty page, not an error.
    let res = search(&["a red circle ext:mkv"]);
    assert!(results(&res).is_empty(), "{res}");
}

#[test]
fn negative_terms_drop_what_they_describe() {
    let (blue_path, blue) = scene_of(Colour::Red, Shape::Circle, Colour::Blue);
    let on_yellow = Scene::new(Colour::Red, Shape::Circle, Colour::Yellow);
    let yellow = |r: &Value| {
        library()
            .scenes
            .iter()
            .any(|(p, sp)| sp.scene.same_content(&on_yellow) && hit_is(r, p, sp))
    };
    let plain = search(&["a red circle", "--min-score", "off", "-k", "10"]);
    assert!(
        results(&plain).iter().take(3).filter(|r| yellow(r)).count() == 2,
        "without the negative both yellow ones lead: {plain}"
    );
    let res = search(&[
        "a red circle -\"a circle on a yellow background\"",
        "--min-score",
        "off",
        "-k",
        "10",
    ]);
    assert!(hit_is(&results(&res)[0], &blue_path, &blue), "{res}");
    assert!(
        !results(&res).iter().any(yellow),
        "no red circle on yellow survives the negative: {res}"
    );
}

#[test]
fn phrases_stop_words_and_cue_times() {
    // A word matches both cues; the phrase only its own; a negative word removes one.
    let texts = |v: &Value| -> Vec<String> {
        results(v)
            .iter()
            .filter_map(|r| r["text"].as_str().map(str::to_string))
            .collect()
    };
    let both = search(&["harbour source:text", "-k", "10"]);
    assert!(
        texts(&both).iter().any(|t| t.contains("at night")) && texts(&both).iter().any(|t| t.contains("train")),
        "{both}"
    );
    let phrase = search(&["\"the harbour at night\" source:text", "-k", "10"]);
    assert_eq!(texts(&phrase), vec!["the harbour at night".to_string()], "{phrase}");
    let cue = &results(&phrase)[0];
    assert!(
        (cue["start"].as_f64().unwrap() - 1.0).abs() < 0.05 && (cue["end"].as_f64().unwrap() - 2.5).abs() < 0.05,
        "{cue}"
    );
    let not = search(&["harbour -train source:text", "-k", "10"]);
    assert!(
        texts(&not).iter().all(|t| !t.contains("train")) && !texts(&not).is_empty(),
        "{not}"
    );
    // Stop words never match: both cues contain "the" and "to".
    let stop = search(&["the to source:text", "-k", "10"]);
    assert!(results(&stop).is_empty(), "{stop}");
}

#[test]
fn names_never_outrank_a_strong_visual_moment() {
    let lib = library();
    // `circle.mp4` is named like the query; the red circles are what it asks for.
    let res = search(&["a red circle", "-k", "10"]);
    let first = &results(&res)[0];
    assert!(
        path_of(first).contains("video-") || path_of(first).ends_with("beach.webm"),
        "{res}"
    );
    for (i, r) in results(&res).iter().enumerate() {
        if path_of(r).ends_with("/circle.mp4") {
            assert!(i > 0, "{res}");
            assert!(
                r["end"].as_f64().unwrap() - r["start"].as_f64().unwrap() < 8.9,
                "a name match is a moment, not the whole video: {r}"
            );
        }
    }
    // `a.mp4`: its name is a stop word; only empty backgrounds are in it.
    let res = search(&["a green triangle", "--min-score", "off", "-k", "3"]);
    assert!(!path_of(&results(&res)[0]).ends_with("/a.mp4"), "{res}");
    let res = search(&["a source:text"]);
    assert!(
        results(&res).is_empty(),
        "the stop word does not match the file a.mp4: {res}"
    );
    assert!(lib.root.join("a.mp4").exists());
}

fn lib_video_id(s: &Server, name: &str) -> i64 {
    let v = s.get("/api/videos").json();
    v["videos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["path"].as_str().unwrap().ends_with(name))
        .unwrap()["id"]
        .as_i64()
        .unwrap()
}

/// Writes a rendered scene as a binary PPM (FFmpeg reads it like any picture).
fn write_ppm(path: &Path, scene: &Scene) {
    let img = vidseek::render(scene, 224, 224, &mut Rng::new(7));
    let mut bytes = format!("P6\n{} {}\n255\n", img.width, img.height).into_bytes();
    bytes.extend_from_slice(&img.data);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn pictures_and_frames_search_like_text() {
    let lib = library();
    let tmp = tempfile::tempdir().unwrap();
    let pic = tmp.path().join("star.ppm");
    let green_star = lib
        .scenes
        .iter()
        .find(|(_, s)| {
            s.scene
                .shape
                .is_some_and(|(sh, c)| sh == Shape::Star && c == Colour::Green)
        })
        .cloned()
        .unwrap();
    write_ppm(&pic, &green_star.1.scene);
    let res = search(&["--image", pic.to_str().unwrap(), "-k", "3"]);
    assert!(hit_is(&results(&res)[0], &green_star.0, &green_star.1), "{res}");
    // Text and picture together: the picture alone finds the red circles on yellow; the
    // text moves the answer to the one on blue.
    let (blue_path, blue) = scene_of(Colour::Red, Shape::Circle, Colour::Blue);
    let on_yellow = Scene::new(Colour::Red, Shape::Circle, Colour::Yellow);
    let red = tmp.path().join("red.ppm");
    write_ppm(&red, &on_yellow);
    let alone = search(&["--image", red.to_str().unwrap(), "--min-score", "off", "-k", "3"]);
    assert!(
        lib.scenes
            .iter()
            .any(|(p, s)| s.scene.same_content(&on_yellow) && hit_is(&results(&alone)[0], p, s)),
        "{alone}"
    );
    let res = search(&[
        "a circle on a blue background",
        "--image",
        red.to_str().unwrap(),
        "--min-score",
        "off",
    ]);
    assert!(hit_is(&results(&res)[0], &blue_path, &blue), "{res}");
    // More like this frame: its near duplicate in the other video, never itself.
    let (v0, yellow_in_v0) = lib
        .scenes
        .iter()
        .find(|(p, s)| p.to_str().unwrap().contains("video-") && s.scene.same_content(&on_yellow))
        .cloned()
        .unwrap();
    let seed = search(&["a red circle on a yellow background", "--min-score", "off", "-k", "10"]);
    let src = results(&seed)
        .iter()
        .find(|r| hit_is(r, &v0, &yellow_in_v0))
        .unwrap_or_else(|| panic!("{seed}"));
    let fid = src["frame_id"].as_i64().unwrap().to_string();
    let res = search(&["--frame", &fid, "-k", "5"]);
    let (beach, dup) = lib
        .scenes
        .iter()
        .find(|(p, s)| p.ends_with("holiday/beach.webm") && s.scene.same_content(&on_yellow))
        .cloned()
        .unwrap();
    assert!(hit_is(&results(&res)[0], &beach, &dup), "{res}");
    assert!(
        !results(&res).iter().any(|r| hit_is(r, &v0, &yellow_in_v0)),
        "the frame's own moment is left out: {res}"
    );
    // A file that is not a picture: a clear error naming it, exit 2.
    let bad = tmp.path().join("notes.png");
    std::fs::write(&bad, b"these are not pixels").unwrap();
    let out = vs(&lib.data, &["search", "--image", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("notes.png"), "{}", stderr(&out));
    let out = vs(&lib.data, &["search", "--frame", "99999999"]);
    assert!(
        !out.status.success() && stderr(&out).contains("frame 99999999"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn malformed_queries_exit_2_naming_the_position() {
    let lib = library();
    for (q, want) in [
        ("a \"red star", "character 3"),
        ("red colour:blue", "colour"),
        ("a star after:2024-13-01", "after"),
        ("a star longer:forever", "longer"),
        ("-star -\"a circle\" path:x", "only negative"),
        ("a star^99", "weight"),
    ] {
        let out = vs(&lib.data, &["search", q]);
        assert_eq!(out.status.code(), Some(2), "{q:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{q:?}: {}", stderr(&out));
    }
    let out = vs(&lib.data, &["search", "a star", "--min-score", "high"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // The help documents the language.
    let out = vs(&lib.data, &["search", "--help"]);
    for form in [
        "path:",
        "ext:",
        "after:",
        "longer:",
        "source:",
        ">>",
        "-blue",
        "^2",
        "--min-score",
    ] {
        assert!(stdout(&out).contains(form), "help lacks {form}");
    }
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

#[test]
fn eval_reports_recall_map_and_misses() {
    let lib = library();
    let tmp = tempfile::tempdir().unwrap();
    let mut truth: Vec<Value> = lib
        .scenes
        .iter()
        .filter(|(p, _)| p.to_str().unwrap().contains("video-"))
        .map(|(p, s)| {
            let (shape, colour) = s.scene.shape.unwrap();
            json!({
                "query": format!("a {} {}", colour.name(), shape.name()),
                "path": p.strip_prefix(&lib.root).unwrap().to_str().unwrap(),
                "start": s.start,
                "end": s.end,
            })
        })
        .collect();
    // A moment that is not there: a miss with what came first.
    truth.push(json!({"query": "a yellow circle", "path": "video-0.mp4", "start": 30.0, "end": 33.0}));
    let file = tmp.path().join("truth.json");
    std::fs::write(&file, serde_json::to_vec(&truth).unwrap()).unwrap();
    let out = vs(&lib.data, &["eval", file.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    for key in [
        "recall_at_1",
        "recall_at_5",
        "recall_at_10",
        "map",
        "misses",
        "median_peak_error",
    ] {
        assert!(r.get(key).is_some(), "{key} missing: {r}");
    }
    let r1 = r["recall_at_1"].as_f64().unwrap();
    assert!(r1 >= 16.0 * 0.9 / 17.0 && r1 < 1.0, "{r}");
    assert!(r["recall_at_10"].as_f64().unwrap() >= r1);
    let misses = r["misses"].as_array().unwrap();
    let planted = misses
        .iter()
        .find(|m| m["start"] == 30.0)
        .unwrap_or_else(|| panic!("{r}"));
    assert!(
        planted["rank"].is_null() && planted["first"]["path"].is_string(),
        "{planted}"
    );
    // Shifted truth is not found: the numbers follow the truth.
    let shifted: Vec<Value> = truth
        .iter()
        .map(|t| json!({"query": t["query"], "path": t["path"], "start": t["start"].as_f64().unwrap() + 100.0, "end": t["end"].as_f64().unwrap() + 100.0}))
        .collect();
    std::fs::write(&file, serde_json::to_vec(&shifted).unwrap()).unwrap();
    let out = vs(&lib.data, &["eval", file.to_str().unwrap(), "--json"]);
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(r["recall_at_10"].as_f64(), Some(0.0), "{r}");
    // A malformed truth file: exit 2, naming the entry.
    std::fs::write(
        &file,
        br#"[{"query": "a star", "path": "x.mp4", "start": 5, "end": 1}]"#,
    )
    .unwrap();
    let out = vs(&lib.data, &["eval", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("entry 0"), "{}", stderr(&out));
}

#[test]
fn the_api_speaks_the_same_language() {
    let lib = library();
    let tmp = tempfile::tempdir().unwrap();
    // A copy of the data folder: the server may write (jobs, a checkpoint).
    let data = tmp.path().join("data");
    crate::common::copy_dir(&lib.data, &data);
    let s = Server::start(&data, &[&lib.root], &[], None);
    let r = s.get("/api/search?q=a%20%22star&k=5");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.json()["message"].as_str().unwrap().contains("character 3"),
        "{}",
        r.text()
    );
    let r = s.get("/api/search?q=-star&k=5");
    assert_eq!(r.status, 400, "{}", r.text());
    let r = s.get("/api/search?q=a%20purple%20circle&k=5").json();
    assert!(
        r["results"].as_array().unwrap().is_empty() && r["withheld"].as_u64().unwrap() > 0,
        "{r}"
    );
    let r = s.get("/api/search?q=a%20purple%20circle&k=5&min_score=off").json();
    assert_eq!(r["results"].as_array().unwrap().len(), 5, "{r}");
    // The `video` parameter restricts like `video:`.
    let beach_id = lib_video_id(&s, "beach.webm");
    let r = s
        .get(&format!(
            "/api/search?q=a%20red%20circle&k=20&min_score=off&video={beach_id}"
        ))
        .json();
    let list = r["results"].as_array().unwrap();
    assert!(
        !list.is_empty() && list.iter().all(|x| x["video_id"].as_i64() == Some(beach_id)),
        "{r}"
    );
    let r = s
        .get("/api/search?q=a%20red%20circle%20path:holiday&k=5&group=video")
        .json();
    assert!(
        r["groups"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["path"].as_str().unwrap().contains("holiday")),
        "{r}"
    );
    // More like this, and an uploaded picture.
    let fid = r["results"][0]["frame_id"].as_i64().unwrap();
    let like = s.get(&format!("/api/search?frame={fid}&k=3")).json();
    assert!(!like["results"].as_array().unwrap().is_empty(), "{like}");
    let pic = tmp.path().join("p.ppm");
    write_ppm(&pic, &Scene::new(Colour::Red, Shape::Circle, Colour::Blue));
    let (ct, body) = multipart("image", "p.ppm", &std::fs::read(&pic).unwrap());
    let r = request(s.port, "POST", "/api/search", &[], Some((ct.as_str(), &body)));
    assert_eq!(r.status, 200, "{}", r.text());
    let (bp, bs) = scene_of(Colour::Red, Shape::Circle, Colour::Blue);
    assert!(hit_is(&r.json()["results"][0], &bp, &bs), "{}", r.text());
    let (ct, body) = multipart("image", "junk.png", b"not a picture");
    let r = request(s.port, "POST", "/api/search", &[], Some((ct.as_str(), &body)));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("junk.png"), "{}", r.text());
    // Eval over HTTP: the same report.
    let truth = json!([{"query": "a yellow circle", "path": "video-0.mp4", "start": 30.0, "end": 33.0},
                       {"query": "a red circle on a blue background", "path": "holiday/beach.webm", "start": bs.start, "end": bs.end}]);
    let r = s.post_json("/api/eval", &truth);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = r.json();
    assert_eq!(r["recall_at_1"].as_f64(), Some(0.5), "{r}");
    assert_eq!(r["misses"].as_array().unwrap().len(), 1, "{r}");
    let r = s.post_json("/api/eval", &json!([{"query": "x", "path": "y", "start": 2, "end": 1}]));
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn sequences_find_a_moment_followed_by_another() {
    // video-0 shows a red circle (0-3 s), then a green square (3-6 s).
    let res = search(&["a red circle >> a green square", "-k", "3"]);
    let first = &results(&res)[0];
    assert!(path_of(first).ends_with("video-0.mp4"), "{res}");
    assert!(
        first["start"].as_f64().unwrap() < 0.5 && (first["end"].as_f64().unwrap() - 6.0).abs() < 0.6,
        "{first}"
    );
    // The other order is nowhere; nor is a gap too short for the wait.
    let res = search(&["a green square >> a red circle", "-k", "3"]);
    assert!(results(&res).is_empty(), "{res}");
    // The red triangle starts 3 s after the red circle ends: inside a 5 s gap, not a 1 s one.
    let res = search(&["a red circle >>5s a red triangle", "-k", "3"]);
    assert!(
        results(&res)
            .first()
            .is_some_and(|r| path_of(r).ends_with("video-0.mp4")),
        "{res}"
    );
    let res = search(&["a red circle >>1s a red triangle", "-k", "3"]);
    assert!(results(&res).is_empty(), "{res}");
}
