//! On-screen text end to end: the footage of tests/it/ocr_footage.rs indexed with the
//! real PP-OCRv5 models (`index --ocr on --ocr-model DIR`), then every planted phrase
//! found by a query for two of its words at the right time and place, in the CLI and
//! the API; a misread-tolerant query; `vidseek text` and `GET /api/videos/{id}/text`;
//! bad OCR models refused with errors naming the file, the library kept.

use std::path::Path;

use serde_json::Value;

use crate::common::cli::{stderr, stdout, vs, vs_json};
use crate::common::server::Server;
use crate::ocr::{model_dir, quad_of};
use crate::ocr_footage::{Footage, H, PHRASES, SUBTITLE, W, footage};

/// The sampling interval of `index` (1 frame per second).
const INTERVAL: f64 = 1.0;

/// Two words of phrase `p` that a user would type: its two longest.
fn two_words(p: usize) -> String {
    let mut words: Vec<&str> = Footage::text(p).split_whitespace().collect();
    words.sort_by_key(|w| std::cmp::Reverse(w.len()));
    format!("{} {}", words[0], words[1])
}

fn span(p: usize) -> (f64, f64) {
    PHRASES.get(p).map_or((SUBTITLE.1, SUBTITLE.2), |x| (x.start, x.end))
}

/// The box of a hit (fractions) in pixels.
fn pixels(quad: &Value) -> [[f32; 2]; 4] {
    std::array::from_fn(|i| {
        [
            quad[i][0].as_f64().unwrap() as f32 * W as f32,
            quad[i][1].as_f64().unwrap() as f32 * H as f32,
        ]
    })
}

/// Whether `hit` is phrase `p`: its time within one sampling interval of the phrase's,
/// its box over the phrase's pixels (IoU >= 0.5) in a frame of its time range.
fn is_phrase(f: &Footage, p: usize, hit: &Value) -> Result<(), String> {
    let (start, end) = span(p);
    let (hs, he) = (hit["start"].as_f64().unwrap(), hit["end"].as_f64().unwrap());
    if (hs - start).abs() > INTERVAL || (he - end).abs() > INTERVAL {
        return Err(format!("shown {start}-{end}, the hit says {hs}-{he}"));
    }
    let quad = pixels(&hit["quad"]);
    let best = f.bounds[p]
        .iter()
        .enumerate()
        .filter(|(k, _)| (*k as f64) >= hs - 1e-6 && (*k as f64) < he)
        .filter_map(|(_, b)| b.map(|b| vidseek::ocr_box_iou(&quad, &quad_of(b))))
        .fold(0.0f32, f32::max);
    if best < 0.5 {
        return Err(format!("box {quad:?} is not over the phrase (best IoU {best:.2})"));
    }
    Ok(())
}

/// The first result of `results` that is phrase `p`, or why none is.
fn found(f: &Footage, p: usize, results: &[Value]) -> Result<(), String> {
    let mut why = Vec::new();
    for r in results.iter().filter(|r| r.get("quad").is_some_and(|q| !q.is_null())) {
        match is_phrase(f, p, r) {
            Ok(()) => return Ok(()),
            Err(e) => why.push(format!("{:?}: {e}", r["text"])),
        }
    }
    Err(format!("{:?} not found: {why:?} in {results:?}", Footage::text(p)))
}

fn index_with_ocr(data: &Path, video: &Path) -> Value {
    let model = model_dir();
    let args = [
        "index",
        "--json",
        "--ocr",
        "on",
        "--ocr-model",
        model.to_str().unwrap(),
        video.to_str().unwrap(),
    ];
    vs_json(data, &args)
}

