//! Bad files: each fails alone with a clear reason; the others are indexed and nothing
//! already indexed is lost.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;
use vidseek::{Colour, Scene, Shape, VideoSpec};

use crate::common::cli::{self, index_json, index_json_with, report_files, search_json, stderr, vs};
use crate::common::models;

/// A library with one good video indexed, and the same folder's data dir.
fn indexed_library() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let good = lib.join("good.mp4");
    VideoSpec::new(vec![(Scene::new(Colour::Purple, Shape::Star, Colour::Yellow), 3.0)])
        .write(&good)
        .unwrap();
    let data = tmp.path().join("data");
    assert!(index_json(&data, &[&lib]).0);
    (tmp, lib, data)
}

fn frames_of_good(data: &Path) -> i64 {
    let out = vs(data, &["videos", "--json"]);
    let v: Value = serde_json::from_str(&cli::stdout(&out)).unwrap();
    v["videos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["path"].as_str().unwrap().ends_with("good.mp4"))
        .unwrap()["frame_count"]
        .as_i64()
        .unwrap()
}

/// Adds `bad` plus a second good video to the library, re-indexes, and checks: the run
/// fails (exit status), `bad` failed with an error containing `reason`, the new good
/// video is indexed, the first one is intact and searchable.
fn assert_fails_alone(lib: &Path, data: &Path, bad: &Path, reason: &str) {
    let before = frames_of_good(data);
    let second = lib.join("second.mkv");
    if !second.exists() {
        VideoSpec {
            codec: vidseek::Codec::Hevc,
            ..VideoSpec::new(vec![(Scene::new(Colour::Green, Shape::Triangle, Colour::Black), 3.0)])
        }
        .write(&second)
        .unwrap();
    }
    // Two decoders: the bad file fails while a good one decodes beside it.
    let (ok, report) = index_json_with(data, &[lib], &["--decoders", "2"]);
    assert!(!ok, "a failed file must make the run fail: {report}");
    let files = report_files(&report);
    let entry = files
        .iter()
        .find(|f| {
            f["path"]
                .as_str()
                .unwrap()
                .ends_with(bad.file_name().unwrap().to_str().unwrap())
        })
        .unwrap_or_else(|| panic!("{} not reported: {report}", bad.display()));
    assert_eq!(entry["state"], "failed", "{entry}");
    let err = entry["error"].as_str().unwrap();
    assert!(
        err.contains(bad.file_name().unwrap().to_str().unwrap()) || err.contains("cannot read"),
        "{err}"
    );
    assert!(err.to_lowercase().contains(reason), "{err} should say {reason:?}");
    let second_state = &files
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("second.mkv"))
        .unwrap()["state"];
    assert!(second_state == "indexed" || second_state == "unchanged", "{report}");
    assert_eq!(frames_of_good(data), before, "the good video was touched");
    let top = &search_json(data, "a purple star on a yellow background", 1)["results"][0];
    assert!(top["path"].as_str().unwrap().ends_with("good.mp4"), "{top}");
    // `videos` lists the failure with its reason.
    let out = vs(data, &["videos"]);
    assert!(cli::stdout(&out).contains("failed"), "{}", cli::stdout(&out));
}

#[test]
fn text_file_with_a_video_extension() {
    let (_t, lib, data) = indexed_library();
    let bad = lib.join("notes.mp4");
    std::fs::write(&bad, "shopping list: eggs, milk\n".repeat(50)).unwrap();
    assert_fails_alone(&lib, &data, &bad, "not a readable image or video");
}

#[test]
fn zero_byte_file() {
    let (_t, lib, data) = indexed_library();
    let bad = lib.join("empty.mov");
    std::fs::write(&bad, b"").unwrap();
    assert_fails_alone(&lib, &data, &bad, "not a readable");
}

#[test]
fn random_bytes() {
    let (_t, lib, data) = indexed_library();
    let bad = lib.join("noise.webm");
    let mut rng = vidseek::Rng::new(9);
    let bytes: Vec<u8> = (0..200_000).map(|_| rng.next_u64() as u8).collect();
    std::fs::write(&bad, bytes).unwrap();
    assert_fails_alone(&lib, &data, &bad, "not a readable");
}

