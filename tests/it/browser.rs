//! The web UI in a real browser: Debian's headless Chromium driven by playwright-core
//! (tests/browser/e2e.mjs) against a real server with a rendered, indexed video.

use std::path::Path;
use std::process::Command;

use serde_json::json;
use vidseek::{Codec, Colour, Scene, Shape, VideoSpec};

use crate::common;
use crate::common::server::Server;

/// Two VP9 videos in `lib` (VP9/WebM plays in every Chromium build). `garden.webm`: the
/// red circle on blue at 6-10 s, after a weaker moment for the query at 0-3 s (the same
/// content drawn small: a credible match that scores lower). `alder.webm`, which sorts
/// first by name (and, indexed first, by id): that small red circle on blue and other
/// scenes. A page that ordered groups by name or id, or hits by time, shows the wrong
/// one first. (Measured with the tiny model: the small circle scores about 0.627, the
/// full-size one 0.642; a red circle on any other background is not credible at all.)
fn render_garden_and_alder(lib: &Path) {
    let small = Scene {
        size: 0.2,
        ..Scene::new(Colour::Red, Shape::Circle, Colour::Blue)
    };
    VideoSpec {
        codec: Codec::Vp9,
        ..VideoSpec::new(vec![
            (Scene::new(Colour::Red, Shape::Square, Colour::Yellow), 3.0),
            (small.clone(), 3.0),
            (Scene::new(Colour::Blue, Shape::Triangle, Colour::White), 3.0),
        ])
    }
    .write(&lib.join("alder.webm"))
    .unwrap();
    VideoSpec {
        codec: Codec::Vp9,
        ..VideoSpec::new(vec![
            (small, 3.0),
            (Scene::new(Colour::Yellow, Shape::Square, Colour::Purple), 3.0),
            (Scene::new(Colour::Red, Shape::Circle, Colour::Blue), 4.0),
            (Scene::new(Colour::White, Shape::Star, Colour::Green), 3.0),
        ])
    }
    .write(&lib.join("garden.webm"))
    .unwrap();
}

/// Runs tests/browser/e2e.mjs against the server for the red circle on blue in
/// garden.webm (6-10 s), alder.webm the distractor, screenshots into `out`: whether it
/// passed, and its output.
fn run_e2e(s: &Server, tmp: &Path, out: &Path) -> (bool, String) {
    let root = common::root();
    let truth = tmp.join("truth.json");
    std::fs::write(
        &truth,
        json!([{"query": "a red circle on a blue background", "path": "garden.webm", "start": 6.0, "end": 10.0}])
            .to_string(),
    )
    .unwrap();
    let run = Command::new("node")
        .arg(root.join("tests/browser/e2e.mjs"))
        .args([
            &s.url("/"),
            "a red circle on a blue background",
            "garden.webm",
            "6.0",
            "10.0",
            out.to_str().unwrap(),
            truth.to_str().unwrap(),
            "alder.webm",
        ])
        .output()
        .expect("node runs");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    (run.status.success(), log)
}

#[test]
fn search_click_and_play_in_headless_chromium() {
    let root = common::root();
    let node_modules = root.join("tests/browser/node_modules/playwright-core");
    assert!(
        node_modules.exists(),
        "playwright-core is not installed: run `.ci/setup --test` (installs chromium and tests/browser/node_modules)"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "chromium is not installed: run `.ci/setup --test`"
    );

    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    render_garden_and_alder(&lib);
    let s = Server::start(&tmp.path().join("data"), &[&lib], &[], None);
    // The distractor first, so that it sorts first by id as well as by name.
    for name in ["alder.webm", "garden.webm"] {
        let id = s.post_json("/api/index", &json!({"path": lib.join(name)})).json()["id"]
            .as_i64()
            .unwrap();
        s.wait_for(120, "indexing", |s| {
            s.get(&format!("/api/jobs/{id}")).json()["state"] == "succeeded"
        });
    }
    // The distractor really does sort first by id.
    assert!(s.video_id("alder.webm") < s.video_id("garden.webm"));

    // Screenshots are kept under target/ for a look after the run.
    let out = root.join("target/browser-test");
    std::fs::create_dir_all(&out).unwrap();
    let (passed, log) = run_e2e(&s, tmp.path(), &out);
    assert!(passed, "browser test failed:\n{log}");
    assert!(
        log.contains("ok: the distractor alder.webm is listed with a credible match, after garden.webm")
            && log.contains("ok: the first hit is the strongest moment, not the earliest"),
        "{log}"
    );
    assert!(
        log.contains("currentTime") && log.contains("lies inside the segment"),
        "{log}"
    );
    assert!(out.join("search.png").exists());
    assert!(log.contains("ok: 'more like this' finds similar moments"), "{log}");
    assert!(
        log.contains("ok: a dropped picture finds the video it came from"),
        "{log}"
    );
    assert!(
        log.contains("ok: the eval report of the uploaded truth file shows R@1 100.0%"),
        "{log}"
    );
    assert!(log.contains("ok: a facet shows only its moments"), "{log}");
    assert!(
        log.contains("ok: 'more like these' leaves the picked moment out"),
        "{log}"
    );
    assert!(
        log.contains("ok: a vocabulary saved in the editor retags the library"),
        "{log}"
    );
}