#[test]
fn every_planted_phrase_is_found_by_two_words_at_its_time_and_place_in_the_cli_and_the_api() {
    let f = footage();
    let data = tempfile::tempdir().unwrap();
    let t0 = std::time::Instant::now();
    let report = index_with_ocr(data.path(), &f.video);
    eprintln!("indexed with OCR in {:.1?}: {report}", t0.elapsed());
    let listed = vs_json(data.path(), &["text", f.video.to_str().unwrap(), "--json"]);
    eprintln!("on-screen text: {listed:#}");
    let video_id = listed["video_id"].as_i64().unwrap();
    let server = Server::start(data.path(), &[], &[], None);
    let mut failures = Vec::new();
    for p in 0..=PHRASES.len() {
        let q = format!("{} source:ocr", two_words(p));
        let cli = vs_json(data.path(), &["search", &q, "-k", "5", "--json"]);
        if let Err(e) = found(f, p, cli["results"].as_array().unwrap()) {
            failures.push(format!("CLI {q:?}: {e}"));
        }
        let api = server.get(&format!("/api/search?q={}&k=5", urlencode(&q))).json();
        if let Err(e) = found(f, p, api["results"].as_array().unwrap()) {
            failures.push(format!("API {q:?}: {e}"));
        }
    }
    // One misread character in a long word does not lose the hit (both words misread:
    // only the tolerant match can find it).
    let q = "Quarterlv forecazt source:ocr";
    if let Err(e) = found(
        f,
        0,
        vs_json(data.path(), &["search", q, "-k", "5", "--json"])["results"]
            .as_array()
            .unwrap(),
    ) {
        failures.push(format!("CLI {q:?}: {e}"));
    }
    // The video's on-screen text, in the API as in the CLI.
    let api_text = server.get(&format!("/api/videos/{video_id}/text")).json();
    assert_eq!(
        api_text["texts"].as_array().unwrap().len(),
        listed["texts"].as_array().unwrap().len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn a_folder_that_is_not_an_ocr_model_and_a_wrong_dictionary_are_refused_naming_the_file() {
    let f = footage();
    let data = tempfile::tempdir().unwrap();
    let video = f.video.to_str().unwrap();
    let ok = vs(data.path(), &["index", "--json", "--ocr", "off", video]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    // Graphs named like an OCR model that are not one.
    let junk = tempfile::tempdir().unwrap();
    let some_graph = crate::common::models::tiny_model_dir().join("visual.onnx");
    for name in ["x_det.onnx", "x_rec.onnx"] {
        std::fs::copy(&some_graph, junk.path().join(name)).unwrap();
    }
    std::fs::write(junk.path().join("keys.txt"), "a\nb\n").unwrap();
    let out = vs(
        data.path(),
        &["index", "--ocr-model", junk.path().to_str().unwrap(), video],
    );
    let err = stderr(&out);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        err.contains(&junk.path().join("x_det.onnx").display().to_string()),
        "{err}"
    );
    // The real graphs with a dictionary one entry short.
    let short = tempfile::tempdir().unwrap();
    for name in ["ppocrv5_det.onnx", "ppocrv5_cls.onnx", "ppocrv5_rec.onnx"] {
        std::os::unix::fs::symlink(model_dir().join(name), short.path().join(name)).unwrap();
    }
    let keys = std::fs::read_to_string(model_dir().join("ppocr_keys_v5.txt")).unwrap();
    let mut lines: Vec<&str> = keys.split('\n').collect();
    lines.remove(100);
    let dict = short.path().join("ppocr_keys_v5.txt");
    std::fs::write(&dict, lines.join("\n")).unwrap();
    let out = vs(
        data.path(),
        &["index", "--ocr-model", short.path().to_str().unwrap(), video],
    );
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains(&dict.display().to_string()) && err.contains("18385"),
        "{err}"
    );
    // Nothing indexed was lost.
    let videos = vs_json(data.path(), &["videos", "--json"]);
    assert_eq!(videos["videos"].as_array().unwrap().len(), 1, "{videos}");
}

#[test]
fn a_planted_phrase_is_found_in_the_ui_with_its_box_drawn_on_the_thumbnail_and_the_player() {
    let root = crate::common::root();
    assert!(
        root.join("tests/browser/node_modules/playwright-core").exists() && Path::new("/usr/bin/chromium").exists(),
        "playwright-core or chromium is not installed: run `.ci/setup --test`"
    );
    let f = footage();
    let tmp = tempfile::tempdir().unwrap();
    // VP9 plays in every Chromium build.
    let webm = tmp.path().join("onscreen.webm");
    let (src, dst) = (f.video.to_str().unwrap(), webm.to_str().unwrap());
    let vp9 = [
        "-c:v",
        "libvpx-vp9",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-b:v",
        "2M",
    ];
    crate::common::footage::ffmpeg(&[&["-i", src][..], &vp9[..], &[dst][..]].concat());
    let data = tmp.path().join("data");
    index_with_ocr(&data, &webm);
    let server = Server::start(&data, &[], &[], None);
    // Phrase 0 where it is in the frame at 1 s, as fractions of the frame.
    let b = f.bounds[0][1].unwrap();
    let want = [b[0] / W as f32, b[1] / H as f32, b[2] / W as f32, b[3] / H as f32].map(|x| x.to_string());
    let out = root.join("target/browser-test");
    std::fs::create_dir_all(&out).unwrap();
    let run = std::process::Command::new("node")
        .arg(root.join("tests/browser/ocr.mjs"))
        .args([&server.url("/"), "revenue forecast source:ocr", Footage::text(0)])
        .args(&want)
        .arg(&out)
        .output()
        .expect("node runs");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "browser test failed:\n{log}");
    assert!(log.contains("ok: the box over the player at"), "{log}");
}
