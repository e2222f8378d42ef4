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
//!
//! A few tests render footage of their own.

mod api;
mod eval;
mod language;
mod pictures;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;
use vidseek::{Codec, Colour, Rng, Scene, SceneSpan, Shape, VideoSpec};

use crate::common::cli::{index_json, stderr, stdout, vs};

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

/// Writes a rendered scene as a binary PPM (FFmpeg reads it like any picture).
fn write_ppm(path: &Path, scene: &Scene) {
    let img = vidseek::render(scene, 224, 224, &mut Rng::new(7));
    let mut bytes = format!("P6\n{} {}\n255\n", img.width, img.height).into_bytes();
    bytes.extend_from_slice(&img.data);
    std::fs::write(path, bytes).unwrap();
}