#[test]
fn truncated_file() {
    let (_t, lib, data) = indexed_library();
    // A Matroska file cut in half still opens: it must not pass as a short video.
    let full = lib.join("full.tmp");
    VideoSpec {
        codec: vidseek::Codec::Hevc,
        ..VideoSpec::new(vec![
            (Scene::new(Colour::White, Shape::Circle, Colour::Red), 6.0),
            (Scene::new(Colour::Blue, Shape::Square, Colour::Orange), 6.0),
        ])
    }
    .write(&full.with_extension("mkv"))
    .unwrap();
    let bytes = std::fs::read(full.with_extension("mkv")).unwrap();
    std::fs::remove_file(full.with_extension("mkv")).unwrap();
    let bad = lib.join("cut.mkv");
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    assert_fails_alone(&lib, &data, &bad, "truncated");
    // An MP4 cut in half loses its index (moov) and cannot be opened at all.
    let mp4 = lib.join("cut2.mp4");
    VideoSpec::new(vec![(Scene::new(Colour::White, Shape::Circle, Colour::Red), 4.0)])
        .write(&mp4)
        .unwrap();
    let bytes = std::fs::read(&mp4).unwrap();
    std::fs::write(&mp4, &bytes[..bytes.len() / 2]).unwrap();
    assert_fails_alone(&lib, &data, &mp4, "not a readable");
}

#[test]
fn audio_only_file() {
    let (_t, lib, data) = indexed_library();
    let bad = lib.join("song.mp4");
    let st = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=2",
            "-c:a",
            "aac",
        ])
        .arg(&bad)
        .status()
        .unwrap();
    assert!(st.success());
    assert_fails_alone(&lib, &data, &bad, "no video stream");
}

#[test]
fn unreadable_file() {
    let (_t, lib, data) = indexed_library();
    let bad = lib.join("locked.mp4");
    VideoSpec::new(vec![(Scene::new(Colour::Red, Shape::Circle, Colour::Green), 2.0)])
        .write(&bad)
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::File::open(&bad).is_ok() {
        // Running as root: permissions do not stop reads. A link to nowhere is the
        // unreadable file we can make here.
        std::fs::remove_file(&bad).unwrap();
        std::os::unix::fs::symlink(lib.join("gone.mp4"), &bad).unwrap();
        assert_fails_alone(&lib, &data, &bad, "no such file");
    } else {
        assert_fails_alone(&lib, &data, &bad, "permission denied");
    }
}

#[test]
fn extreme_resolution() {
    let (_t, lib, data) = indexed_library();
    let bad = lib.join("tiny.mp4");
    VideoSpec {
        width: 8,
        height: 8,
        ..VideoSpec::new(vec![(Scene::new(Colour::Red, Shape::Circle, Colour::Green), 2.0)])
    }
    .write(&bad)
    .unwrap();
    assert_fails_alone(&lib, &data, &bad, "8x8");
}

/// Starts `index lib --json` into `data` with one decoder (whatever the core count or
/// GPU), its report piped.
fn spawn_index_with_one_decoder(lib: &Path, data: &Path) -> Child {
    let model = models::tiny_model_dir();
    Command::new(crate::common::bin())
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
            // One decoder, whatever the core count or GPU: the long video holds it while
            // the victim waits its turn (more decoders would open the victim at once).
            "--decoders",
            "1",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the store lists a job processing with its files planned.
fn wait_until_a_job_is_processing(data: &Path) {
    let t0 = Instant::now();
    while !cli::library_info(data)
        .jobs
        .iter()
        .any(|j| j.state == vidseek::JobState::Processing && j.files_total > 0)
    {
        assert!(t0.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn file_deleted_while_the_job_runs() {
    let (_t, lib, data) = indexed_library();
    // A long video first (scan order is by name), then the victim.
    VideoSpec {
        width: 1280,
        height: 720,
        ..VideoSpec::new(vec![
            (Scene::new(Colour::Orange, Shape::Triangle, Colour::White), 15.0),
            (Scene::new(Colour::Black, Shape::Star, Colour::Green), 15.0),
        ])
    }
    .write(&lib.join("a-long.mp4"))
    .unwrap();
    let victim = lib.join("z-victim.mp4");
    VideoSpec::new(vec![(Scene::new(Colour::Blue, Shape::Circle, Colour::Yellow), 2.0)])
        .write(&victim)
        .unwrap();
    let child = spawn_index_with_one_decoder(&lib, &data);
    // Delete the victim as soon as the job is processing (planned, not yet decoded).
    wait_until_a_job_is_processing(&data);
    std::fs::remove_file(&victim).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let report: Value =
        serde_json::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    let files = report_files(&report);
    let v = files
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("z-victim.mp4"))
        .unwrap();
    assert_eq!(v["state"], "failed");
    assert!(
        v["error"].as_str().unwrap().to_lowercase().contains("no such file"),
        "{v}"
    );
    let long = files
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("a-long.mp4"))
        .unwrap();
    assert_eq!(long["state"], "indexed");
    let top = &search_json(&data, "a black star on a green background", 1)["results"][0];
    assert!(top["path"].as_str().unwrap().ends_with("a-long.mp4"), "{top}");
}
