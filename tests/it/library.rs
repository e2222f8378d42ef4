//! A library kept in step with its files through the CLI: re-indexing skips what is
//! unchanged and replaces what changed, `remove` forgets a video by id or by path (never
//! the file itself), `prune` drops the videos whose files are gone, and `VIDSEEK_DATA`
//! names the data folder in place of `--data`.

use std::path::Path;

use serde_json::Value;
use vidseek::{Codec, Colour, Scene, Shape, VideoSpec};

use crate::common::cli::{self, index_json, report_files, search_json, stderr, stdout, videos, vs};
use crate::common::footage::render;
use crate::common::models;

/// `b.webm` in `lib`: a white square on green, 3 s of VP9.
fn white_square(lib: &Path) -> std::path::PathBuf {
    let b = lib.join("b.webm");
    VideoSpec {
        codec: Codec::Vp9,
        ..VideoSpec::new(vec![(Scene::new(Colour::White, Shape::Square, Colour::Green), 3.0)])
    }
    .write(&b)
    .unwrap();
    b
}

#[test]
fn reindexing_skips_unchanged_files_and_replaces_changed_content_with_its_frames() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let a = lib.join("a.mp4");
    VideoSpec::new(vec![
        (Scene::new(Colour::Yellow, Shape::Triangle, Colour::Purple), 3.0),
        (Scene::empty(Colour::Black), 2.0),
    ])
    .write(&a)
    .unwrap();
    let b = white_square(&lib);
    let data = tmp.path().join("data");
    let (ok, _) = index_json(&data, &[&lib]);
    assert!(ok);

    // Unchanged: skipped.
    let (ok, report) = index_json(&data, &[&lib]);
    assert!(ok);
    let files = report_files(&report);
    assert!(
        files.len() == 2 && files.iter().all(|f| f["state"] == "unchanged"),
        "{report}"
    );

    // Changed content at the same path: re-indexed, old frames gone.
    VideoSpec::new(vec![(Scene::new(Colour::Orange, Shape::Star, Colour::Blue), 4.0)])
        .write(&a)
        .unwrap();
    let (ok, report) = index_json(&data, &[&lib]);
    assert!(ok);
    let states: Vec<(String, String)> = report_files(&report)
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
    assert_eq!(videos(&data).len(), 2, "one row per path");
}

#[test]
fn remove_by_id_or_path_forgets_the_video_but_never_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let a = lib.join("a.mp4");
    render(&a, vec![(Scene::new(Colour::Red, Shape::Circle, Colour::Blue), 4.0)]);
    let b = white_square(&lib);
    let data = tmp.path().join("data");
    let (ok, report) = index_json(&data, &[&lib]);
    assert!(ok, "{report}");

    // remove ID.
    let id_b = videos(&data)
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
}

#[test]
fn prune_drops_the_videos_whose_files_are_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let a = lib.join("a.mp4");
    render(&a, vec![(Scene::new(Colour::Orange, Shape::Star, Colour::Blue), 4.0)]);
    let data = tmp.path().join("data");
    let (ok, report) = index_json(&data, &[&lib]);
    assert!(ok, "{report}");

    // The file is deleted, then pruned.
    std::fs::remove_file(&a).unwrap();
    let out = vs(&data, &["prune"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 video(s) pruned"), "{}", stdout(&out));
    assert!(videos(&data).is_empty());
    assert!(
        search_json(&data, "a orange star", 5)["results"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn vidseek_data_names_the_data_folder_in_place_of_the_option() {
    let tmp = tempfile::tempdir().unwrap();
    let b = tmp.path().join("b.mp4");
    render(&b, vec![(Scene::new(Colour::Red, Shape::Circle, Colour::Green), 4.0)]);
    let data3 = tmp.path().join("data3");
    let model = models::tiny_model_dir();
    let out = cli::vidseek(
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
