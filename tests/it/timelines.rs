//! Timelines (`vidseek search --export-otio/--export-edl`, `GET /api/timeline`): the
//! files are read back with the real OpenTimelineIO package (and its CMX 3600 adapter
//! for the EDL) from `.venv` (`tests/fixtures/read_timeline.py`): one clip per moment in
//! rank order, source ranges equal to the moments plus the file's own start time within
//! a frame, the media paths. One file starts at 3600 s at 29.97 fps (drop-frame
//! timecode past the first minute); the other at 0 s at 25 fps.

use std::path::{Path, PathBuf};

use serde_json::Value;
use vidseek::{Colour, Scene, Shape, VideoSpec};

use crate::common::cli::{index_json, stderr, stdout, vs};
use crate::common::server::Server;

/// Reads `file` with OpenTimelineIO (an EDL at `rate`).
fn read_back(file: &Path, rate: Option<f64>) -> Value {
    let mut cmd = std::process::Command::new(crate::common::python());
    cmd.arg(crate::common::fixtures().join("read_timeline.py")).arg(file);
    if let Some(r) = rate {
        cmd.arg(r.to_string());
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "read_timeline.py {}: {} (needs opentimelineio and otio-cmx3600-adapter: .ci/setup --test)",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The video stream's start time, as ffprobe reads it.
fn start_time(path: &Path) -> f64 {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=start_time",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn library() -> (tempfile::TempDir, PathBuf, PathBuf, [PathBuf; 2]) {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let red = Scene::new(Colour::Red, Shape::Circle, Colour::Blue);
    let a = lib.join("ntsc offset.mp4");
    VideoSpec {
        fps: (30000, 1001),
        extra_args: vec!["-output_ts_offset".into(), "3600".into()],
        ..VideoSpec::new(vec![
            (Scene::new(Colour::Green, Shape::Square, Colour::White), 3.0),
            (red.clone(), 3.0),
            (Scene::empty(Colour::Yellow), 2.0),
            (red.clone(), 2.0),
        ])
    }
    .write(&a)
    .unwrap();
    let b = lib.join("pal.mp4");
    VideoSpec::new(vec![(Scene::empty(Colour::Black), 2.0), (red, 3.0)])
        .write(&b)
        .unwrap();
    let data = dir.path().join("data");
    let (ok, report) = index_json(&data, &[&a, &b]);
    assert!(ok, "{report}");
    (dir, data, lib, [a, b])
}

#[test]
fn search_results_export_as_otio_and_edl_that_opentimelineio_reads_back() {
    let (dir, data, lib, files) = library();
    assert!(
        (start_time(&files[0]) - 3600.0).abs() < 1e-3,
        "the footage starts at 3600 s"
    );
    let (otio, edl) = (dir.path().join("hits.otio"), dir.path().join("hits.edl"));
    let q = "a red circle";
    let o = vs(
        &data,
        &[
            "search",
            q,
            "-k",
            "5",
            "--min-score",
            "off",
            "--json",
            "--export-otio",
            otio.to_str().unwrap(),
            "--export-edl",
            edl.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let results = serde_json::from_str::<Value>(&stdout(&o)).unwrap()["results"]
        .as_array()
        .unwrap()
        .clone();
    assert!(results.len() >= 3, "{results:?}");
    let paths: Vec<&str> = results.iter().map(|r| r["path"].as_str().unwrap()).collect();
    assert!(paths.iter().any(|p| p.ends_with("pal.mp4")) && paths.iter().any(|p| p.ends_with("offset.mp4")));
    let edl_text = std::fs::read_to_string(&edl).unwrap();
    assert!(
        edl_text.contains("FCM: DROP FRAME") && edl_text.contains(" 01:00:0"),
        "{edl_text}"
    );

    // OTIO: each clip at its own file's rate; the EDL at the first clip's (29.97 here).
    let first_rate = if paths[0].ends_with("offset.mp4") {
        30000.0 / 1001.0
    } else {
        25.0
    };
    for (file, rate) in [(&otio, None), (&edl, Some(first_rate))] {
        let back = read_back(file, rate);
        let clips = back["clips"].as_array().unwrap();
        assert_eq!(clips.len(), results.len(), "{}: {back}", file.display());
        for (r, c) in results.iter().zip(clips) {
            let path = r["path"].as_str().unwrap();
            assert_eq!(c["media"], path, "{}: rank order and media paths", file.display());
            let own = if path.ends_with("offset.mp4") {
                30000.0 / 1001.0
            } else {
                25.0
            };
            let frame = 1.0 / rate.unwrap_or(own);
            let offset = start_time(Path::new(path));
            for (k, want) in [
                ("start", r["start"].as_f64().unwrap()),
                ("end", r["end"].as_f64().unwrap()),
            ] {
                let got = c[k].as_f64().unwrap();
                assert!(
                    (got - (offset + want)).abs() <= frame + 1e-6,
                    "{}: {k} {got} for a moment at {want} s of {path} (starting at {offset} s)",
                    file.display()
                );
            }
        }
    }

    // The API gives the same files for the same search.
    let s = Server::start(&data, &[&lib], &[], None);
    let r = s.get("/api/timeline?format=edl&q=a%20red%20circle&k=5&min_score=off");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("content-disposition").unwrap().contains("vidseek-search.edl"));
    assert_eq!(r.text(), edl_text);
    let r = s.get("/api/timeline?format=otio&q=a%20red%20circle&k=5&min_score=off");
    let from_cli: Value = serde_json::from_str(&std::fs::read_to_string(&otio).unwrap()).unwrap();
    assert_eq!(r.json(), from_cli);
    crate::common::assert::assert_error(&s.get("/api/timeline?format=aaf&q=x"), 400, "malformed");
}
