//! Driving the `vidseek` binary as a user would: one run with a clean environment, a
//! data folder with the bundled model on the CPU, the JSON its commands print, and the
//! library's own view of a data folder (the store is the source of truth).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use super::models::tiny_model_dir;

/// Runs the vidseek binary with `args` (and extra environment), no inherited model/data env.
/// In the store backend mode a `--data DIR` pair gains the folder's `--database`.
pub fn vidseek(args: &[&str], env: &[(&str, &str)], cwd: Option<&Path>) -> Output {
    let mut cmd = Command::new(crate::common::bin());
    let mut full: Vec<String> = Vec::with_capacity(args.len() + 2);
    for (i, a) in args.iter().enumerate() {
        full.push(a.to_string());
        if i > 0
            && args[i - 1] == "--data"
            && !args.contains(&"--database")
            && let Some(db) = super::pg::database_for(Path::new(a))
        {
            full.extend(["--database".to_string(), db]);
        }
    }
    cmd.args(&full)
        .env_remove("VIDSEEK_MODEL")
        .env_remove("VIDSEEK_DATA")
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("VIDSEEK_DEVICE")
        .env_remove("VIDSEEK_OCR")
        .env_remove("VIDSEEK_OCR_MODEL")
        .env_remove("VIDSEEK_DATABASE_URL");
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

/// `--data DIR`, and in the store backend mode the folder's `--database`: for a test
/// that starts the binary itself.
pub fn data_args(data: &Path) -> Vec<String> {
    let mut args = vec!["--data".to_string(), data.display().to_string()];
    if let Some(db) = super::pg::database_for(data) {
        args.extend(["--database".to_string(), db]);
    }
    args
}

/// Runs the binary against a data folder with the bundled model on the CPU (and, in
/// the store backend mode, the folder's database on the test PostgreSQL server: see
/// [`vidseek`]).
pub fn vs(data: &Path, args: &[&str]) -> Output {
    let mut full = vec!["--data", data.to_str().unwrap(), "--device", "cpu"];
    full.extend_from_slice(args);
    let model = tiny_model_dir();
    vidseek(&full, &[("VIDSEEK_MODEL", model.to_str().unwrap())], None)
}

/// The JSON a successful `vs(data, args)` prints.
pub fn vs_json(data: &Path, args: &[&str]) -> Value {
    let out = vs(data, args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

pub fn index_json(data: &Path, paths: &[&Path]) -> (bool, Value) {
    index_json_with(data, paths, &[])
}

/// `index --json` of `paths` with `extra` options: (whether the run succeeded, its report).
pub fn index_json_with(data: &Path, paths: &[&Path], extra: &[&str]) -> (bool, Value) {
    let mut args = vec!["index", "--json"];
    args.extend_from_slice(extra);
    let strs: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    args.extend(strs.iter().map(String::as_str));
    let out = vs(data, &args);
    let v = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {} / {}", stdout(&out), stderr(&out)));
    (out.status.success(), v)
}

/// Every file's outcome in an index report, over all its jobs.
pub fn report_files(report: &Value) -> Vec<Value> {
    report["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|j| j["files"].as_array().unwrap().clone())
        .collect()
}

pub fn search_json(data: &Path, query: &str, k: usize) -> Value {
    let out = vs(data, &["search", query, "-k", &k.to_string(), "--json"]);
    assert!(out.status.success(), "search {query:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// The library's videos as `videos --json` lists them.
pub fn videos(data: &Path) -> Vec<Value> {
    let v: Value = serde_json::from_str(&stdout(&vs(data, &["videos", "--json"]))).unwrap();
    v["videos"].as_array().unwrap().clone()
}

/// What the library's own store says about the data folder `data`.
pub fn library_info(data: &Path) -> vidseek::LibraryInfo {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = super::pg::database_for(data);
    rt.block_on(vidseek::library_info_in(data, db.as_deref())).unwrap()
}
