//! Shared helpers: paths, the bundled model loaded once, the binary, vector maths.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use vidseek::{Device, EmbedOptions, Embedder};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixtures() -> PathBuf {
    root().join("tests/fixtures")
}

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

/// What the machine running the suite must use, from `VIDSEEK_EXPECT_CUDA`: `1` makes
/// every GPU test strict (CUDA and NVDEC must be used, no fallback accepted; `.ci/gpu-run`
/// sets it), `0` makes a CPU-only machine's run strict the other way (CUDA must fail with
/// its reason), unset accepts either and checks the fallback's reason.
pub fn expect_cuda() -> Option<bool> {
    match std::env::var("VIDSEEK_EXPECT_CUDA").ok().as_deref().map(str::trim) {
        Some("1") => Some(true),
        Some("0") => Some(false),
        _ => None,
    }
}

/// The execution provider the suite expects ("CUDA" or "CPU"), or None for either.
pub fn expected_provider() -> Option<&'static str> {
    expect_cuda().map(|c| if c { "CUDA" } else { "CPU" })
}

/// Checks a reported provider against the expectation.
pub fn assert_provider(got: &str) {
    match expected_provider() {
        Some(want) => assert_eq!(got, want, "VIDSEEK_EXPECT_CUDA says {want}"),
        None => assert!(got == "CPU" || got == "CUDA", "{got}"),
    }
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// Runs the vidseek binary with `args` (and extra environment), no inherited model/data env.
pub fn vidseek(args: &[&str], env: &[(&str, &str)], cwd: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vidseek"));
    cmd.args(args)
        .env_remove("VIDSEEK_MODEL")
        .env_remove("VIDSEEK_DATA")
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("VIDSEEK_DEVICE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    cmd.output().expect("vidseek binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The Python the tests run reference tools with: `VIDSEEK_TEST_PYTHON`, else the
/// virtual environment `.ci/setup --test` makes (numpy, onnx, onnxruntime, tokenizers,
/// Pillow, schemathesis).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("VIDSEEK_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = root().join(".venv/bin/python");
    assert!(
        venv.is_file(),
        "{} is missing: run `.ci/setup --test` (it makes the virtual environment the tests' reference tools run in)",
        venv.display()
    );
    venv
}

/// Copies a folder (flat or nested) into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}
