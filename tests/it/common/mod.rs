//! Shared by every test file: where the repository's files are, the models, driving the
//! binary and a live server, rendered footage, and the assertions several features make.
//! A helper that only one feature uses stays in that feature's file; nothing here
//! checks a feature's behaviour.

pub mod assert;
pub mod cli;
pub mod footage;
pub mod models;
pub mod netns;
pub mod pg;
pub mod server;

use std::path::{Path, PathBuf};

/// The repository: `VIDSEEK_TEST_ROOT`, else where the suite was built (a GPU machine
/// runs the packed test binary in a checkout elsewhere: `.ci/gpu-run`).
pub fn root() -> PathBuf {
    std::env::var_os("VIDSEEK_TEST_ROOT").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// The `vidseek` binary under test: `VIDSEEK_TEST_BIN`, else the one built with the suite.
pub fn bin() -> PathBuf {
    std::env::var_os("VIDSEEK_TEST_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_vidseek")), PathBuf::from)
}

pub fn fixtures() -> PathBuf {
    root().join("tests/fixtures")
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

/// Copies a library's data folder into `to` (in the store backend mode its PostgreSQL
/// database too: the copy is another library).
pub fn copy_library(from: &Path, to: &Path) {
    copy_dir(from, to);
    pg::copy_database(from, to);
}
