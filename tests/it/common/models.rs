//! The models the tests load: the bundled tiny CLIP (loaded once per test binary) and
//! the replicas of every real ONNX CLIP layout (built once per checkout).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;
use vidseek::{Device, EmbedError, EmbedOptions, Embedder};

use super::{fixtures, python, root};

pub fn tiny_model_dir() -> PathBuf {
    root().join("models/tiny-clip")
}

pub fn cpu_options() -> EmbedOptions {
    EmbedOptions {
        ort_lib: None,
        device: Device::Cpu,
        intra_threads: Some(2),
        ..EmbedOptions::default()
    }
}

/// The bundled tiny model, loaded once per test binary.
pub fn tiny() -> &'static Embedder {
    static MODEL: OnceLock<Embedder> = OnceLock::new();
    MODEL.get_or_init(|| Embedder::load(&tiny_model_dir(), &cpu_options()).expect("bundled model loads"))
}

/// The replicas of every real layout (tests/fixtures/make_replicas.py builds them from
/// the tiny model) and their reference vectors, built once per checkout (cached under
/// target/ by the script's fingerprint): (folder of the replicas, reference per replica).
pub fn replicas() -> &'static (PathBuf, Value) {
    static R: OnceLock<(PathBuf, Value)> = OnceLock::new();
    R.get_or_init(|| {
        let out = root().join("target/replicas");
        let run = std::process::Command::new(python())
            .arg(fixtures().join("make_replicas.py"))
            .arg("--out")
            .arg(&out)
            .output()
            .expect("python runs");
        assert!(
            run.status.success(),
            "make_replicas.py failed: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let r: Value = serde_json::from_str(&std::fs::read_to_string(out.join("reference.json")).unwrap()).unwrap();
        (out, r["replicas"].clone())
    })
}

/// A copy of the bundled package's five files in a temporary folder: its plain graphs
/// only (the manifest lists no fused text tower), so the engine opens the files the
/// tests break.
pub fn package_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "model.json",
        "visual.onnx",
        "textual.onnx",
        "tokenizer.json",
        "labels.txt",
    ] {
        std::fs::copy(tiny_model_dir().join(f), dir.path().join(f)).unwrap();
    }
    edit_manifest(dir.path(), |m| {
        m["files"].as_object_mut().unwrap().remove("textual_fused");
    });
    dir
}

/// Rewrites the `model.json` of the package in `dir` with `edit`.
pub fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut Value)) {
    let p = dir.join("model.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// The error loading the package in `dir` gives.
pub fn load_err(dir: &Path) -> EmbedError {
    Embedder::load(dir, &cpu_options()).expect_err("a broken package must not load")
}
