//! `serve --watch`: a file that appears in a library folder is indexed without any
//! request, only once it is whole, and leaves the library when it is removed.

use std::io::Write;
use std::time::Duration;

use serde_json::Value;
use vidseek::{Colour, Scene, Shape};

use crate::common::footage::render;
use crate::common::server::Server;

#[test]
fn a_file_dropped_into_the_watched_folder_becomes_searchable_without_any_request() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let s = Server::start(&tmp.path().join("data"), &[&lib], &["--watch"], None);
    // Written elsewhere, then moved in (as a finished download would be); a copy that
    // is still growing is covered by the settle time.
    let staged = tmp.path().join("staged.mp4");
    render(
        &staged,
        vec![
            (Scene::new(Colour::White, Shape::Triangle, Colour::Red), 3.0),
            (Scene::empty(Colour::Green), 2.0),
        ],
    );
    let target = lib.join("dropped.mp4");
    std::fs::copy(&staged, &target).unwrap();
    s.wait_for(90, "the watched file to be indexed", |s| {
        s.get("/api/videos").json()["videos"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["status"] == "indexed")
    });
    // The store lists the video as indexed a moment before the catalog has added its
    // vectors and directory entry (seen once under a loaded machine): allow that moment.
    s.wait_for(10, "the indexed file to be searchable", |s| {
        !s.get("/api/search?q=a%20white%20triangle").json()["results"][0].is_null()
    });
    let top = &s.get("/api/search?q=a%20white%20triangle").json()["results"][0];
    assert_eq!(top["path"], target.canonicalize().unwrap().display().to_string());
    assert!(
        top["start"].as_f64().unwrap() < 1.0 && top["end"].as_f64().unwrap() > 2.0,
        "{top}"
    );
    // Playing it (the media route streams the file; a player reads it over and over) is
    // no change: no index job is queued for a file only read.
    let jobs = |s: &Server| s.get("/api/jobs").json()["jobs"].as_array().unwrap().len();
    let before = jobs(&s);
    let id = top["video_id"].as_i64().unwrap();
    for _ in 0..3 {
        assert_eq!(s.get(&format!("/media/{id}")).status, 200);
        std::thread::sleep(Duration::from_millis(1500));
    }
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(jobs(&s), before, "{}", s.get("/api/jobs").text());
    // Removing the file removes the video.
    std::fs::remove_file(&target).unwrap();
    s.wait_for(60, "the removed file to leave the library", |s| {
        s.get("/api/videos").json()["videos"].as_array().unwrap().is_empty()
    });
}

#[test]
fn the_watcher_waits_for_a_file_still_being_copied() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let staged = tmp.path().join("staged.mp4");
    render(
        &staged,
        vec![
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
